// Runs a planned model: each op maps its buffers to pointers and calls what its op file (ops/) chose at load.
// No allocation and no kernel choice here.

import { Model, OpInfo, bufferAt, opAt } from './model';
import { arenaBase } from './planner';
import { OP_AVGPOOL, OP_CHANNEL_SHUFFLE, OP_CONV2D, OP_FC, OP_GLOBAL_AVGPOOL, OP_SE } from './format';
import { runConv2d } from './ops/conv2d';
import { runSe } from './ops/se';
import { runAvgPool, runGlobalAvgPool } from './ops/pool';
import { runFc } from './ops/fc';
import { runShuffle } from './ops/shuffle';

@inline function planeBytes(h: i32, w: i32): usize {
  return <usize>h * <usize>w * 4;
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
    const src = bufferAt(m, op.inBuf).ptr + <usize>op.inCh * planeBytes(op.h, op.w);
    const dst = bufferAt(m, op.outBuf).ptr + <usize>op.outCh * planeBytes(op.outH, op.outW);
    if (code == OP_CONV2D) runConv2d(op, src, dst, scratch);
    else if (code == OP_SE) runSe(op, src, scratch);
    else if (code == OP_AVGPOOL) runAvgPool(op, src, dst);
    else if (code == OP_GLOBAL_AVGPOOL) runGlobalAvgPool(op, src, dst);
    else if (code == OP_FC) runFc(op, src, dst);
    else if (code == OP_CHANNEL_SHUFFLE) runShuffle(op, src, dst);
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
