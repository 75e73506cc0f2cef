// .cnv2 reader/writer: exact round trips (f32, f16), and every malformed case of docs/format.md's Validation
// section rejected with its specific ModelFormatError code; hostile bytes never raise anything else.
import t, { type Test } from 'tap';
import { isDeepStrictEqual } from 'node:util';

import { condense } from '../../../converter/condense.js';
import { crc32 } from '../../../base/cnv2/crc32.js';
import { floatToHalf, halfToFloat } from '../../../base/cnv2/f16.js';
import { ModelFormatError, readModel, writeModel, type Conv2dOp, type Model, type Op } from '../../../base/cnv2/format.js';
import { randomNetworkParams, Rng } from '../../../converter/random.js';
import { CONFIGS } from '../../../base/arch/configs.js';
import { TINY_A, TINY_B } from '../../../testkit/tiny-configs.js';
import { assemble, directory, fixAllCrcs, fixHeaderCrc, setU16, setU32, splitSections, u32, withSection } from '../../helpers/cnv2-bytes.js';
import { riceDecode, riceEncode, riceParams } from '../../../base/cnv2/rice.js';
import { malformedRice, refDecode, refEncode } from '../../helpers/rice-cases.js';

const tinyF32 = condense(randomNetworkParams(TINY_A, 11), { weights: 'f32' });
const tinyF16 = condense(randomNetworkParams(TINY_A, 12), { weights: 'f16' });
const good = writeModel(tinyF32);

function expectCode(t: Test, bytes: Uint8Array, code: string, what: string): void {
  try {
    readModel(bytes);
    t.fail(`${what}: accepted, expected '${code}'`);
  } catch (err) {
    if (!(err instanceof ModelFormatError)) {
      t.fail(`${what}: threw ${(err as Error).name}: ${(err as Error).message}`);
      return;
    }
    t.equal(err.code, code, `${what}: ${err.message}`);
  }
}

/** A deep copy of the model, edited, written without validation. */
function mutated(edit: (m: Model) => void, base: Model = tinyF32): Uint8Array {
  const m = readModel(writeModel(base));
  edit(m);
  return writeModel(m, { validate: false });
}

function findOp<K extends Op['kind']>(m: Model, kind: K, pred: (op: Extract<Op, { kind: K }>) => boolean = () => true): Extract<Op, { kind: K }> {
  const op = m.ops.find((o) => o.kind === kind && pred(o as Extract<Op, { kind: K }>));
  if (!op) throw new Error(`no ${kind} op`);
  return op as Extract<Op, { kind: K }>;
}
const isLgc = (o: Conv2dOp): boolean => o.outIndex !== null && o.accumulate === 0;
const isSfr = (o: Conv2dOp): boolean => o.accumulate === 1;

t.test('crc32 and f16 helpers', async (t) => {
  t.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926, 'CRC32 check value');
  t.equal(crc32(new Uint8Array(0)), 0, 'empty');
  let identity = 0;
  for (let h = 0; h < 65536; h++) {
    const f = halfToFloat(h);
    if (Number.isNaN(f)) { if ((h & 0x7c00) !== 0x7c00 || (h & 0x3ff) === 0) t.fail(`NaN from pattern ${h}`); continue; }
    if (floatToHalf(f) === h) identity++;
  }
  t.equal(identity, 65536 - 2 * 1023, 'half -> float -> half is the identity for every non-NaN pattern');
  t.ok(Number.isNaN(halfToFloat(floatToHalf(NaN))), 'NaN stays NaN');
  t.equal(floatToHalf(65520), 0x7c00, '65520 rounds to Inf');
  t.equal(floatToHalf(65519), 0x7bff, '65519 rounds to max');
  t.equal(floatToHalf(-0), 0x8000, 'negative zero');
  t.equal(floatToHalf(2 ** -25), 0, 'half of the smallest subnormal ties to even (0)');
  t.equal(floatToHalf(3 * 2 ** -25), 2, '1.5 subnormal ulps ties to even (2)');
  // Nearest with ties to even, against a brute-force search over neighbouring halves.
  const rng = new Rng(5);
  for (let i = 0; i < 20000; i++) {
    const x = Math.fround((rng.next() - 0.5) * 2 ** Math.floor(rng.uniform(-26, 17)));
    const h = floatToHalf(x);
    const err = Math.abs(halfToFloat(h) - x);
    for (const n of [h - 1, h + 1]) {
      if ((n & 0x7fff) >= 0x7c00 || n < 0 || (n ^ h) & 0x8000) continue;
      const e2 = Math.abs(halfToFloat(n) - x);
      if (e2 < err || (e2 === err && (h & 1) === 1)) { t.fail(`floatToHalf(${x}) = ${h}, neighbour ${n} is closer or even`); return; }
    }
  }
  t.pass('20000 random floats round to the nearest half, ties to even');
});

