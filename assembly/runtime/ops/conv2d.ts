// CONV2D: its attributes and tensors checked, its kernel chosen and its scratch stated, once at load; then the
// call the executor makes for it. A new kernel for some convolutions is one more choice in planConv2d.

import { ERR_ALIAS, ERR_GRAPH, ERR_OVERFLOW, ERR_RANGE, ERR_SHAPE } from '../errors';
import { NONE } from '../format';
import { Model, OpInfo, bufferAt } from '../model';
import { floatsOf, shapeIs } from '../tensors';
import { checkAct, checkIndex, checkRange, disjoint, opFail, optionalFloats, touch, word } from './checks';
import { prepare_channels } from '../../kernels/prepare';
import { conv1x1_group } from '../../kernels/conv1x1';
import { conv2d_group, conv2d_is_pointwise, conv2d_scratch_bytes } from '../../kernels/conv2d';
import { depthwise3x3, depthwise3x3_scratch_bytes } from '../../kernels/depthwise';
import { conv3x3s2p1_split, conv3x3s2p1_split_scratch_bytes } from '../../kernels/conv3x3s2p1-split';
import { ACT_NONE } from '../../kernels/activation';
import { dec } from '../dec';

/** Pointwise (1x1, stride 1, no padding): a small matrix product over planes, no padded copy. */
const CONV_POINTWISE: i32 = 1;
/** Any other kernel, stride and padding: direct convolution over a zero-padded copy of the input. */
const CONV_DIRECT: i32 = 2;
/** Depthwise 3x3 (groups == cin == cout), stride 1 or 2, padding 1: ShuffleNetV2's middle conv, a plane at a time. */
const CONV_DEPTHWISE: i32 = 3;
/** 3x3, stride 2, padding 1, groups 1, cout a multiple of 4 (the image stems; SIMD builds): even/odd split copy. */
const CONV_S2_SPLIT: i32 = 4;

