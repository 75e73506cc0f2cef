// Model loader: parses and validates a .cnv2 image held in linear memory (docs/format.md), resolves tensors
// (f32 in place, f16 and integer indices expanded once), and produces the op table the executor runs.
// Every offset, count, shape and index is checked before it is used; on failure, fail() records why.

import {
  ERR_ALIAS, ERR_BAD_MAGIC, ERR_CHECKSUM, ERR_GRAPH, ERR_HEADER, ERR_INDEX, ERR_META, ERR_OVERFLOW, ERR_RANGE,
  ERR_SECTION, ERR_SHAPE, ERR_SIZE, ERR_TRUNCATED, ERR_UNWRITTEN, ERR_VERSION, fail, tryAlloc,
} from './errors';
import {
  DIR_ENTRY_BYTES, DT_F16, DT_F32, DT_RICE, DT_U16, DT_U32, DT_U8, HEADER_BYTES, MAGIC, META_F32, META_STRING,
  META_STRINGS, META_U32, NONE, OP_AVGPOOL, OP_CHANNEL_SHUFFLE, OP_CONV2D, OP_FC, OP_GLOBAL_AVGPOOL, OP_SE,
  TAG_DATA, TAG_GRPH, TAG_META, TAG_TENS, TENSOR_RECORD_BYTES, VERSION_MAJOR, crc32Update, dtypeBytes, fits,
  halfToFloat, opName, opWordCount, readU16, readU32, readU8, sortKeys,
} from './format';

/** Largest element count of one tensor: keeps every byte size below 2^31. */
const MAX_ELEMENTS: u64 = 0x1fffffff;
/** Largest element count of one f32 buffer: its byte size must fit in 32 bits (docs/format.md). Buffers above
 *  2 GiB pass the parser but never the planner (arena limit, and arenas above 2^31 bytes are refused). */
const MAX_BUFFER_ELEMENTS: u64 = 0x3fffffff;
const MAX_STRING: u32 = 65536;

@unmanaged export class BufferInfo {
  c: i32; h: i32; w: i32;
  first: i32;   // first op using it (-1: unused)
  last: i32;    // last op using it
  offset: usize; // arena offset, set by the planner
  ptr: usize;    // absolute address, set by the planner
}

@unmanaged export class TensorInfo {
  dtype: u32; ndim: u32;
  d0: u32; d1: u32; d2: u32; d3: u32;
  count: u32;    // elements
  src: usize;    // address of the raw bytes inside the model image
  floats: usize; // f32 view (in place for f32, expanded copy for f16), 0 until needed
  ints: usize;   // i32 view of an index tensor, 0 until needed
  ownsFloats: bool;
  idxState: u8;  // index facts, computed once however many ops share the list: bit 0 hi known, 1 distinct known, 2 distinct
  idxLo: i32; idxHi: i32; // smallest and largest value
}

/** One op with every tensor resolved to a pointer (0 = absent) and its shapes copied in. */
@unmanaged export class OpInfo {
  code: u32;
  inBuf: i32; inCh: i32; cin: i32;
  outBuf: i32; outCh: i32; cout: i32;
  kernel: i32; stride: i32; pad: i32; groups: i32;
  inAct: i32; outAct: i32; accumulate: i32;
  hidden: i32;
  weight: usize; bias: usize; weight2: usize; bias2: usize;
  inIndex: usize; inScale: usize; inShift: usize; outIndex: usize;
  h: i32; w: i32; outH: i32; outW: i32;
  scratchBytes: i32;  // transient memory this op needs in the arena's scratch region
  inLo: i32; inHi: i32; outLo: i32; outHi: i32; // channel spans read and written (write-before-read proof)
  impl: i32;          // the kernel its op file (ops/) chose at load
}

@unmanaged export class Model {
  image: usize; length: u32;                 // the model bytes (owned)
  metaOff: u32; metaSize: u32;
  grphOff: u32; grphSize: u32;
  tensOff: u32; tensSize: u32;
  dataOff: u32; dataSize: u32;
  nBuffers: i32; buffers: usize;             // BufferInfo[]
  nTensors: i32; tensors: usize;             // TensorInfo[]
  nOps: i32; ops: usize;                     // OpInfo[]
  inputBuf: i32; outputBuf: i32;
  // metadata (offsets into the image)
  nameOff: u32; nameLen: u32;
  inC: i32; inH: i32; inW: i32;
  meanOff: u32; stdOff: u32;                 // f32[inC]
  labelsOff: u32; labelCount: i32;           // first string of the labels array
  resizeNearest: bool;
  resizeCubic: bool;
  /** Official evaluation resize: shorter side to this many pixels (antialiased, as PIL), then centre crop; 0: none. */
  resizeShorter: i32;
  // planned memory
  arena: usize; arenaBytes: usize;           // activations (+ scratch at scratchOffset)
  scratchOffset: usize; scratchBytes: usize;
  macs: f64;                                 // multiply-adds of one run (pools, shuffles, gathers: 1 per element)
}

