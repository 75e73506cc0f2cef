// Runs a planned model: each op maps its buffers to pointers and calls what its op file (ops/) chose at load.
// No allocation and no kernel choice here.

import { Model, bufferAt, opAt } from './model';
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
  const scratch = arenaBase(m) + m.scratchOffset;
  for (let i = 0; i < m.nOps; i++) {
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
