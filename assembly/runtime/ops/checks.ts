// What every op's validation (ops/<op>.ts) uses: the current op's attribute words, errors that name the op, and
// checks of the buffers, channel ranges, tensors, index lists and activation codes an op refers to.

import { ERR_GRAPH, ERR_INDEX, ERR_RANGE, ERR_SHAPE, fail } from '../errors';
import { NONE, opName } from '../format';
import { Model, OpInfo, bufferAt, tensorAt, zeroAlloc } from '../model';
import { floatsOf, intsOf, shapeIs } from '../tensors';
import { dec } from '../dec';

let opWords: usize = 0;   // address of the current op's words
let opNo: i32 = 0;

/** Makes op `no`, whose attribute words start at `words`, the one that word(), opFail() and touch() refer to. */
export function beginOp(words: usize, no: i32): void {
  opWords = words;
  opNo = no;
}

@inline export function word(i: i32): u32 { return load<u32>(opWords + (<usize>i << 2)); }

export function opFail(code: i32, message: string): bool {
  return fail(code, 'op ' + dec(opNo) + ' (' + opName(load<u32>(opWords - 4) & 0xffff) + '): ' + message);
}

export function touch(m: Model, b: i32): void {
  const info = bufferAt(m, b);
  if (info.first < 0) info.first = opNo;
  info.last = opNo;
}

/** Checks that buffer b exists and channels [ch, ch+count) lie in it. */
export function checkRange(m: Model, b: u32, ch: u32, count: u32, what: string): bool {
  if (b >= <u32>m.nBuffers) return opFail(ERR_RANGE, what + ': no such buffer');
  if (count == 0) return opFail(ERR_RANGE, what + ' channel count is zero');
  const c = <u32>bufferAt(m, <i32>b).c;
  if (<u64>ch + <u64>count > <u64>c) return opFail(ERR_RANGE, what + ' channels outside the buffer');
  return true;
}

/** Checks optional index tensor against [0, limit) and returns [min, max] packed, or -1 after fail(). */
export function checkIndex(m: Model, tensor: u32, count: u32, limit: u32, distinct: bool, what: string, out: usize): i64 {
  if (tensor >= <u32>m.nTensors) { opFail(ERR_RANGE, what + ': no such tensor'); return -1; }
  if (!shapeIs(m, tensor, 1, count, 1, 1, 1)) { opFail(ERR_SHAPE, what + ': wrong shape'); return -1; }
  const p = intsOf(m, tensor, what);
  if (p == 0) return -1;
  const t = tensorAt(m, <i32>tensor);
  // Facts about the list are computed once: a thousand ops sharing one long list cost one scan.
  if (!(t.idxState & 1)) {
    let lo: i32 = 0x7fffffff, hi: i32 = -1;
    for (let i: u32 = 0; i < count; i++) { const v = load<i32>(p + <usize>i * 4); if (v > hi) hi = v; if (v < lo) lo = v; }
    t.idxLo = lo; t.idxHi = hi; t.idxState |= 1;
  }
  if (<u32>t.idxHi >= limit) { opFail(ERR_INDEX, what + ' value ' + dec(t.idxHi) + ' out of range'); return -1; }
  if (distinct && !(t.idxState & 2)) {
    const seen = zeroAlloc(<usize>limit); // limit <= 65535
    t.idxState |= 6;
    for (let i: u32 = 0; i < count; i++) {
      const v = load<i32>(p + <usize>i * 4);
      if (load<u8>(seen + <usize>v)) { t.idxState &= ~4; break; }
      store<u8>(seen + <usize>v, 1);
    }
    heap.free(seen);
  }
  if (distinct && !(t.idxState & 4)) { opFail(ERR_INDEX, what + ' repeats a channel'); return -1; }
  store<usize>(out, p);
  return (<i64>t.idxLo << 32) | <i64>t.idxHi;
}

export function optionalFloats(m: Model, tensor: u32, n: u32, what: string, ok: usize): usize {
  if (tensor == NONE) return 0;
  if (tensor >= <u32>m.nTensors) { opFail(ERR_RANGE, what + ': no such tensor'); store<bool>(ok, false); return 0; }
  if (!shapeIs(m, tensor, 1, n, 1, 1, 1)) { opFail(ERR_SHAPE, what + ': wrong shape'); store<bool>(ok, false); return 0; }
  const p = floatsOf(m, tensor, what);
  if (p == 0) store<bool>(ok, false);
  return p;
}

/** Channel spans of an op without index lists. */
export function spans(op: OpInfo): void {
  op.inLo = op.inCh; op.inHi = op.inCh + op.cin - 1;
  op.outLo = op.outCh; op.outHi = op.outCh + op.cout - 1;
}

export function checkAct(a: u32): bool {
  if (a > 2) return opFail(ERR_GRAPH, 'activation code ' + dec(a) + ' is not 0, 1 or 2');
  return true;
}

export function disjoint(aLo: i32, aHi: i32, bLo: i32, bHi: i32): bool {
  return aHi < bLo || bHi < aLo;
}
