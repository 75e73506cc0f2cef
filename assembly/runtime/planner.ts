// Static memory plan: every live buffer gets an arena offset, buffers whose lifetimes (first..last op that
// touches them) overlap never share bytes, and one scratch region (the largest any op needs) follows.
// Two planners, the smaller arena wins:
// - an interval sweep in op order (sort by first use, O(n log n)): buffers whose last op has passed return their
//   bytes to an offset-ordered free list, each new buffer takes the best-fitting free block or the top;
// - for up to GREEDY_MAX buffers, TensorFlow Lite Micro's greedy planner (largest first, lowest offset that no
//   placed buffer alive at the same time covers; O(n^2)), which packs real networks at least as tightly.

import { ERR_ARENA, fail, tryAlloc } from './errors';
import { BufferInfo, Model, bufferAt, opAt } from './model';
import { sortKeys } from './format';
import { dec } from './dec';

const ALIGN: u64 = 64; // cache line; also satisfies the 16 bytes v128 wants
const GREEDY_MAX: i32 = 2048;

@inline function alignUp(x: u64): u64 { return (x + ALIGN - 1) & ~(ALIGN - 1); }

function bytesOf(b: BufferInfo): u64 {
  return alignUp(<u64>b.c * <u64>b.h * <u64>b.w * 4);
}

@inline function key(p: usize, i: i32): u64 { return load<u64>(p + (<usize>i << 3)); }

/** Interval sweep; offsets into b.offset, returns the activation bytes. order: live buffers by first use. */
function sweep(m: Model, order: usize, byLast: usize, live: i32, free: usize): u64 {
  // free: (offset, size) u64 pairs sorted by offset, at most live + 1 of them.
  let nFree = 0, top: u64 = 0, peak: u64 = 0, r = 0;
  for (let k = 0; k < live; k++) {
    const b = bufferAt(m, <i32>(key(order, k) & 0xffff));
    // Release every buffer whose last op comes before this one's first (coalescing with neighbours).
    while (r < live) {
      const d = bufferAt(m, <i32>(key(byLast, r) & 0xffff));
      if (d.last >= b.first) break;
      r++;
      let off = <u64>d.offset, size = bytesOf(d);
      let i = 0;
      while (i < nFree && load<u64>(free + (<usize>i << 4)) < off) i++;
      if (i > 0 && load<u64>(free + (<usize>(i - 1) << 4)) + load<u64>(free + (<usize>(i - 1) << 4) + 8) == off) {
        i--; off = load<u64>(free + (<usize>i << 4)); size += load<u64>(free + (<usize>i << 4) + 8);
        memory.copy(free + (<usize>i << 4), free + (<usize>(i + 1) << 4), <usize>(nFree - i - 1) << 4); nFree--;
      }
      if (i < nFree && off + size == load<u64>(free + (<usize>i << 4))) {
        size += load<u64>(free + (<usize>i << 4) + 8);
        memory.copy(free + (<usize>i << 4), free + (<usize>(i + 1) << 4), <usize>(nFree - i - 1) << 4); nFree--;
      }
      if (off + size == top) { top = off; continue; } // the top of the arena shrinks instead
      memory.copy(free + (<usize>(i + 1) << 4), free + (<usize>i << 4), <usize>(nFree - i) << 4); nFree++;
      store<u64>(free + (<usize>i << 4), off); store<u64>(free + (<usize>i << 4) + 8, size);
    }
    const size = bytesOf(b);
    let best = -1;
    for (let i = 0; i < nFree; i++) {
      const s = load<u64>(free + (<usize>i << 4) + 8);
      if (s >= size && (best < 0 || s < load<u64>(free + (<usize>best << 4) + 8))) best = i;
    }
    if (best < 0) {
      b.offset = <usize>top; top += size;
      if (top > peak) peak = top;
      continue;
    }
    const q = free + (<usize>best << 4);
    b.offset = <usize>load<u64>(q);
    if (load<u64>(q + 8) == size) {
      memory.copy(q, q + 16, <usize>(nFree - best - 1) << 4); nFree--;
    } else {
      store<u64>(q, load<u64>(q) + size); store<u64>(q + 8, load<u64>(q + 8) - size);
    }
  }
  return peak;
}