t.test('round trips are exact', async (t) => {
  for (const [label, m] of [['f32', tinyF32], ['f16', tinyF16]] as const) {
    const bytes = writeModel(m);
    const back = readModel(bytes);
    t.ok(isDeepStrictEqual(back, m), `${label}: read(write(m)) deep-equals m`);
    t.same(Buffer.compare(Buffer.from(writeModel(back)), Buffer.from(bytes)), 0, `${label}: write(read(bytes)) === bytes`);
    t.same(Buffer.compare(Buffer.from(writeModel(m)), Buffer.from(bytes)), 0, `${label}: writing twice gives the same bytes`);
  }
  const f16 = readModel(writeModel(tinyF16));
  t.ok(f16.tensors.some((x) => x.dtype === 'f16') && !f16.tensors.some((x) => x.dtype === 'f32'), 'f16 model stores halves');
  t.ok(f16.tensors.some((x) => x.dtype === 'rice') && f16.tensors.every((x) => x.dtype !== 'u8' && x.dtype !== 'u16'), 'index tensors are rice-coded');
  const inf16 = readModel(writeModel(tinyF16));
  (inf16.tensors[0]!.data as Uint16Array)[0] = 0x7c00;
  expectCode(t, writeModel(inf16, { validate: false }), 'shape', 'f16 infinity in a weight tensor');
  const fm = condense(randomNetworkParams(CONFIGS['cdnv2-fmnist']!, 3), { weights: 'f16' });
  const fb = writeModel(fm);
  t.same(Buffer.compare(Buffer.from(writeModel(readModel(fb))), Buffer.from(fb)), 0, 'cdnv2-fmnist f16 byte round trip');
  // Odd floats survive bit-exactly (f32 tensors are copied as bytes).
  const odd = readModel(writeModel(tinyF32));
  const w = odd.tensors[0]!.data as Float32Array;
  w[1] = -0;
  new Uint32Array(w.buffer, w.byteOffset, w.length)[2] = 0x00000001; // smallest subnormal
  const ob = writeModel(odd);
  t.same(Buffer.compare(Buffer.from(writeModel(readModel(ob))), Buffer.from(ob)), 0, '-0 and subnormals preserved');
});

t.test('layout is aligned with zero padding', async (t) => {
  const dir = directory(good);
  t.same(dir.map((d) => d.tag), ['META', 'GRPH', 'TENS', 'DATA'], 'section order');
  for (const d of dir) t.equal(d.offset % 16, 0, `${d.tag} 16-aligned`);
  const tens = splitSections(good).find((s) => s.tag === 'TENS')!.body;
  const data = dir.find((d) => d.tag === 'DATA')!;
  // Aligned tensors first, in table order and 16-aligned; then the rice index tensors, packed in table order.
  const entries = Array.from({ length: u32(tens, 0) }, (_, i) => ({
    i, rice: u32(tens, 4 + i * 32) === 6, off: u32(tens, 4 + i * 32 + 24), len: u32(tens, 4 + i * 32 + 28),
  }));
  t.ok(entries.some((e) => e.rice) && entries.some((e) => !e.rice), 'both kinds present');
  let end = 0;
  let bad = 0;
  for (const e of [...entries.filter((x) => !x.rice), ...entries.filter((x) => x.rice)]) {
    if (!e.rice && e.off % 16 !== 0) bad++, t.fail(`tensor ${e.i} offset ${e.off}`);
    if (e.rice ? e.off !== end : e.off < end || e.off - end >= 16) bad++, t.fail(`tensor ${e.i} not where the writer puts it`);
    for (let p = end; p < e.off; p++) if (good[data.offset + p] !== 0) bad++, t.fail(`non-zero padding before tensor ${e.i}`);
    if (bad > 5) break;
    end = e.off + e.len;
  }
  t.equal(end, data.size, 'DATA ends with the last tensor');
  for (let i = 0; i < dir.length - 1; i++) {
    for (let p = dir[i]!.offset + dir[i]!.size; p < dir[i + 1]!.offset; p++) if (good[p] !== 0) t.fail('non-zero section padding');
  }
});

