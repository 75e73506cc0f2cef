// TENS (docs/format.md): the tensor table (dtype, rank, shape, a 16-byte aligned place in DATA, no shared bytes)
// and the tensors' values: f32 used in place, f16 and integer index lists expanded once, rice lists decoded.

import { ERR_ALIAS, ERR_INDEX, ERR_OVERFLOW, ERR_RANGE, ERR_SHAPE, ERR_TRUNCATED, fail, tryAlloc } from './errors';
import {
  DT_F16, DT_F32, DT_RICE, DT_U16, DT_U32, DT_U8, TENSOR_RECORD_BYTES, dtypeBytes, fits, halfToFloat, readU32, sortKeys,
} from './format';
import { Model, TensorInfo, tensorAt, zeroAlloc } from './model';
import { dec } from './dec';

/** Largest element count of one tensor: keeps every byte size below 2^31. */
const MAX_ELEMENTS: u64 = 0x1fffffff;

export function parseTensors(m: Model): bool {
  const img = m.image;
  if (m.tensSize < 4) return fail(ERR_TRUNCATED, 'TENS section too short');
  const count = readU32(img, m.tensOff);
  if (count > 65535) return fail(ERR_RANGE, 'tensor count ' + dec(count) + ' exceeds 65535');
  if (<u64>4 + <u64>count * TENSOR_RECORD_BYTES != <u64>m.tensSize) return fail(ERR_TRUNCATED, 'TENS size mismatch');
  m.nTensors = <i32>count;
  m.tensors = zeroAlloc(<usize>count * offsetof<TensorInfo>());
  // (offset << 16 | index) of every tensor, sorted below to prove their data ranges disjoint.
  const spans = zeroAlloc(<usize>count * 8);
  const ok = parseTensorTable(m, count, spans) && disjointData(m, count, spans);
  heap.free(spans);
  return ok;
}

/**
 * Tensors must not share bytes (docs/format.md): otherwise thousands of table entries over one blob would each be
 * expanded, and load memory would grow with the entry count instead of the file size.
 */
function disjointData(m: Model, count: u32, spans: usize): bool {
  sortKeys(spans, <i32>count);
  let end: u64 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const k = load<u64>(spans + <usize>i * 8);
    const r = m.tensOff + 4 + <u32>(k & 0xffff) * TENSOR_RECORD_BYTES;
    if (i > 0 && (k >> 16) < end) return fail(ERR_ALIAS, 'tensor ' + dec((k & 0xffff)) + ' shares data');
    end = (k >> 16) + <u64>readU32(m.image, r + 28);
  }
  // Rice lists are expanded only now, each at most 32 times its own bytes.
  for (let i = 0; i < <i32>count; i++) {
    const t = tensorAt(m, i);
    if (t.dtype == DT_RICE && !expandRice(t, readU32(m.image, m.tensOff + 32 + <u32>i * TENSOR_RECORD_BYTES))) {
      return fail(ERR_INDEX, 'tensor ' + dec(i) + ' is not a valid rice index encoding');
    }
  }
  return true;
}

function parseTensorTable(m: Model, count: u32, spans: usize): bool {
  const img = m.image;
  for (let i: u32 = 0; i < count; i++) {
    const r = m.tensOff + 4 + i * TENSOR_RECORD_BYTES;
    const t = tensorAt(m, <i32>i);
    t.dtype = readU32(img, r);
    t.ndim = readU32(img, r + 4);
    t.d0 = readU32(img, r + 8); t.d1 = readU32(img, r + 12); t.d2 = readU32(img, r + 16); t.d3 = readU32(img, r + 20);
    const off = readU32(img, r + 24);
    const bytes = readU32(img, r + 28);
    const size = dtypeBytes(t.dtype);
    if (size == 0) return fail(ERR_SHAPE, 'tensor ' + dec(i) + ': bad dtype');
    if (t.ndim < 1 || t.ndim > 4) return fail(ERR_SHAPE, 'tensor ' + dec(i) + ': bad rank');
    if (t.d0 == 0 || t.d1 == 0 || t.d2 == 0 || t.d3 == 0) return fail(ERR_SHAPE, 'tensor ' + dec(i) + ': zero dimension');
    if ((t.ndim < 2 && t.d1 != 1) || (t.ndim < 3 && t.d2 != 1) || (t.ndim < 4 && t.d3 != 1)) {
      return fail(ERR_SHAPE, 'tensor ' + dec(i) + ' has dimensions past its rank');
    }
    const elems = <u64>t.d0 * <u64>t.d1 * <u64>t.d2 * <u64>t.d3;
    if (elems > MAX_ELEMENTS) return fail(ERR_OVERFLOW, 'tensor ' + dec(i) + ' is too large');
    const rice = t.dtype == DT_RICE;
    if (!rice && elems * <u64>size != <u64>bytes) return fail(ERR_SHAPE, 'tensor ' + dec(i) + ': byte length mismatch');
    if (!rice && (off & 15) != 0) return fail(ERR_RANGE, 'tensor ' + dec(i) + ' misaligned');
    if (!fits(off, bytes, m.dataSize)) return fail(ERR_RANGE, 'tensor ' + dec(i) + ' outside DATA');
    t.count = <u32>elems;
    t.src = img + m.dataOff + off;
    store<u64>(spans + <usize>i * 8, (<u64>off << 16) | <u64>i);
  }
  return true;
}

