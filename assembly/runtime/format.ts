// Constants of the .cnv2 format (docs/format.md) and bounds-checked little-endian reads over model bytes.

export const MAGIC: u32 = 0x32564e43;       // "CNV2" read as little-endian u32
export const VERSION_MAJOR: u32 = 1;
export const HEADER_BYTES: u32 = 32;
export const DIR_ENTRY_BYTES: u32 = 16;
export const TENSOR_RECORD_BYTES: u32 = 32;
export const NONE: u32 = 0xffffffff;

export const TAG_META: u32 = 0x4154454d;    // "META"
export const TAG_GRPH: u32 = 0x48505247;    // "GRPH"
export const TAG_TENS: u32 = 0x534e4554;    // "TENS"
export const TAG_DATA: u32 = 0x41544144;    // "DATA"

export const OP_CONV2D: u32 = 1;
export const OP_SE: u32 = 2;
export const OP_AVGPOOL: u32 = 3;
export const OP_GLOBAL_AVGPOOL: u32 = 4;
export const OP_FC: u32 = 5;
export const OP_CHANNEL_SHUFFLE: u32 = 6;
export const OP_MAXPOOL: u32 = 7;

export function opWordCount(opcode: u32): i32 {
  switch (opcode) {
    case OP_CONV2D: return 19;
    case OP_SE: return 9;
    case OP_AVGPOOL: return 7;
    case OP_GLOBAL_AVGPOOL: return 8;
    case OP_FC: return 9;
    case OP_CHANNEL_SHUFFLE: return 6;
    case OP_MAXPOOL: return 8;
  }
  return -1;
}

export function opName(opcode: u32): string {
  switch (opcode) {
    case OP_CONV2D: return 'conv2d';
    case OP_SE: return 'se';
    case OP_AVGPOOL: return 'avgpool';
    case OP_GLOBAL_AVGPOOL: return 'global_avgpool';
    case OP_FC: return 'fc';
    case OP_CHANNEL_SHUFFLE: return 'channel_shuffle';
    case OP_MAXPOOL: return 'maxpool';
  }
  return 'unknown';
}

export const DT_F32: u32 = 1;
export const DT_F16: u32 = 2;
export const DT_U8: u32 = 3;
export const DT_U16: u32 = 4;
export const DT_U32: u32 = 5;
export const DT_RICE: u32 = 6;              // index list as Rice-coded ascending runs, expanded at load

export function dtypeBytes(dtype: u32): u32 {
  switch (dtype) {
    case DT_F32: return 4;
    case DT_F16: return 2;
    case DT_U8: return 1;
    case DT_U16: return 2;
    case DT_U32: return 4;
    case DT_RICE: return 4; // per value once expanded; the stored length is that of the encoding
  }
  return 0;
}

export const META_U32: u32 = 1;
export const META_F32: u32 = 2;
export const META_STRING: u32 = 3;
export const META_STRINGS: u32 = 4;

/** Little-endian reads at byte offsets the caller has checked against the section it reads. */
@inline export function readU8(base: usize, off: u32): u32 { return <u32>load<u8>(base + <usize>off); }
@inline export function readU16(base: usize, off: u32): u32 { return <u32>load<u16>(base + <usize>off); }
@inline export function readU32(base: usize, off: u32): u32 { return load<u32>(base + <usize>off); }

/** True when [off, off + size) lies inside [0, limit), computed without 32-bit overflow. */
@inline export function fits(off: u32, size: u32, limit: u32): bool {
  return <u64>off + <u64>size <= <u64>limit;
}

let crcTable: usize = 0; // 8 tables of 256 u32 for slicing-by-8 (model files are megabytes)

function buildCrcTable(): void {
  crcTable = heap.alloc(8 * 256 * 4);
  for (let n: u32 = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = (c & 1) ? (0xedb88320 ^ (c >>> 1)) : (c >>> 1);
    store<u32>(crcTable + (<usize>n << 2), c);
  }
  for (let t: usize = 1; t < 8; t++) {
    for (let n: usize = 0; n < 256; n++) {
      const prev = load<u32>(crcTable + ((t - 1) << 10) + (n << 2));
      store<u32>(crcTable + (t << 10) + (n << 2), (prev >>> 8) ^ load<u32>(crcTable + (<usize>(prev & 0xff) << 2)));
    }
  }
}

@inline function tab(t: usize, i: u32): u32 {
  return load<u32>(crcTable + (t << 10) + (<usize>(i & 0xff) << 2));
}

/** Continues a CRC32 (IEEE, reflected) over len bytes; start with crc = 0. */
export function crc32Update(crc: u32, ptr: usize, len: usize): u32 {
  if (crcTable == 0) buildCrcTable();
  let c = ~crc;
  let i: usize = 0;
  for (; i + 8 <= len; i += 8) {
    const lo = c ^ load<u32>(ptr + i);
    const hi = load<u32>(ptr + i + 4);
    c = tab(7, lo) ^ tab(6, lo >>> 8) ^ tab(5, lo >>> 16) ^ tab(4, lo >>> 24) ^
        tab(3, hi) ^ tab(2, hi >>> 8) ^ tab(1, hi >>> 16) ^ tab(0, hi >>> 24);
  }
  for (; i < len; i++) c = tab(0, c ^ <u32>load<u8>(ptr + i)) ^ (c >>> 8);
  return ~c;
}

/** IEEE binary16 to f32, exact for every half value (subnormals, infinities, NaN). */
export function halfToFloat(h: u32): f32 {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  let bits: u32;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      // Subnormal half: value = mant * 2^-24.
      const v = <f32>mant * 5.9604644775390625e-8;
      return sign ? -v : v;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000 | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  return reinterpret<f32>(bits);
}

@inline function keyAt(p: usize, i: i32): u64 { return load<u64>(p + (<usize>i << 3)); }
@inline function swapKeys(p: usize, i: i32, j: i32): void {
  const t = keyAt(p, i); store<u64>(p + (<usize>i << 3), keyAt(p, j)); store<u64>(p + (<usize>j << 3), t);
}

/** Heap sort of n u64 keys, ascending: O(n log n) whatever the input, no allocation. */
export function sortKeys(p: usize, n: i32): void {
  for (let end = n, start = n >> 1; end > 1;) {
    if (start > 0) start--;
    else { end--; swapKeys(p, 0, end); }
    let r = start;
    while (true) {
      let c = 2 * r + 1;
      if (c >= end) break;
      if (c + 1 < end && keyAt(p, c + 1) > keyAt(p, c)) c++;
      if (keyAt(p, r) >= keyAt(p, c)) break;
      swapKeys(p, r, c);
      r = c;
    }
  }
}