/** TFLM's greedy planner into b.offset; order: live buffers largest first. Returns the activation bytes. */
function greedy(m: Model, order: usize, live: i32, placed: usize): u64 {
  // placed: indices (i32) of placed buffers sorted by offset.
  let total: u64 = 0;
  for (let k = 0; k < live; k++) {
    const b = bufferAt(m, <i32>(key(order, k) & 0xffff));
    const size = bytesOf(b);
    let cand: u64 = 0;
    let at = 0; // insertion point in placed
    for (let q = 0; q < k; q++) {
      const pq = bufferAt(m, load<i32>(placed + (<usize>q << 2)));
      if (pq.last < b.first || b.last < pq.first) continue;
      const end = <u64>pq.offset + bytesOf(pq);
      if (<u64>pq.offset >= cand + size) break; // a gap before this one fits
      if (end > cand) cand = end;
    }
    while (at < k && <u64>bufferAt(m, load<i32>(placed + (<usize>at << 2))).offset <= cand) at++;
    memory.copy(placed + (<usize>(at + 1) << 2), placed + (<usize>at << 2), <usize>(k - at) << 2);
    store<i32>(placed + (<usize>at << 2), <i32>(key(order, k) & 0xffff));
    b.offset = <usize>cand;
    if (cand + size > total) total = cand + size;
  }
  return total;
}

/** Plans the arena and allocates it (zeroed). Fails when it would exceed limitBytes. */
export function planMemory(m: Model, limitBytes: u64): bool {
  const n = m.nBuffers;
  // Three key arrays of n u64 and a free list of n + 1 pairs: 48 bytes a buffer, bounded by the GRPH size.
  const work = tryAlloc(<usize>(n + 1) * 48);
  if (work == 0) return false;
  const byFirst = work, byLast = work + (<usize>n << 3), bySize = byLast + (<usize>n << 3), free = bySize + (<usize>n << 3);
  let live = 0;
  for (let i = 0; i < n; i++) {
    const b = bufferAt(m, i);
    if (b.first < 0) continue;
    const size = bytesOf(b);
    if (size > limitBytes) {
      heap.free(work);
      return fail(ERR_ARENA, 'buffer ' + dec(i) + ' alone needs ' + dec(size) + ' bytes, above the arena limit of ' + dec(limitBytes));
    }
    store<u64>(byFirst + (<usize>live << 3), (<u64>b.first << 16) | <u64>i);
    store<u64>(byLast + (<usize>live << 3), (<u64>b.last << 16) | <u64>i);
    // Largest first; ties by index. Sizes are below 2^33 bytes and indices below 2^16.
    store<u64>(bySize + (<usize>live << 3), ((0x3ffffffff - size) << 16) | <u64>i);
    live++;
  }
  sortKeys(byFirst, live); sortKeys(byLast, live); sortKeys(bySize, live);
  let total = sweep(m, byFirst, byLast, live, free);
  if (live <= GREEDY_MAX) {
    // Keep the sweep's offsets in byLast's low bits' place: store them, run greedy, restore if it is worse.
    for (let k = 0; k < live; k++) store<u64>(byLast + (<usize>k << 3), <u64>bufferAt(m, <i32>(key(byFirst, k) & 0xffff)).offset);
    const g = greedy(m, bySize, live, free);
    if (g <= total) total = g;
    else for (let k = 0; k < live; k++) bufferAt(m, <i32>(key(byFirst, k) & 0xffff)).offset = <usize>key(byLast, k);
  }
  heap.free(work);
  let scratch: u64 = 0;
  for (let i = 0; i < m.nOps; i++) {
    const s = <u64>opAt(m, i).scratchBytes;
    if (s > scratch) scratch = s;
  }
  const arenaBytes = total + alignUp(scratch);
  if (arenaBytes > limitBytes) {
    return fail(ERR_ARENA, 'the model needs a ' + dec(arenaBytes) + '-byte arena, above the limit of ' + dec(limitBytes));
  }
  m.scratchOffset = <usize>total; // relative to the aligned base
  m.scratchBytes = <usize>alignUp(scratch);
  m.arenaBytes = <usize>arenaBytes;
  // Over-allocate so the arena base can be aligned to 64 bytes.
  const raw = tryAlloc(<usize>arenaBytes + 64);
  if (raw == 0) return fail(ERR_ARENA, 'cannot allocate a ' + dec(arenaBytes) + '-byte arena');
  memory.fill(raw, 0, <usize>arenaBytes + 64);
  m.arena = raw;
  const base = (raw + 63) & ~<usize>63;
  for (let i = 0; i < n; i++) {
    const b = bufferAt(m, i);
    b.ptr = b.first < 0 ? 0 : base + b.offset;
  }
  return true;
}

/** Aligned arena base (the raw allocation is over-sized by 64 bytes). */
export function arenaBase(m: Model): usize {
  return (m.arena + 63) & ~<usize>63;
}