t.test('header and directory errors', async (t) => {
  const b = good.slice();
  b[0] = 0x58;
  expectCode(t, b, 'bad-magic', 'bad magic');
  const v2 = good.slice(); setU16(v2, 4, 2); fixHeaderCrc(v2);
  expectCode(t, v2, 'version', 'major version 2');
  const minor = good.slice(); setU16(minor, 6, 7); fixHeaderCrc(minor);
  t.doesNotThrow(() => readModel(minor), 'any minor version of major 1 is accepted');
  const fs = good.slice(); setU32(fs, 8, good.length + 16); fixHeaderCrc(fs);
  expectCode(t, fs, 'truncated', 'size field larger than the file');
  const longer = new Uint8Array(good.length + 1); longer.set(good);
  expectCode(t, longer, 'size', 'one extra byte');
  for (const n of [0, 3, 17, 0xffffffff]) {
    const c = good.slice(); setU32(c, 12, n); fixHeaderCrc(c);
    expectCode(t, c, 'size', `section count ${n}`);
  }
  const hc = good.slice(); hc[20] ^= 1;
  expectCode(t, hc, 'checksum', 'header byte flipped');
  const dc = good.slice(); dc[32 + 8] ^= 1;
  expectCode(t, dc, 'checksum', 'directory byte flipped');
  for (const d of directory(good)) {
    const sc = good.slice();
    sc[d.offset + Math.floor(d.size / 2)] ^= 0x10;
    expectCode(t, sc, 'checksum', `${d.tag} byte flipped`);
  }
  const fl = good.slice(); setU32(fl, 16, 1); fixHeaderCrc(fl);
  expectCode(t, fl, 'header', 'non-zero flags');
});

t.test('truncation', async (t) => {
  for (const n of [0, 4, 31]) expectCode(t, good.slice(0, n), 'truncated', `file of ${n} bytes`);
  // Cut inside the directory, with the size field matching so the size check passes.
  const cut = good.slice(0, 48); setU32(cut, 8, 48);
  expectCode(t, cut, 'truncated', 'file ends inside the directory');
  for (const d of directory(good)) {
    for (const at of [d.offset, d.offset + d.size - 1]) {
      expectCode(t, good.slice(0, at), 'truncated', `cut at ${at} (${d.tag})`);
      const fixed = good.slice(0, at); setU32(fixed, 8, at); fixHeaderCrc(fixed);
      expectCode(t, fixed, 'truncated', `cut at ${at} (${d.tag}), size field patched`);
    }
  }
  // Sections whose contents end early, with valid CRCs.
  const meta = splitSections(good).find((s) => s.tag === 'META')!.body;
  for (const n of [0, 2, 5, 9, meta.length - 1]) {
    expectCode(t, withSection(good, 'META', (b) => b.slice(0, n)), 'truncated', `META cut to ${n} bytes`);
  }
  const grph = splitSections(good).find((s) => s.tag === 'GRPH')!.body;
  for (const n of [0, 12, 16, 20, 16 + 12 * 3, grph.length - 4, grph.length - 1]) {
    expectCode(t, withSection(good, 'GRPH', (b) => b.slice(0, n)), 'truncated', `GRPH cut to ${n} bytes`);
  }
  for (const n of [0, 3, 4 + 32 * 2 + 5]) {
    expectCode(t, withSection(good, 'TENS', (b) => b.slice(0, n)), 'truncated', `TENS cut to ${n} bytes`);
  }
  expectCode(t, withSection(good, 'DATA', (b) => b.slice(0, b.length - 1)), 'range', 'DATA one byte short of the last tensor');
  for (const tag of ['META', 'GRPH', 'TENS']) {
    expectCode(t, withSection(good, tag, (b) => { const x = new Uint8Array(b.length + 4); x.set(b); return x; }), { META: 'meta', GRPH: 'graph', TENS: 'truncated' }[tag]!, `${tag} with trailing bytes`);
  }
});

t.test('section directory errors', async (t) => {
  const dir = directory(good);
  const mis = good.slice(); setU32(mis, dir[1]!.entry + 4, dir[1]!.offset + 4); fixAllCrcs(mis);
  expectCode(t, mis, 'section', 'misaligned GRPH');
  const ov = good.slice(); setU32(ov, dir[1]!.entry + 4, dir[0]!.offset); fixAllCrcs(ov);
  expectCode(t, ov, 'section', 'GRPH overlaps META');
  const hdr = good.slice(); setU32(hdr, dir[0]!.entry + 4, 0); fixAllCrcs(hdr);
  expectCode(t, hdr, 'section', 'META over the header');
  const out = good.slice(); setU32(out, dir[3]!.entry + 8, good.length); fixHeaderCrc(out);
  expectCode(t, out, 'truncated', 'DATA past the end of the file');
  const huge = good.slice(); setU32(huge, dir[3]!.entry + 4, 0xfffffff0); fixHeaderCrc(huge);
  expectCode(t, huge, 'truncated', 'offset near 2^32');
  const parts = splitSections(good);
  expectCode(t, assemble(parts.filter((s) => s.tag !== 'TENS')), 'size', 'three sections');
  expectCode(t, assemble([...parts.filter((s) => s.tag !== 'TENS'), { tag: 'XTRA', body: new Uint8Array(8) }]), 'section', 'TENS missing');
  expectCode(t, assemble([...parts, parts[1]!]), 'section', 'GRPH twice');
  const extra = assemble([parts[0]!, { tag: 'NOTE', body: new TextEncoder().encode('later minor') }, ...parts.slice(1)]);
  t.doesNotThrow(() => readModel(extra), 'unknown section is skipped');
  const badExtra = extra.slice(); badExtra[directory(extra)[1]!.offset] ^= 1;
  expectCode(t, badExtra, 'checksum', 'unknown section CRC is still checked');
});

