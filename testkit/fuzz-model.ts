// Model-file fuzzer shared by test/assembly/runtime/model-fuzz.test.ts (CI, fixed seed) and scripts/fuzz.ts (`npm run fuzz`).
// Mutations know the .cnv2 layout (docs/format.md): most rewrite one structured field (a count, offset, dim,
// dtype, op word, index value, META length or type) with a boundary value and then recompute every CRC, so the
// case reaches the loader's deeper validation instead of stopping at 'checksum'. Others truncate at section
// boundaries, flip bytes, and duplicate, drop, reorder or splice whole sections.
// Each case is checked against the contract: the wasm loader (JS API) throws Cdnv2Error with a code other than
// 'wasm' (a trap) or loads and runs to finite logits, within a time limit; the TypeScript reader throws only
// ModelFormatError; and both give the same verdict, the same error code on rejection (the runtime may additionally
// refuse an arena above its limit).
import { crc32 } from '../base/cnv2/crc32.js';
import { condense } from '../converter/condense.js';
import { randomNetworkParams } from '../converter/random.js';
import { ModelFormatError, readModel, writeModel } from '../base/cnv2/format.js';
import { ACT, OP_LAYOUT, type Op, type Tensor } from '../base/cnv2/model.js';
import { Cdnv2Error, loadModel, type Isa } from '../runtime/index.js';
import { getConfig } from '../base/arch/configs.js';
import { TINY_A, TINY_B } from './tiny-configs.js';
import { buildModel, rng as mulberry } from './models.js';

// ---------------------------------------------------------------------------------------------------------------
// Base models

/** Every op kind, u16/u32 index tensors (condensed bases hold rice ones), f16 and f32 floats, a channel shuffle and in-place SE. */
function allOpsModel(): Uint8Array {
  const r = mulberry(77);
  const f32 = (n: number, s = 0.5): Float32Array => Float32Array.from({ length: n }, () => (r() * 2 - 1) * s);
  const f16 = (n: number): Uint16Array => Uint16Array.from({ length: n }, () => 0x3000 + Math.floor(r() * 0x0800)); // 0.125..0.25
  const tensors: Tensor[] = [
    { dtype: 'f32', shape: [8, 3, 3, 3], data: f32(8 * 27) },        // 0 conv weight
    { dtype: 'f32', shape: [8], data: f32(8) },                       // 1 conv bias
    { dtype: 'u32', shape: [3], data: Uint32Array.from([2, 0, 1]) },  // 2 conv inIndex
    { dtype: 'f16', shape: [3], data: f16(3) },                       // 3 inScale
    { dtype: 'f16', shape: [3], data: f16(3) },                       // 4 inShift
    { dtype: 'u16', shape: [8], data: Uint16Array.from([7, 6, 5, 4, 3, 2, 1, 0]) }, // 5 conv outIndex
    { dtype: 'f32', shape: [4, 8], data: f32(32) },                   // 6 se w1
    { dtype: 'f32', shape: [4], data: f32(4) },                       // 7 se b1
    { dtype: 'f16', shape: [8, 4], data: f16(32) },                   // 8 se w2
    { dtype: 'f32', shape: [8], data: f32(8) },                       // 9 gap scale
    { dtype: 'f32', shape: [8], data: f32(8) },                       // 10 gap shift
    { dtype: 'f32', shape: [4, 8], data: f32(32) },                   // 11 fc weight
    { dtype: 'f16', shape: [4], data: f16(4) },                       // 12 fc bias
  ];
  const ops: Op[] = [
    { kind: 'conv2d', inBuffer: 0, inChannel: 0, cin: 3, outBuffer: 1, outChannel: 0, cout: 8, kernel: 3, stride: 1, pad: 1,
      groups: 1, inAct: ACT.relu, outAct: ACT.hardswish, accumulate: 0, weight: 0, bias: 1, inIndex: 2, inScale: 3, inShift: 4, outIndex: 5 },
    { kind: 'channel_shuffle', inBuffer: 1, inChannel: 0, channels: 8, outBuffer: 2, outChannel: 0, groups: 2 },
    { kind: 'avgpool', inBuffer: 2, inChannel: 0, channels: 8, outBuffer: 3, outChannel: 0, kernel: 2, stride: 2 },
    { kind: 'maxpool', inBuffer: 2, inChannel: 2, channels: 5, outBuffer: 6, outChannel: 1, kernel: 3, stride: 2, pad: 1 },
    { kind: 'se', buffer: 3, channel: 0, channels: 8, hidden: 4, w1: 6, b1: 7, w2: 8, b2: null, gate: 0 },
    { kind: 'global_avgpool', inBuffer: 3, inChannel: 0, channels: 8, outBuffer: 4, outChannel: 0, inAct: ACT.relu, inScale: 9, inShift: 10 },
    { kind: 'fc', inBuffer: 4, inChannel: 0, cin: 8, outBuffer: 5, outChannel: 0, cout: 4, outAct: ACT.none, weight: 11, bias: 12 },
  ] as Op[];
  const buffers = [
    { channels: 3, height: 6, width: 6 }, { channels: 8, height: 6, width: 6 }, { channels: 8, height: 6, width: 6 },
    { channels: 8, height: 3, width: 3 }, { channels: 8, height: 1, width: 1 }, { channels: 4, height: 1, width: 1 },
    { channels: 6, height: 3, width: 3 }, // the max pool's (read by no later op)
  ];
  const model = buildModel(buffers, ops, tensors, 5);
  model.meta.push({ key: 'input.resize', type: 'string', value: 'nearest' }, { key: 'arch', type: 'string', value: 'all-ops' });
  return writeModel(model);
}