/**
 * Expands a rice index tensor into t.ints (docs/format.md): u32 run length, u8 k, then per value the gap to the
 * previous value of its run, as q one-bits, a zero bit and k low bits, LSB first. False on a bad header, a
 * stream shorter than the values, a value of 2^24 or more, or anything but zero bits after the last value.
 */
function expandRice(t: TensorInfo, len: u32): bool {
  if (len < 5) return false;
  const run = load<u32>(t.src), k = <u64>load<u8>(t.src + 4);
  const end = <u64>(len - 5) << 3;
  // Every value takes at least one bit: this bounds the allocation by the file size.
  if (run == 0 || t.count % run != 0 || k > 24 || <u64>t.count > end) return false;
  const p = tryAlloc(<usize>t.count * 4);
  if (p == 0) return false;
  t.ints = p; // freed with the model, also on failure
  const base = t.src + 5;
  let bit: u64 = 0;
  let prev: u64 = 0; // previous value + 1
  for (let i: u32 = 0; i < t.count; i++) {
    if (i % run == 0) prev = 0;
    let gap: u64 = 0;
    while (true) {
      if (bit >= end) return false;
      const b = (<u32>load<u8>(base + <usize>(bit >> 3)) >> <u32>(bit & 7)) & 1;
      bit++;
      if (b == 0) break;
      gap += <u64>1 << k;
    }
    if (bit + k > end) return false;
    for (let j: u64 = 0; j < k; j++, bit++) gap |= <u64>((<u32>load<u8>(base + <usize>(bit >> 3)) >> <u32>(bit & 7)) & 1) << j;
    const v = prev + gap;
    if (v > 0xffffff) return false;
    store<i32>(p + <usize>i * 4, <i32>v);
    prev = v + 1;
  }
  // Only the zero bits that complete the last byte may follow.
  if (end - bit >= 8) return false;
  return bit == end || (<u32>load<u8>(base + <usize>(bit >> 3)) >> <u32>(bit & 7)) == 0;
}

/** f32 view of a tensor used as weights/bias/scale/shift; expands f16 once; rejects non-finite values. */
export function floatsOf(m: Model, index: u32, what: string): usize {
  if (index >= <u32>m.nTensors) { fail(ERR_RANGE, what + ': no such tensor'); return 0; }
  const t = tensorAt(m, <i32>index);
  if (t.floats != 0) return t.floats;
  if (t.dtype == DT_F32) {
    for (let i: u32 = 0; i < t.count; i++) {
      if (!isFinite(load<f32>(t.src + <usize>i * 4))) { fail(ERR_SHAPE, what + ': non-finite value'); return 0; }
    }
    t.floats = t.src;
  } else if (t.dtype == DT_F16) {
    const p = tryAlloc(<usize>t.count * 4);
    if (p == 0) { fail(ERR_OVERFLOW, what + ' tensor too large to expand'); return 0; }
    for (let i: u32 = 0; i < t.count; i++) {
      const v = halfToFloat(<u32>load<u16>(t.src + <usize>i * 2));
      if (!isFinite(v)) { heap.free(p); fail(ERR_SHAPE, what + ': non-finite value'); return 0; }
      store<f32>(p + <usize>i * 4, v);
    }
    t.floats = p;
    t.ownsFloats = true;
  } else {
    fail(ERR_SHAPE, what + ' tensor ' + dec(index) + ' must be f32 or f16');
    return 0;
  }
  return t.floats;
}

/** i32 view of an index tensor (u8/u16/u32), expanded once. */
export function intsOf(m: Model, index: u32, what: string): usize {
  if (index >= <u32>m.nTensors) { fail(ERR_RANGE, what + ': no such tensor'); return 0; }
  const t = tensorAt(m, <i32>index);
  if (t.ints != 0) return t.ints;
  if (t.dtype != DT_U8 && t.dtype != DT_U16 && t.dtype != DT_U32) {
    fail(ERR_SHAPE, what + ' tensor ' + dec(index) + ' must be an integer tensor');
    return 0;
  }
  const p = tryAlloc(<usize>t.count * 4);
  if (p == 0) { fail(ERR_OVERFLOW, what + ' tensor too large to expand'); return 0; }
  for (let i: u32 = 0; i < t.count; i++) {
    let v: u32;
    if (t.dtype == DT_U8) v = <u32>load<u8>(t.src + <usize>i);
    else if (t.dtype == DT_U16) v = <u32>load<u16>(t.src + <usize>i * 2);
    else v = load<u32>(t.src + <usize>i * 4);
    // Values above 2^24 are out of range for any buffer; clamping keeps them rejectable as i32.
    store<i32>(p + <usize>i * 4, v > 0xffffff ? 0x1000000 : <i32>v);
  }
  t.ints = p;
  return p;
}

export function shapeIs(m: Model, index: u32, ndim: u32, d0: u32, d1: u32, d2: u32, d3: u32): bool {
  const t = tensorAt(m, <i32>index);
  return t.ndim == ndim && t.d0 == d0 && t.d1 == d1 && t.d2 == d2 && t.d3 == d3;
}
