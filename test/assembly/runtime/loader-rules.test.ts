// The wasm loader rule by rule (issue 26): every check of the loader (assembly/runtime/) and the planner, each reached by
// a file that breaks that rule alone, in all three builds (simd, scalar, relaxed), and the same bytes through the
// TypeScript reader, which must report the same code (base/cnv2/error-codes.ts). The base file is valid in both
// readers; every case is the base with one edit and correct CRCs (unless the rule is the CRC).
import t from 'tap';
import { crc32 } from '../../../base/cnv2/crc32.js';
import { ModelFormatError, readModel, writeModel } from '../../../base/cnv2/format.js';
import { ACT, type MetaEntry, type Model, type Op, type Tensor } from '../../../base/cnv2/model.js';
import { Cdnv2Error, isaSupported, loadModel, type Isa } from '../../../runtime/index.js';
import { assemble, directory, fixAllCrcs, fixHeaderCrc, setU16, setU32, splitSections, u32, withSection } from '../../helpers/cnv2-bytes.js';
import { buildModel, rng } from '../../../testkit/models.js';

const ISAS: Isa[] = ['simd', 'scalar', 'relaxed'];

/** Every op kind; u8, u16 and rice index tensors; f16 and f32 floats. Buffer 0 is the input, 5 the output. */
function baseModel(): Model {
  const r = rng(26);
  const f32 = (n: number): Float32Array => Float32Array.from({ length: n }, () => r() - 0.5);
  const f16 = (n: number): Uint16Array => Uint16Array.from({ length: n }, () => 0x3000 + Math.floor(r() * 0x0800));
  const tensors: Tensor[] = [
    { dtype: 'f32', shape: [8, 3, 3, 3], data: f32(216) },             // 0 conv weight
    { dtype: 'f32', shape: [8], data: f32(8) },                         // 1 conv bias
    { dtype: 'u8', shape: [3], data: Uint8Array.from([2, 0, 1]) },      // 2 conv inIndex
    { dtype: 'f16', shape: [3], data: f16(3) },                         // 3 inScale
    { dtype: 'f16', shape: [3], data: f16(3) },                         // 4 inShift
    { dtype: 'rice', shape: [8], data: Uint32Array.from([0, 1, 2, 3, 4, 5, 6, 7]) }, // 5 conv outIndex
    { dtype: 'f32', shape: [4, 8], data: f32(32) },                     // 6 se w1
    { dtype: 'f32', shape: [4], data: f32(4) },                         // 7 se b1
    { dtype: 'f16', shape: [8, 4], data: f16(32) },                     // 8 se w2
    { dtype: 'f32', shape: [8], data: f32(8) },                         // 9 gap inScale
    { dtype: 'f32', shape: [8], data: f32(8) },                         // 10 gap inShift
    { dtype: 'f32', shape: [4, 8], data: f32(32) },                     // 11 fc weight
    { dtype: 'f16', shape: [4], data: f16(4) },                         // 12 fc bias
    { dtype: 'u16', shape: [8], data: Uint16Array.from([7, 6, 5, 4, 3, 2, 1, 0]) }, // 13 unused u16 index
  ];
  const ops: Op[] = [
    { kind: 'conv2d', inBuffer: 0, inChannel: 0, cin: 3, outBuffer: 1, outChannel: 0, cout: 8, kernel: 3, stride: 1, pad: 1,
      groups: 1, inAct: ACT.relu, outAct: ACT.hardswish, accumulate: 0, weight: 0, bias: 1, inIndex: 2, inScale: 3, inShift: 4, outIndex: 5 },
    { kind: 'channel_shuffle', inBuffer: 1, inChannel: 0, channels: 8, outBuffer: 2, outChannel: 0, groups: 2 },
    { kind: 'avgpool', inBuffer: 2, inChannel: 0, channels: 8, outBuffer: 3, outChannel: 0, kernel: 2, stride: 2 },
    { kind: 'se', buffer: 3, channel: 0, channels: 8, hidden: 4, w1: 6, b1: 7, w2: 8, b2: null, gate: 0 },
    { kind: 'global_avgpool', inBuffer: 3, inChannel: 0, channels: 8, outBuffer: 4, outChannel: 0, inAct: ACT.relu, inScale: 9, inShift: 10 },
    { kind: 'fc', inBuffer: 4, inChannel: 0, cin: 8, outBuffer: 5, outChannel: 0, cout: 4, outAct: ACT.none, weight: 11, bias: 12 },
    { kind: 'maxpool', inBuffer: 2, inChannel: 1, channels: 6, outBuffer: 6, outChannel: 0, kernel: 3, stride: 2, pad: 1 },
  ];
  const buffers = [
    { channels: 3, height: 6, width: 6 }, { channels: 8, height: 6, width: 6 }, { channels: 8, height: 6, width: 6 },
    { channels: 8, height: 3, width: 3 }, { channels: 8, height: 1, width: 1 }, { channels: 4, height: 1, width: 1 },
    { channels: 6, height: 3, width: 3 }, // the max pool's, read by no later op
  ];
  const m = buildModel(buffers, ops, tensors, 5);
  m.meta.push({ key: 'input.resize', type: 'string', value: 'nearest' }, { key: 'arch', type: 'string', value: 'rules' });
  return m;
}