/** META body built from entries given as raw parts. */
function metaBody(entries: { key: string | Uint8Array; type: number; n: number; payload: Uint8Array }[]): Uint8Array {
  const parts: number[] = [];
  const push32 = (v: number): void => { parts.push(v & 255, (v >>> 8) & 255, (v >>> 16) & 255, v >>> 24); };
  push32(entries.length);
  for (const e of entries) {
    const key = typeof e.key === 'string' ? new TextEncoder().encode(e.key) : e.key;
    parts.push(key.length & 255, key.length >>> 8, ...key, e.type);
    push32(e.n);
    parts.push(...e.payload);
  }
  return Uint8Array.from(parts);
}

t.test('META errors', async (t) => {
  const base = readModel(good).meta;
  const encode = (skip: string, extra: Parameters<typeof metaBody>[0] = [], replace: Record<string, Parameters<typeof metaBody>[0][number]> = {}): Uint8Array => {
    const list: Parameters<typeof metaBody>[0] = [];
    for (const e of base) {
      if (e.key === skip) continue;
      if (replace[e.key]) { list.push(replace[e.key]!); continue; }
      if (e.type === 'string') {
        const b = new TextEncoder().encode(e.value);
        list.push({ key: e.key, type: 3, n: b.length, payload: b });
      } else if (e.type === 'string[]') {
        const bytes: number[] = [];
        for (const s of e.value) { const b = new TextEncoder().encode(s); bytes.push(b.length, 0, 0, 0, ...b); }
        list.push({ key: e.key, type: 4, n: e.value.length, payload: Uint8Array.from(bytes) });
      } else {
        list.push({ key: e.key, type: e.type === 'u32[]' ? 1 : 2, n: e.value.length, payload: new Uint8Array(e.value.buffer.slice(0)) });
      }
    }
    return metaBody([...list, ...extra]);
  };
  t.doesNotThrow(() => readModel(withSection(good, 'META', () => encode(''))), 'test encoder reproduces a valid META');
  for (const key of ['name', 'input.shape', 'input.mean', 'input.std']) {
    expectCode(t, withSection(good, 'META', () => encode(key)), 'meta', `missing ${key}`);
  }
  const unnamed = readModel(withSection(good, 'META', () => encode('labels')));
  t.notOk(unnamed.meta.some((e) => e.key === 'labels'), 'labels are optional (version 1.1): classes are then unnamed');
  t.doesNotThrow(() => readModel(withSection(good, 'META', () => encode('arch'))), 'optional arch may be absent');
  const f = (vals: number[]): Uint8Array => new Uint8Array(Float32Array.from(vals).buffer);
  expectCode(t, withSection(good, 'META', () => encode('', [], { 'input.mean': { key: 'input.mean', type: 2, n: 2, payload: f([0, 0]) } })), 'meta', 'input.mean with 2 of 3 channels');
  expectCode(t, withSection(good, 'META', () => encode('', [], { 'input.shape': { key: 'input.shape', type: 1, n: 3, payload: new Uint8Array(Uint32Array.from([3, 11, 12]).buffer) } })), 'shape', 'input.shape differs from the input buffer');
  expectCode(t, withSection(good, 'META', () => encode('', [], { labels: { key: 'labels', type: 4, n: 1, payload: Uint8Array.from([1, 0, 0, 0, 97]) } })), 'shape', 'one label for five classes');
  expectCode(t, withSection(good, 'META', () => encode('', [], { name: { key: 'name', type: 1, n: 1, payload: new Uint8Array(4) } })), 'meta', 'name of the wrong type');
  expectCode(t, withSection(good, 'META', () => encode('', [{ key: 'x', type: 9, n: 0, payload: new Uint8Array(0) }])), 'meta', 'unknown type 9');
  expectCode(t, withSection(good, 'META', () => encode('', [{ key: 'name', type: 3, n: 1, payload: Uint8Array.from([65]) }])), 'meta', 'duplicate key');
  expectCode(t, withSection(good, 'META', () => encode('', [{ key: Uint8Array.from([0xff, 0xfe]), type: 3, n: 0, payload: new Uint8Array(0) }])), 'meta', 'key not UTF-8');
  expectCode(t, withSection(good, 'META', () => encode('', [{ key: 'z', type: 3, n: 2, payload: Uint8Array.from([0xc3, 0x28]) }])), 'meta', 'string not UTF-8');
  expectCode(t, withSection(good, 'META', () => encode('', [{ key: new Uint8Array(0), type: 3, n: 0, payload: new Uint8Array(0) }])), 'meta', 'empty key');
  expectCode(t, withSection(good, 'META', () => encode('', [{ key: 'big', type: 3, n: 70000, payload: new Uint8Array(70000) }])), 'meta', 'string over 65536 bytes');
  expectCode(t, withSection(good, 'META', () => encode('', [{ key: 'v', type: 1, n: 0x40000000, payload: new Uint8Array(8) }])), 'truncated', 'u32[] count past the section');
  expectCode(t, withSection(good, 'META', () => encode('', [{ key: 'v', type: 4, n: 3, payload: Uint8Array.from([1, 0, 0, 0, 65, 9, 0, 0, 0]) }])), 'truncated', 'string[] element past the section');
  expectCode(t, withSection(good, 'META', (b) => { setU32(b, 0, 0xffffffff); return b; }), 'truncated', 'entry count 2^32-1');
  expectCode(t, withSection(good, 'META', () => encode('', [], { 'input.std': { key: 'input.std', type: 2, n: 3, payload: f([0.2, 0, 0.3]) } })), 'meta', 'zero std');
  expectCode(t, withSection(good, 'META', () => encode('', [], { 'input.mean': { key: 'input.mean', type: 2, n: 3, payload: f([0.2, NaN, 0.3]) } })), 'meta', 'NaN mean');
  expectCode(t, withSection(good, 'META', () => encode('', [], { 'input.resize': { key: 'input.resize', type: 3, n: 5, payload: new TextEncoder().encode('cubic') } })), 'meta', 'unknown resize');
  const bom = withSection(good, 'META', () => encode('', [], { name: { key: 'name', type: 3, n: 4, payload: Uint8Array.from([0xef, 0xbb, 0xbf, 0x41]) } }));
  t.same(Buffer.compare(Buffer.from(writeModel(readModel(bom))), Buffer.from(bom)), 0, 'a leading BOM in a string round-trips');
});