/** Checks the op's words (ops/checks.ts: the current op) and fills op; false after fail(). */
export function validateConv2d(m: Model, op: OpInfo): bool {
  const inBuf = word(0), inCh = word(1), cin = word(2), outBuf = word(3), outCh = word(4), cout = word(5);
  const k = word(6), s = word(7), pad = word(8), groups = word(9);
  const inAct = word(10), outAct = word(11), acc = word(12);
  const wT = word(13), bT = word(14), inIdxT = word(15), scT = word(16), shT = word(17), outIdxT = word(18);
  if (k != 1 && k != 3 && k != 5 && k != 7) return opFail(ERR_GRAPH, 'bad kernel');
  if (s < 1 || s > 4) return opFail(ERR_GRAPH, 'stride ' + dec(s) + ' outside 1..4');
  if (pad > k / 2) return opFail(ERR_GRAPH, 'padding ' + dec(pad) + ' larger than kernel/2');
  if (groups == 0 || cin == 0 || cout == 0 || cin % groups != 0 || cout % groups != 0) return opFail(ERR_GRAPH, 'groups must divide cin, cout');
  if (acc > 1) return opFail(ERR_GRAPH, 'accumulate must be 0 or 1');
  if (!checkAct(inAct) || !checkAct(outAct)) return false;
  if (inBuf >= <u32>m.nBuffers || outBuf >= <u32>m.nBuffers) return opFail(ERR_RANGE, 'no such buffer');
  const ib = bufferAt(m, <i32>inBuf), ob = bufferAt(m, <i32>outBuf);
  // input channels
  let inLo: i32, inHi: i32;
  const slot = memory.data(8);
  if (inIdxT != NONE) {
    if (inCh >= <u32>ib.c) return opFail(ERR_RANGE, 'input channel offset outside the buffer');
    const r = checkIndex(m, inIdxT, cin, <u32>ib.c - inCh, false, 'inIndex', slot);
    if (r < 0) return false;
    op.inIndex = load<usize>(slot);
    inLo = <i32>inCh + <i32>(r >> 32); inHi = <i32>inCh + <i32>(r & 0xffffffff);
  } else {
    if (!checkRange(m, inBuf, inCh, cin, 'input')) return false;
    inLo = <i32>inCh; inHi = <i32>(inCh + cin - 1);
  }
  let outLo: i32, outHi: i32;
  if (outIdxT != NONE) {
    if (outCh >= <u32>ob.c) return opFail(ERR_RANGE, 'output channel offset outside the buffer');
    const r = checkIndex(m, outIdxT, cout, <u32>ob.c - outCh, acc == 0, 'outIndex', slot);
    if (r < 0) return false;
    op.outIndex = load<usize>(slot);
    outLo = <i32>outCh + <i32>(r >> 32); outHi = <i32>outCh + <i32>(r & 0xffffffff);
  } else {
    if (!checkRange(m, outBuf, outCh, cout, 'output')) return false;
    outLo = <i32>outCh; outHi = <i32>(outCh + cout - 1);
  }
  if (inBuf == outBuf && !disjoint(inLo, inHi, outLo, outHi)) return opFail(ERR_ALIAS, 'input and output overlap');
  // spatial
  if (<u32>ib.h + 2 * pad < k || <u32>ib.w + 2 * pad < k) return opFail(ERR_SHAPE, 'input below kernel');
  const oh = (<u32>ib.h + 2 * pad - k) / s + 1, ow = (<u32>ib.w + 2 * pad - k) / s + 1;
  if (oh != <u32>ob.h || ow != <u32>ob.w) return opFail(ERR_SHAPE, 'output size mismatch');
  // tensors
  if (wT >= <u32>m.nTensors) return opFail(ERR_RANGE, 'no such tensor');
  if (!shapeIs(m, wT, 4, cout, cin / groups, k, k)) return opFail(ERR_SHAPE, 'weight: wrong shape');
  op.weight = floatsOf(m, wT, 'weight');
  if (op.weight == 0) return false;
  const ok = memory.data(4);
  store<bool>(ok, true);
  op.bias = optionalFloats(m, bT, cout, 'bias', ok);
  if ((scT == NONE) != (shT == NONE)) return opFail(ERR_GRAPH, 'inScale without inShift');
  op.inScale = optionalFloats(m, scT, cin, 'inScale', ok);
  op.inShift = optionalFloats(m, shT, cin, 'inShift', ok);
  if (!load<bool>(ok)) return false;

  op.inBuf = <i32>inBuf; op.inCh = <i32>inCh; op.cin = <i32>cin;
  op.outBuf = <i32>outBuf; op.outCh = <i32>outCh; op.cout = <i32>cout;
  op.kernel = <i32>k; op.stride = <i32>s; op.pad = <i32>pad; op.groups = <i32>groups;
  op.inAct = <i32>inAct; op.outAct = <i32>outAct; op.accumulate = <i32>acc;
  op.h = ib.h; op.w = ib.w; op.outH = <i32>oh; op.outW = <i32>ow;
  op.inLo = inLo; op.inHi = inHi; op.outLo = outLo; op.outHi = outHi;
  const total = planConv2d(op);
  if (total > 0x7fffffff) return opFail(ERR_OVERFLOW, 'scratch size overflows');
  op.scratchBytes = <i32>total;
  touch(m, <i32>inBuf); touch(m, <i32>outBuf);
  return true;
}

/**
 * The reader's pre-activation (gathered channels, BN scale/shift, activation) runs once per run into an input panel
 * at the start of the scratch (16-aligned); 0 when the kernel reads the input planes as they are.
 */
function panelBytes(op: OpInfo): u64 {
  const needsPanel = op.inIndex != 0 || op.inScale != 0 || op.inAct != 0;
  return needsPanel ? (<u64>op.cin * <u64>op.h * <u64>op.w * 4 + 15) & ~<u64>15 : 0;
}