const base = writeModel(baseModel());
const copy = (): Model => readModel(base);
const op = <K extends Op['kind']>(m: Model, kind: K): Extract<Op, { kind: K }> => m.ops.find((o) => o.kind === kind) as Extract<Op, { kind: K }>;
const conv = (m: Model): Extract<Op, { kind: 'conv2d' }> => op(m, 'conv2d');

/** The base model edited at the model level, written without the writer's validation. */
const edited = (edit: (m: Model) => void): Uint8Array => { const m = copy(); edit(m); return writeModel(m, { validate: false }); };
/** The base file with bytes edited in place; every CRC recomputed unless `crcs` is false. */
const patched = (edit: (b: Uint8Array) => void, crcs = true): Uint8Array => { const b = base.slice(); edit(b); return crcs ? fixAllCrcs(b) : b; };
const section = (tag: string): { offset: number; size: number; entry: number } => directory(base).find((d) => d.tag === tag)!;

// META bodies built entry by entry, for what the writer refuses to produce (bad UTF-8, unknown types, cut entries).
interface RawEntry { key: Uint8Array; type: number; n: number; payload: Uint8Array }
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const u32s = (...v: number[]): Uint8Array => new Uint8Array(Uint32Array.from(v).buffer);
const f32s = (...v: number[]): Uint8Array => new Uint8Array(Float32Array.from(v).buffer);
const strs = (...v: string[]): Uint8Array => {
  const parts = v.map((s) => { const b = utf8(s); const o = new Uint8Array(4 + b.length); setU32(o, 0, b.length); o.set(b, 4); return o; });
  return Uint8Array.from(parts.flatMap((p) => [...p]));
};
function rawEntry(e: MetaEntry): RawEntry {
  switch (e.type) {
    case 'u32[]': return { key: utf8(e.key), type: 1, n: e.value.length, payload: new Uint8Array(e.value.buffer.slice(0)) };
    case 'f32[]': return { key: utf8(e.key), type: 2, n: e.value.length, payload: new Uint8Array(e.value.buffer.slice(0)) };
    case 'string': { const b = utf8(e.value); return { key: utf8(e.key), type: 3, n: b.length, payload: b }; }
    case 'string[]': return { key: utf8(e.key), type: 4, n: e.value.length, payload: strs(...e.value) };
  }
}
function metaBody(entries: RawEntry[], count = entries.length): Uint8Array {
  const out: number[] = [...u32s(count)];
  for (const e of entries) {
    out.push(e.key.length & 0xff, e.key.length >> 8, ...e.key, e.type, ...u32s(e.n), ...e.payload);
  }
  return Uint8Array.from(out);
}
const baseEntries = (): RawEntry[] => copy().meta.map(rawEntry);
/** The base file with its META rebuilt from raw entries (edited by the caller). */
const withMeta = (edit: (es: RawEntry[]) => RawEntry[] | Uint8Array): Uint8Array =>
  withSection(base, 'META', () => { const r = edit(baseEntries()); return r instanceof Uint8Array ? r : metaBody(r); });
const replaceEntry = (key: string, e: Partial<RawEntry>) => (es: RawEntry[]): RawEntry[] =>
  es.map((x) => (new TextDecoder().decode(x.key) === key ? { ...x, ...e } : x));

/** TENS table field of tensor i (0 dtype, 1 ndim, 2..5 dims, 6 offset, 7 byteLength), edited in place. */
const tensField = (i: number, field: number, v: number): Uint8Array =>
  patched((b) => setU32(b, section('TENS').offset + 4 + 32 * i + 4 * field, v));
/** GRPH word at byte offset `at` of the section. */
const grphWord = (at: number, v: number): Uint8Array => patched((b) => setU32(b, section('GRPH').offset + at, v));
const opsStart = 16 + 12 * 7;