t.test('GRPH structure errors', async (t) => {
  const g = splitSections(good).find((s) => s.tag === 'GRPH')!.body;
  const B = u32(g, 0);
  const firstOp = 16 + 12 * B;
  expectCode(t, withSection(good, 'GRPH', (b) => { setU16(b, firstOp, 99); return b; }), 'graph', 'unknown opcode 99');
  expectCode(t, withSection(good, 'GRPH', (b) => { setU16(b, firstOp, 0); return b; }), 'graph', 'opcode 0');
  expectCode(t, withSection(good, 'GRPH', (b) => { setU16(b, firstOp + 2, 18); return b; }), 'graph', 'CONV2D with 18 words');
  expectCode(t, withSection(good, 'GRPH', (b) => { setU32(b, 0, 0); return b; }), 'graph', 'zero buffers');
  expectCode(t, withSection(good, 'GRPH', (b) => { setU32(b, 4, 0); return b; }), 'graph', 'zero ops');
  expectCode(t, withSection(good, 'GRPH', (b) => { setU32(b, 4, u32(b, 4) + 1); return b; }), 'truncated', 'one op more than present');
  expectCode(t, withSection(good, 'GRPH', (b) => { setU32(b, 0, 65535); return b; }), 'truncated', 'buffer count past the section');
  expectCode(t, withSection(good, 'GRPH', (b) => { setU32(b, 8, B); return b; }), 'range', 'input buffer out of range');
  expectCode(t, withSection(good, 'GRPH', (b) => { setU32(b, 12, u32(b, 8)); return b; }), 'range', 'output buffer is the input buffer');
  expectCode(t, mutated((m) => { m.buffers[1]!.width = 0; }), 'shape', 'zero-width buffer');
  expectCode(t, mutated((m) => { m.buffers[1] = { channels: 65535, height: 65535, width: 1 }; }), 'overflow', 'buffer bytes overflow 32 bits');
  expectCode(t, mutated((m) => { m.buffers[m.outputBuffer]!.height = 2; }), 'shape', 'output buffer not 1x1');
});

