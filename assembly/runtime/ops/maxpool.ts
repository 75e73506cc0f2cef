// MAXPOOL (opcode 7): attributes checked at load (the pool checks of AVGPOOL plus the padding), one padded plane
// of scratch stated; then the call.

import { ERR_ALIAS, ERR_GRAPH, ERR_OVERFLOW, ERR_SHAPE } from '../errors';
import { Model, OpInfo, bufferAt } from '../model';
import { checkRange, disjoint, opFail, spans, touch, word } from './checks';
import { maxpool, maxpool_scratch_bytes } from '../../kernels/maxpool';
import { maxpool3x3s2p1_split, maxpool3x3s2p1_split_scratch_bytes } from '../../kernels/ukernels/f32-maxpool3x3s2p1-split-wasmsimd';

/** 3x3, stride 2, padding 1 in SIMD builds (ShuffleNetV2's pool): the even/odd split copy, no shuffles. */
const MAXPOOL_S2_SPLIT: i32 = 1;

/** Checks the op's words (ops/checks.ts: the current op) and fills op; false after fail(). */
export function validateMaxPool(m: Model, op: OpInfo): bool {
  const inBuf = word(0), inCh = word(1), c = word(2), outBuf = word(3), outCh = word(4);
  const k = word(5), s = word(6), pad = word(7);
  if (!checkRange(m, inBuf, inCh, c, 'input') || !checkRange(m, outBuf, outCh, c, 'output')) return false;
  if (inBuf == outBuf && !disjoint(<i32>inCh, <i32>(inCh + c - 1), <i32>outCh, <i32>(outCh + c - 1))) {
    return opFail(ERR_ALIAS, 'input and output overlap');
  }
  const ib = bufferAt(m, <i32>inBuf), ob = bufferAt(m, <i32>outBuf);
  if (k < 1 || k > 16 || s < 1 || s > 16) return opFail(ERR_GRAPH, 'bad pool kernel/stride');
  if (pad > k / 2) return opFail(ERR_GRAPH, 'padding larger than kernel/2');
  if (<u32>ib.h + 2 * pad < k || <u32>ib.w + 2 * pad < k) return opFail(ERR_SHAPE, 'input below kernel');
  const oh = (<u32>ib.h + 2 * pad - k) / s + 1, ow = (<u32>ib.w + 2 * pad - k) / s + 1;
  if (oh != <u32>ob.h || ow != <u32>ob.w) return opFail(ERR_SHAPE, 'output size mismatch');
  const bytes = maxpool_scratch_bytes(ib.h, ib.w, <i32>pad);
  if (bytes < 0) return opFail(ERR_OVERFLOW, 'scratch size overflows');
  op.inBuf = <i32>inBuf; op.inCh = <i32>inCh; op.cin = <i32>c;
  op.outBuf = <i32>outBuf; op.outCh = <i32>outCh; op.cout = <i32>c;
  op.h = ib.h; op.w = ib.w; op.outH = <i32>oh; op.outW = <i32>ow;
  op.kernel = <i32>k; op.stride = <i32>s; op.pad = <i32>pad;
  op.scratchBytes = bytes;
  if (ASC_FEATURE_SIMD && k == 3 && s == 2 && pad == 1) {
    const b = maxpool3x3s2p1_split_scratch_bytes(ib.h, ib.w);
    if (b >= 0) {
      op.impl = MAXPOOL_S2_SPLIT;
      op.scratchBytes = max(b, bytes);
    }
  }
  spans(op);
  touch(m, <i32>inBuf); touch(m, <i32>outBuf);
  return true;
}

export function runMaxPool(op: OpInfo, src: usize, dst: usize, scratch: usize): void {
  if (ASC_FEATURE_SIMD && op.impl == MAXPOOL_S2_SPLIT) maxpool3x3s2p1_split(src, op.cin, op.h, op.w, dst, op.outH, op.outW, scratch);
  else maxpool(src, op.cin, op.h, op.w, op.kernel, op.stride, op.pad, dst, op.outH, op.outW, scratch);
}
