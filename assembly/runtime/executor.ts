// Runs a planned model: maps each op's buffers to pointers and calls its op file's run function (ops/registry.ts),
// which runs the kernel chosen at load. No allocation, no kernel choice and no per-op code here.

import { Model, bufferAt, opAt } from './model';
import { arenaBase } from './planner';
import { runOp } from './ops/registry';

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
    const src = bufferAt(m, op.inBuf).ptr + <usize>op.inCh * planeBytes(op.h, op.w);
    const dst = bufferAt(m, op.outBuf).ptr + <usize>op.outCh * planeBytes(op.outH, op.outW);
    runOp(op, src, dst, scratch);
  }
}

export function inputPtr(m: Model): usize { return bufferAt(m, m.inputBuf).ptr; }
export function inputLength(m: Model): i32 { const b = bufferAt(m, m.inputBuf); return b.c * b.h * b.w; }
export function outputPtr(m: Model): usize { return bufferAt(m, m.outputBuf).ptr; }
export function outputLength(m: Model): i32 { return bufferAt(m, m.outputBuf).c; }
