// Reader and writer of the `.cnv2` binary model format, version 1.1 (docs/format.md).
// The reader trusts nothing: every count, offset, size, shape and index is checked before use, and every
// failure is a ModelFormatError with a stable `code`. The writer is deterministic and validates its output.
import { crc32 } from './crc32.js';
import {
  type BufferShape, type DType, type MetaEntry, type Model, type Op, type OpKind, type Tensor, type TensorData,
  OP_LAYOUT, TENSOR_FIELDS, dtypeSize, isIndexDtype,
} from './model.js';
import { riceDecode, riceEncode, riceFits, riceParams } from './rice.js';

export * from './model.js';

export const MAGIC = [0x43, 0x4e, 0x56, 0x32]; // "CNV2"
export const MAJOR_VERSION = 1;
export const MINOR_VERSION = 1; // 1: rice index tensors (dtype 6), optional labels
export const NONE = 0xffffffff;
export const HEADER_SIZE = 32;
export const DIR_ENTRY_SIZE = 16;
export const SECTION_TAGS = ['META', 'GRPH', 'TENS', 'DATA'] as const;
const U32_MAX = 0xffffffff;
const MAX_STRING = 65536;

export type FormatErrorCode =
  | 'truncated' | 'bad-magic' | 'version' | 'file-size' | 'section-count' | 'header' | 'checksum' | 'section'
  | 'meta' | 'trailing' | 'opcode' | 'word-count' | 'index' | 'range' | 'shape' | 'dtype' | 'value'
  | 'duplicate-index' | 'overlap' | 'overflow';

export class ModelFormatError extends Error {
  override name = 'ModelFormatError';
  constructor(readonly code: FormatErrorCode, message: string) {
    super(`invalid model (${code}): ${message}`);
  }
}

function fail(code: FormatErrorCode, message: string): never {
  throw new ModelFormatError(code, message);
}

// Typed-array views below copy raw bytes, which equals the file's little-endian encoding only on LE hosts.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('cdnv2 requires a little-endian host');

const DTYPE_CODES: Record<DType, number> = { f32: 1, f16: 2, u8: 3, u16: 4, u32: 5, rice: 6 };
const DTYPE_BY_CODE: (DType | undefined)[] = [undefined, 'f32', 'f16', 'u8', 'u16', 'u32', 'rice'];
const META_TYPE_CODES: Record<MetaEntry['type'], number> = { 'u32[]': 1, 'f32[]': 2, string: 3, 'string[]': 4 };
const OP_BY_CODE = new Map<number, OpKind>(
  (Object.keys(OP_LAYOUT) as OpKind[]).map((k) => [OP_LAYOUT[k].opcode, k]),
);

const align16 = (n: number): number => Math.ceil(n / 16) * 16;

// ---------------------------------------------------------------------------------------------------------------
// Writer

/** Growable little-endian byte sink. */
class Sink {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void { this.reserve(1); this.view.setUint8(this.length, v); this.length += 1; }
  u16(v: number): void { this.reserve(2); this.view.setUint16(this.length, v, true); this.length += 2; }
  u32(v: number): void { this.reserve(4); this.view.setUint32(this.length, v >>> 0, true); this.length += 4; }
  bytes(b: Uint8Array): void { this.reserve(b.length); this.buf.set(b, this.length); this.length += b.length; }
  result(): Uint8Array { return this.buf.slice(0, this.length); }
}

const encoder = new TextEncoder();

function checkWordValue(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > U32_MAX) throw new Error(`cannot write ${what} = ${v}: not a u32`);
}

function encodeMeta(meta: MetaEntry[]): Uint8Array {
  const s = new Sink();
  s.u32(meta.length);
  for (const e of meta) {
    const key = encoder.encode(e.key);
    if (key.length < 1 || key.length > 255) throw new Error(`cannot write meta key '${e.key}': 1..255 bytes`);
    s.u16(key.length);
    s.bytes(key);
    s.u8(META_TYPE_CODES[e.type]);
    switch (e.type) {
      case 'u32[]': s.u32(e.value.length); s.bytes(new Uint8Array(e.value.buffer, e.value.byteOffset, e.value.byteLength)); break;
      case 'f32[]': s.u32(e.value.length); s.bytes(new Uint8Array(e.value.buffer, e.value.byteOffset, e.value.byteLength)); break;
      case 'string': {
        const b = encoder.encode(e.value);
        if (b.length > MAX_STRING) throw new Error(`cannot write meta '${e.key}': string longer than ${MAX_STRING} bytes`);
        s.u32(b.length); s.bytes(b);
        break;
      }
      case 'string[]':
        s.u32(e.value.length);
        for (const str of e.value) {
          const b = encoder.encode(str);
          if (b.length > MAX_STRING) throw new Error(`cannot write meta '${e.key}': string longer than ${MAX_STRING} bytes`);
          s.u32(b.length); s.bytes(b);
        }
        break;
    }
  }
  return s.result();
}