@inline export function bufferAt(m: Model, i: i32): BufferInfo {
  return changetype<BufferInfo>(m.buffers + <usize>i * offsetof<BufferInfo>());
}
@inline export function tensorAt(m: Model, i: i32): TensorInfo {
  return changetype<TensorInfo>(m.tensors + <usize>i * offsetof<TensorInfo>());
}
@inline export function opAt(m: Model, i: i32): OpInfo {
  return changetype<OpInfo>(m.ops + <usize>i * offsetof<OpInfo>());
}

function zeroAlloc(bytes: usize): usize {
  const p = heap.alloc(bytes < 16 ? 16 : bytes);
  memory.fill(p, 0, bytes < 16 ? 16 : bytes);
  return p;
}

// ---------------------------------------------------------------------------------------------------------
// Header and sections

function parseSections(m: Model): bool {
  const img = m.image;
  const len = m.length;
  if (len < HEADER_BYTES) return fail(ERR_TRUNCATED, 'file shorter than the header');
  if (readU32(img, 0) != MAGIC) return fail(ERR_BAD_MAGIC, 'not a cdnv2 model (bad magic)');
  const major = readU16(img, 4);
  if (major != VERSION_MAJOR) return fail(ERR_VERSION, 'unsupported version ' + major.toString());
  const fileSize = readU32(img, 8);
  if (fileSize > len) return fail(ERR_TRUNCATED, 'file is truncated');
  if (fileSize != len) return fail(ERR_SIZE, 'file size field mismatch');
  const n = readU32(img, 12);
  if (n < 4 || n > 16) return fail(ERR_SIZE, 'section count ' + n.toString() + ' outside 4..16');
  const dirEnd = HEADER_BYTES + n * DIR_ENTRY_BYTES;
  if (dirEnd > len) return fail(ERR_TRUNCATED, 'section directory runs past the end of the file');
  let crc = crc32Update(0, img, 28);
  crc = crc32Update(crc, img + HEADER_BYTES, n * DIR_ENTRY_BYTES);
  if (crc != readU32(img, 28)) return fail(ERR_CHECKSUM, 'header checksum mismatch');
  // Flags and reserved fields are 0 in version 1; anything else is a file this reader does not understand.
  if (readU32(img, 16) != 0) return fail(ERR_HEADER, 'header fields not 0');
  if (readU32(img, 20) != 0 || readU32(img, 24) != 0) return fail(ERR_HEADER, 'header fields not 0');

  let seen = 0;
  for (let i: u32 = 0; i < n; i++) {
    const e = HEADER_BYTES + i * DIR_ENTRY_BYTES;
    const tag = readU32(img, e);
    const off = readU32(img, e + 4);
    const size = readU32(img, e + 8);
    if (!fits(off, size, len)) return fail(ERR_TRUNCATED, 'section past the end');
    if ((off & 15) != 0 || off < dirEnd) return fail(ERR_SECTION, 'misaligned section');
    for (let j: u32 = 0; j < i; j++) {
      const e2 = HEADER_BYTES + j * DIR_ENTRY_BYTES;
      const off2 = readU32(img, e2 + 4);
      const size2 = readU32(img, e2 + 8);
      if (<u64>off < <u64>off2 + <u64>size2 && <u64>off2 < <u64>off + <u64>size) {
        return fail(ERR_SECTION, 'sections ' + j.toString() + ' and ' + i.toString() + ' overlap');
      }
    }
    if (crc32Update(0, img + off, size) != readU32(img, e + 12)) {
      return fail(ERR_CHECKSUM, 'checksum mismatch in section ' + i.toString());
    }
    let bit = 0;
    if (tag == TAG_META) { bit = 1; m.metaOff = off; m.metaSize = size; }
    else if (tag == TAG_GRPH) { bit = 2; m.grphOff = off; m.grphSize = size; }
    else if (tag == TAG_TENS) { bit = 4; m.tensOff = off; m.tensSize = size; }
    else if (tag == TAG_DATA) { bit = 8; m.dataOff = off; m.dataSize = size; }
    if (bit != 0) {
      if (seen & bit) return fail(ERR_SECTION, 'duplicated section');
      seen |= bit;
    }
  }
  if (seen != 15) return fail(ERR_SECTION, 'missing section');
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// META

function keyEquals(img: usize, off: u32, len: u32, key: string): bool {
  const n = <u32>String.UTF8.byteLength(key);
  if (n != len) return false;
  const buf = String.UTF8.encode(key);
  return memory.compare(img + off, changetype<usize>(buf), n) == 0;
}

/** True when len bytes at p are well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF). */
function validUtf8(p: usize, len: u32): bool {
  let i: u32 = 0;
  while (i < len) {
    const c = <u32>load<u8>(p + i);
    if (c < 0x80) { i++; continue; }
    let n: u32, lo: u32 = 0x80, hi: u32 = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) { n = 2; if (c == 0xe0) lo = 0xa0; else if (c == 0xed) hi = 0x9f; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 3; if (c == 0xf0) lo = 0x90; else if (c == 0xf4) hi = 0x8f; }
    else return false;
    if (<u64>i + <u64>n >= <u64>len) return false;
    for (let k: u32 = 1; k <= n; k++) {
      const b = <u32>load<u8>(p + i + k);
      if (b < lo || b > hi) return false;
      lo = 0x80; hi = 0xbf; // only the second byte has the narrowed range
    }
    i += n + 1;
  }
  return true;
}

