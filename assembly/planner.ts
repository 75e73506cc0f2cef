// Static memory plan: every live buffer gets an arena offset, buffers whose lifetimes (first..last op that
// touches them) overlap never share bytes, and one scratch region (the largest any op needs) follows.
// Greedy by size, lowest fitting offset first (the TensorFlow Lite Micro greedy planner's idea).

import { ERR_ARENA, ERR_OVERFLOW, fail } from './errors';
import { BufferInfo, Model, bufferAt, opAt } from './model';

const ALIGN: u64 = 64; // cache line; also satisfies the 16 bytes v128 wants

@inline function alignUp(x: u64): u64 { return (x + ALIGN - 1) & ~(ALIGN - 1); }

function bytesOf(b: BufferInfo): u64 {
  return alignUp(<u64>b.c * <u64>b.h * <u64>b.w * 4);
}

/** Plans the arena and allocates it (zeroed). Fails when it would exceed limitBytes. */
export function planMemory(m: Model, limitBytes: u64): bool {
  const n = m.nBuffers;
  // order[] holds live buffer indices sorted by size, largest first (insertion sort: n is small).
  const slots: usize = n > 0 ? <usize>n : 1;
  const order = heap.alloc(slots << 2);
  let live = 0;
  for (let i = 0; i < n; i++) {
    const b = bufferAt(m, i);
    if (b.first < 0) continue;
    if (bytesOf(b) > limitBytes) {
      heap.free(order);
      return fail(ERR_ARENA, 'buffer ' + i.toString() + ' alone needs ' + bytesOf(b).toString() + ' bytes, above the arena limit of ' + limitBytes.toString());
    }
    let j = live++;
    while (j > 0 && bytesOf(bufferAt(m, load<i32>(order + <usize>(j - 1) * 4))) < bytesOf(b)) {
      store<i32>(order + <usize>j * 4, load<i32>(order + <usize>(j - 1) * 4));
      j--;
    }
    store<i32>(order + <usize>j * 4, i);
  }
  let total: u64 = 0;
  for (let k = 0; k < live; k++) {
    const b = bufferAt(m, load<i32>(order + <usize>k * 4));
    const size = bytesOf(b);
    // Try candidate offsets: 0 and the end of every already placed buffer that is live at the same time.
    let best: u64 = 0xffffffffffffffff;
    for (let c = -1; c < k; c++) {
      let cand: u64 = 0;
      if (c >= 0) {
        const pc = bufferAt(m, load<i32>(order + <usize>c * 4));
        if (pc.last < b.first || b.last < pc.first) continue;
        cand = <u64>pc.offset + bytesOf(pc);
      }
      if (cand >= best) continue;
      let clash = false;
      for (let q = 0; q < k; q++) {
        const pq = bufferAt(m, load<i32>(order + <usize>q * 4));
        if (pq.last < b.first || b.last < pq.first) continue;
        if (cand < <u64>pq.offset + bytesOf(pq) && <u64>pq.offset < cand + size) { clash = true; break; }
      }
      if (!clash) best = cand;
    }
    b.offset = <usize>best;
    if (best + size > total) total = best + size;
  }
  heap.free(order);
  let scratch: u64 = 0;
  for (let i = 0; i < m.nOps; i++) {
    const s = <u64>opAt(m, i).scratchBytes;
    if (s > scratch) scratch = s;
  }
  const arenaBytes = total + alignUp(scratch);
  if (arenaBytes > 0x7fffffff) return fail(ERR_OVERFLOW, 'arena size overflows');
  if (arenaBytes > limitBytes) {
    return fail(ERR_ARENA, 'the model needs a ' + arenaBytes.toString() + '-byte arena, above the limit of ' + limitBytes.toString());
  }
  m.scratchOffset = <usize>total;
  m.scratchBytes = <usize>alignUp(scratch);
  m.arenaBytes = <usize>arenaBytes;
  // Over-allocate so the arena base can be aligned to 64 bytes.
  const raw = heap.alloc(<usize>arenaBytes + 64);
  memory.fill(raw, 0, <usize>arenaBytes + 64);
  m.arena = raw;
  const base = (raw + 63) & ~<usize>63;
  for (let i = 0; i < n; i++) {
    const b = bufferAt(m, i);
    b.ptr = b.first < 0 ? 0 : base + b.offset;
  }
  m.scratchOffset = <usize>total; // relative to base
  return true;
}

/** Aligned arena base (the raw allocation is over-sized by 64 bytes). */
export function arenaBase(m: Model): usize {
  return (m.arena + 63) & ~<usize>63;
}