t.test('op errors', async (t) => {
  const lgc = (m: Model): Conv2dOp => findOp(m, 'conv2d', isLgc);
  const sfr = (m: Model): Conv2dOp => findOp(m, 'conv2d', isSfr);
  const stem = (m: Model): Conv2dOp => m.ops[0] as Conv2dOp;
  const cases: [string, string, (m: Model) => void][] = [
    ['range', 'conv inBuffer out of range', (m) => { stem(m).inBuffer = m.buffers.length; }],
    ['range', 'conv outBuffer out of range', (m) => { stem(m).outBuffer = 99; }],
    ['range', 'weight tensor out of range', (m) => { stem(m).weight = m.tensors.length; }],
    ['range', 'weight NONE', (m) => { (stem(m) as { weight: number | null }).weight = null; }],
    ['range', 'bias tensor out of range', (m) => { lgc(m).bias = 70000; }],
    ['index', 'inIndex value outside the input buffer', (m) => { const x = m.tensors[lgc(m).inIndex!]!; x.data[0] = m.buffers[lgc(m).inBuffer]!.channels; }],
    ['index', 'outIndex value outside the output buffer', (m) => { const x = m.tensors[lgc(m).outIndex!]!; x.data[1] = 200; }],
    ['index', 'index offset pushes past the buffer', (m) => { lgc(m).inChannel = m.buffers[lgc(m).inBuffer]!.channels - 1; }],
    ['range', 'stem output channels past the buffer', (m) => { stem(m).outChannel = m.buffers[stem(m).outBuffer]!.channels - 4; }],
    ['range', 'avgpool channels past the buffer', (m) => { findOp(m, 'avgpool').channels += 100; }],
    ['range', 'SE channels past the buffer', (m) => { findOp(m, 'se').channel = m.buffers[findOp(m, 'se').buffer]!.channels; }],
    ['range', 'fc cin past the input', (m) => { const f = findOp(m, 'fc'); f.inChannel = 1; }],
    ['shape', 'stem stride does not chain', (m) => { stem(m).stride = 1; }],
    ['shape', 'stem pad does not chain', (m) => { stem(m).pad = 0; }],
    ['shape', 'avgpool stride does not chain', (m) => { findOp(m, 'avgpool').stride = 1; }],
    ['shape', 'avgpool kernel larger than the input', (m) => { const a = findOp(m, 'avgpool'); a.kernel = 16; a.stride = 16; }],
    ['shape', 'weight shape mismatch', (m) => { m.tensors[stem(m).weight]!.shape = [4, 6, 3, 3]; }],
    ['shape', 'weight rank mismatch', (m) => { const w = m.tensors[findOp(m, 'fc').weight]!; w.shape = [...w.shape, 1]; }],
    ['shape', 'inScale length mismatch', (m) => { const x = m.tensors[lgc(m).inScale!]!; x.shape = [x.shape[0]! - 1]; x.data = x.data.slice(1); }],
    ['shape', 'gap into a 3x3 buffer', (m) => { const g = findOp(m, 'global_avgpool'); Object.assign(g, { outBuffer: 1, outChannel: 0, channels: Math.min(g.channels, m.buffers[1]!.channels) }); }],
    ['shape', 'fc from a spatial buffer', (m) => { const f = findOp(m, 'fc'); Object.assign(f, { inBuffer: 1, inChannel: 0, cin: Math.min(f.cin, m.buffers[1]!.channels) }); }],
    ['shape', 'weight stored as u8', (m) => { const w = m.tensors[stem(m).weight]!; w.dtype = 'u8'; w.data = new Uint8Array(w.data.length); }],
    ['shape', 'index stored as f32', (m) => { const x = m.tensors[lgc(m).inIndex!]!; x.dtype = 'f32'; x.data = Float32Array.from(x.data); }],
    ['graph', 'kernel 2', (m) => { stem(m).kernel = 2; }],
    ['graph', 'stride 5', (m) => { stem(m).stride = 5; }],
    ['graph', 'pad 2 with kernel 3', (m) => { stem(m).pad = 2; }],
    ['graph', 'groups not dividing cin', (m) => { stem(m).groups = 2; }],
    ['graph', 'activation code 3', (m) => { lgc(m).outAct = 3; }],
    ['graph', 'accumulate 2', (m) => { sfr(m).accumulate = 2; }],
    ['graph', 'inScale without inShift', (m) => { lgc(m).inShift = null; }],
    ['graph', 'SE gate 1', (m) => { findOp(m, 'se').gate = 1; }],
    ['graph', 'avgpool kernel 0', (m) => { findOp(m, 'avgpool').kernel = 0; }],
    ['range', 'fc with cin 0', (m) => { findOp(m, 'fc').cin = 0; }],
    ['index', 'LGC outIndex repeats with accumulate 0', (m) => { const x = m.tensors[lgc(m).outIndex!]!; x.data[1] = x.data[0]!; }],
    ['alias', 'SFR writes into its own input channels', (m) => { const s = sfr(m); m.tensors[s.outIndex!]!.data[0] = s.inChannel; }],
    ['alias', 'avgpool in place', (m) => { const a = findOp(m, 'avgpool'); Object.assign(a, { outBuffer: a.inBuffer, kernel: 1, stride: 1, channels: 4, outChannel: 2 }); }],
    ['shape', 'NaN in a weight tensor', (m) => { (m.tensors[stem(m).weight]!.data as Float32Array)[3] = NaN; }],
    ['shape', 'infinity in an f32 scale', (m) => { (m.tensors[lgc(m).inScale!]!.data as Float32Array)[0] = -Infinity; }],
    ['overflow', 'tensor dims overflow 32 bits', (m) => { const w = m.tensors[stem(m).weight]!; w.shape = [65536, 65536, 2, 1]; }],
  ];
  for (const [code, what, edit] of cases) {
    let bytes: Uint8Array;
    try {
      bytes = mutated(edit);
    } catch (err) {
      // The writer itself refuses some impossible models (e.g. shape/data disagreement): patch the table instead.
      bytes = patchTensorTable(edit, err as Error);
    }
    expectCode(t, bytes, code, what);
  }
  // Accumulate = 1 allows repeated targets (SFR outputs selected by several groups sum into one channel).
  const rep = mutated((m) => { const s = sfr(m); const x = m.tensors[s.outIndex!]!; x.data[1] = x.data[0]!; });
  t.doesNotThrow(() => readModel(rep), 'accumulate=1 outIndex may repeat');
  // An index tensor may be shared by several ops.
  t.ok(readModel(good).ops.filter((o) => o.kind === 'conv2d' && isSfr(o)).length > 1, 'several SFR ops');
});

