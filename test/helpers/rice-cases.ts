// The rice index encoding (docs/format.md, dtype 6) for tests: a plain reference codec written over bit strings
// (independent of base/cnv2/rice.ts and the wasm loader), and malformed variants of a valid file's rice tensors
// that both loaders must reject (both readers: 'index').
import { assemble, setU32, splitSections, u32 } from './cnv2-bytes.js';

/** Bits of the stream, LSB first within each byte, as a '0'/'1' string. */
function bitString(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) for (let i = 0; i < 8; i++) s += (b >> i) & 1;
  return s;
}

function fromBitString(bits: string): Uint8Array {
  const out = new Uint8Array(Math.ceil(bits.length / 8));
  for (let i = 0; i < bits.length; i++) if (bits[i] === '1') out[i >> 3]! |= 1 << (i & 7);
  return out;
}

/** Reference encoder: no checks at all, so tests can build invalid streams too. */
export function refEncode(values: number[], runLength: number, k: number): Uint8Array {
  let bits = '';
  let prev = -1;
  values.forEach((v, i) => {
    if (i % runLength === 0) prev = -1;
    const gap = v - prev - 1;
    prev = v;
    bits += '1'.repeat(Math.floor(gap / 2 ** k)) + '0';
    for (let b = 0; b < k; b++) bits += Math.floor(gap / 2 ** b) % 2;
  });
  const head = new Uint8Array(5);
  setU32(head, 0, runLength);
  head[4] = k;
  return Uint8Array.from([...head, ...fromBitString(bits)]);
}

/** Reference decoder: the values and the number of stream bits they used, or null when the stream ends early. */
export function refDecode(bytes: Uint8Array, count: number): { values: number[]; bits: number } | null {
  const runLength = u32(bytes, 0), k = bytes[4]!;
  const bits = bitString(bytes.subarray(5));
  const values: number[] = [];
  let pos = 0;
  let prev = -1;
  for (let i = 0; i < count; i++) {
    if (i % runLength === 0) prev = -1;
    const zero = bits.indexOf('0', pos);
    if (zero < 0 || zero + 1 + k > bits.length) return null;
    const q = zero - pos;
    const low = bits.slice(zero + 1, zero + 1 + k).split('').reverse().join('');
    const v = prev + 1 + q * 2 ** k + (k ? parseInt(low, 2) : 0);
    values.push(v);
    prev = v;
    pos = zero + 1 + k;
  }
  return { values, bits: pos };
}

interface Entry { i: number; count: number; off: number; len: number }

function riceEntries(file: Uint8Array): { tens: Uint8Array; data: Uint8Array; entries: Entry[] } {
  const parts = splitSections(file);
  const tens = parts.find((s) => s.tag === 'TENS')!.body;
  const data = parts.find((s) => s.tag === 'DATA')!.body;
  const entries: Entry[] = [];
  for (let i = 0; i < u32(tens, 0); i++) {
    const r = 4 + 32 * i;
    if (u32(tens, r) === 6) entries.push({ i, count: u32(tens, r + 8), off: u32(tens, r + 24), len: u32(tens, r + 28) });
  }
  return { tens, data, entries };
}

/** The file with new TENS and DATA bodies (other sections unchanged). */
function rebuild(file: Uint8Array, tens: Uint8Array, data: Uint8Array): Uint8Array {
  return assemble(splitSections(file).map((s) => (s.tag === 'TENS' ? { tag: s.tag, body: tens } : s.tag === 'DATA' ? { tag: s.tag, body: data } : s)));
}

/** Malformed rice tensors in an otherwise valid file; it needs at least two rice tensors of rank 1. */
export function malformedRice(file: Uint8Array): { what: string; bytes: Uint8Array }[] {
  const { entries } = riceEntries(file);
  if (entries.length < 2) throw new Error('need two rice tensors');
  const sorted = [...entries].sort((a, b) => a.off - b.off);
  const first = sorted[0]!, last = sorted[sorted.length - 1]!;
  const cases: { what: string; bytes: Uint8Array }[] = [];
  const edit = (what: string, fn: (tens: Uint8Array, data: Uint8Array) => Uint8Array | void): void => {
    const { tens, data } = riceEntries(file);
    const d = fn(tens, data) ?? data;
    cases.push({ what, bytes: rebuild(file, tens, d) });
  };
  edit('run length 0', (_, d) => setU32(d, first.off, 0));
  edit('run length that does not divide the count', (_, d) => setU32(d, first.off, first.count + 1));
  edit('Rice parameter 25', (_, d) => { d[first.off + 4] = 25; });
  // Found by the fuzzer: a count no stream of this length can hold made the wasm loader allocate 2 GB and trap.
  edit('2^29 - 2^25 values in a few bytes', (tn) => setU32(tn, 4 + 32 * first.i + 8, 0x1e000000));
  edit('byte length 4, inside the header', (tn) => setU32(tn, 4 + 32 * first.i + 28, 4));
  edit('stream one byte short', (tn) => setU32(tn, 4 + 32 * first.i + 28, first.len - 1));
  edit('one byte after the stream', (tn) => setU32(tn, 4 + 32 * first.i + 28, first.len + 1));
  // A tensor whose last byte has padding bits: set the highest one.
  const { data: data0 } = riceEntries(file);
  const withPad = entries.find((e) => refDecode(data0.subarray(e.off, e.off + e.len), e.count)!.bits % 8 !== 0);
  if (!withPad) throw new Error('no rice tensor with padding bits');
  edit('a non-zero padding bit', (_, d) => { d[withPad.off + withPad.len - 1]! |= 0x80; });
  // Replacing the last tensor in DATA may change its length.
  const replaceLast = (what: string, bytes: Uint8Array): void => edit(what, (tn, d) => {
    setU32(tn, 4 + 32 * last.i + 28, bytes.length);
    const out = new Uint8Array(last.off + bytes.length);
    out.set(d.subarray(0, last.off));
    out.set(bytes, last.off);
    return out;
  });
  replaceLast('a value of 2^24', refEncode([1 << 24, ...Array.from({ length: last.count - 1 }, (_, j) => (1 << 24) + 1 + j)], last.count, 24));
  const ones = new Uint8Array(5 + 4).fill(0xff);
  setU32(ones, 0, last.count); ones[4] = 0;
  replaceLast('a stream of one-bits that never ends its first value', ones);
  return cases;
}