/** A model of one conv (1x1, input activation) and a global pool over a big plane: valid but for the sizes. */
function bigPlane(h: number, w: number, inAct: number, withConv: boolean): Uint8Array {
  const buffers = withConv
    ? [{ channels: 1, height: h, width: w }, { channels: 1, height: h, width: w }, { channels: 1, height: 1, width: 1 }]
    : [{ channels: 1, height: h, width: w }, { channels: 1, height: 1, width: 1 }];
  const ops: Op[] = withConv ? [
    { kind: 'conv2d', inBuffer: 0, inChannel: 0, cin: 1, outBuffer: 1, outChannel: 0, cout: 1, kernel: 1, stride: 1, pad: 0,
      groups: 1, inAct, outAct: 0, accumulate: 0, weight: 0, bias: null, inIndex: null, inScale: null, inShift: null, outIndex: null },
    { kind: 'global_avgpool', inBuffer: 1, inChannel: 0, channels: 1, outBuffer: 2, outChannel: 0, inAct: 0, inScale: null, inShift: null },
  ] : [{ kind: 'global_avgpool', inBuffer: 0, inChannel: 0, channels: 1, outBuffer: 1, outChannel: 0, inAct: 0, inScale: null, inShift: null }];
  const tensors: Tensor[] = [{ dtype: 'f32', shape: [1, 1, 1, 1], data: Float32Array.of(1) }];
  return writeModel(buildModel(buffers, ops, tensors, buffers.length - 1), { validate: false });
}

interface Rule { rule: string; code: string; bytes: Uint8Array; arenaLimitBytes?: number; tsAccepts?: true }

