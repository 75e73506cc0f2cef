// META (docs/format.md): typed key/value entries, unique keys, well-formed UTF-8; the model's name, input shape,
// normalisation, resize and labels.

import { ERR_META, ERR_TRUNCATED, fail } from './errors';
import { META_F32, META_STRING, META_STRINGS, META_U32, fits, readU16, readU32, readU8 } from './format';
import { Model, zeroAlloc } from './model';
import { dec } from './dec';

const MAX_STRING: u32 = 65536;

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

export function parseMeta(m: Model): bool {
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
      return fail(ERR_META, 'unknown META type ' + dec(type));
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

/** Label i as a string (i < labelCount); the index itself when the model has no labels. */
export function labelOf(m: Model, i: i32): string {
  if (m.labelsOff == 0) return dec(i);
  let p = m.labelsOff;
  for (let k = 0; k < i; k++) p += 4 + readU32(m.image, p);
  return String.UTF8.decodeUnsafe(m.image + p + 4, readU32(m.image, p));
}

export function modelName(m: Model): string {
  return String.UTF8.decodeUnsafe(m.image + m.nameOff, m.nameLen);
}