export interface Base { name: string; bytes: Uint8Array; weight: number }

/** The valid files mutations start from (small, so thousands of cases run in seconds). */
export function baseModels(opts: { large?: boolean } = {}): Base[] {
  const bases: Base[] = [
    { name: 'tiny-a-f32', bytes: writeModel(condense(randomNetworkParams(TINY_A, 31), { weights: 'f32' })), weight: 4 },
    { name: 'tiny-b-f16', bytes: writeModel(condense(randomNetworkParams(TINY_B, 32), { weights: 'f16' })), weight: 3 },
    { name: 'all-ops', bytes: allOpsModel(), weight: 3 },
  ];
  if (opts.large) {
    bases.push({ name: 'cdnv2-fmnist-f16', bytes: writeModel(condense(randomNetworkParams(getConfig('cdnv2-fmnist'), 33), { weights: 'f16' })), weight: 1 });
  }
  return bases;
}

// ---------------------------------------------------------------------------------------------------------------
// Layout: the structured fields of a valid file

export type Width = 1 | 2 | 4;
export interface Field { off: number; width: Width; kind: string; float?: 'f32' | 'f16' }

const rd = (b: Uint8Array, off: number, w: Width): number => {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return w === 1 ? v.getUint8(off) : w === 2 ? v.getUint16(off, true) : v.getUint32(off, true);
};
const wr = (b: Uint8Array, off: number, w: Width, x: number): void => {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (w === 1) v.setUint8(off, x & 0xff); else if (w === 2) v.setUint16(off, x & 0xffff, true); else v.setUint32(off, x >>> 0, true);
};

export interface Section { tag: string; entry: number; offset: number; size: number }

export function sections(b: Uint8Array): Section[] {
  const n = Math.min(rd(b, 12, 4), 16, Math.floor((b.length - 32) / 16));
  return Array.from({ length: Math.max(0, n) }, (_, i) => {
    const e = 32 + 16 * i;
    return { tag: String.fromCharCode(...b.subarray(e, e + 4)), entry: e, offset: rd(b, e + 4, 4), size: rd(b, e + 8, 4) };
  });
}