const rules: Rule[] = [
  // --- header and directory (parseSections)
  { rule: 'file shorter than the 32-byte header', code: 'truncated', bytes: base.slice(0, 31) },
  { rule: 'magic is not CNV2', code: 'bad-magic', bytes: patched((b) => { b[3] = 0x33; }) },
  { rule: 'major version other than 1', code: 'version', bytes: patched((b) => setU16(b, 4, 2)) },
  { rule: 'file size field above the byte count', code: 'truncated', bytes: patched((b) => setU32(b, 8, base.length + 1)) },
  { rule: 'file size field below the byte count', code: 'size', bytes: patched((b) => setU32(b, 8, base.length - 1)) },
  { rule: 'section count 3 (below 4)', code: 'size', bytes: patched((b) => setU32(b, 12, 3)) },
  { rule: 'section count 17 (above 16)', code: 'size', bytes: patched((b) => setU32(b, 12, 17)) },
  { rule: 'directory runs past the end of the file', code: 'truncated', bytes: (() => { const b = base.slice(0, 200); setU32(b, 8, 200); setU32(b, 12, 16); return b; })() },
  { rule: 'header/directory CRC mismatch', code: 'checksum', bytes: patched((b) => { b[28]! ^= 1; }, false) },
  { rule: 'header flags not 0', code: 'header', bytes: patched((b) => setU32(b, 16, 1)) },
  { rule: 'header reserved field not 0', code: 'header', bytes: patched((b) => setU32(b, 24, 1)) },
  { rule: 'section runs past the end of the file', code: 'truncated', bytes: patched((b) => setU32(b, section('DATA').entry + 8, section('DATA').size + 1)) },
  { rule: 'section offset not 16-aligned', code: 'section', bytes: patched((b) => { setU32(b, section('DATA').entry + 4, section('DATA').offset + 4); setU32(b, section('DATA').entry + 8, section('DATA').size - 4); }) },
  { rule: 'section offset inside the directory', code: 'section', bytes: patched((b) => { setU32(b, section('META').entry + 4, 32); setU32(b, section('META').entry + 8, 16); }) },
  { rule: 'two sections overlap', code: 'section', bytes: patched((b) => setU32(b, section('GRPH').entry + 4, section('META').offset)) },
  { rule: 'section CRC mismatch', code: 'checksum', bytes: fixHeaderCrc(patched((b) => { b[section('DATA').offset]! ^= 1; }, false)) },
  { rule: 'a required section twice', code: 'section', bytes: assemble([...splitSections(base), splitSections(base)[0]!]) },
  { rule: 'a required section missing', code: 'section', bytes: assemble(splitSections(base).map((s) => (s.tag === 'TENS' ? { ...s, tag: 'XTRA' } : s))) },

  // --- META (parseMeta)
  { rule: 'META shorter than its count', code: 'truncated', bytes: withSection(base, 'META', () => new Uint8Array(3)) },
  { rule: 'META count of more entries than 8-byte minimum fits', code: 'truncated', bytes: withMeta((es) => metaBody(es, 1000)) },
  { rule: 'META entry cut inside its key length', code: 'truncated', bytes: withMeta((es) => Uint8Array.from([...metaBody(es, es.length + 1), 9])) },
  { rule: 'META entry cut inside its key', code: 'truncated', bytes: withMeta((es) => Uint8Array.from([...metaBody(es, es.length + 1), 9, 0, 0x61, 0x62, 0x63])) },
  { rule: 'META payload past the section', code: 'truncated', bytes: withMeta(replaceEntry('input.mean', { n: 1000 })) },
  { rule: 'META string[] element past the section', code: 'truncated', bytes: withMeta((es) => { const labels = es.find((e) => e.type === 4)!; return metaBody([...es.filter((e) => e !== labels), labels]).slice(0, -2); }) },
  { rule: 'META key length 0', code: 'meta', bytes: withMeta((es) => [...es, { key: new Uint8Array(0), type: 3, n: 0, payload: new Uint8Array(0) }]) },
  { rule: 'META key length above 255', code: 'meta', bytes: withMeta((es) => [...es, { key: new Uint8Array(256).fill(0x61), type: 3, n: 0, payload: new Uint8Array(0) }]) },
  { rule: 'META key not UTF-8', code: 'meta', bytes: withMeta((es) => [...es, { key: Uint8Array.of(0x61, 0xc3), type: 3, n: 0, payload: new Uint8Array(0) }]) },
  { rule: 'META key repeated', code: 'meta', bytes: withMeta((es) => [...es, { ...es[0]! }]) },
  { rule: 'META string longer than 65536 bytes', code: 'meta', bytes: withMeta((es) => [...es, { key: utf8('note'), type: 3, n: 65537, payload: new Uint8Array(65537).fill(0x61) }]) },
  { rule: 'META string not UTF-8 (a surrogate)', code: 'meta', bytes: withMeta((es) => [...es, { key: utf8('note'), type: 3, n: 3, payload: Uint8Array.of(0xed, 0xa0, 0x80) }]) },
  { rule: 'META string[] element longer than 65536 bytes', code: 'meta', bytes: withMeta((es) => [...es, { key: utf8('notes'), type: 4, n: 1, payload: Uint8Array.from([...u32s(65537), ...new Uint8Array(65537)]) }]) },
  { rule: 'META string[] element not UTF-8 (an overlong)', code: 'meta', bytes: withMeta((es) => [...es, { key: utf8('notes'), type: 4, n: 1, payload: Uint8Array.from([...u32s(2), 0xc0, 0x80]) }]) },
  { rule: 'META unknown type 5', code: 'meta', bytes: withMeta((es) => [...es, { key: utf8('note'), type: 5, n: 0, payload: new Uint8Array(0) }]) },
  { rule: "META 'name' not a string", code: 'meta', bytes: withMeta(replaceEntry('name', { type: 1, n: 1, payload: u32s(7) })) },
  { rule: "META 'input.shape' not u32[3]", code: 'meta', bytes: withMeta(replaceEntry('input.shape', { n: 2, payload: u32s(3, 6) })) },
  { rule: "META 'input.shape' dimension 0", code: 'meta', bytes: withMeta(replaceEntry('input.shape', { payload: u32s(3, 0, 6) })) },
  { rule: "META 'input.shape' dimension above 65535", code: 'meta', bytes: withMeta(replaceEntry('input.shape', { payload: u32s(3, 65536, 6) })) },
  { rule: "META 'input.mean' not f32[]", code: 'meta', bytes: withMeta(replaceEntry('input.mean', { type: 1 })) },
  { rule: "META 'input.std' not f32[]", code: 'meta', bytes: withMeta(replaceEntry('input.std', { type: 1 })) },
  { rule: "META 'labels' not string[]", code: 'meta', bytes: withMeta(replaceEntry('labels', { type: 3, n: 1, payload: utf8('a') })) },
  { rule: "META 'input.resize' not a string", code: 'meta', bytes: withMeta(replaceEntry('input.resize', { type: 1, n: 1, payload: u32s(0) })) },
  { rule: "META 'input.resize' neither bilinear nor nearest", code: 'meta', bytes: withMeta(replaceEntry('input.resize', { n: 5, payload: utf8('cubic') })) },
  { rule: "META 'input.resize_shorter' not u32[1]", code: 'meta', bytes: withMeta((es) => [...es, { key: utf8('input.resize_shorter'), type: 1, n: 2, payload: u32s(8, 8) }]) },
  { rule: "META 'input.resize_shorter' above 16384", code: 'meta', bytes: withMeta((es) => [...es, { key: utf8('input.resize_shorter'), type: 1, n: 1, payload: u32s(16385) }]) },
  { rule: "META 'input.resize_shorter' smaller than the input", code: 'meta', bytes: withMeta((es) => [...es, { key: utf8('input.resize_shorter'), type: 1, n: 1, payload: u32s(5) }]) },
  { rule: "META 'input.resize_shorter' with nearest", code: 'meta', bytes: withMeta((es) => [...es, { key: utf8('input.resize_shorter'), type: 1, n: 1, payload: u32s(8) }]) },
  { rule: "META 'arch' not a string", code: 'meta', bytes: withMeta(replaceEntry('arch', { type: 4, n: 0, payload: new Uint8Array(0) })) },
  { rule: 'META bytes after its last entry', code: 'meta', bytes: withMeta((es) => Uint8Array.from([...metaBody(es), 0, 0, 0])) },
  { rule: "META required key missing ('input.std')", code: 'meta', bytes: withMeta((es) => es.filter((e) => new TextDecoder().decode(e.key) !== 'input.std')) },
  { rule: "META 'input.mean' count differs from the input channels", code: 'meta', bytes: withMeta(replaceEntry('input.mean', { n: 2, payload: f32s(0.5, 0.5) })) },
  { rule: "META 'input.std' not positive", code: 'meta', bytes: withMeta(replaceEntry('input.std', { payload: f32s(0.25, 0, 0.25) })) },
  { rule: "META 'input.mean' not finite", code: 'meta', bytes: withMeta(replaceEntry('input.mean', { payload: f32s(0.5, NaN, 0.5) })) },

  // --- TENS (parseTensors)
  { rule: 'TENS shorter than its count', code: 'truncated', bytes: withSection(base, 'TENS', () => new Uint8Array(2)) },
  { rule: 'more than 65535 tensors', code: 'range', bytes: withSection(base, 'TENS', (b) => { setU32(b, 0, 65536); return b; }) },
  { rule: 'TENS size differs from 4 + 32 x count', code: 'truncated', bytes: withSection(base, 'TENS', (b) => Uint8Array.from([...b, 0, 0, 0, 0])) },
  { rule: 'unknown dtype 7', code: 'shape', bytes: tensField(0, 0, 7) },
  { rule: 'rank 5', code: 'shape', bytes: tensField(1, 1, 5) },
  { rule: 'a zero dimension', code: 'shape', bytes: tensField(1, 2, 0) },
  { rule: 'a dimension past the rank other than 1', code: 'shape', bytes: tensField(1, 3, 2) },
  { rule: 'a tensor of 2^29 elements (above 2^29-1)', code: 'overflow', bytes: patched((b) => { const r = section('TENS').offset + 4 + 32; setU32(b, r + 4, 2); setU32(b, r + 8, 65536); setU32(b, r + 12, 8192); }) },
  { rule: 'byteLength differs from the shape', code: 'shape', bytes: tensField(1, 7, 28) },
  { rule: 'data offset not 16-aligned', code: 'range', bytes: tensField(1, 6, u32(base, section('TENS').offset + 4 + 32 + 24) + 4) },
  { rule: 'tensor data outside DATA', code: 'range', bytes: tensField(13, 6, Math.ceil(section('DATA').size / 16) * 16) },
  { rule: 'rice encoding invalid (run length 0)', code: 'index', bytes: patched((b) => setU32(b, section('DATA').offset + u32(base, section('TENS').offset + 4 + 32 * 5 + 24), 0)) },

  // --- GRPH structure (parseGraph)
  { rule: 'GRPH shorter than its 16-byte header', code: 'truncated', bytes: withSection(base, 'GRPH', (b) => b.slice(0, 12)) },
  { rule: 'buffer count 0', code: 'graph', bytes: grphWord(0, 0) },
  { rule: 'buffer count above 65535', code: 'graph', bytes: grphWord(0, 65536) },
  { rule: 'op count 0', code: 'graph', bytes: grphWord(4, 0) },
  { rule: 'op count above 65535', code: 'graph', bytes: grphWord(4, 65536) },
  { rule: 'input buffer out of range', code: 'range', bytes: grphWord(8, 7) },
  { rule: 'output buffer is the input buffer', code: 'range', bytes: grphWord(12, 0) },
  { rule: 'buffer table past the section', code: 'truncated', bytes: grphWord(0, 1000) },
  { rule: 'op count past what the section can hold', code: 'truncated', bytes: grphWord(4, 1000) },
  { rule: 'buffer dimension 0', code: 'shape', bytes: edited((m) => { m.buffers[2]!.width = 0; }) },
  { rule: 'buffer dimension above 65535', code: 'shape', bytes: edited((m) => { m.buffers[2]!.channels = 65536; }) },
  { rule: 'buffer of more than 2^30-1 elements', code: 'overflow', bytes: edited((m) => { m.buffers[2] = { channels: 65535, height: 16385, width: 1 }; }) },
  { rule: "input buffer differs from 'input.shape'", code: 'shape', bytes: edited((m) => { m.buffers[0]!.width = 7; }) },
  { rule: 'output buffer not 1x1', code: 'shape', bytes: edited((m) => { m.buffers[5]!.height = 2; }) },
  { rule: "output channels differ from the 'labels' count", code: 'shape', bytes: edited((m) => { (m.meta.find((e) => e.key === 'labels')!.value as string[]).pop(); }) },
  { rule: 'op header past the section', code: 'truncated', bytes: withSection(base, 'GRPH', (b) => { setU32(b, 4, 8); return Uint8Array.from([...b, 1, 0]); }) },
  { rule: 'unknown opcode', code: 'graph', bytes: patched((b) => setU16(b, section('GRPH').offset + opsStart, 9)) },
  { rule: 'word count differs from the opcode', code: 'graph', bytes: patched((b) => setU16(b, section('GRPH').offset + opsStart + 2, 18)) },
  { rule: 'op words past the section', code: 'truncated', bytes: withSection(base, 'GRPH', (b) => { setU32(b, 4, 8); return Uint8Array.from([...b, 6, 0, 6, 0, 1, 0, 0, 0]); }) },
  { rule: 'GRPH bytes after its last op', code: 'graph', bytes: withSection(base, 'GRPH', (b) => Uint8Array.from([...b, 0, 0, 0, 0])) },

  // --- CONV2D (ops/conv2d.ts validateConv2d), in its order
  { rule: 'conv kernel 2', code: 'graph', bytes: edited((m) => { conv(m).kernel = 2; }) },
  { rule: 'conv stride 5', code: 'graph', bytes: edited((m) => { conv(m).stride = 5; }) },
  { rule: 'conv pad above kernel/2', code: 'graph', bytes: edited((m) => { conv(m).pad = 2; }) },
  { rule: 'conv groups not dividing cin', code: 'graph', bytes: edited((m) => { conv(m).groups = 2; }) },
  { rule: 'conv cin 0', code: 'graph', bytes: edited((m) => { conv(m).cin = 0; }) },
  { rule: 'conv accumulate 2', code: 'graph', bytes: edited((m) => { conv(m).accumulate = 2; }) },
  { rule: 'conv activation code 3', code: 'graph', bytes: edited((m) => { conv(m).outAct = 3; }) },
  { rule: 'conv buffer does not exist', code: 'range', bytes: edited((m) => { conv(m).outBuffer = 7; }) },
  { rule: 'conv inIndex with the channel offset outside the buffer', code: 'range', bytes: edited((m) => { conv(m).inChannel = 3; }) },
  { rule: 'conv outIndex with the channel offset outside the buffer', code: 'range', bytes: edited((m) => { conv(m).outChannel = 8; }) },
  { rule: 'conv index tensor does not exist', code: 'range', bytes: edited((m) => { conv(m).inIndex = 14; }) },
  { rule: 'conv index tensor shape differs from [cin]', code: 'shape', bytes: edited((m) => { conv(m).outIndex = 2; }) },
  { rule: 'conv index tensor not an integer tensor', code: 'shape', bytes: edited((m) => { m.tensors[2] = { dtype: 'f32', shape: [3], data: Float32Array.of(2, 0, 1) }; }) },
  { rule: 'conv index value outside the buffer', code: 'index', bytes: edited((m) => { m.tensors[2]!.data[1] = 3; }) },
  { rule: 'conv outIndex repeats a channel with accumulate 0', code: 'index', bytes: edited((m) => { m.tensors[5] = { dtype: 'u16', shape: [8], data: Uint16Array.of(0, 1, 2, 3, 4, 5, 6, 6) }; }) },
  { rule: 'conv channel range past the buffer', code: 'range', bytes: edited((m) => { const c = conv(m); c.inIndex = null; c.inScale = null; c.inShift = null; c.inChannel = 1; }) },
  { rule: 'conv input and output channels overlap in one buffer', code: 'alias', bytes: edited((m) => {
    // An extra, otherwise valid 1x1 conv reading channels 0..3 of buffer 1 and writing its channels 2..5.
    m.tensors.push({ dtype: 'f32', shape: [4, 4, 1, 1], data: new Float32Array(16).fill(0.1) });
    m.ops.push({ kind: 'conv2d', inBuffer: 1, inChannel: 0, cin: 4, outBuffer: 1, outChannel: 2, cout: 4, kernel: 1, stride: 1, pad: 0, groups: 1,
      inAct: 0, outAct: 0, accumulate: 0, weight: 14, bias: null, inIndex: null, inScale: null, inShift: null, outIndex: null });
  }) },
  { rule: 'conv input smaller than the kernel', code: 'shape', bytes: edited((m) => { Object.assign(conv(m), { kernel: 7, pad: 0 }); m.tensors[0] = { dtype: 'f32', shape: [8, 3, 7, 7], data: new Float32Array(8 * 3 * 49) }; }) },
  { rule: 'conv output size differs from the output buffer', code: 'shape', bytes: edited((m) => { conv(m).pad = 0; }) },
  { rule: 'conv weight tensor does not exist (NONE)', code: 'range', bytes: edited((m) => { (conv(m) as { weight: number | null }).weight = null; }) },
  { rule: 'conv weight shape differs', code: 'shape', bytes: edited((m) => { conv(m).weight = 11; }) },
  { rule: 'conv weight not a float tensor', code: 'shape', bytes: edited((m) => { m.tensors[0] = { dtype: 'u8', shape: [8, 3, 3, 3], data: new Uint8Array(216) }; }) },
  { rule: 'conv weight holds NaN (f32)', code: 'shape', bytes: edited((m) => { m.tensors[0]!.data[100] = NaN; }) },
  { rule: 'conv inScale holds infinity (f16)', code: 'shape', bytes: edited((m) => { m.tensors[3]!.data[2] = 0x7c00; }) },
  { rule: 'conv bias tensor does not exist', code: 'range', bytes: edited((m) => { conv(m).bias = 99; }) },
  { rule: 'conv bias shape differs from [cout]', code: 'shape', bytes: edited((m) => { conv(m).bias = 7; }) },
  { rule: 'conv inScale without inShift', code: 'graph', bytes: edited((m) => { conv(m).inShift = null; }) },
  { rule: 'conv scratch above 2^31 bytes', code: 'overflow', bytes: bigPlane(32768, 16385, ACT.relu, true) },

  // --- SE (parseSe)
  { rule: 'SE channels past the buffer', code: 'range', bytes: edited((m) => { op(m, 'se').channel = 1; }) },
  { rule: 'SE channel count 0', code: 'range', bytes: edited((m) => { op(m, 'se').channels = 0; }) },
  { rule: 'SE hidden 0', code: 'graph', bytes: edited((m) => { op(m, 'se').hidden = 0; }) },
  { rule: 'SE hidden above 65535', code: 'graph', bytes: edited((m) => { op(m, 'se').hidden = 65536; }) },
  { rule: 'SE gate other than 0', code: 'graph', bytes: edited((m) => { op(m, 'se').gate = 1; }) },
  { rule: 'SE weight tensor does not exist', code: 'range', bytes: edited((m) => { op(m, 'se').w2 = 99; }) },
  { rule: 'SE w1 shape differs from [hidden, C]', code: 'shape', bytes: edited((m) => { op(m, 'se').w1 = 8; }) },
  { rule: 'SE w2 shape differs from [C, hidden]', code: 'shape', bytes: edited((m) => { op(m, 'se').w2 = 6; }) },
  { rule: 'SE b1 shape differs from [hidden]', code: 'shape', bytes: edited((m) => { op(m, 'se').b1 = 1; }) },

  // --- pools (parsePool)
  { rule: 'avgpool input and output channels overlap in one buffer', code: 'alias', bytes: edited((m) => { Object.assign(op(m, 'avgpool'), { outBuffer: 2, kernel: 1, stride: 1, channels: 4, outChannel: 2 }); }) },
  { rule: 'avgpool kernel 17', code: 'graph', bytes: edited((m) => { op(m, 'avgpool').kernel = 17; }) },
  { rule: 'avgpool stride 0', code: 'graph', bytes: edited((m) => { op(m, 'avgpool').stride = 0; }) },
  { rule: 'avgpool input smaller than the kernel', code: 'shape', bytes: edited((m) => { Object.assign(op(m, 'avgpool'), { kernel: 7, stride: 7 }); }) },
  { rule: 'avgpool size differs from the output buffer', code: 'shape', bytes: edited((m) => { op(m, 'avgpool').stride = 1; }) },
  { rule: 'maxpool padding 2 above kernel/2', code: 'graph', bytes: edited((m) => { op(m, 'maxpool').pad = 2; }) },
  { rule: 'maxpool kernel 17', code: 'graph', bytes: edited((m) => { op(m, 'maxpool').kernel = 17; }) },
  { rule: 'maxpool stride 0', code: 'graph', bytes: edited((m) => { op(m, 'maxpool').stride = 0; }) },
  { rule: 'maxpool channels past the buffer', code: 'range', bytes: edited((m) => { op(m, 'maxpool').channels = 8; }) },
  { rule: 'maxpool output channels past the buffer', code: 'range', bytes: edited((m) => { op(m, 'maxpool').outChannel = 1; }) },
  { rule: 'maxpool input and output channels overlap in one buffer', code: 'alias', bytes: edited((m) => { Object.assign(op(m, 'maxpool'), { outBuffer: 2, stride: 1, outChannel: 0, channels: 2, inChannel: 1 }); }) },
  { rule: 'maxpool input smaller than the kernel with its padding', code: 'shape', bytes: edited((m) => { Object.assign(op(m, 'maxpool'), { kernel: 9, stride: 9, pad: 1 }); }) },
  { rule: 'maxpool size without its padding differs from the output buffer', code: 'shape', bytes: edited((m) => { op(m, 'maxpool').pad = 0; }) },
  { rule: 'maxpool scratch (a padded plane) overflows 32 bits', code: 'overflow', bytes: (() => {
    const buffers = [{ channels: 1, height: 32768, width: 32767 }, { channels: 1, height: 32768, width: 32767 }, { channels: 1, height: 1, width: 1 }];
    const ops: Op[] = [{ kind: 'maxpool', inBuffer: 0, inChannel: 0, channels: 1, outBuffer: 1, outChannel: 0, kernel: 3, stride: 1, pad: 1 },
      { kind: 'global_avgpool', inBuffer: 1, inChannel: 0, channels: 1, outBuffer: 2, outChannel: 0, inAct: 0, inScale: null, inShift: null }];
    return writeModel(buildModel(buffers, ops, [], 2), { validate: false });
  })() },
  { rule: 'global pool channels past the buffer', code: 'range', bytes: edited((m) => { op(m, 'global_avgpool').inChannel = 1; }) },
  { rule: 'global pool activation code 3', code: 'graph', bytes: edited((m) => { op(m, 'global_avgpool').inAct = 3; }) },
  { rule: 'global pool output not 1x1', code: 'shape', bytes: edited((m) => { Object.assign(op(m, 'global_avgpool'), { outBuffer: 2 }); }) },
  { rule: 'global pool inShift without inScale', code: 'graph', bytes: edited((m) => { op(m, 'global_avgpool').inScale = null; }) },
  { rule: 'global pool inScale shape differs', code: 'shape', bytes: edited((m) => { op(m, 'global_avgpool').inScale = 3; }) },

  // --- FC (parseFc) and CHANNEL_SHUFFLE (parseShuffle)
  { rule: 'fc channel count 0', code: 'range', bytes: edited((m) => { op(m, 'fc').cout = 0; }) },
  { rule: 'fc activation code 3', code: 'graph', bytes: edited((m) => { op(m, 'fc').outAct = 3; }) },
  { rule: 'fc input not 1x1', code: 'shape', bytes: edited((m) => { op(m, 'fc').inBuffer = 3; }) },
  { rule: 'fc input and output channels overlap in one buffer', code: 'alias', bytes: edited((m) => { op(m, 'fc').outBuffer = 4; }) },
  { rule: 'fc weight shape differs from [cout, cin]', code: 'shape', bytes: edited((m) => { op(m, 'fc').weight = 8; }) },
  { rule: 'shuffle channels past the buffer', code: 'range', bytes: edited((m) => { op(m, 'channel_shuffle').outChannel = 1; }) },
  { rule: 'shuffle groups not dividing the channels', code: 'graph', bytes: edited((m) => { op(m, 'channel_shuffle').groups = 3; }) },
  { rule: 'shuffle changes the spatial size', code: 'shape', bytes: edited((m) => { m.buffers[2] = { channels: 8, height: 6, width: 5 }; }) },
  { rule: 'shuffle input and output channels overlap in one buffer', code: 'alias', bytes: edited((m) => { Object.assign(op(m, 'channel_shuffle'), { outBuffer: 1, channels: 4, outChannel: 2 }); }) },

  // --- the planner (assembly/runtime/planner.ts): the TypeScript reader has no arena, so it accepts these files
  { rule: 'a buffer alone above the arena limit', code: 'arena', bytes: base, arenaLimitBytes: 256, tsAccepts: true },
  { rule: 'an arena wasm memory cannot hold, even with a 4 GiB limit asked', code: 'arena', bytes: bigPlane(32768, 24576, 0, false), arenaLimitBytes: 0xffffffff, tsAccepts: true },
];