function keyHash(p: usize, len: u32): u32 {
  let h: u32 = 0x811c9dc5; // FNV-1a
  for (let i: u32 = 0; i < len; i++) h = (h ^ <u32>load<u8>(p + i)) * 0x01000193;
  return h;
}

/**
 * Keys must be unique (docs/format.md). An open-addressing set of key offsets keeps the check linear, since a
 * hostile META can hold one entry per 8 bytes. Slots hold keyOffset + 1 (0 = empty); a key's length is at -2.
 */
@unmanaged class KeySet { table: usize; mask: u32; }

function newKeySet(count: u32): KeySet {
  let cap: u32 = 4;
  while (cap < count * 2) cap <<= 1;
  const set = changetype<KeySet>(heap.alloc(offsetof<KeySet>()));
  set.table = zeroAlloc(<usize>cap * 4);
  set.mask = cap - 1;
  return set;
}

function freeKeySet(set: KeySet): void {
  heap.free(set.table);
  heap.free(changetype<usize>(set));
}

/** Adds the key at keyOff (keyLen bytes); false when it is already there. */
function addKey(set: KeySet, img: usize, keyOff: u32, keyLen: u32): bool {
  let slot = keyHash(img + keyOff, keyLen) & set.mask;
  let other = load<u32>(set.table + <usize>slot * 4);
  while (other != 0) {
    const otherOff = other - 1;
    if (readU16(img, otherOff - 2) == keyLen && memory.compare(img + otherOff, img + keyOff, keyLen) == 0) return false;
    slot = (slot + 1) & set.mask;
    other = load<u32>(set.table + <usize>slot * 4);
  }
  store<u32>(set.table + <usize>slot * 4, keyOff + 1);
  return true;
}

function parseMeta(m: Model): bool {
  if (m.metaSize < 4) return fail(ERR_TRUNCATED, 'META section too short');
  const count = readU32(m.image, m.metaOff);
  // Every entry takes at least 8 bytes; this bounds the loop (and the key set) by the section size.
  if (<u64>count * 8 > <u64>m.metaSize - 4) return fail(ERR_TRUNCATED, 'META truncated');
  const keys = newKeySet(count);
  const ok = parseMetaEntries(m, count, keys);
  freeKeySet(keys);
  return ok;
}