/** Every field a mutation may target, with absolute offsets. `b` must be a valid file. */
export function fields(b: Uint8Array): Field[] {
  const out: Field[] = [];
  const add = (off: number, width: Width, kind: string, float?: 'f32' | 'f16'): void => { out.push({ off, width, kind, float }); };
  add(4, 2, 'hdr.major'); add(6, 2, 'hdr.minor'); add(8, 4, 'hdr.size'); add(12, 4, 'hdr.count');
  add(16, 4, 'hdr.flags'); add(20, 4, 'hdr.reserved'); add(24, 4, 'hdr.reserved');
  const secs = sections(b);
  for (const s of secs) { add(s.entry, 4, 'dir.tag'); add(s.entry + 4, 4, 'dir.offset'); add(s.entry + 8, 4, 'dir.size'); }
  const sec = (tag: string): Section => secs.find((s) => s.tag === tag)!;

  // META
  const meta = sec('META');
  let p = meta.offset;
  const metaCount = rd(b, p, 4);
  add(p, 4, 'meta.count');
  p += 4;
  for (let i = 0; i < metaCount; i++) {
    const keyLen = rd(b, p, 2);
    add(p, 2, 'meta.keyLen');
    add(p + 2, 1, 'meta.keyByte');
    add(p + 2 + keyLen - 1, 1, 'meta.keyByte');
    const key = new TextDecoder().decode(b.subarray(p + 2, p + 2 + keyLen));
    const tp = p + 2 + keyLen;
    add(tp, 1, 'meta.type');
    add(tp + 1, 4, 'meta.n');
    const type = rd(b, tp, 1);
    const n = rd(b, tp + 1, 4);
    let q = tp + 5;
    if (type === 1 || type === 2) {
      for (let k = 0; k < n; k++) add(q + 4 * k, 4, `meta.${key}`, type === 2 ? 'f32' : undefined);
      q += 4 * n;
    } else if (type === 3) {
      if (n > 0) { add(q, 1, 'meta.strByte'); add(q + n - 1, 1, 'meta.strByte'); }
      q += n;
    } else {
      for (let k = 0; k < n; k++) {
        const len = rd(b, q, 4);
        add(q, 4, 'meta.strLen');
        if (len > 0) add(q + 4, 1, 'meta.strByte');
        q += 4 + len;
      }
    }
    p = q;
  }

  // GRPH
  const g = sec('GRPH');
  p = g.offset;
  const nb = rd(b, p, 4), nOps = rd(b, p + 4, 4);
  add(p, 4, 'grph.buffers'); add(p + 4, 4, 'grph.ops'); add(p + 8, 4, 'grph.input'); add(p + 12, 4, 'grph.output');
  p += 16;
  for (let i = 0; i < nb; i++) for (let k = 0; k < 3; k++) add(p + 12 * i + 4 * k, 4, 'buf.dim');
  p += 12 * nb;
  const kinds = Object.entries(OP_LAYOUT);
  for (let i = 0; i < nOps; i++) {
    const code = rd(b, p, 2), nw = rd(b, p + 2, 2);
    add(p, 2, 'op.code'); add(p + 2, 2, 'op.words');
    const layout = kinds.find(([, l]) => l.opcode === code)![1];
    for (let k = 0; k < nw; k++) add(p + 4 + 4 * k, 4, `op.${layout.fields[k]}`);
    p += 4 + 4 * nw;
  }

  // TENS and DATA
  const tens = sec('TENS'), data = sec('DATA');
  const nt = rd(b, tens.offset, 4);
  add(tens.offset, 4, 'tens.count');
  const names = ['dtype', 'ndim', 'dim', 'dim', 'dim', 'dim', 'offset', 'bytes'];
  for (let i = 0; i < nt; i++) {
    const r = tens.offset + 4 + 32 * i;
    for (let k = 0; k < 8; k++) add(r + 4 * k, 4, `tens.${names[k]}`);
    const dtype = rd(b, r, 4), off = rd(b, r + 24, 4), bytes = rd(b, r + 28, 4);
    if (dtype === 6) {
      // Rice index list: header (run length, k) and a few bytes of the bit stream, first and last included.
      const at = data.offset + off;
      add(at, 4, 'rice.runLength'); add(at + 4, 1, 'rice.k');
      for (const e of new Set([5, 5 + ((bytes - 5) >> 1), bytes - 1])) add(at + e, 1, 'data.rice');
      continue;
    }
    const size = [0, 4, 2, 1, 2, 4][dtype]!;
    const count = bytes / size;
    // A few elements of every tensor: first, last and one in the middle.
    for (const e of new Set([0, count >> 1, count - 1])) {
      const at = data.offset + off + e * size;
      if (dtype <= 2) add(at, size as Width, 'data.float', dtype === 1 ? 'f32' : 'f16');
      else add(at, size as Width, 'data.index');
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Mutations

export class Rng {
  private readonly next: () => number;
  constructor(seed: number) { this.next = mulberry(seed); }
  float(): number { return this.next(); }
  int(n: number): number { return Math.floor(this.next() * n); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]!; }
  chance(p: number): boolean { return this.next() < p; }
}

/** Recomputes the CRC of every in-bounds section and the header CRC, tolerating a broken directory. */
export function fixCrcs(b: Uint8Array): Uint8Array {
  if (b.length < 32) return b;
  for (const s of sections(b)) {
    if (s.offset + s.size <= b.length) wr(b, s.entry + 12, 4, crc32(b, s.offset, s.offset + s.size));
  }
  const n = rd(b, 12, 4);
  if (n >= 1 && n <= 16 && 32 + 16 * n <= b.length) wr(b, 28, 4, crc32(b, 32, 32 + 16 * n, crc32(b, 0, 28)));
  return b;
}

/** Sections laid out like the writer does, each 16-aligned, with correct directory, sizes and CRCs. */
export function assemble(parts: { tag: string; body: Uint8Array }[]): Uint8Array {
  const n = parts.length;
  let off = Math.ceil((32 + 16 * n) / 16) * 16;
  const offsets = parts.map((s) => { const o = off; off = Math.ceil((o + s.body.length) / 16) * 16; return o; });
  const size = n ? offsets[n - 1]! + parts[n - 1]!.body.length : 32;
  const out = new Uint8Array(size);
  out.set([0x43, 0x4e, 0x56, 0x32], 0);
  wr(out, 4, 2, 1);
  wr(out, 8, 4, size);
  wr(out, 12, 4, n);
  parts.forEach((s, i) => {
    const e = 32 + 16 * i;
    for (let c = 0; c < 4; c++) out[e + c] = s.tag.charCodeAt(c);
    wr(out, e + 4, 4, offsets[i]!);
    wr(out, e + 8, 4, s.body.length);
    out.set(s.body, offsets[i]!);
  });
  return fixCrcs(out);
}

const split = (b: Uint8Array): { tag: string; body: Uint8Array }[] =>
  sections(b).map((s) => ({ tag: s.tag, body: b.slice(s.offset, s.offset + s.size) }));

const U32_SPECIALS = [0, 1, 2, 3, 4, 7, 8, 15, 16, 255, 256, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffff0, 0xfffffffe, 0xffffffff];
const F32_SPECIALS = [NaN, Infinity, -Infinity, 0, -0, 3.4e38, -3.4e38, 1e30, 1e-45, 65504, 1];
const F16_SPECIALS = [0x7c00, 0xfc00, 0x7e00, 0x7bff, 0xfbff, 0x0001, 0x8000, 0x3c00];

function boundaryValue(rng: Rng, f: Field, current: number, peers: number[]): number {
  const max = f.width === 4 ? 0xffffffff : f.width === 2 ? 0xffff : 0xff;
  switch (rng.int(8)) {
    case 0: case 1: return rng.pick(U32_SPECIALS) & max || (rng.chance(0.5) ? 0 : max);
    case 2: return (current + 1) & max;
    case 3: return (current - 1) & max;
    case 4: return peers.length ? rng.pick(peers) : current ^ 1;       // another real value of the same kind
    case 5: return (current * 2) & max;
    case 6: return rng.int(64);
    default: return f.width === 4 ? (rng.int(0x10000) * 0x10000 + rng.int(0x10000)) >>> 0 : rng.int(max + 1);
  }
}

function mutateField(rng: Rng, b: Uint8Array, all: Field[]): string {
  const f = rng.pick(all);
  const current = rd(b, f.off, f.width);
  if (f.float === 'f32' && rng.chance(0.7)) {
    const v = rng.pick(F32_SPECIALS);
    new DataView(b.buffer, b.byteOffset).setFloat32(f.off, v, true);
    return `${f.kind}@${f.off}=f32:${v}`;
  }
  if (f.float === 'f16' && rng.chance(0.7)) {
    const v = rng.pick(F16_SPECIALS);
    wr(b, f.off, 2, v);
    return `${f.kind}@${f.off}=f16:0x${v.toString(16)}`;
  }
  const peers = all.filter((x) => x.kind === f.kind && x.width === f.width).map((x) => rd(b, x.off, x.width));
  const v = boundaryValue(rng, f, current, peers);
  wr(b, f.off, f.width, v);
  return `${f.kind}@${f.off}=${v}`;
}

/** Cut points: every section boundary (and one byte either side), the header and directory edges. */
export function cutPoints(b: Uint8Array): number[] {
  const cuts = new Set<number>([0, 1, 4, 8, 12, 16, 28, 31, 32]);
  for (const s of sections(b)) {
    for (const x of [s.entry, s.entry + 16, s.offset, s.offset + 1, s.offset + s.size - 1, s.offset + s.size]) cuts.add(x);
  }
  return [...cuts].filter((x) => x >= 0 && x < b.length).sort((x, y) => x - y);
}

/** A truncated copy; with `patch`, the size field and CRCs are made to match so the cut reaches the sections. */
export function truncated(b: Uint8Array, at: number, patch: boolean): Uint8Array {
  const c = b.slice(0, at);
  if (patch && at >= 16) { wr(c, 8, 4, at); fixCrcs(c); }
  return c;
}

export interface Case { bytes: Uint8Array; desc: string }

/** One random mutation of a base file; `desc` says what was done (for reports and regression files). */
export function mutate(rng: Rng, base: Base, fieldCache: Map<Base, Field[]>, donors: Base[]): Case {
  let all = fieldCache.get(base);
  if (!all) { all = fields(base.bytes); fieldCache.set(base, all); }
  const b = base.bytes.slice();
  const r = rng.int(100);
  if (r < 55) {
    // Structured fields, 1-3 at a time, CRCs recomputed (90%) so the deeper checks see the change.
    const n = 1 + (rng.chance(0.3) ? rng.int(3) : 0);
    const what = Array.from({ length: n }, () => mutateField(rng, b, all!));
    const fix = rng.chance(0.9);
    if (fix) fixCrcs(b);
    return { bytes: b, desc: `${base.name}: ${what.join(', ')}${fix ? '' : ' (stale CRCs)'}` };
  }
  if (r < 70) {
    // Random byte flips anywhere; CRCs recomputed for most.
    const n = 1 + rng.int(4);
    const what: string[] = [];
    for (let k = 0; k < n; k++) {
      const pos = rng.int(b.length);
      b[pos] = rng.chance(0.5) ? rng.int(256) : b[pos]! ^ (1 << rng.int(8));
      what.push(`byte@${pos}=${b[pos]}`);
    }
    const fix = rng.chance(0.8);
    if (fix) fixCrcs(b);
    return { bytes: b, desc: `${base.name}: ${what.join(', ')}${fix ? '' : ' (stale CRCs)'}` };
  }
  if (r < 78) {
    const cuts = cutPoints(b);
    const at = rng.chance(0.7) ? rng.pick(cuts) : rng.int(b.length);
    const patch = rng.chance(0.7);
    return { bytes: truncated(b, at, patch), desc: `${base.name}: truncated to ${at}${patch ? ' (size and CRCs patched)' : ''}` };
  }
  const parts = split(b);
  const i = rng.int(parts.length);
  const s = parts[i]!;
  switch (rng.int(9)) {
    case 0: { // a section body shortened (entries cut mid-way), with valid CRCs
      const n = rng.int(s.body.length + 1);
      parts[i] = { tag: s.tag, body: s.body.slice(0, n) };
      return { bytes: assemble(parts), desc: `${base.name}: ${s.tag} body cut to ${n}` };
    }
    case 1: { // trailing bytes after the last entry
      const extra = 1 + rng.int(20);
      const body = new Uint8Array(s.body.length + extra);
      body.set(s.body);
      if (rng.chance(0.5)) for (let k = s.body.length; k < body.length; k++) body[k] = rng.int(256);
      parts[i] = { tag: s.tag, body };
      return { bytes: assemble(parts), desc: `${base.name}: ${s.tag} +${extra} trailing bytes` };
    }
    case 2: { // a duplicated section
      parts.splice(rng.int(parts.length + 1), 0, { tag: s.tag, body: s.body.slice() });
      return { bytes: assemble(parts), desc: `${base.name}: ${s.tag} duplicated` };
    }
    case 3: { // reordered sections (valid: order is free as long as the directory is right)
      for (let k = parts.length - 1; k > 0; k--) { const j = rng.int(k + 1); [parts[k], parts[j]] = [parts[j]!, parts[k]!]; }
      return { bytes: assemble(parts), desc: `${base.name}: sections reordered ${parts.map((p) => p.tag).join(',')}` };
    }
    case 4: { // a section dropped, or replaced by an unknown tag
      const drop = rng.chance(0.5);
      if (drop) parts.splice(i, 1); else parts[i] = { tag: 'XTRA', body: s.body };
      return { bytes: assemble(parts), desc: `${base.name}: ${s.tag} ${drop ? 'dropped' : 'renamed XTRA'}` };
    }
    case 5: { // two section bodies swapped under their tags
      const j = rng.int(parts.length);
      const t = parts[i]!.body; parts[i]!.body = parts[j]!.body; parts[j]!.body = t;
      return { bytes: assemble(parts), desc: `${base.name}: bodies of ${parts[i]!.tag} and ${parts[j]!.tag} swapped` };
    }
    case 6: { // a section spliced from another model
      const donor = rng.pick(donors.filter((d) => d !== base));
      const ds = split(donor.bytes).find((x) => x.tag === s.tag);
      if (ds) parts[i] = { tag: s.tag, body: ds.body };
      return { bytes: assemble(parts), desc: `${base.name}: ${s.tag} from ${donor.name}` };
    }
    case 7: { // an extra unknown section (must be skipped)
      parts.splice(rng.int(parts.length + 1), 0, { tag: 'NOTE', body: Uint8Array.from({ length: rng.int(40) }, () => rng.int(256)) });
      return { bytes: assemble(parts), desc: `${base.name}: unknown NOTE section added` };
    }
    default: { // bytes inserted into or deleted from the middle of a section (shifts every later entry)
      const at = rng.int(s.body.length + 1);
      const del = rng.chance(0.5);
      const n = 1 + rng.int(8);
      const body = del ? new Uint8Array([...s.body.subarray(0, at), ...s.body.subarray(Math.min(s.body.length, at + n))])
        : new Uint8Array([...s.body.subarray(0, at), ...Array.from({ length: n }, () => rng.int(256)), ...s.body.subarray(at)]);
      parts[i] = { tag: s.tag, body };
      return { bytes: assemble(parts), desc: `${base.name}: ${s.tag} ${del ? 'lost' : 'gained'} ${n} bytes at ${at}` };
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Checking one case

export interface Outcome {
  ts: string;        // 'accept' or the ModelFormatError code
  wasm: string;      // 'accept' or the Cdnv2Error code
  ms: number;        // wasm load + run + dispose
  numeric: boolean;  // loaded, but a run reported non-finite logits (Cdnv2Error 'numeric'): huge finite weights
  problem?: string;  // set when the case breaks the contract
}

export const TIME_LIMIT_MS = 1000;

function tsVerdict(bytes: Uint8Array): { verdict: string; problem?: string } {
  try {
    readModel(bytes);
    return { verdict: 'accept' };
  } catch (err) {
    if (err instanceof ModelFormatError) return { verdict: err.code };
    return { verdict: 'crash', problem: `TypeScript reader threw ${(err as Error).name}: ${(err as Error).message}` };
  }
}

/** Loads the case in the given wasm build, runs it on a fixed input and an image, and checks the contract. */
export async function checkCase(bytes: Uint8Array, isa: Isa): Promise<Outcome> {
  const ts = tsVerdict(bytes);
  const t0 = performance.now();
  let wasm = 'accept';
  let numeric = false;
  let problem = ts.problem;
  try {
    const m = await loadModel(bytes, { isa });
    try {
      const r = mulberry(bytes.length);
      const runs: [string, () => Float32Array][] = [
        ['run', () => m.run(Float32Array.from({ length: m.inputLength }, () => r() * 4 - 2))],
        ['runImage', () => m.runImage({ width: 7, height: 5, channels: 3, data: Uint8Array.from({ length: 105 }, () => Math.floor(r() * 256)) })],
      ];
      for (const [what, run] of runs) {
        try {
          const v = run();
          if (v.length !== m.outputLength || !v.every(Number.isFinite)) problem ??= `loaded, but ${what}() returned non-finite logits`;
        } catch (err) {
          // Finite weights can still overflow; the runtime must say so (and only so), not return NaN scores.
          if (err instanceof Cdnv2Error && err.code === 'numeric') numeric = true;
          else throw err;
        }
      }
    } finally {
      m.dispose();
    }
  } catch (err) {
    if (err instanceof Cdnv2Error) {
      wasm = err.code;
      if (err.code === 'wasm') problem ??= `wasm fault: ${err.message}`;
    } else {
      wasm = 'crash';
      problem ??= `JS API threw ${(err as Error).name}: ${(err as Error).message}`;
    }
  }
  const ms = performance.now() - t0;
  if (ms > TIME_LIMIT_MS) problem ??= `took ${ms.toFixed(0)} ms`;
  // One error vocabulary (base/cnv2/error-codes.ts): both readers give the same code for the same bytes. The
  // TypeScript reader has no arena limit, and a file it accepts may still report 'numeric' when run.
  const wasmVerdict = wasm === 'arena' ? 'accept' : wasm;
  if (!problem && ts.verdict !== wasmVerdict) {
    problem = `disagreement: TypeScript reader ${ts.verdict === 'accept' ? 'accepts' : `rejects (${ts.verdict})`}, wasm loader ${wasm === 'accept' ? 'accepts' : `rejects (${wasm})`}`;
  }
  return { ts: ts.verdict, wasm, ms, numeric, problem };
}

// ---------------------------------------------------------------------------------------------------------------
// A run

export interface FuzzStats {
  cases: number;
  rejected: number;
  accepted: number;
  numeric: number;   // accepted cases whose run reported non-finite logits
  byIsa: Record<string, number>;
  codes: Record<string, number>;
  maxMs: number;
  failures: { isa: Isa; desc: string; problem: string; bytes: Uint8Array }[];
}

/**
 * `cases` mutated files over the given builds (weights say how many go to each), from a fixed seed. The first
 * cases of every run are the deterministic truncation sweep: every section boundary of every base, +/- patching.
 */
export async function fuzz(opts: { cases: number; seed: number; isas: [Isa, number][]; bases: Base[]; onCase?: (i: number, s: FuzzStats) => void }): Promise<FuzzStats> {
  const rng = new Rng(opts.seed);
  const stats: FuzzStats = { cases: 0, rejected: 0, accepted: 0, numeric: 0, byIsa: {}, codes: {}, maxMs: 0, failures: [] };
  const cache = new Map<Base, Field[]>();
  const sweep: Case[] = [];
  for (const base of opts.bases) {
    for (const at of cutPoints(base.bytes)) {
      for (const patch of [false, true]) sweep.push({ bytes: truncated(base.bytes, at, patch), desc: `${base.name}: truncated to ${at}${patch ? ' (size and CRCs patched)' : ''}` });
    }
  }
  const totalWeight = opts.isas.reduce((a, [, w]) => a + w, 0);
  const baseWeight = opts.bases.reduce((a, b) => a + b.weight, 0);
  const pickBase = (): Base => {
    let x = rng.float() * baseWeight;
    for (const b of opts.bases) { x -= b.weight; if (x < 0) return b; }
    return opts.bases[0]!;
  };
  for (let i = 0; i < opts.cases; i++) {
    let x = (i + 0.5) / opts.cases * totalWeight;
    let isa = opts.isas[0]![0];
    for (const [name, w] of opts.isas) { if (x < w) { isa = name; break; } x -= w; }
    const c = i < sweep.length && i < opts.cases / 4 ? sweep[i]! : mutate(rng, pickBase(), cache, opts.bases);
    const o = await checkCase(c.bytes, isa);
    stats.cases++;
    stats.byIsa[isa] = (stats.byIsa[isa] ?? 0) + 1;
    if (o.wasm === 'accept') stats.accepted++; else stats.rejected++;
    if (o.numeric) stats.numeric++;
    stats.codes[o.wasm] = (stats.codes[o.wasm] ?? 0) + 1;
    stats.maxMs = Math.max(stats.maxMs, o.ms);
    if (o.problem) stats.failures.push({ isa, desc: c.desc, problem: o.problem, bytes: c.bytes });
    opts.onCase?.(i, stats);
  }
  return stats;
}
