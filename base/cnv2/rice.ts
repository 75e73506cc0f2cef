// The `rice` index encoding of docs/format.md (dtype 6): an index list stored as runs of `runLength` strictly
// ascending values, each value coded as its gap to the previous one in the run with a Golomb-Rice code of
// parameter k. Condensed networks keep sorted channel sets per group, so this is ~5 bits per entry instead of
// 8 or 16, and the expansion at load is a few lines in either reader.

/** Bytes before the bit stream: u32 runLength, u8 k. */
export const RICE_HEADER = 5;
export const RICE_MAX_K = 24;
/** Decoded values must be below this (no buffer has more channels; keeps every sum exact). */
export const RICE_VALUE_LIMIT = 1 << 24;

export interface RiceParams {
  runLength: number;
  k: number;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** True when `runLength` splits the values into strictly ascending runs and k is in range. */
export function riceFits(values: ArrayLike<number>, p: RiceParams): boolean {
  const n = values.length;
  if (!Number.isInteger(p.runLength) || p.runLength < 1 || n % p.runLength !== 0) return false;
  if (!Number.isInteger(p.k) || p.k < 0 || p.k > RICE_MAX_K) return false;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= RICE_VALUE_LIMIT) return false;
    if (i % p.runLength !== 0 && v <= values[i - 1]!) return false;
  }
  return true;
}

/** The longest runs that are strictly ascending, then the k giving the fewest bits (smallest k on ties). */
export function riceParams(values: ArrayLike<number>): RiceParams {
  const n = values.length;
  if (n === 0) throw new Error('cannot encode an empty index list');
  let runLength = n;
  for (let i = 1; i < n; i++) if (values[i]! <= values[i - 1]!) runLength = gcd(runLength, i);
  let best = { k: 0, bits: Infinity };
  for (let k = 0; k <= RICE_MAX_K; k++) {
    let bits = 0;
    let prev = -1;
    for (let i = 0; i < n; i++) {
      if (i % runLength === 0) prev = -1;
      bits += Math.floor((values[i]! - prev - 1) / 2 ** k) + 1 + k;
      prev = values[i]!;
    }
    if (bits < best.bits) best = { k, bits };
  }
  return { runLength, k: best.k };
}

/** Encodes values (which must fit `p`, see riceFits) as header + bit stream. */
export function riceEncode(values: ArrayLike<number>, p: RiceParams): Uint8Array {
  if (!riceFits(values, p)) throw new Error('cannot rice-encode: values do not fit the run length, k or 2^24 limit');
  const bytes: number[] = [p.runLength & 255, (p.runLength >>> 8) & 255, (p.runLength >>> 16) & 255, p.runLength >>> 24, p.k];
  let acc = 0;
  let nbits = 0;
  const put = (bit: number): void => {
    acc |= bit << nbits;
    if (++nbits === 8) { bytes.push(acc); acc = 0; nbits = 0; }
  };
  let prev = -1;
  for (let i = 0; i < values.length; i++) {
    if (i % p.runLength === 0) prev = -1;
    const gap = values[i]! - prev - 1;
    prev = values[i]!;
    for (let q = Math.floor(gap / 2 ** p.k); q > 0; q--) put(1);
    put(0);
    for (let b = 0; b < p.k; b++) put(Math.floor(gap / 2 ** b) & 1);
  }
  if (nbits > 0) bytes.push(acc);
  return Uint8Array.from(bytes);
}

/**
 * Decodes `count` values from `bytes` (exactly the tensor's bytes). Returns the values and parameters, or a
 * reason string when the bytes are not a valid encoding: bad header, stream too short, bytes or non-zero bits
 * after the last value, or a value of 2^24 or more.
 */
export function riceDecode(bytes: Uint8Array, count: number): { values: Uint32Array; params: RiceParams } | string {
  if (bytes.length < RICE_HEADER) return `${bytes.length} bytes, shorter than the ${RICE_HEADER}-byte header`;
  const runLength = (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0;
  const k = bytes[4]!;
  if (runLength === 0 || count % runLength !== 0) return `run length ${runLength} does not divide ${count} values`;
  if (k > RICE_MAX_K) return `Rice parameter ${k} above ${RICE_MAX_K}`;
  const end = (bytes.length - RICE_HEADER) * 8;
  // Every value takes at least one bit: this bounds the allocation below by the file size.
  if (count > end) return `${count} values cannot fit in ${end} bits`;
  let bit = 0;
  const next = (): number => {
    const b = (bytes[RICE_HEADER + (bit >>> 3)]! >>> (bit & 7)) & 1;
    bit++;
    return b;
  };
  const values = new Uint32Array(count);
  let prev = -1;
  for (let i = 0; i < count; i++) {
    if (i % runLength === 0) prev = -1;
    let q = 0;
    for (;;) {
      if (bit >= end) return `stream ends inside value ${i}`;
      if (next() === 0) break;
      q++;
    }
    if (bit + k > end) return `stream ends inside value ${i}`;
    let r = 0;
    for (let b = 0; b < k; b++) r += next() * 2 ** b;
    const v = prev + 1 + q * 2 ** k + r;
    if (v >= RICE_VALUE_LIMIT) return `value ${i} is ${v}, above 2^24 - 1`;
    values[i] = v;
    prev = v;
  }
  if (end - bit >= 8) return `${(end - bit) >>> 3} bytes after the last value`;
  while (bit < end) if (next() !== 0) return 'non-zero padding bits after the last value';
  return { values, params: { runLength, k } };
}