function parseMetaEntries(m: Model, count: u32, keys: KeySet): bool {
  const img = m.image;
  const start = m.metaOff;
  const end = start + m.metaSize;
  let p = start + 4;
  let found = 0;
  let meanN: u32 = 0, stdN: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    if (!fits(p, 2, end)) return fail(ERR_TRUNCATED, 'META truncated');
    const keyLen = readU16(img, p);
    if (keyLen == 0 || keyLen > 255) return fail(ERR_META, 'bad META key');
    const keyOff = p + 2;
    if (!fits(keyOff, keyLen + 5, end)) return fail(ERR_TRUNCATED, 'META truncated');
    if (!validUtf8(img + keyOff, keyLen)) return fail(ERR_META, 'META: bad UTF-8');
    if (!addKey(keys, img, keyOff, keyLen)) return fail(ERR_META, 'duplicated META key');
    const type = readU8(img, keyOff + keyLen);
    const n = readU32(img, keyOff + keyLen + 1);
    const payload = keyOff + keyLen + 5;
    let payloadEnd: u64 = 0;
    if (type == META_U32 || type == META_F32) {
      payloadEnd = <u64>payload + <u64>n * 4;
    } else if (type == META_STRING) {
      if (n > MAX_STRING) return fail(ERR_META, 'META string longer than 65536 bytes');
      payloadEnd = <u64>payload + <u64>n;
      if (payloadEnd <= <u64>end && !validUtf8(img + payload, n)) return fail(ERR_META, 'META: bad UTF-8');
    } else if (type == META_STRINGS) {
      let q: u64 = payload;
      for (let k: u32 = 0; k < n; k++) {
        if (q + 4 > <u64>end) return fail(ERR_TRUNCATED, 'META string array is truncated');
        const sl = readU32(img, <u32>q);
        if (sl > MAX_STRING) return fail(ERR_META, 'META string longer than 65536 bytes');
        if (q + 4 + <u64>sl > <u64>end) return fail(ERR_TRUNCATED, 'META string array is truncated');
        if (!validUtf8(img + <usize>q + 4, sl)) return fail(ERR_META, 'META: bad UTF-8');
        q += 4 + <u64>sl;
      }
      payloadEnd = q;
    } else {
      return fail(ERR_META, 'unknown META type ' + type.toString());
    }
    if (payloadEnd > <u64>end) return fail(ERR_TRUNCATED, 'META truncated');

    let bit = 0;
    if (keyEquals(img, keyOff, keyLen, 'name')) {
      bit = 1;
      if (type != META_STRING) return fail(ERR_META, 'META: wrong type');
      m.nameOff = payload; m.nameLen = n;
    } else if (keyEquals(img, keyOff, keyLen, 'input.shape')) {
      bit = 2;
      if (type != META_U32 || n != 3) return fail(ERR_META, 'META: wrong type');
      const c = readU32(img, payload), h = readU32(img, payload + 4), w = readU32(img, payload + 8);
      if (c == 0 || h == 0 || w == 0 || c > 65535 || h > 65535 || w > 65535) return fail(ERR_META, 'bad input.shape');
      m.inC = <i32>c; m.inH = <i32>h; m.inW = <i32>w;
    } else if (keyEquals(img, keyOff, keyLen, 'input.mean')) {
      bit = 4;
      if (type != META_F32) return fail(ERR_META, 'META: wrong type');
      m.meanOff = payload; meanN = n;
    } else if (keyEquals(img, keyOff, keyLen, 'input.std')) {
      bit = 8;
      if (type != META_F32) return fail(ERR_META, 'META: wrong type');
      m.stdOff = payload; stdN = n;
    } else if (keyEquals(img, keyOff, keyLen, 'labels')) {
      bit = 16;
      if (type != META_STRINGS) return fail(ERR_META, 'META: wrong type');
      m.labelsOff = payload; m.labelCount = <i32>n;
    } else if (keyEquals(img, keyOff, keyLen, 'input.resize')) {
      bit = 32;
      if (type != META_STRING) return fail(ERR_META, 'META: wrong type');
      if (keyEquals(img, payload, n, 'nearest')) m.resizeNearest = true;
      else if (keyEquals(img, payload, n, 'bicubic')) m.resizeCubic = true;
      else if (!keyEquals(img, payload, n, 'bilinear')) return fail(ERR_META, 'bad input.resize');
    } else if (keyEquals(img, keyOff, keyLen, 'input.resize_shorter')) {
      if (type != META_U32 || n != 1) return fail(ERR_META, 'META: wrong type');
      const v = readU32(img, payload);
      if (v > 16384) return fail(ERR_META, 'bad input.resize_shorter');
      m.resizeShorter = <i32>v;
    } else if (keyEquals(img, keyOff, keyLen, 'arch') || keyEquals(img, keyOff, keyLen, 'provenance')) {
      if (type != META_STRING) return fail(ERR_META, 'META: wrong type');
    }
    found |= bit;
    p = <u32>payloadEnd;
  }
  if (p != end) return fail(ERR_META, 'META trailing bytes');
  if ((found & 15) != 15) return fail(ERR_META, 'META lacks a required key');
  if (m.resizeShorter != 0 && (m.resizeShorter < m.inH || m.resizeShorter < m.inW || m.resizeNearest)) {
    return fail(ERR_META, 'bad input.resize_shorter');
  }
  if (meanN != <u32>m.inC || stdN != <u32>m.inC) return fail(ERR_META, 'bad input.mean/std length');
  for (let c: u32 = 0; c < <u32>m.inC; c++) {
    const s = load<f32>(img + m.stdOff + c * 4);
    const mu = load<f32>(img + m.meanOff + c * 4);
    if (!(s > 0) || !isFinite(s) || !isFinite(mu)) return fail(ERR_META, 'bad input.mean/std');
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// TENS

function parseTensors(m: Model): bool {
  const img = m.image;
  if (m.tensSize < 4) return fail(ERR_TRUNCATED, 'TENS section too short');
  const count = readU32(img, m.tensOff);
  if (count > 65535) return fail(ERR_RANGE, 'tensor count ' + count.toString() + ' exceeds 65535');
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
    if (i > 0 && (k >> 16) < end) return fail(ERR_ALIAS, 'tensor ' + (k & 0xffff).toString() + ' shares data');
    end = (k >> 16) + <u64>readU32(m.image, r + 28);
  }
  // Rice lists are expanded only now, each at most 32 times its own bytes.
  for (let i = 0; i < <i32>count; i++) {
    const t = tensorAt(m, i);
    if (t.dtype == DT_RICE && !expandRice(t, readU32(m.image, m.tensOff + 32 + <u32>i * TENSOR_RECORD_BYTES))) {
      return fail(ERR_INDEX, 'tensor ' + i.toString() + ' is not a valid rice index encoding');
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
    if (size == 0) return fail(ERR_SHAPE, 'tensor ' + i.toString() + ': bad dtype');
    if (t.ndim < 1 || t.ndim > 4) return fail(ERR_SHAPE, 'tensor ' + i.toString() + ': bad rank');
    if (t.d0 == 0 || t.d1 == 0 || t.d2 == 0 || t.d3 == 0) return fail(ERR_SHAPE, 'tensor ' + i.toString() + ': zero dimension');
    if ((t.ndim < 2 && t.d1 != 1) || (t.ndim < 3 && t.d2 != 1) || (t.ndim < 4 && t.d3 != 1)) {
      return fail(ERR_SHAPE, 'tensor ' + i.toString() + ' has dimensions past its rank');
    }
    const elems = <u64>t.d0 * <u64>t.d1 * <u64>t.d2 * <u64>t.d3;
    if (elems > MAX_ELEMENTS) return fail(ERR_OVERFLOW, 'tensor ' + i.toString() + ' is too large');
    const rice = t.dtype == DT_RICE;
    if (!rice && elems * <u64>size != <u64>bytes) return fail(ERR_SHAPE, 'tensor ' + i.toString() + ': byte length mismatch');
    if (!rice && (off & 15) != 0) return fail(ERR_RANGE, 'tensor ' + i.toString() + ' misaligned');
    if (!fits(off, bytes, m.dataSize)) return fail(ERR_RANGE, 'tensor ' + i.toString() + ' outside DATA');
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
function floatsOf(m: Model, index: u32, what: string): usize {
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
    fail(ERR_SHAPE, what + ' tensor ' + index.toString() + ' must be f32 or f16');
    return 0;
  }
  return t.floats;
}

/** i32 view of an index tensor (u8/u16/u32), expanded once. */
function intsOf(m: Model, index: u32, what: string): usize {
  if (index >= <u32>m.nTensors) { fail(ERR_RANGE, what + ': no such tensor'); return 0; }
  const t = tensorAt(m, <i32>index);
  if (t.ints != 0) return t.ints;
  if (t.dtype != DT_U8 && t.dtype != DT_U16 && t.dtype != DT_U32) {
    fail(ERR_SHAPE, what + ' tensor ' + index.toString() + ' must be an integer tensor');
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

function shapeIs(m: Model, index: u32, ndim: u32, d0: u32, d1: u32, d2: u32, d3: u32): bool {
  const t = tensorAt(m, <i32>index);
  return t.ndim == ndim && t.d0 == d0 && t.d1 == d1 && t.d2 == d2 && t.d3 == d3;
}

// ---------------------------------------------------------------------------------------------------------
// GRPH

let opWords: usize = 0;   // address of the current op's words
let opNo: i32 = 0;

@inline function word(i: i32): u32 { return load<u32>(opWords + (<usize>i << 2)); }

function opFail(code: i32, message: string): bool {
  return fail(code, 'op ' + opNo.toString() + ' (' + opName(load<u32>(opWords - 4) & 0xffff) + '): ' + message);
}

function touch(m: Model, b: i32): void {
  const info = bufferAt(m, b);
  if (info.first < 0) info.first = opNo;
  info.last = opNo;
}

/** Checks that buffer b exists and channels [ch, ch+count) lie in it. */
function checkRange(m: Model, b: u32, ch: u32, count: u32, what: string): bool {
  if (b >= <u32>m.nBuffers) return opFail(ERR_RANGE, what + ': no such buffer');
  if (count == 0) return opFail(ERR_RANGE, what + ' channel count is zero');
  const c = <u32>bufferAt(m, <i32>b).c;
  if (<u64>ch + <u64>count > <u64>c) return opFail(ERR_RANGE, what + ' channels outside the buffer');
  return true;
}

/** Checks optional index tensor against [0, limit) and returns [min, max] packed, or -1 after fail(). */
function checkIndex(m: Model, tensor: u32, count: u32, limit: u32, distinct: bool, what: string, out: usize): i64 {
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
  if (<u32>t.idxHi >= limit) { opFail(ERR_INDEX, what + ' value ' + t.idxHi.toString() + ' out of range'); return -1; }
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

function optionalFloats(m: Model, tensor: u32, n: u32, what: string, ok: usize): usize {
  if (tensor == NONE) return 0;
  if (tensor >= <u32>m.nTensors) { opFail(ERR_RANGE, what + ': no such tensor'); store<bool>(ok, false); return 0; }
  if (!shapeIs(m, tensor, 1, n, 1, 1, 1)) { opFail(ERR_SHAPE, what + ': wrong shape'); store<bool>(ok, false); return 0; }
  const p = floatsOf(m, tensor, what);
  if (p == 0) store<bool>(ok, false);
  return p;
}

/** Channel spans of an op without index lists. */
function spans(op: OpInfo): void {
  op.inLo = op.inCh; op.inHi = op.inCh + op.cin - 1;
  op.outLo = op.outCh; op.outHi = op.outCh + op.cout - 1;
}

function checkAct(a: u32): bool {
  if (a > 2) return opFail(ERR_GRAPH, 'activation code ' + a.toString() + ' is not 0, 1 or 2');
  return true;
}

function disjoint(aLo: i32, aHi: i32, bLo: i32, bHi: i32): bool {
  return aHi < bLo || bHi < aLo;
}

// Each op's kernel choice and scratch needs are its op file's (ops/), decided once here at load.
import { planConv2d } from './ops/conv2d';
import { planSe } from './ops/se';

function parseConv(m: Model, op: OpInfo): bool {
  const inBuf = word(0), inCh = word(1), cin = word(2), outBuf = word(3), outCh = word(4), cout = word(5);
  const k = word(6), s = word(7), pad = word(8), groups = word(9);
  const inAct = word(10), outAct = word(11), acc = word(12);
  const wT = word(13), bT = word(14), inIdxT = word(15), scT = word(16), shT = word(17), outIdxT = word(18);
  if (k != 1 && k != 3 && k != 5 && k != 7) return opFail(ERR_GRAPH, 'bad kernel');
  if (s < 1 || s > 4) return opFail(ERR_GRAPH, 'stride ' + s.toString() + ' outside 1..4');
  if (pad > k / 2) return opFail(ERR_GRAPH, 'padding ' + pad.toString() + ' larger than kernel/2');
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

function parseSe(m: Model, op: OpInfo): bool {
  const b = word(0), ch = word(1), c = word(2), hidden = word(3);
  const w1 = word(4), b1 = word(5), w2 = word(6), b2 = word(7), gate = word(8);
  if (!checkRange(m, b, ch, c, 'SE')) return false;
  if (hidden == 0 || hidden > 65535) return opFail(ERR_GRAPH, 'hidden width outside 1..65535');
  if (gate != 0) return opFail(ERR_GRAPH, 'unknown gate ' + gate.toString());
  if (w1 >= <u32>m.nTensors || w2 >= <u32>m.nTensors) return opFail(ERR_RANGE, 'no such tensor');
  if (!shapeIs(m, w1, 2, hidden, c, 1, 1)) return opFail(ERR_SHAPE, 'w1: wrong shape');
  if (!shapeIs(m, w2, 2, c, hidden, 1, 1)) return opFail(ERR_SHAPE, 'w2: wrong shape');
  op.weight = floatsOf(m, w1, 'w1');
  op.weight2 = floatsOf(m, w2, 'w2');
  if (op.weight == 0 || op.weight2 == 0) return false;
  const ok = memory.data(4);
  store<bool>(ok, true);
  op.bias = optionalFloats(m, b1, hidden, 'b1', ok);
  op.bias2 = optionalFloats(m, b2, c, 'b2', ok);
  if (!load<bool>(ok)) return false;
  const buf = bufferAt(m, <i32>b);
  op.inBuf = <i32>b; op.inCh = <i32>ch; op.cin = <i32>c; op.hidden = <i32>hidden;
  op.outBuf = <i32>b; op.outCh = <i32>ch; op.cout = <i32>c;
  op.h = buf.h; op.w = buf.w; op.outH = buf.h; op.outW = buf.w;
  spans(op);
  op.scratchBytes = <i32>planSe(op);
  touch(m, <i32>b);
  return true;
}

function parsePool(m: Model, op: OpInfo, global: bool): bool {
  const inBuf = word(0), inCh = word(1), c = word(2), outBuf = word(3), outCh = word(4);
  if (!checkRange(m, inBuf, inCh, c, 'input') || !checkRange(m, outBuf, outCh, c, 'output')) return false;
  if (inBuf == outBuf && !disjoint(<i32>inCh, <i32>(inCh + c - 1), <i32>outCh, <i32>(outCh + c - 1))) {
    return opFail(ERR_ALIAS, 'input and output overlap');
  }
  const ib = bufferAt(m, <i32>inBuf), ob = bufferAt(m, <i32>outBuf);
  op.inBuf = <i32>inBuf; op.inCh = <i32>inCh; op.cin = <i32>c;
  op.outBuf = <i32>outBuf; op.outCh = <i32>outCh; op.cout = <i32>c;
  op.h = ib.h; op.w = ib.w;
  if (global) {
    const act = word(5), scT = word(6), shT = word(7);
    if (!checkAct(act)) return false;
    if (ob.h != 1 || ob.w != 1) return opFail(ERR_SHAPE, 'global pooling writes a 1x1 buffer');
    if ((scT == NONE) != (shT == NONE)) return opFail(ERR_GRAPH, 'inScale without inShift');
    const ok = memory.data(4);
    store<bool>(ok, true);
    op.inScale = optionalFloats(m, scT, c, 'inScale', ok);
    op.inShift = optionalFloats(m, shT, c, 'inShift', ok);
    if (!load<bool>(ok)) return false;
    op.inAct = <i32>act;
    op.outH = 1; op.outW = 1;
  } else {
    const k = word(5), s = word(6);
    if (k < 1 || k > 16 || s < 1 || s > 16) return opFail(ERR_GRAPH, 'bad pool kernel/stride');
    if (<u32>ib.h < k || <u32>ib.w < k) return opFail(ERR_SHAPE, 'input below kernel');
    const oh = (<u32>ib.h - k) / s + 1, ow = (<u32>ib.w - k) / s + 1;
    if (oh != <u32>ob.h || ow != <u32>ob.w) return opFail(ERR_SHAPE, 'output size mismatch');
    op.kernel = <i32>k; op.stride = <i32>s; op.outH = <i32>oh; op.outW = <i32>ow;
  }
  spans(op);
  touch(m, <i32>inBuf); touch(m, <i32>outBuf);
  return true;
}

function parseFc(m: Model, op: OpInfo): bool {
  const inBuf = word(0), inCh = word(1), cin = word(2), outBuf = word(3), outCh = word(4), cout = word(5);
  const act = word(6), wT = word(7), bT = word(8);
  if (!checkRange(m, inBuf, inCh, cin, 'input') || !checkRange(m, outBuf, outCh, cout, 'output')) return false;
  if (!checkAct(act)) return false;
  const ib = bufferAt(m, <i32>inBuf), ob = bufferAt(m, <i32>outBuf);
  if (ib.h != 1 || ib.w != 1 || ob.h != 1 || ob.w != 1) return opFail(ERR_SHAPE, 'buffers must be 1x1');
  if (inBuf == outBuf && !disjoint(<i32>inCh, <i32>(inCh + cin - 1), <i32>outCh, <i32>(outCh + cout - 1))) {
    return opFail(ERR_ALIAS, 'input and output overlap');
  }
  if (wT >= <u32>m.nTensors) return opFail(ERR_RANGE, 'no such tensor');
  if (!shapeIs(m, wT, 2, cout, cin, 1, 1)) return opFail(ERR_SHAPE, 'weight: wrong shape');
  op.weight = floatsOf(m, wT, 'weight');
  if (op.weight == 0) return false;
  const ok = memory.data(4);
  store<bool>(ok, true);
  op.bias = optionalFloats(m, bT, cout, 'bias', ok);
  if (!load<bool>(ok)) return false;
  op.inBuf = <i32>inBuf; op.inCh = <i32>inCh; op.cin = <i32>cin;
  op.outBuf = <i32>outBuf; op.outCh = <i32>outCh; op.cout = <i32>cout; op.outAct = <i32>act;
  op.h = 1; op.w = 1; op.outH = 1; op.outW = 1;
  spans(op);
  touch(m, <i32>inBuf); touch(m, <i32>outBuf);
  return true;
}

function parseShuffle(m: Model, op: OpInfo): bool {
  const inBuf = word(0), inCh = word(1), c = word(2), outBuf = word(3), outCh = word(4), groups = word(5);
  if (!checkRange(m, inBuf, inCh, c, 'input') || !checkRange(m, outBuf, outCh, c, 'output')) return false;
  if (groups == 0 || c % groups != 0) return opFail(ERR_GRAPH, 'bad groups');
  const ib = bufferAt(m, <i32>inBuf), ob = bufferAt(m, <i32>outBuf);
  if (ib.h != ob.h || ib.w != ob.w) return opFail(ERR_SHAPE, 'shuffle keeps the spatial size');
  if (inBuf == outBuf && !disjoint(<i32>inCh, <i32>(inCh + c - 1), <i32>outCh, <i32>(outCh + c - 1))) {
    return opFail(ERR_ALIAS, 'input and output overlap');
  }
  op.inBuf = <i32>inBuf; op.inCh = <i32>inCh; op.cin = <i32>c;
  op.outBuf = <i32>outBuf; op.outCh = <i32>outCh; op.cout = <i32>c; op.groups = <i32>groups;
  op.h = ib.h; op.w = ib.w; op.outH = ib.h; op.outW = ib.w;
  spans(op);
  touch(m, <i32>inBuf); touch(m, <i32>outBuf);
  return true;
}

function parseGraph(m: Model): bool {
  const img = m.image;
  const start = m.grphOff, end = m.grphOff + m.grphSize;
  if (m.grphSize < 16) return fail(ERR_TRUNCATED, 'GRPH section too short');
  const nb = readU32(img, start), nOps = readU32(img, start + 4);
  const inputBuf = readU32(img, start + 8), outputBuf = readU32(img, start + 12);
  if (nb == 0 || nb > 65535) return fail(ERR_GRAPH, 'bad buffer count');
  if (nOps == 0 || nOps > 65535) return fail(ERR_GRAPH, 'bad op count');
  if (inputBuf >= nb || outputBuf >= nb || inputBuf == outputBuf) return fail(ERR_RANGE, 'bad input/output buffer');
  if (!fits(start + 16, nb * 12, end)) return fail(ERR_TRUNCATED, 'GRPH buffer table is truncated');
  // Each op takes at least 4 bytes, so the op count is bounded by the section size before allocating.
  if (<u64>nOps * 4 > <u64>m.grphSize) return fail(ERR_TRUNCATED, 'GRPH op list is truncated');
  m.nBuffers = <i32>nb;
  m.buffers = zeroAlloc(<usize>nb * offsetof<BufferInfo>());
  for (let i: u32 = 0; i < nb; i++) {
    const r = start + 16 + i * 12;
    const c = readU32(img, r), h = readU32(img, r + 4), w = readU32(img, r + 8);
    if (c == 0 || h == 0 || w == 0 || c > 65535 || h > 65535 || w > 65535) return fail(ERR_SHAPE, 'buffer ' + i.toString() + ': dimension not in 1..65535');
    if (<u64>c * <u64>h * <u64>w > MAX_BUFFER_ELEMENTS) return fail(ERR_OVERFLOW, 'buffer ' + i.toString() + ' too large');
    const b = bufferAt(m, <i32>i);
    b.c = <i32>c; b.h = <i32>h; b.w = <i32>w; b.first = -1; b.last = -1;
  }
  const ib = bufferAt(m, <i32>inputBuf), ob = bufferAt(m, <i32>outputBuf);
  if (ib.c != m.inC || ib.h != m.inH || ib.w != m.inW) return fail(ERR_SHAPE, 'input buffer is not input.shape');
  // labels are optional (labelsOff is 0 without them): then classes are named by their index.
  if (ob.h != 1 || ob.w != 1 || (m.labelsOff != 0 && ob.c != m.labelCount)) return fail(ERR_SHAPE, 'output must be 1x1, a channel per label');
  m.labelCount = ob.c;
  m.inputBuf = <i32>inputBuf; m.outputBuf = <i32>outputBuf;

  m.nOps = <i32>nOps;
  m.ops = zeroAlloc(<usize>nOps * offsetof<OpInfo>());
  let p = start + 16 + nb * 12;
  for (let i: u32 = 0; i < nOps; i++) {
    opNo = <i32>i;
    if (!fits(p, 4, end)) return fail(ERR_TRUNCATED, 'op ' + i.toString() + ' truncated');
    const code = readU16(img, p), nw = readU16(img, p + 2);
    const expected = opWordCount(code);
    if (expected < 0) return fail(ERR_GRAPH, 'op ' + i.toString() + ': unknown opcode');
    if (nw != <u32>expected) return fail(ERR_GRAPH, 'op ' + i.toString() + ': wrong word count');
    if (!fits(p + 4, nw * 4, end)) return fail(ERR_TRUNCATED, 'op ' + i.toString() + ' truncated');
    opWords = img + p + 4;
    const op = opAt(m, <i32>i);
    op.code = code;
    let ok = false;
    if (code == OP_CONV2D) ok = parseConv(m, op);
    else if (code == OP_SE) ok = parseSe(m, op);
    else if (code == OP_AVGPOOL) ok = parsePool(m, op, false);
    else if (code == OP_GLOBAL_AVGPOOL) ok = parsePool(m, op, true);
    else if (code == OP_FC) ok = parseFc(m, op);
    else if (code == OP_CHANNEL_SHUFFLE) ok = parseShuffle(m, op);
    if (!ok) return false;
    p += 4 + nw * 4;
  }
  if (p != end) return fail(ERR_GRAPH, 'GRPH trailing bytes');
  // The host writes the input before op 0 and reads the output after the last op.
  ib.first = 0;
  if (ib.last < 0) ib.last = 0;
  if (ob.first < 0) ob.first = 0;
  ob.last = <i32>nOps;
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// Write before read, and the compute budget

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
    opNo = i;
    const inB = bufferAt(m, op.inBuf), outB = bufferAt(m, op.outBuf);
    if (inB.first == i && op.inBuf != m.inputBuf) memory.fill(inB.ptr, 0, <usize>((inB.c + 31) >> 5) << 2);
    if (outB.first == i && op.outBuf != op.inBuf) memory.fill(outB.ptr, 0, <usize>((outB.c + 31) >> 5) << 2);
    const inPx = <f64>op.h * <f64>op.w, outPx = <f64>op.outH * <f64>op.outW;
    if (!bits(inB.ptr, op.inLo, op.inHi, false)
      || (op.accumulate != 0 && !bits(outB.ptr, op.outLo, op.outHi, false))) {
      return fail(ERR_UNWRITTEN, 'op ' + i.toString() + ' reads unwritten channels');
    }
    if (op.outIndex != 0 && op.accumulate == 0) {
      for (let o = 0; o < op.cout; o++) {
        const c = op.outCh + load<i32>(op.outIndex + (<usize>o << 2));
        bits(outB.ptr, c, c, true);
      }
    } else {
      bits(outB.ptr, op.outLo, op.outHi, true);
    }
    const code = op.code;
    // Element work counts once per element visited, so that no op is free.
    macs += <f64>op.cin * inPx + <f64>op.cout * outPx;
    if (code == OP_CONV2D) macs += <f64>op.cout * <f64>(op.cin / op.groups) * <f64>(op.kernel * op.kernel) * outPx;
    else if (code == OP_SE) macs += 2 * <f64>op.cin * <f64>op.hidden;
    else if (code == OP_AVGPOOL) macs += <f64>op.cin * <f64>(op.kernel * op.kernel) * outPx;
    else if (code == OP_FC) macs += <f64>op.cin * <f64>op.cout;
  }
  const ob = bufferAt(m, m.outputBuf);
  if (!bits(ob.ptr, 0, ob.c - 1, false)) return fail(ERR_UNWRITTEN, 'output not written');
  memory.fill(m.arena, 0, m.arenaBytes + 64);
  m.macs = macs;
  return true;
}

/** Frees everything a (possibly partly) parsed model owns, including its image. */
export function freeModel(m: Model): void {
  if (m.tensors != 0) {
    for (let i = 0; i < m.nTensors; i++) {
      const t = tensorAt(m, i);
      if (t.ownsFloats && t.floats != 0) heap.free(t.floats);
      if (t.ints != 0) heap.free(t.ints);
    }
    heap.free(m.tensors);
  }
  if (m.buffers != 0) heap.free(m.buffers);
  if (m.ops != 0) heap.free(m.ops);
  if (m.arena != 0) heap.free(m.arena);
  if (m.image != 0) heap.free(m.image);
  heap.free(changetype<usize>(m));
}

/**
 * Parses and validates a model image (which the returned Model then owns). Returns null after fail();
 * in that case the image has been freed too.
 */
export function parseModel(image: usize, length: u32): Model | null {
  const m = changetype<Model>(zeroAlloc(offsetof<Model>()));
  m.image = image;
  m.length = length;
  if (parseSections(m) && parseMeta(m) && parseTensors(m) && parseGraph(m)) return m;
  freeModel(m);
  return null;
}

/** Label i as a string (i < labelCount); the index itself when the model has no labels. */
export function labelOf(m: Model, i: i32): string {
  if (m.labelsOff == 0) return i.toString();
  let p = m.labelsOff;
  for (let k = 0; k < i; k++) p += 4 + readU32(m.image, p);
  return String.UTF8.decodeUnsafe(m.image + p + 4, readU32(m.image, p));
}

export function modelName(m: Model): string {
  return String.UTF8.decodeUnsafe(m.image + m.nameOff, m.nameLen);
}