/** Applies a table-only edit (shape change) to the serialized TENS entry of the edited tensor. */
function patchTensorTable(edit: (m: Model) => void, cause: Error): Uint8Array {
  const m = readModel(good);
  const shapes = m.tensors.map((x) => [...x.shape]);
  const dtypes = m.tensors.map((x) => x.dtype);
  edit(m);
  const i = m.tensors.findIndex((x, k) => x.shape.join() !== shapes[k]!.join() || x.dtype !== dtypes[k]);
  if (i < 0) throw cause;
  const x = m.tensors[i]!;
  return withSection(good, 'TENS', (b) => {
    setU32(b, 4 + 32 * i + 4, x.shape.length);
    for (let d = 0; d < 4; d++) setU32(b, 4 + 32 * i + 8 + 4 * d, x.shape[d] ?? 1);
    return b;
  });
}

t.test('TENS errors', async (t) => {
  const entry = (i: number, field: number): number => 4 + 32 * i + 4 * field;
  const edit = (i: number, field: number, v: number): Uint8Array => withSection(good, 'TENS', (b) => { setU32(b, entry(i, field), v); return b; });
  expectCode(t, edit(0, 0, 9), 'shape', 'unknown dtype 9');
  expectCode(t, edit(0, 0, 0), 'shape', 'dtype 0');
  expectCode(t, edit(0, 1, 0), 'shape', 'rank 0');
  expectCode(t, edit(0, 1, 5), 'shape', 'rank 5');
  expectCode(t, edit(0, 2, 0), 'shape', 'zero dimension');
  expectCode(t, edit(2, 3, 2), 'shape', 'dimension past the rank is not 1 (tensor 2 is a rank-1 bias)');
  expectCode(t, edit(0, 6, 8), 'range', 'offset not a multiple of 16');
  expectCode(t, edit(0, 7, 4), 'shape', 'byteLength disagrees with the shape');
  expectCode(t, edit(2, 6, 0xfffffff0), 'range', 'data offset past DATA');
  expectCode(t, edit(0, 2, 0x40000000), 'overflow', 'byteLength overflows 32 bits');
  expectCode(t, withSection(good, 'TENS', (b) => { setU32(b, 0, 70000); return b; }), 'range', 'more than 65535 tensors');
});