/**
 * Chooses the kernel (op.impl) and returns the scratch bytes the op needs: the input panel, then the kernel's own
 * scratch. Above 0x7fffffff when the size overflows (the caller rejects the op).
 */
function planConv2d(op: OpInfo): u64 {
  const panel = panelBytes(op);
  if (panel > 0x7fffffff) return panel;
  op.inPanel = <i32>panel;
  if (conv2d_is_pointwise(op.kernel, op.stride, op.pad)) {
    op.impl = CONV_POINTWISE;
    return panel;
  }
  op.impl = CONV_DIRECT;
  // Overflow is judged on the general path's scratch for every op, as the TypeScript reader does.
  const kernelScratch = conv2d_scratch_bytes(op.cin, op.h, op.w, op.kernel, op.stride, op.pad);
  if (kernelScratch < 0) return 0xffffffffffffffff;
  if (op.groups == op.cin && op.cin == op.cout && op.kernel == 3 && op.pad == 1 && op.stride <= 2) {
    op.impl = CONV_DEPTHWISE;
    return panel + <u64>depthwise3x3_scratch_bytes(op.h, op.w);
  }
  if (ASC_FEATURE_SIMD && op.groups == 1 && op.kernel == 3 && op.stride == 2 && op.pad == 1 && (op.cout & 3) == 0
      && !(op.accumulate && op.outAct != ACT_NONE)) {
    const b = conv3x3s2p1_split_scratch_bytes(op.cin, op.h, op.w);
    if (b >= 0) {
      op.impl = CONV_S2_SPLIT;
      return panel + <u64>b;
    }
  }
  return panel + <u64>kernelScratch;
}

/** The planes the kernel reads: the input, or the panel after the reader's pre-activation is computed into it. */
@inline function kernelInput(op: OpInfo, src: usize, scratch: usize): usize {
  if (op.inPanel == 0) return src;
  prepare_channels(src, op.h * op.w, op.inIndex, op.inScale, op.inShift, op.inAct, op.cin, scratch);
  return scratch;
}

/** src, dst: the op's first input and output planes; scratch: planConv2d's bytes. */
export function runConv2d(op: OpInfo, src: usize, dst: usize, scratch: usize): void {
  if (op.impl == CONV_POINTWISE) runPointwise(op, src, dst, scratch);
  else if (op.impl == CONV_DEPTHWISE) runDepthwise(op, src, dst, scratch);
  else if (ASC_FEATURE_SIMD && op.impl == CONV_S2_SPLIT) {
    conv3x3s2p1_split(kernelInput(op, src, scratch), op.cin, op.h, op.w, op.weight, op.bias, op.cout, dst, op.outH,
      op.outW, op.outIndex, op.outAct, op.accumulate, scratch + <usize>op.inPanel);
  }
  else runDirect(op, src, dst, scratch);
}

@inline function runPointwise(op: OpInfo, src: usize, dst: usize, scratch: usize): void {
  conv1x1_group(kernelInput(op, src, scratch), op.cin, op.h * op.w, op.weight, op.bias, op.cout, op.groups, dst,
    op.outIndex, op.outAct, op.accumulate);
}

@inline function runDirect(op: OpInfo, src: usize, dst: usize, scratch: usize): void {
  conv2d_group(kernelInput(op, src, scratch), op.cin, op.h, op.w, op.weight, op.bias, op.cout, op.groups, op.kernel,
    op.stride, op.pad, dst, op.outH, op.outW, op.outIndex, op.outAct, op.accumulate, scratch + <usize>op.inPanel);
}

@inline function runDepthwise(op: OpInfo, src: usize, dst: usize, scratch: usize): void {
  depthwise3x3(kernelInput(op, src, scratch), op.cin, op.h, op.w, op.weight, op.bias, op.stride, dst, op.outH, op.outW,
    op.outIndex, op.outAct, op.accumulate, scratch + <usize>op.inPanel);
}
