// AVGPOOL and GLOBAL_AVGPOOL: attributes checked at load, no scratch; the call at run time.

import { ERR_ALIAS, ERR_GRAPH, ERR_SHAPE } from '../errors';
import { NONE } from '../format';
import { Model, OpInfo, bufferAt } from '../model';
import { checkAct, checkRange, disjoint, opFail, optionalFloats, spans, touch, word } from './checks';
import { avgpool, global_avgpool } from '../../kernels/pool';

/** Checks the op's words (ops/checks.ts: the current op) and fills op; false after fail(). */
export function validateAvgPool(m: Model, op: OpInfo): bool {
  return validatePool(m, op, false);
}

/** Checks the op's words (ops/checks.ts: the current op) and fills op; false after fail(). */
export function validateGlobalAvgPool(m: Model, op: OpInfo): bool {
  return validatePool(m, op, true);
}

function validatePool(m: Model, op: OpInfo, global: bool): bool {
  const inBuf = word(0), inCh = word(1), c = word(2), outBuf = word(3), outCh = word(4);
  if (!checkRange(m, inBuf, inCh, c, 'input') || !checkRange(m, outBuf, outCh, c, 'output')) return false;
  if (inBuf == outBuf && !disjoint(<i32>inCh, <i32>(inCh + c - 1), <i32>outCh, <i32>(outCh + c - 1))) {
    return opFail(ERR_ALIAS, 'input and output overlap');
  }
  const ib = bufferAt(m, <i32>inBuf), ob = bufferAt(m, <i32>outBuf);
  op.inBuf = <i32>inBuf; op.inCh = <i32>inCh; op.cin = <i32>c;
  op.outBuf = <i32>outBuf; op.outCh = <i32>outCh; op.cout = <i32>c;
  op.h = ib.h; op.w = ib.w;
  if (global) {
    const act = word(5), scT = word(6), shT = word(7);
    if (!checkAct(act)) return false;
    if (ob.h != 1 || ob.w != 1) return opFail(ERR_SHAPE, 'global pooling writes a 1x1 buffer');
    if ((scT == NONE) != (shT == NONE)) return opFail(ERR_GRAPH, 'inScale without inShift');
    const ok = memory.data(4);
    store<bool>(ok, true);
    op.inScale = optionalFloats(m, scT, c, 'inScale', ok);
    op.inShift = optionalFloats(m, shT, c, 'inShift', ok);
    if (!load<bool>(ok)) return false;
    op.inAct = <i32>act;
    op.outH = 1; op.outW = 1;
  } else {
    const k = word(5), s = word(6);
    if (k < 1 || k > 16 || s < 1 || s > 16) return opFail(ERR_GRAPH, 'bad pool kernel/stride');
    if (<u32>ib.h < k || <u32>ib.w < k) return opFail(ERR_SHAPE, 'input below kernel');
    const oh = (<u32>ib.h - k) / s + 1, ow = (<u32>ib.w - k) / s + 1;
    if (oh != <u32>ob.h || ow != <u32>ob.w) return opFail(ERR_SHAPE, 'output size mismatch');
    op.kernel = <i32>k; op.stride = <i32>s; op.outH = <i32>oh; op.outW = <i32>ow;
  }
  spans(op);
  touch(m, <i32>inBuf); touch(m, <i32>outBuf);
  return true;
}

export function runAvgPool(op: OpInfo, src: usize, dst: usize, scratch: usize): void {
  avgpool(src, op.cin, op.h, op.w, op.kernel, op.stride, dst, op.outH, op.outW);
}

export function runGlobalAvgPool(op: OpInfo, src: usize, dst: usize, scratch: usize): void {
  global_avgpool(src, op.cin, op.h * op.w, op.inScale, op.inShift, op.inAct, dst);
}