function encodeGraph(m: Model): Uint8Array {
  const s = new Sink();
  s.u32(m.buffers.length);
  s.u32(m.ops.length);
  s.u32(m.inputBuffer);
  s.u32(m.outputBuffer);
  for (const b of m.buffers) {
    for (const v of [b.channels, b.height, b.width]) { checkWordValue('buffer size', v); s.u32(v); }
  }
  for (const op of m.ops) {
    const layout = OP_LAYOUT[op.kind];
    if (!layout) throw new Error(`cannot write op of unknown kind '${(op as { kind: string }).kind}'`);
    s.u16(layout.opcode);
    s.u16(layout.fields.length);
    const rec = op as unknown as Record<string, number | null>;
    for (const f of layout.fields) {
      const v = rec[f];
      if (v === null && TENSOR_FIELDS.has(f)) { s.u32(NONE); continue; }
      if (typeof v !== 'number') throw new Error(`cannot write ${op.kind}: field '${f}' is missing`);
      checkWordValue(`${op.kind}.${f}`, v);
      s.u32(v);
    }
  }
  return s.result();
}

function tensorBytes(t: Tensor): Uint8Array {
  if (t.dtype === 'rice') return riceEncode(t.data, t.rice && riceFits(t.data, t.rice) ? t.rice : riceParams(t.data));
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/**
 * Table and DATA. Tensors other than rice start at 16-aligned offsets in table order (f32 data is used in place
 * by v128.load); rice tensors, expanded at load, follow them unaligned, packed in table order.
 */
function encodeTensors(tensors: Tensor[]): { table: Uint8Array; data: Uint8Array } {
  const s = new Sink();
  s.u32(tensors.length);
  const bytes = tensors.map((t) => {
    if (t.shape.length < 1 || t.shape.length > 4) throw new Error(`cannot write tensor of rank ${t.shape.length}`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`cannot write tensor: shape [${t.shape}] but ${t.data.length} values`);
    if (t.data.BYTES_PER_ELEMENT !== dtypeSize(t.dtype)) throw new Error(`cannot write ${t.dtype} tensor from ${t.data.constructor.name} data`);
    return tensorBytes(t);
  });
  const offsets: number[] = new Array<number>(tensors.length);
  let end = 0;
  tensors.forEach((t, i) => { if (t.dtype !== 'rice') { offsets[i] = align16(end); end = offsets[i]! + bytes[i]!.length; } });
  tensors.forEach((t, i) => { if (t.dtype === 'rice') { offsets[i] = end; end += bytes[i]!.length; } });
  tensors.forEach((t, i) => {
    s.u32(DTYPE_CODES[t.dtype]);
    s.u32(t.shape.length);
    for (let d = 0; d < 4; d++) s.u32(d < t.shape.length ? t.shape[d]! : 1);
    s.u32(offsets[i]!);
    s.u32(bytes[i]!.length);
  });
  const data = new Uint8Array(end);
  tensors.forEach((_, i) => data.set(bytes[i]!, offsets[i]!));
  return { table: s.result(), data };
}

export interface WriteOptions {
  /** Read the produced bytes back through the validating reader (default true). */
  validate?: boolean;
}

/** Serialises a model deterministically: META, GRPH, TENS, DATA, each 16-aligned, zero padding. */
export function writeModel(model: Model, opts: WriteOptions = {}): Uint8Array {
  const { table, data } = encodeTensors(model.tensors);
  const sections = [encodeMeta(model.meta), encodeGraph(model), table, data];
  const n = sections.length;
  let offset = align16(HEADER_SIZE + n * DIR_ENTRY_SIZE);
  const offsets = sections.map((sec) => { const o = offset; offset = align16(o + sec.length); return o; });
  const fileSize = offsets[n - 1]! + sections[n - 1]!.length;
  if (fileSize > U32_MAX) throw new Error(`model too large for the format (${fileSize} bytes)`);
  const out = new Uint8Array(fileSize);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint16(4, MAJOR_VERSION, true);
  view.setUint16(6, MINOR_VERSION, true);
  view.setUint32(8, fileSize, true);
  view.setUint32(12, n, true);
  for (let i = 0; i < n; i++) {
    const d = HEADER_SIZE + i * DIR_ENTRY_SIZE;
    for (let c = 0; c < 4; c++) out[d + c] = SECTION_TAGS[i]!.charCodeAt(c);
    view.setUint32(d + 4, offsets[i]!, true);
    view.setUint32(d + 8, sections[i]!.length, true);
    view.setUint32(d + 12, crc32(sections[i]!), true);
    out.set(sections[i]!, offsets[i]!);
  }
  const headerCrc = crc32(out, HEADER_SIZE, HEADER_SIZE + n * DIR_ENTRY_SIZE, crc32(out, 0, 28));
  view.setUint32(28, headerCrc, true);
  if (opts.validate !== false) readModel(out);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Reader

/** Bounds-checked little-endian cursor over one section; running past the end is a 'truncated' error. */
class Cursor {
  private readonly view: DataView;
  pos = 0;
  constructor(private readonly bytes: Uint8Array, private readonly what: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get remaining(): number { return this.bytes.length - this.pos; }
  need(n: number, what: string): void {
    if (n > this.remaining) fail('truncated', `${this.what}: ${what} needs ${n} bytes, ${this.remaining} left`);
  }
  u8(what: string): number { this.need(1, what); return this.view.getUint8(this.pos++); }
  u16(what: string): number { this.need(2, what); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v; }
  u32(what: string): number { this.need(4, what); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  take(n: number, what: string): Uint8Array { this.need(n, what); const b = this.bytes.subarray(this.pos, this.pos + n); this.pos += n; return b; }
  end(): void {
    if (this.remaining !== 0) fail('trailing', `${this.what}: ${this.remaining} bytes after its last entry`);
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function utf8(b: Uint8Array, what: string): string {
  try {
    return decoder.decode(b);
  } catch {
    return fail('meta', `${what} is not valid UTF-8`);
  }
}

/** Copies bytes into a fresh, aligned typed array (exact bits, including NaN payloads). */
function copyTyped<T extends TensorData>(b: Uint8Array, make: (buf: ArrayBuffer) => T): T {
  const buf = new ArrayBuffer(b.length);
  new Uint8Array(buf).set(b);
  return make(buf);
}

function parseMeta(bytes: Uint8Array): MetaEntry[] {
  const c = new Cursor(bytes, 'META');
  const count = c.u32('entry count');
  // Every entry takes at least 8 bytes; this bounds the loop before it starts.
  if (count * 8 > c.remaining) fail('truncated', `META: ${count} entries cannot fit in ${c.remaining} bytes`);
  const entries: MetaEntry[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) {
    const keyLength = c.u16('key length');
    if (keyLength < 1 || keyLength > 255) fail('meta', `entry ${i}: key length ${keyLength} outside 1..255`);
    const key = utf8(c.take(keyLength, 'key'), `entry ${i} key`);
    if (seen.has(key)) fail('meta', `duplicate key '${key}'`);
    seen.add(key);
    const type = c.u8(`'${key}' type`);
    const n = c.u32(`'${key}' count`);
    switch (type) {
      case 1:
      case 2: {
        if (n > c.remaining / 4) fail('truncated', `META '${key}': ${n} values do not fit`);
        const raw = c.take(n * 4, `'${key}' values`);
        entries.push(type === 1
          ? { key, type: 'u32[]', value: copyTyped(raw, (b) => new Uint32Array(b)) }
          : { key, type: 'f32[]', value: copyTyped(raw, (b) => new Float32Array(b)) });
        break;
      }
      case 3:
        if (n > MAX_STRING) fail('meta', `'${key}': string of ${n} bytes (limit ${MAX_STRING})`);
        entries.push({ key, type: 'string', value: utf8(c.take(n, `'${key}' string`), `'${key}'`) });
        break;
      case 4: {
        if (n > c.remaining / 4) fail('truncated', `META '${key}': ${n} strings do not fit`);
        const list: string[] = [];
        for (let j = 0; j < n; j++) {
          const len = c.u32(`'${key}'[${j}] length`);
          if (len > MAX_STRING) fail('meta', `'${key}'[${j}]: string of ${len} bytes (limit ${MAX_STRING})`);
          list.push(utf8(c.take(len, `'${key}'[${j}]`), `'${key}'[${j}]`));
        }
        entries.push({ key, type: 'string[]', value: list });
        break;
      }
      default:
        fail('meta', `'${key}': unknown type ${type}`);
    }
  }
  c.end();
  return entries;
}

function parseTensors(table: Uint8Array, data: Uint8Array): Tensor[] {
  const c = new Cursor(table, 'TENS');
  const count = c.u32('tensor count');
  if (count > 65535) fail('value', `TENS: ${count} tensors (limit 65535)`);
  c.need(count * 32, `${count} table entries`);
  const tensors: Tensor[] = [];
  for (let i = 0; i < count; i++) {
    const code = c.u32('dtype');
    const ndim = c.u32('ndim');
    const dims = [c.u32('dim'), c.u32('dim'), c.u32('dim'), c.u32('dim')];
    const offset = c.u32('offset');
    const byteLength = c.u32('byteLength');
    const dtype = DTYPE_BY_CODE[code];
    if (!dtype) fail('dtype', `tensor ${i}: unknown dtype ${code}`);
    if (ndim < 1 || ndim > 4) fail('value', `tensor ${i}: rank ${ndim} outside 1..4`);
    for (let d = 0; d < 4; d++) {
      if (dims[d] === 0) fail('value', `tensor ${i}: dimension ${d} is 0`);
      if (d >= ndim && dims[d] !== 1) fail('value', `tensor ${i}: dimension ${d} past rank ${ndim} is ${dims[d]}, not 1`);
    }
    let bytes = dtypeSize(dtype);
    for (let d = 0; d < ndim; d++) {
      bytes *= dims[d]!;
      if (bytes > U32_MAX) fail('overflow', `tensor ${i}: size [${dims.slice(0, ndim)}] overflows 32 bits`);
    }
    // A rice tensor's length is that of its encoding (checked by decoding); its offset need not be aligned.
    if (dtype !== 'rice' && byteLength !== bytes) fail('shape', `tensor ${i}: byteLength ${byteLength}, shape needs ${bytes}`);
    if (dtype !== 'rice' && offset % 16 !== 0) fail('value', `tensor ${i}: data offset ${offset} is not a multiple of 16`);
    if (offset + byteLength > data.length) {
      fail('range', `tensor ${i}: data [${offset}, ${offset + byteLength}) outside DATA (${data.length} bytes)`);
    }
    const raw = data.subarray(offset, offset + byteLength);
    if (dtype === 'rice') {
      const r = riceDecode(raw, bytes / 4);
      if (typeof r === 'string') fail('value', `tensor ${i}: invalid rice encoding: ${r}`);
      tensors.push({ dtype, shape: dims.slice(0, ndim), data: r.values, rice: r.params });
      continue;
    }
    const view = dtype === 'f32' ? copyTyped(raw, (b) => new Float32Array(b))
      : dtype === 'f16' || dtype === 'u16' ? copyTyped(raw, (b) => new Uint16Array(b))
        : dtype === 'u8' ? copyTyped(raw, (b) => new Uint8Array(b))
          : copyTyped(raw, (b) => new Uint32Array(b));
    tensors.push({ dtype, shape: dims.slice(0, ndim), data: view });
  }
  c.end();
  return tensors;
}

interface RawGraph {
  buffers: BufferShape[];
  inputBuffer: number;
  outputBuffer: number;
  ops: Op[];
}

function parseGraph(bytes: Uint8Array): RawGraph {
  const c = new Cursor(bytes, 'GRPH');
  const bufferCount = c.u32('buffer count');
  const opCount = c.u32('op count');
  const inputBuffer = c.u32('input buffer');
  const outputBuffer = c.u32('output buffer');
  if (bufferCount < 1 || bufferCount > 65535) fail('value', `GRPH: buffer count ${bufferCount} outside 1..65535`);
  if (opCount < 1 || opCount > 65535) fail('value', `GRPH: op count ${opCount} outside 1..65535`);
  if (inputBuffer >= bufferCount) fail('index', `GRPH: input buffer ${inputBuffer} >= ${bufferCount} buffers`);
  if (outputBuffer >= bufferCount) fail('index', `GRPH: output buffer ${outputBuffer} >= ${bufferCount} buffers`);
  if (outputBuffer === inputBuffer) fail('value', 'GRPH: output buffer is the input buffer');
  c.need(bufferCount * 12, `${bufferCount} buffer entries`);
  const buffers: BufferShape[] = [];
  for (let i = 0; i < bufferCount; i++) {
    const b = { channels: c.u32('channels'), height: c.u32('height'), width: c.u32('width') };
    if (!b.channels || !b.height || !b.width) fail('value', `buffer ${i}: a dimension is 0`);
    if (b.channels * b.height * b.width * 4 > U32_MAX) fail('overflow', `buffer ${i}: ${b.channels}x${b.height}x${b.width} f32 overflows 32 bits`);
    // Same bound as the runtime's loader (assembly/model.ts), which keeps per-plane arithmetic in 32 bits.
    if (b.channels > 65535 || b.height > 65535 || b.width > 65535) fail('value', `buffer ${i}: a dimension exceeds 65535`);
    buffers.push(b);
  }
  const ops: Op[] = [];
  for (let i = 0; i < opCount; i++) {
    const opcode = c.u16(`op ${i} opcode`);
    const words = c.u16(`op ${i} word count`);
    const kind = OP_BY_CODE.get(opcode);
    if (!kind) fail('opcode', `op ${i}: unknown opcode ${opcode}`);
    const fields = OP_LAYOUT[kind].fields;
    if (words !== fields.length) fail('word-count', `op ${i} (${kind}): ${words} words, expected ${fields.length}`);
    const rec: Record<string, unknown> = { kind };
    for (const f of fields) {
      const v = c.u32(`op ${i} ${f}`);
      rec[f] = TENSOR_FIELDS.has(f) && v === NONE ? null : v;
    }
    ops.push(rec as unknown as Op);
  }
  c.end();
  return { buffers, inputBuffer, outputBuffer, ops };
}

function allFinite(t: Tensor): boolean {
  if (t.dtype === 'f16') {
    for (const h of t.data) if ((h & 0x7c00) === 0x7c00) return false;
    return true;
  }
  for (const v of t.data) if (!Number.isFinite(v)) return false;
  return true;
}

/** Semantic checks of ops against buffers and tensors (docs/format.md, "Validation"). */
class GraphChecker {
  constructor(private readonly g: RawGraph, private readonly tensors: Tensor[]) {}

  buffer(i: number, where: string, field: string): BufferShape {
    const b = this.g.buffers[i];
    if (!b) fail('index', `${where}: ${field} ${i} >= ${this.g.buffers.length} buffers`);
    return b;
  }

  tensor(ref: number | null, where: string, field: string, kind: 'float' | 'index', shape: number[]): Tensor | null {
    if (ref === null) return null;
    const t = this.tensors[ref];
    if (!t) fail('index', `${where}: ${field} tensor ${ref} >= ${this.tensors.length} tensors`);
    const ok = kind === 'float' ? t.dtype === 'f32' || t.dtype === 'f16' : isIndexDtype(t.dtype);
    if (!ok) fail('dtype', `${where}: ${field} tensor ${ref} is ${t.dtype}, expected ${kind === 'float' ? 'f32/f16' : 'u8/u16/u32/rice'}`);
    if (t.shape.length !== shape.length || t.shape.some((d, k) => d !== shape[k])) {
      fail('shape', `${where}: ${field} tensor ${ref} has shape [${t.shape}], expected [${shape}]`);
    }
    if (kind === 'float' && !this.finiteChecked.has(ref)) {
      if (!allFinite(t)) fail('value', `${where}: ${field} tensor ${ref} holds NaN or infinite values`);
      this.finiteChecked.add(ref);
    }
    return t;
  }

  private readonly finiteChecked = new Set<number>();

  required(ref: number | null, where: string, field: string, shape: number[]): Tensor {
    if (ref === null) fail('value', `${where}: ${field} tensor is required`);
    return this.tensor(ref, where, field, 'float', shape)!;
  }

  /**
   * Checks the channels an op touches in a buffer and returns their span [lo, hi]. Without an index these are
   * offset .. offset+count-1; with one they are offset + index[i] (count is the index length and may exceed the
   * buffer, e.g. when LGC groups share input channels).
   */
  channels(buf: BufferShape, offset: number, count: number, index: Tensor | null, where: string, what: string): [number, number] {
    if (count < 1) fail('value', `${where}: ${what} channel count is 0`);
    if (!index) {
      if (offset + count > buf.channels) {
        fail('range', `${where}: ${what} channels [${offset}, ${offset + count}) outside a buffer of ${buf.channels}`);
      }
      return [offset, offset + count - 1];
    }
    const { min, max } = this.indexStats(index);
    if (offset + max >= buf.channels) {
      fail('index', `${where}: ${what} index value ${max} (+ offset ${offset}) outside a buffer of ${buf.channels} channels`);
    }
    return [offset + min, offset + max];
  }

  // Per-tensor facts, computed once: many ops may share one large index tensor (hostile files included).
  private readonly stats = new Map<Tensor, { min: number; max: number; repeats: number | null }>();

  indexStats(index: Tensor): { min: number; max: number; repeats: number | null } {
    let st = this.stats.get(index);
    if (!st) {
      let min = Infinity, max = -Infinity;
      let repeats: number | null = null;
      const seen = new Set<number>();
      for (const v of index.data) {
        if (v < min) min = v;
        if (v > max) max = v;
        if (repeats === null) { if (seen.has(v)) repeats = v; else seen.add(v); }
      }
      st = { min, max, repeats };
      this.stats.set(index, st);
    }
    return st;
  }

  noOverlap(inBuf: number, inSpan: [number, number], outBuf: number, outSpan: [number, number], where: string): void {
    if (inBuf === outBuf && inSpan[0] <= outSpan[1] && outSpan[0] <= inSpan[1]) {
      fail('overlap', `${where}: input channels [${inSpan[0]}, ${inSpan[1]}] and output channels [${outSpan[0]}, ${outSpan[1]}] overlap in buffer ${inBuf}`);
    }
  }

  act(v: number, where: string, field: string): void {
    if (v > 2) fail('value', `${where}: ${field} ${v} is not an activation code (0, 1, 2)`);
  }

  pooledSize(inSize: number, kernel: number, stride: number, pad: number, outSize: number, where: string, axis: string): void {
    const span = inSize + 2 * pad - kernel;
    if (span < 0 || Math.floor(span / stride) + 1 !== outSize) {
      fail('shape', `${where}: input ${axis} ${inSize} (kernel ${kernel}, stride ${stride}, pad ${pad}) does not give output ${axis} ${outSize}`);
    }
  }

  conv(op: Extract<Op, { kind: 'conv2d' }>, where: string): void {
    const inB = this.buffer(op.inBuffer, where, 'inBuffer');
    const outB = this.buffer(op.outBuffer, where, 'outBuffer');
    if (![1, 3, 5, 7].includes(op.kernel)) fail('value', `${where}: kernel ${op.kernel} (1, 3, 5 or 7)`);
    if (op.stride < 1 || op.stride > 4) fail('value', `${where}: stride ${op.stride} outside 1..4`);
    if (op.pad > (op.kernel >> 1)) fail('value', `${where}: pad ${op.pad} > kernel/2`);
    if (op.groups < 1 || op.cin % op.groups !== 0 || op.cout % op.groups !== 0) {
      fail('value', `${where}: groups ${op.groups} must divide cin ${op.cin} and cout ${op.cout}`);
    }
    this.act(op.inAct, where, 'inAct');
    this.act(op.outAct, where, 'outAct');
    if (op.accumulate > 1) fail('value', `${where}: accumulate ${op.accumulate} is not 0 or 1`);
    if ((op.inScale === null) !== (op.inShift === null)) fail('value', `${where}: inScale and inShift must be given together`);
    this.required(op.weight, where, 'weight', [op.cout, op.cin / op.groups, op.kernel, op.kernel]);
    this.tensor(op.bias, where, 'bias', 'float', [op.cout]);
    const inIndex = this.tensor(op.inIndex, where, 'inIndex', 'index', [op.cin]);
    this.tensor(op.inScale, where, 'inScale', 'float', [op.cin]);
    this.tensor(op.inShift, where, 'inShift', 'float', [op.cin]);
    const outIndex = this.tensor(op.outIndex, where, 'outIndex', 'index', [op.cout]);
    const inSpan = this.channels(inB, op.inChannel, op.cin, inIndex, where, 'input');
    const outSpan = this.channels(outB, op.outChannel, op.cout, outIndex, where, 'output');
    this.pooledSize(inB.height, op.kernel, op.stride, op.pad, outB.height, where, 'height');
    this.pooledSize(inB.width, op.kernel, op.stride, op.pad, outB.width, where, 'width');
    if (outIndex && op.accumulate === 0) {
      const rep = this.indexStats(outIndex).repeats;
      if (rep !== null) fail('duplicate-index', `${where}: outIndex repeats channel ${rep} with accumulate = 0`);
    }
    this.noOverlap(op.inBuffer, inSpan, op.outBuffer, outSpan, where);
  }

  se(op: Extract<Op, { kind: 'se' }>, where: string): void {
    const b = this.buffer(op.buffer, where, 'buffer');
    this.channels(b, op.channel, op.channels, null, where, 'SE');
    if (op.hidden < 1 || op.hidden > 65535) fail('value', `${where}: hidden size ${op.hidden} outside 1..65535`);
    if (op.gate !== 0) fail('value', `${where}: gate ${op.gate} (only 0, sigmoid)`);
    this.required(op.w1, where, 'w1', [op.hidden, op.channels]);
    this.tensor(op.b1, where, 'b1', 'float', [op.hidden]);
    this.required(op.w2, where, 'w2', [op.channels, op.hidden]);
    this.tensor(op.b2, where, 'b2', 'float', [op.channels]);
  }

  avgpool(op: Extract<Op, { kind: 'avgpool' }>, where: string): void {
    const inB = this.buffer(op.inBuffer, where, 'inBuffer');
    const outB = this.buffer(op.outBuffer, where, 'outBuffer');
    if (op.kernel < 1 || op.kernel > 16) fail('value', `${where}: kernel ${op.kernel} outside 1..16`);
    if (op.stride < 1 || op.stride > 16) fail('value', `${where}: stride ${op.stride} outside 1..16`);
    const inSpan = this.channels(inB, op.inChannel, op.channels, null, where, 'input');
    const outSpan = this.channels(outB, op.outChannel, op.channels, null, where, 'output');
    this.pooledSize(inB.height, op.kernel, op.stride, 0, outB.height, where, 'height');
    this.pooledSize(inB.width, op.kernel, op.stride, 0, outB.width, where, 'width');
    this.noOverlap(op.inBuffer, inSpan, op.outBuffer, outSpan, where);
  }

  globalAvgPool(op: Extract<Op, { kind: 'global_avgpool' }>, where: string): void {
    const inB = this.buffer(op.inBuffer, where, 'inBuffer');
    const outB = this.buffer(op.outBuffer, where, 'outBuffer');
    if (outB.height !== 1 || outB.width !== 1) fail('shape', `${where}: output buffer ${op.outBuffer} is not 1x1`);
    this.act(op.inAct, where, 'inAct');
    if ((op.inScale === null) !== (op.inShift === null)) fail('value', `${where}: inScale and inShift must be given together`);
    this.tensor(op.inScale, where, 'inScale', 'float', [op.channels]);
    this.tensor(op.inShift, where, 'inShift', 'float', [op.channels]);
    const inSpan = this.channels(inB, op.inChannel, op.channels, null, where, 'input');
    const outSpan = this.channels(outB, op.outChannel, op.channels, null, where, 'output');
    this.noOverlap(op.inBuffer, inSpan, op.outBuffer, outSpan, where);
  }

  fc(op: Extract<Op, { kind: 'fc' }>, where: string): void {
    const inB = this.buffer(op.inBuffer, where, 'inBuffer');
    const outB = this.buffer(op.outBuffer, where, 'outBuffer');
    if (inB.height !== 1 || inB.width !== 1) fail('shape', `${where}: input buffer ${op.inBuffer} is not 1x1`);
    if (outB.height !== 1 || outB.width !== 1) fail('shape', `${where}: output buffer ${op.outBuffer} is not 1x1`);
    this.act(op.outAct, where, 'outAct');
    this.required(op.weight, where, 'weight', [op.cout, op.cin]);
    this.tensor(op.bias, where, 'bias', 'float', [op.cout]);
    const inSpan = this.channels(inB, op.inChannel, op.cin, null, where, 'input');
    const outSpan = this.channels(outB, op.outChannel, op.cout, null, where, 'output');
    this.noOverlap(op.inBuffer, inSpan, op.outBuffer, outSpan, where);
  }

  shuffle(op: Extract<Op, { kind: 'channel_shuffle' }>, where: string): void {
    const inB = this.buffer(op.inBuffer, where, 'inBuffer');
    const outB = this.buffer(op.outBuffer, where, 'outBuffer');
    if (op.groups < 1 || op.channels % op.groups !== 0) fail('value', `${where}: groups ${op.groups} must divide ${op.channels} channels`);
    if (inB.height !== outB.height || inB.width !== outB.width) fail('shape', `${where}: input and output sizes differ`);
    const inSpan = this.channels(inB, op.inChannel, op.channels, null, where, 'input');
    const outSpan = this.channels(outB, op.outChannel, op.channels, null, where, 'output');
    this.noOverlap(op.inBuffer, inSpan, op.outBuffer, outSpan, where);
  }

  run(): void {
    this.g.ops.forEach((op, i) => {
      const where = `op ${i} (${op.kind})`;
      // Zero counts first, so that they are reported as such and not as the tensor shapes they imply.
      const counts = op as unknown as Record<string, number>;
      for (const f of ['cin', 'cout', 'channels', 'hidden', 'groups']) {
        if (f in counts && counts[f] === 0) fail('value', `${where}: ${f} is 0`);
      }
      switch (op.kind) {
        case 'conv2d': return this.conv(op, where);
        case 'se': return this.se(op, where);
        case 'avgpool': return this.avgpool(op, where);
        case 'global_avgpool': return this.globalAvgPool(op, where);
        case 'fc': return this.fc(op, where);
        case 'channel_shuffle': return this.shuffle(op, where);
      }
    });
  }
}

function checkRequiredMeta(meta: MetaEntry[], g: RawGraph): void {
  const get = (key: string, type: MetaEntry['type'], required: boolean): MetaEntry | undefined => {
    const e = meta.find((x) => x.key === key);
    if (!e) {
      if (required) fail('meta', `required key '${key}' is missing`);
      return undefined;
    }
    if (e.type !== type) fail('meta', `'${key}' has type ${e.type}, expected ${type}`);
    return e;
  };
  get('name', 'string', true);
  get('arch', 'string', false);
  get('provenance', 'string', false);
  const resize = get('input.resize', 'string', false);
  if (resize && resize.value !== 'bilinear' && resize.value !== 'nearest') {
    fail('meta', `'input.resize' is '${resize.value as string}', expected bilinear or nearest`);
  }
  const shape = get('input.shape', 'u32[]', true)!.value as Uint32Array;
  const inB = g.buffers[g.inputBuffer]!;
  if (shape.length !== 3) fail('meta', `'input.shape' has ${shape.length} elements, expected 3`);
  if (shape[0] !== inB.channels || shape[1] !== inB.height || shape[2] !== inB.width) {
    fail('meta', `'input.shape' [${Array.from(shape)}] differs from the input buffer ${inB.channels}x${inB.height}x${inB.width}`);
  }
  for (const key of ['input.mean', 'input.std']) {
    const v = get(key, 'f32[]', true)!.value as Float32Array;
    if (v.length !== inB.channels) fail('meta', `'${key}' has ${v.length} elements, expected ${inB.channels}`);
    if (!v.every((x) => Number.isFinite(x) && (key === 'input.mean' || x > 0))) {
      fail('meta', `'${key}' must be finite${key === 'input.std' ? ' and positive' : ''}`);
    }
  }
  const outB = g.buffers[g.outputBuffer]!;
  if (outB.height !== 1 || outB.width !== 1) fail('shape', `output buffer is ${outB.height}x${outB.width}, not 1x1`);
  // Optional since version 1.1: models of classes without shipped names (ImageNet configurations) omit them.
  const labels = get('labels', 'string[]', false)?.value as string[] | undefined;
  if (labels && labels.length !== outB.channels) fail('meta', `'labels' has ${labels.length} names, the output has ${outB.channels} channels`);
}

/**
 * Only the META entries, for hosts whose wasm loader has already validated the whole file (the JS API): skips
 * CRCs, tensors and the graph, so reading the labels of a 25 MB model costs microseconds, not a second pass.
 * Still throws only ModelFormatError on malformed bytes.
 */
export function readMetaEntries(bytes: Uint8Array): MetaEntry[] {
  if (bytes.length < HEADER_SIZE) fail('truncated', `file of ${bytes.length} bytes is shorter than the ${HEADER_SIZE}-byte header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(12, true);
  if (n > 16 || HEADER_SIZE + n * DIR_ENTRY_SIZE > bytes.length) fail('truncated', 'section directory outside the file');
  for (let i = 0; i < n; i++) {
    const e = HEADER_SIZE + i * DIR_ENTRY_SIZE;
    if (bytes[e] === 0x4d && bytes[e + 1] === 0x45 && bytes[e + 2] === 0x54 && bytes[e + 3] === 0x41) { // "META"
      const off = view.getUint32(e + 4, true);
      const size = view.getUint32(e + 8, true);
      if (off + size > bytes.length) fail('truncated', 'META section outside the file');
      return parseMeta(bytes.subarray(off, off + size));
    }
  }
  return fail('section', 'no META section');
}

/** Parses and validates a `.cnv2` file. Throws only ModelFormatError, whatever the bytes. */
export function readModel(bytes: Uint8Array): Model {
  if (!(bytes instanceof Uint8Array)) fail('truncated', 'not a byte array');
  if (bytes.length < HEADER_SIZE) fail('truncated', `file of ${bytes.length} bytes is shorter than the ${HEADER_SIZE}-byte header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (MAGIC.some((m, i) => bytes[i] !== m)) fail('bad-magic', 'not a .cnv2 file (magic is not "CNV2")');
  const major = view.getUint16(4, true);
  if (major !== MAJOR_VERSION) fail('version', `major version ${major}, this reader supports ${MAJOR_VERSION}`);
  const fileSize = view.getUint32(8, true);
  if (fileSize !== bytes.length) fail('file-size', `header says ${fileSize} bytes, file has ${bytes.length}`);
  const n = view.getUint32(12, true);
  if (n < 4 || n > 16) fail('section-count', `section count ${n} outside 4..16`);
  const dirEnd = HEADER_SIZE + n * DIR_ENTRY_SIZE;
  if (bytes.length < dirEnd) fail('truncated', `file of ${bytes.length} bytes ends inside the section directory`);
  const headerCrc = crc32(bytes, HEADER_SIZE, dirEnd, crc32(bytes, 0, 28));
  if (headerCrc !== view.getUint32(28, true)) fail('checksum', 'header/directory CRC mismatch');
  if (view.getUint32(16, true) !== 0) fail('header', 'flags are not 0');
  if (view.getUint32(20, true) !== 0 || view.getUint32(24, true) !== 0) fail('header', 'reserved fields are not 0');

  const found = new Map<string, Uint8Array>();
  const spans: [number, number, string][] = [];
  for (let i = 0; i < n; i++) {
    const d = HEADER_SIZE + i * DIR_ENTRY_SIZE;
    const tag = String.fromCharCode(bytes[d]!, bytes[d + 1]!, bytes[d + 2]!, bytes[d + 3]!);
    const offset = view.getUint32(d + 4, true);
    const size = view.getUint32(d + 8, true);
    const label = JSON.stringify(tag);
    if (offset % 16 !== 0) fail('section', `section ${label} offset ${offset} is not a multiple of 16`);
    if (offset < dirEnd || offset + size > bytes.length) {
      fail('section', `section ${label} [${offset}, ${offset + size}) outside the file body [${dirEnd}, ${bytes.length})`);
    }
    for (const [lo, hi, other] of spans) {
      if (offset < hi && lo < offset + size) fail('section', `sections ${label} and ${JSON.stringify(other)} overlap`);
    }
    spans.push([offset, offset + size, tag]);
    const body = bytes.subarray(offset, offset + size);
    if (crc32(body) !== view.getUint32(d + 12, true)) fail('checksum', `section ${label} CRC mismatch`);
    if ((SECTION_TAGS as readonly string[]).includes(tag)) {
      if (found.has(tag)) fail('section', `section ${tag} appears twice`);
      found.set(tag, body);
    }
  }
  for (const tag of SECTION_TAGS) if (!found.has(tag)) fail('section', `section ${tag} is missing`);

  const meta = parseMeta(found.get('META')!);
  const tensors = parseTensors(found.get('TENS')!, found.get('DATA')!);
  const graph = parseGraph(found.get('GRPH')!);
  checkRequiredMeta(meta, graph);
  new GraphChecker(graph, tensors).run();
  return { meta, buffers: graph.buffers, inputBuffer: graph.inputBuffer, outputBuffer: graph.outputBuffer, ops: graph.ops, tensors };
}

/** Alias names used by the CLI and tests. */
export const write = writeModel;
export const read = readModel;
