// Runs a planned model: each op maps its buffers to pointers and calls one kernel. No allocation here.

import { Model, OpInfo, bufferAt, opAt } from './model';
import { arenaBase } from './planner';
import { OP_AVGPOOL, OP_CHANNEL_SHUFFLE, OP_CONV2D, OP_FC, OP_GLOBAL_AVGPOOL, OP_SE } from './format';
import { prepare_channels } from './kernels/prepare';
import { conv1x1_group } from './kernels/conv1x1';
import { conv2d_group } from './kernels/conv2d';
import { avgpool, global_avgpool } from './kernels/pool';
import { squeeze_excite } from './kernels/se';
import { fully_connected } from './kernels/fc';
import { channel_shuffle } from './kernels/shuffle';

@inline function planeBytes(h: i32, w: i32): usize {
  return <usize>h * <usize>w * 4;
}

function runConv(m: Model, op: OpInfo, scratch: usize): void {
  const inBuf = bufferAt(m, op.inBuf);
  const outBuf = bufferAt(m, op.outBuf);
  const inPlane = planeBytes(op.h, op.w);
  const hw = op.h * op.w;
  let src = inBuf.ptr + <usize>op.inCh * inPlane;
  let kernelScratch = scratch;
  if (op.inIndex != 0 || op.inScale != 0 || op.inAct != 0) {
    // The reader's pre-activation (gathered BN + activation) is applied once into a contiguous panel.
    prepare_channels(src, hw, op.inIndex, op.inScale, op.inShift, op.inAct, op.cin, scratch);
    src = scratch;
    kernelScratch = scratch + ((<usize>op.cin * inPlane + 15) & ~<usize>15);
  }
  const dst = outBuf.ptr + <usize>op.outCh * planeBytes(op.outH, op.outW);
  if (op.kernel == 1 && op.stride == 1 && op.pad == 0) {
    conv1x1_group(src, op.cin, hw, op.weight, op.bias, op.cout, op.groups, dst, op.outIndex, op.outAct, op.accumulate);
  } else {
    conv2d_group(src, op.cin, op.h, op.w, op.weight, op.bias, op.cout, op.groups, op.kernel, op.stride, op.pad,
      dst, op.outH, op.outW, op.outIndex, op.outAct, op.accumulate, kernelScratch);
  }
}

/** Runs every op in order. The caller has written the input buffer. */
export function execute(m: Model): void {
  executeOps(m, 0, m.nOps);
}

/** Runs ops first..end-1 (in range; the per-op profile times one op at a time, in order, on the same arena). */
export function executeOps(m: Model, first: i32, end: i32): void {
  const scratch = arenaBase(m) + m.scratchOffset;
  for (let i = first; i < end; i++) {
    const op = opAt(m, i);
    const code = op.code;
    if (code == OP_CONV2D) {
      runConv(m, op, scratch);
      continue;
    }
    const inBuf = bufferAt(m, op.inBuf);
    const outBuf = bufferAt(m, op.outBuf);
    const src = inBuf.ptr + <usize>op.inCh * planeBytes(op.h, op.w);
    const dst = outBuf.ptr + <usize>op.outCh * planeBytes(op.outH, op.outW);
    if (code == OP_SE) {
      squeeze_excite(src, op.cin, op.h * op.w, op.hidden, op.weight, op.bias, op.weight2, op.bias2, scratch);
    } else if (code == OP_AVGPOOL) {
      avgpool(src, op.cin, op.h, op.w, op.kernel, op.stride, dst, op.outH, op.outW);
    } else if (code == OP_GLOBAL_AVGPOOL) {
      global_avgpool(src, op.cin, op.h * op.w, op.inScale, op.inShift, op.inAct, dst);
    } else if (code == OP_FC) {
      fully_connected(src, op.cin, op.weight, op.bias, op.cout, op.outAct, dst);
    } else if (code == OP_CHANNEL_SHUFFLE) {
      channel_shuffle(src, op.cin, op.h * op.w, op.groups, dst);
    }
  }
}

export function inputPtr(m: Model): usize { return bufferAt(m, m.inputBuf).ptr; }
export function inputLength(m: Model): i32 { const b = bufferAt(m, m.inputBuf); return b.c * b.h * b.w; }
export function outputPtr(m: Model): usize { return bufferAt(m, m.outputBuf).ptr; }
export function outputLength(m: Model): i32 { return bufferAt(m, m.outputBuf).c; }

/** Multiply-adds of one op, counted as converter/flops.ts does (conv, SE and FC; pools and shuffles: 0). */
export function opMadds(op: OpInfo): f64 {
  const code = op.code;
  if (code == OP_CONV2D) return <f64>op.kernel * <f64>op.kernel * <f64>(op.cin / op.groups) * <f64>op.cout * <f64>op.outH * <f64>op.outW;
  if (code == OP_SE) return 2 * <f64>op.cin * <f64>op.hidden;
  if (code == OP_FC) return <f64>op.cin * <f64>op.cout;
  return 0;
}
