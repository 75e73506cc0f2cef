// IEEE 754 binary16 <-> binary32 conversion, bit exact: round to nearest even, subnormals, infinities, and NaN
// payloads (their top 10 bits) are preserved, so half -> float -> half is the identity for every bit pattern.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Float (as binary32) to half bits. */
export function floatToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) {
    // Inf stays Inf; NaN keeps its top payload bits and stays a NaN (quiet bit forced if they were all zero).
    if (mant === 0) return sign | 0x7c00;
    const m = mant >>> 13;
    return sign | 0x7c00 | (m === 0 ? 0x200 : m);
  }
  const e = exp - 127 + 15; // rebias
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> Inf
  if (e <= 0) {
    // Subnormal half (or zero): shift the full significand (with implicit 1) right, rounding to nearest even.
    if (e < -10) return sign; // below half the smallest subnormal -> signed zero
    const full = mant | 0x800000;
    const shift = 14 - e; // 13 bits of normal truncation + (1 - e) more
    const half = 1 << (shift - 1);
    let m = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    if (rest > half || (rest === half && (m & 1) === 1)) m++;
    return sign | m; // a carry into bit 10 correctly yields the smallest normal
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++; // carry may roll into the exponent (up to Inf): correct
  return sign | h;
}

/** Half bits to float value (exact). */
export function halfToFloat(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) {
    u32[0] = sign | 0x7f800000 | (mant << 13);
    return f32[0]!;
  }
  if (exp === 0) {
    const v = mant * 2 ** -24;
    return sign ? -v : v;
  }
  u32[0] = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  return f32[0]!;
}

export function floatsToHalves(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = floatToHalf(src[i]!);
  return out;
}

export function halvesToFloats(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = halfToFloat(src[i]!);
  return out;
}
