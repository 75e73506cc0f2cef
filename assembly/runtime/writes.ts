// Load's last check, after the planner: every channel a run reads was written earlier in that run; and the
// multiply-adds of one run, for the caller's compute budget.

import { ERR_UNWRITTEN, fail } from './errors';
import { Model, bufferAt, opAt } from './model';
import { opArithmetic } from './ops/registry';
import { dec } from './dec';

/** Sets (set) or tests that all bits lo..hi are set in a bitmap of u32 words. */
function bits(p: usize, lo: i32, hi: i32, set: bool): bool {
  for (let w = lo >> 5; w <= hi >> 5; w++) {
    let mask: u32 = 0xffffffff;
    if (w == lo >> 5) mask &= mask << <u32>(lo & 31);
    if (w == hi >> 5) mask &= <u32>0xffffffff >>> <u32>(31 - (hi & 31));
    const q = p + (<usize>w << 2);
    if (set) store<u32>(q, load<u32>(q) | mask);
    else if ((load<u32>(q) & mask) != mask) return false;
  }
  return true;
}

/**
 * Proves that every channel an op reads (or accumulates into) was written earlier in the same run, so no run can
 * see what the previous one left in the arena (docs/format.md). Index lists count by their span. Each buffer's
 * bitmap of written channels lives in its own planned arena bytes (c bits fit in c floats) while it is alive, so
 * this needs no memory of its own; the arena is zeroed afterwards. Also sums the multiply-adds of one run.
 */
export function proveWrites(m: Model): bool {
  const ib = bufferAt(m, m.inputBuf);
  bits(ib.ptr, 0, ib.c - 1, true); // the host writes the input
  let macs: f64 = 0;
  for (let i = 0; i < m.nOps; i++) {
    const op = opAt(m, i);
    const inB = bufferAt(m, op.inBuf), outB = bufferAt(m, op.outBuf);
    if (inB.first == i && op.inBuf != m.inputBuf) memory.fill(inB.ptr, 0, <usize>((inB.c + 31) >> 5) << 2);
    if (outB.first == i && op.outBuf != op.inBuf) memory.fill(outB.ptr, 0, <usize>((outB.c + 31) >> 5) << 2);
    const inPx = <f64>op.h * <f64>op.w, outPx = <f64>op.outH * <f64>op.outW;
    if (!bits(inB.ptr, op.inLo, op.inHi, false)
      || (op.accumulate != 0 && !bits(outB.ptr, op.outLo, op.outHi, false))) {
      return fail(ERR_UNWRITTEN, 'op ' + dec(i) + ' reads unwritten channels');
    }
    if (op.outIndex != 0 && op.accumulate == 0) {
      for (let o = 0; o < op.cout; o++) {
        const c = op.outCh + load<i32>(op.outIndex + (<usize>o << 2));
        bits(outB.ptr, c, c, true);
      }
    } else {
      bits(outB.ptr, op.outLo, op.outHi, true);
    }
    // Element work counts once per element visited, so that no op is free.
    macs += <f64>op.cin * inPx + <f64>op.cout * outPx;
    macs += opArithmetic(op, outPx);
  }
  const ob = bufferAt(m, m.outputBuf);
  if (!bits(ob.ptr, 0, ob.c - 1, false)) return fail(ERR_UNWRITTEN, 'output not written');
  memory.fill(m.arena, 0, m.arenaBytes + 64);
  m.macs = macs;
  return true;
}