t.before(async () => {
  for (const isa of ISAS) if (!(await isaSupported(isa))) throw new Error(`this Node cannot compile the ${isa} build`);
});

async function wasmVerdict(bytes: Uint8Array, isa: Isa, arenaLimitBytes?: number): Promise<string> {
  try {
    const m = await loadModel(bytes, { isa, arenaLimitBytes });
    m.dispose();
    return 'accept';
  } catch (err) {
    return err instanceof Cdnv2Error ? err.code : `crash: ${(err as Error).message}`;
  }
}

function tsVerdict(bytes: Uint8Array): string {
  try {
    readModel(bytes);
    return 'accept';
  } catch (err) {
    return err instanceof ModelFormatError ? err.code : `crash: ${(err as Error).message}`;
  }
}

t.test('the base file loads in both readers and every build', async (t) => {
  t.equal(tsVerdict(base), 'accept');
  for (const isa of ISAS) t.equal(await wasmVerdict(base, isa), 'accept', isa);
  t.equal(crc32(base), crc32(writeModel(baseModel())), 'the base is deterministic');
});

for (const r of rules) {
  t.test(`${r.code}: ${r.rule}`, async (t) => {
    if (r.arenaLimitBytes === undefined) t.not(Buffer.compare(Buffer.from(r.bytes), Buffer.from(base)), 0, 'the file differs from the base');
    for (const isa of ISAS) t.equal(await wasmVerdict(r.bytes, isa, r.arenaLimitBytes), r.code, `wasm loader, ${isa} build`);
    t.equal(tsVerdict(r.bytes), r.tsAccepts ? 'accept' : r.code, 'TypeScript reader');
  });
}

t.test('every code a model file can earn is reached by some rule', async (t) => {
  const reached = new Set(rules.map((r) => r.code));
  for (const code of ['bad-magic', 'version', 'size', 'checksum', 'truncated', 'section', 'meta', 'graph', 'range', 'shape', 'index', 'overflow', 'arena', 'alias', 'header']) {
    t.ok(reached.has(code), `'${code}' is tested`);
  }
});