t.test('rice index encoding: codec against the reference, parameters, and malformed files', async (t) => {
  const rng = new Rng(7);
  const lists: number[][] = [[0], [5], [0xffffff], [3, 1, 2], [0, 1, 2, 3], [7, 6, 5, 4, 3, 2, 1, 0], [2, 9, 0, 1, 4, 8]];
  for (let n = 0; n < 60; n++) {
    // Sorted groups like the condenser's (runs of `len` ascending values), sometimes unsorted, sometimes huge.
    const runs = 1 + Math.floor(rng.next() * 6), len = 1 + Math.floor(rng.next() * 20);
    const limit = [16, 300, 70000, 0x1000000][Math.floor(rng.next() * 4)]!;
    const list: number[] = [];
    for (let r = 0; r < runs; r++) {
      const set = new Set<number>();
      while (set.size < Math.min(len, limit)) set.add(Math.floor(rng.next() * limit));
      list.push(...[...set].sort((a, b) => a - b));
    }
    if (n % 10 === 0) list.reverse();
    lists.push(list);
  }
  let bad = 0;
  for (const list of lists) {
    const p = riceParams(list);
    // Brute force: the longest run length that gives ascending runs, the k with the fewest bits.
    let wantRun = 0;
    for (let L = list.length; L >= 1 && !wantRun; L--) {
      if (list.length % L === 0 && list.every((v, i) => i % L === 0 || v > list[i - 1]!)) wantRun = L;
    }
    const gaps = list.map((v, i) => (i % wantRun === 0 ? v : v - list[i - 1]! - 1));
    const bitsOf = (k: number): number => gaps.reduce((a, g) => a + Math.floor(g / 2 ** k) + 1 + k, 0);
    const fewest = Math.min(...Array.from({ length: 25 }, (_, k) => bitsOf(k)));
    const enc = riceEncode(list, p);
    const ok = p.runLength === wantRun && bitsOf(p.k) === fewest && (p.k === 0 || bitsOf(p.k - 1) > fewest)
      && enc.length === 5 + Math.ceil(fewest / 8) && Buffer.compare(Buffer.from(enc), Buffer.from(refEncode(list, p.runLength, p.k))) === 0;
    const dec = riceDecode(enc, list.length);
    const ref = refDecode(enc, list.length);
    if (!ok || typeof dec === 'string' || !isDeepStrictEqual(Array.from(dec.values), list) || !ref || !isDeepStrictEqual(ref.values, list)) {
      if (bad++ < 3) t.fail(`list [${list.slice(0, 12)}${list.length > 12 ? ', ...' : ''}]: params ${JSON.stringify(p)}, run ${wantRun}`);
    }
    // Every other k decodes to the same values too.
    for (const k of [p.k + 1, 24, ...(Math.max(...gaps) < 5000 ? [0] : [])]) {
      const other = riceDecode(refEncode(list, wantRun, k), list.length);
      if (typeof other === 'string' || !isDeepStrictEqual(Array.from(other.values), list)) if (bad++ < 3) t.fail(`k ${k} of [${list.slice(0, 8)}]`);
    }
  }
  t.equal(bad, 0, `${lists.length} lists encode minimally and decode to themselves`);
  t.equal(riceEncode([0, 1, 2, 3, 4, 5, 6, 7], { runLength: 8, k: 0 }).length, 6, '8 consecutive channels: 5-byte header + 1 byte');
  t.throws(() => riceEncode([3, 1], { runLength: 2, k: 0 }), /do not fit/, 'a run that does not ascend is refused');
  t.throws(() => riceEncode([1 << 24], { runLength: 1, k: 0 }), /do not fit/, 'values of 2^24 are refused');

  // Files: condensed models hold only rice index tensors; malformed ones are rejected as 'index'.
  const cases = malformedRice(good);
  t.ok(cases.length >= 9);
  for (const c of cases) expectCode(t, c.bytes, 'index', `rice: ${c.what}`);
  // Plain u8/u16/u32 index tensors (version 1.0 files) still read, and a model may mix them with rice.
  const plain = readModel(good);
  plain.tensors.filter((x) => x.dtype === 'rice').forEach((x, j) => {
    if (j % 3 === 0) { x.dtype = 'u16'; x.data = Uint16Array.from(x.data); delete x.rice; }
    else if (j % 3 === 1) { x.dtype = 'u32'; x.data = Uint32Array.from(x.data); delete x.rice; }
  });
  const mixed = writeModel(plain);
  t.ok(readModel(mixed).tensors.some((x) => x.dtype === 'u16') && readModel(mixed).tensors.some((x) => x.dtype === 'rice'), 'plain and rice index tensors in one file');
  // The writer keeps a file's own (valid, non-minimal) parameters, so read + write is exact for it too.
  const m = readModel(good);
  const idx = m.tensors.findIndex((x) => x.dtype === 'rice' && x.data.length >= 32);
  m.tensors[idx]!.rice = { runLength: 1, k: 3 };
  const odd = writeModel(m);
  t.ok(odd.length > good.length, 'run length 1 costs more bytes');
  t.same(Buffer.compare(Buffer.from(writeModel(readModel(odd))), Buffer.from(odd)), 0, 'non-minimal encoding round-trips');
  t.same(readModel(odd).tensors[idx]!.rice, { runLength: 1, k: 3 });
});

t.test('hostile bytes only ever raise ModelFormatError', async (t) => {
  const rng = new Rng(99);
  const small = writeModel(condense(randomNetworkParams(TINY_B, 4), { weights: 'f16' }));
  let rejected = 0;
  let accepted = 0;
  for (let iter = 0; iter < 3000; iter++) {
    const b = small.slice();
    const flips = 1 + Math.floor(rng.next() * 4);
    for (let k = 0; k < flips; k++) {
      const pos = Math.floor(rng.next() * b.length);
      b[pos] = rng.next() < 0.5 ? Math.floor(rng.next() * 256) : b[pos]! ^ (1 << Math.floor(rng.next() * 8));
    }
    // Most iterations repair the CRCs so that the parsers behind them are exercised, not just the checksum.
    if (iter % 4 !== 0) { try { fixAllCrcs(b); } catch { /* directory itself may be broken */ } }
    const input = rng.next() < 0.1 ? b.slice(0, Math.floor(rng.next() * b.length)) : b;
    try {
      readModel(input);
      accepted++;
    } catch (err) {
      if (!(err instanceof ModelFormatError)) { t.fail(`iteration ${iter}: ${(err as Error).name}: ${(err as Error).message}`); return; }
      rejected++;
    }
  }
  t.ok(rejected > 2000, `rejected ${rejected}, accepted ${accepted} (value-only changes)`);
});
