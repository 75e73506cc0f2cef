// Reader and writer of the `.cnv2` binary model format, version 1.1 (docs/format.md).
// The reader trusts nothing: every count, offset, size, shape and index is checked before use, and every
// failure is a ModelFormatError with a stable `code`, the same the wasm loader reports (base/cnv2/error-codes.ts).
// The writer is deterministic and validates its output.
import {
  DIR_ENTRY_SIZE, DTYPE_CODES as DTYPE_CODE_TABLE, HEADER_SIZE, MAGIC, MAJOR_VERSION, META_TYPE_CODES as META_TYPE_CODE_TABLE,
  MINOR_VERSION, NONE, SECTION_TAGS,
} from './constants.js';
import { crc32 } from './crc32.js';
import {
  type BufferShape, type DType, type MetaEntry, type Model, type Op, type OpKind, type Tensor, type TensorData,
  OP_LAYOUT, TENSOR_FIELDS, dtypeSize, isIndexDtype,
} from './model.js';
import { riceDecode, riceEncode, riceFits, riceParams } from './rice.js';
import type { FormatErrorCode } from './error-codes.js';

export * from './model.js';
export { ERROR_CODES, type ErrorCode, type FormatErrorCode } from './error-codes.js';

export { DIR_ENTRY_SIZE, HEADER_SIZE, MAGIC, MAJOR_VERSION, MINOR_VERSION, NONE, SECTION_TAGS } from './constants.js';
const U32_MAX = 0xffffffff;
const MAX_STRING = 65536;

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

const DTYPE_CODES: Record<DType, number> = DTYPE_CODE_TABLE;
const DTYPE_BY_CODE: (DType | undefined)[] = [];
for (const [name, code] of Object.entries(DTYPE_CODES)) DTYPE_BY_CODE[code] = name as DType;
const META_TYPE_CODES: Record<MetaEntry['type'], number> = META_TYPE_CODE_TABLE;
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
  // 1.2 only for models with a MAXPOOL op: every other model keeps the 1.1 bytes it always had.
  view.setUint16(6, model.ops.some((op) => op.kind === 'maxpool') ? MINOR_VERSION : 1, true);
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
//
// The rules and their order mirror the wasm loader (assembly/runtime/parse.ts) check for check, and each rule reports the
// same code (base/cnv2/error-codes.ts): sections, then META, TENS, and GRPH op by op. Keep the two in step.

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

/** Types the known keys must have (unknown keys may have any type). */
const META_KEY_TYPES: Record<string, MetaEntry['type']> = {
  name: 'string', 'input.shape': 'u32[]', 'input.mean': 'f32[]', 'input.std': 'f32[]', labels: 'string[]',
  'input.resize': 'string', 'input.resize_shorter': 'u32[]', arch: 'string', provenance: 'string',
};

/** One META entry's known-key rules, checked as soon as it is read (as the wasm loader does). */
function checkMetaEntry(e: MetaEntry): void {
  const type = META_KEY_TYPES[e.key];
  if (type && e.type !== type) fail('meta', `'${e.key}' has type ${e.type}, expected ${type}`);
  if (e.key === 'input.shape') {
    const v = e.value as Uint32Array;
    if (v.length !== 3) fail('meta', `'input.shape' has ${v.length} elements, expected 3`);
    if (v.some((d) => d === 0 || d > 65535)) fail('meta', `'input.shape' [${Array.from(v)}] has a dimension outside 1..65535`);
  }
  if (e.key === 'input.resize' && e.value !== 'bilinear' && e.value !== 'nearest' && e.value !== 'bicubic') {
    fail('meta', `'input.resize' is '${e.value as string}', expected bilinear, bicubic or nearest`);
  }
  if (e.key === 'input.resize_shorter') {
    const v = e.value as Uint32Array;
    if (v.length !== 1) fail('meta', `'input.resize_shorter' has ${v.length} elements, expected 1`);
    if (v[0]! > 16384) fail('meta', `'input.resize_shorter' ${v[0]} is above 16384`);
  }
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
    c.need(keyLength + 5, `entry ${i}`);
    const key = utf8(c.take(keyLength, 'key'), `entry ${i} key`);
    if (seen.has(key)) fail('meta', `duplicate key '${key}'`);
    seen.add(key);
    const type = c.u8(`'${key}' type`);
    const n = c.u32(`'${key}' count`);
    let entry: MetaEntry;
    switch (type) {
      case 1:
      case 2: {
        if (n > c.remaining / 4) fail('truncated', `META '${key}': ${n} values do not fit`);
        const raw = c.take(n * 4, `'${key}' values`);
        entry = type === 1
          ? { key, type: 'u32[]', value: copyTyped(raw, (b) => new Uint32Array(b)) }
          : { key, type: 'f32[]', value: copyTyped(raw, (b) => new Float32Array(b)) };
        break;
      }
      case 3:
        if (n > MAX_STRING) fail('meta', `'${key}': string of ${n} bytes (limit ${MAX_STRING})`);
        entry = { key, type: 'string', value: utf8(c.take(n, `'${key}' string`), `'${key}'`) };
        break;
      case 4: {
        // Each string takes at least its 4-byte length, so the loop ends with the section.
        const list: string[] = [];
        for (let j = 0; j < n; j++) {
          const len = c.u32(`'${key}'[${j}] length`);
          if (len > MAX_STRING) fail('meta', `'${key}'[${j}]: string of ${len} bytes (limit ${MAX_STRING})`);
          list.push(utf8(c.take(len, `'${key}'[${j}]`), `'${key}'[${j}]`));
        }
        entry = { key, type: 'string[]', value: list };
        break;
      }
      default:
        return fail('meta', `'${key}': unknown type ${type}`);
    }
    checkMetaEntry(entry);
    entries.push(entry);
  }
  if (c.remaining !== 0) fail('meta', `META: ${c.remaining} bytes after its last entry`);
  const get = (key: string): MetaEntry['value'] | undefined => entries.find((e) => e.key === key)?.value;
  for (const key of ['name', 'input.shape', 'input.mean', 'input.std']) {
    if (get(key) === undefined) fail('meta', `required key '${key}' is missing`);
  }
  const shorter = get('input.resize_shorter') as Uint32Array | undefined;
  if (shorter && shorter[0] !== 0) {
    const shape = get('input.shape') as Uint32Array;
    if (shorter[0]! < Math.max(shape[1]!, shape[2]!) || get('input.resize') === 'nearest') {
      fail('meta', `'input.resize_shorter' ${shorter[0]} must cover the input (${shape[1]}x${shape[2]}) and goes with bilinear or bicubic`);
    }
  }
  const channels = (get('input.shape') as Uint32Array)[0]!;
  const mean = get('input.mean') as Float32Array, std = get('input.std') as Float32Array;
  if (mean.length !== channels || std.length !== channels) fail('meta', `'input.mean' and 'input.std' need ${channels} values, one per input channel`);
  for (let k = 0; k < channels; k++) {
    if (!(std[k]! > 0) || !Number.isFinite(std[k]!) || !Number.isFinite(mean[k]!)) fail('meta', `'input.std' must be positive and finite, 'input.mean' finite (channel ${k})`);
  }
  return entries;
}

/** Largest element count of one tensor (keeps every byte size below 2^31, as in the wasm loader). */
const MAX_TENSOR_ELEMENTS = 0x1fffffff;
/** Largest element count of one buffer: its f32 bytes fit in 32 bits. */
const MAX_BUFFER_ELEMENTS = 0x3fffffff;

function parseTensors(table: Uint8Array, data: Uint8Array): Tensor[] {
  const c = new Cursor(table, 'TENS');
  const count = c.u32('tensor count');
  if (count > 65535) fail('range', `TENS: ${count} tensors (limit 65535)`);
  if (4 + count * 32 !== table.length) fail('truncated', `TENS: ${table.length} bytes do not hold ${count} table entries`);
  const records: { i: number; dtype: DType; shape: number[]; offset: number; byteLength: number; elements: number }[] = [];
  for (let i = 0; i < count; i++) {
    const code = c.u32('dtype');
    const ndim = c.u32('ndim');
    const dims = [c.u32('dim'), c.u32('dim'), c.u32('dim'), c.u32('dim')];
    const offset = c.u32('offset');
    const byteLength = c.u32('byteLength');
    const dtype = DTYPE_BY_CODE[code];
    if (!dtype) fail('shape', `tensor ${i}: unknown dtype ${code}`);
    if (ndim < 1 || ndim > 4) fail('shape', `tensor ${i}: rank ${ndim} outside 1..4`);
    if (dims.includes(0)) fail('shape', `tensor ${i}: a dimension is 0`);
    if (dims.some((d, k) => k >= ndim && d !== 1)) fail('shape', `tensor ${i}: a dimension past rank ${ndim} is not 1`);
    const elements = dims[0]! * dims[1]! * dims[2]! * dims[3]!; // exact below 2^53 for the products that pass
    if (elements > MAX_TENSOR_ELEMENTS) fail('overflow', `tensor ${i}: [${dims.slice(0, ndim)}] is too large`);
    const bytes = elements * dtypeSize(dtype);
    // A rice tensor's length is that of its encoding (checked by decoding); its offset need not be aligned.
    if (dtype !== 'rice' && byteLength !== bytes) fail('shape', `tensor ${i}: byteLength ${byteLength}, shape needs ${bytes}`);
    if (dtype !== 'rice' && offset % 16 !== 0) fail('range', `tensor ${i}: data offset ${offset} is not a multiple of 16`);
    if (offset + byteLength > data.length) {
      fail('range', `tensor ${i}: data [${offset}, ${offset + byteLength}) outside DATA (${data.length} bytes)`);
    }
    records.push({ i, dtype, shape: dims.slice(0, ndim), offset, byteLength, elements });
  }
  // Tensors must not share data bytes: each entry is decoded and copied, so sharing would amplify memory by the
  // entry count (65534 entries over one 8 KB rice blob). Checked on the records, before anything is decoded.
  const byOffset = [...records].sort((a, b) => a.offset - b.offset || a.i - b.i);
  for (let k = 1; k < byOffset.length; k++) {
    const prev = byOffset[k - 1]!, cur = byOffset[k]!;
    if (cur.offset < prev.offset + prev.byteLength) fail('alias', `tensor ${cur.i} shares data bytes with another`);
  }
  return records.map(({ i, dtype, shape, offset, byteLength, elements }) => {
    const raw = data.subarray(offset, offset + byteLength);
    if (dtype === 'rice') {
      const r = riceDecode(raw, elements);
      if (typeof r === 'string') fail('index', `tensor ${i}: invalid rice encoding: ${r}`);
      return { dtype, shape, data: r.values, rice: r.params };
    }
    const view = dtype === 'f32' ? copyTyped(raw, (b) => new Float32Array(b))
      : dtype === 'f16' || dtype === 'u16' ? copyTyped(raw, (b) => new Uint16Array(b))
        : dtype === 'u8' ? copyTyped(raw, (b) => new Uint8Array(b))
          : copyTyped(raw, (b) => new Uint32Array(b));
    return { dtype, shape, data: view };
  });
}

function allFinite(t: Tensor): boolean {
  if (t.dtype === 'f16') {
    for (const h of t.data) if ((h & 0x7c00) === 0x7c00) return false;
    return true;
  }
  for (const v of t.data) if (!Number.isFinite(v)) return false;
  return true;
}

/** Scratch bytes of a conv's kernel (assembly/kernels/conv2d.ts conv2d_scratch_bytes; Infinity where it overflows). */
function convKernelScratch(cin: number, h: number, w: number, kernel: number, stride: number, pad: number): number {
  if (kernel === 1 && stride === 1 && pad === 0) return 0;
  const bytes = cin * (h + 2 * pad) * (w + 2 * pad) * 4 + 128 + cin * kernel * kernel * 4;
  return bytes > 0x7fffffff ? Infinity : bytes;
}

/** Per-op rules against buffers and tensors, in the wasm loader's order (assembly/runtime/ops/: validateConv2d and peers). */
class OpChecker {
  private where = '';
  private readonly finiteChecked = new Set<number>();
  // Per-tensor facts, computed once: many ops may share one large index tensor (hostile files included).
  private readonly stats = new Map<Tensor, { min: number; max: number; repeats: boolean }>();
  /** Per op: channels read (and, with accumulate, read back) and written, for proveWrites. */
  private readonly access: { read: [number, number, number]; write: [number, number, number]; acc: boolean; outIndex: Tensor | null; outChannel: number }[] = [];

  constructor(private readonly buffers: BufferShape[], private readonly tensors: Tensor[]) {}

  private fail(code: FormatErrorCode, message: string): never {
    return fail(code, `${this.where}: ${message}`);
  }

  /** Buffer b exists and holds channels [ch, ch+count). */
  private range(b: number, ch: number, count: number, what: string): BufferShape {
    const buf = this.buffers[b];
    if (!buf) this.fail('range', `${what} buffer ${b} does not exist`);
    if (count === 0) this.fail('range', `${what} channel count is 0`);
    if (ch + count > buf.channels) this.fail('range', `${what} channels [${ch}, ${ch + count}) outside a buffer of ${buf.channels}`);
    return buf;
  }

  private act(a: number): void {
    if (a > 2) this.fail('graph', `activation code ${a} is not 0, 1 or 2`);
  }

  private shapeIs(t: Tensor, shape: number[]): boolean {
    return t.shape.length === shape.length && t.shape.every((d, k) => d === shape[k]);
  }

  /** A float tensor (f32/f16, finite) of the given shape; a missing reference is out of range. */
  private floats(ref: number | null, shape: number[], what: string): void {
    const t = ref === null ? undefined : this.tensors[ref];
    if (!t) return this.fail('range', `${what} tensor ${ref ?? 'NONE'} does not exist`);
    if (!this.shapeIs(t, shape)) this.fail('shape', `${what} tensor ${ref} has shape [${t.shape}], expected [${shape}]`);
    this.floatValues(ref!, what);
  }

  private floatValues(ref: number, what: string): void {
    const t = this.tensors[ref]!;
    if (t.dtype !== 'f32' && t.dtype !== 'f16') this.fail('shape', `${what} tensor ${ref} is ${t.dtype}, must be f32 or f16`);
    if (!this.finiteChecked.has(ref)) {
      if (!allFinite(t)) this.fail('shape', `${what} tensor ${ref} holds NaN or infinite values`);
      this.finiteChecked.add(ref);
    }
  }

  private optionalFloats(ref: number | null, n: number, what: string): void {
    if (ref !== null) this.floats(ref, [n], what);
  }

  /** An index tensor of `count` values in [0, limit), distinct when asked; returns [min, max]. */
  private index(ref: number | null, count: number, limit: number, distinct: boolean, what: string): [number, number] {
    const t = ref === null ? undefined : this.tensors[ref];
    if (!t) return this.fail('range', `${what} tensor ${ref} does not exist`);
    if (!this.shapeIs(t, [count])) this.fail('shape', `${what} must have shape [${count}], has [${t.shape}]`);
    if (!isIndexDtype(t.dtype)) this.fail('shape', `${what} tensor ${ref} is ${t.dtype}, must be an integer tensor`);
    let st = this.stats.get(t);
    if (!st) {
      let max = -1, min = Infinity;
      const seen = new Set<number>();
      let repeats = false;
      for (const v of t.data) {
        if (v > max) max = v;
        if (v < min) min = v;
        if (!repeats) { if (seen.has(v)) repeats = true; else seen.add(v); }
      }
      st = { min, max, repeats };
      this.stats.set(t, st);
    }
    if (st.max >= limit) this.fail('index', `${what} value ${st.max} outside 0..${limit - 1}`);
    if (distinct && st.repeats) this.fail('index', `${what} repeats a channel`);
    return [st.min, st.max];
  }

  private alias(inBuf: number, inLo: number, inHi: number, outBuf: number, outLo: number, outHi: number): void {
    if (inBuf === outBuf && inLo <= outHi && outLo <= inHi) {
      this.fail('alias', `input channels [${inLo}, ${inHi}] and output channels [${outLo}, ${outHi}] overlap in buffer ${inBuf}`);
    }
  }

  check(op: Op, i: number): void {
    this.where = `op ${i} (${op.kind})`;
    switch (op.kind) {
      case 'conv2d': return this.conv(op);
      case 'se': return this.se(op);
      case 'avgpool': return this.pool(op);
      case 'global_avgpool': return this.pool(op);
      case 'fc': return this.fc(op);
      case 'channel_shuffle': return this.shuffle(op);
      case 'maxpool': return this.pool(op);
    }
  }

  private conv(op: Extract<Op, { kind: 'conv2d' }>): void {
    const { kernel: k, stride: s, pad, groups, cin, cout } = op;
    if (![1, 3, 5, 7].includes(k)) this.fail('graph', `kernel ${k} is not 1, 3, 5 or 7`);
    if (s < 1 || s > 4) this.fail('graph', `stride ${s} outside 1..4`);
    if (pad > (k >> 1)) this.fail('graph', `padding ${pad} larger than kernel/2`);
    if (groups === 0 || cin === 0 || cout === 0 || cin % groups !== 0 || cout % groups !== 0) {
      this.fail('graph', `groups ${groups} must divide cin ${cin} and cout ${cout} (none 0)`);
    }
    if (op.accumulate > 1) this.fail('graph', `accumulate ${op.accumulate} is not 0 or 1`);
    this.act(op.inAct);
    this.act(op.outAct);
    const inB = this.buffers[op.inBuffer], outB = this.buffers[op.outBuffer];
    if (!inB || !outB) return this.fail('range', 'buffer does not exist');
    let inLo: number, inHi: number, outLo: number, outHi: number;
    if (op.inIndex !== null) {
      if (op.inChannel >= inB.channels) this.fail('range', 'input channel offset outside the buffer');
      const [lo, hi] = this.index(op.inIndex, cin, inB.channels - op.inChannel, false, 'inIndex');
      inLo = op.inChannel + lo; inHi = op.inChannel + hi;
    } else {
      this.range(op.inBuffer, op.inChannel, cin, 'input');
      inLo = op.inChannel; inHi = op.inChannel + cin - 1;
    }
    if (op.outIndex !== null) {
      if (op.outChannel >= outB.channels) this.fail('range', 'output channel offset outside the buffer');
      const [lo, hi] = this.index(op.outIndex, cout, outB.channels - op.outChannel, op.accumulate === 0, 'outIndex');
      outLo = op.outChannel + lo; outHi = op.outChannel + hi;
    } else {
      this.range(op.outBuffer, op.outChannel, cout, 'output');
      outLo = op.outChannel; outHi = op.outChannel + cout - 1;
    }
    this.alias(op.inBuffer, inLo, inHi, op.outBuffer, outLo, outHi);
    if (inB.height + 2 * pad < k || inB.width + 2 * pad < k) this.fail('shape', 'input smaller than the kernel');
    const oh = Math.floor((inB.height + 2 * pad - k) / s) + 1, ow = Math.floor((inB.width + 2 * pad - k) / s) + 1;
    if (oh !== outB.height || ow !== outB.width) this.fail('shape', `output size ${oh}x${ow} does not match the output buffer`);
    this.floats(op.weight, [cout, cin / groups, k, k], 'weight');
    this.optionalFloats(op.bias, cout, 'bias');
    if ((op.inScale === null) !== (op.inShift === null)) this.fail('graph', 'inScale and inShift come together');
    this.optionalFloats(op.inScale, cin, 'inScale');
    this.optionalFloats(op.inShift, cin, 'inShift');
    // The runtime's scratch for this op (input panel + kernel scratch) must stay below 2^31 bytes.
    const panel = op.inIndex !== null || op.inScale !== null || op.inAct !== 0 ? cin * inB.height * inB.width * 4 : 0;
    if (align16(panel) + convKernelScratch(cin, inB.height, inB.width, k, s, pad) > 0x7fffffff) this.fail('overflow', 'scratch size overflows');
    const outIndex = op.outIndex === null ? null : this.tensors[op.outIndex]!;
    this.record(op.inBuffer, inLo, inHi, op.outBuffer, outLo, outHi, op.accumulate === 1, outIndex, op.outChannel);
  }

  private record(inBuf: number, inLo: number, inHi: number, outBuf: number, outLo: number, outHi: number,
    acc = false, outIndex: Tensor | null = null, outChannel = 0): void {
    this.access.push({ read: [inBuf, inLo, inHi], write: [outBuf, outLo, outHi], acc, outIndex, outChannel });
  }

  /**
   * Every channel an op reads, or accumulates into, must have been written earlier in the same run (index lists
   * count by their span), and the whole output must be written: otherwise a run sees what the previous one left
   * in the reused arena. Bitmaps of written channels per buffer, word by word, dropped after a buffer's last op.
   */
  proveWrites(inputBuffer: number, outputBuffer: number): void {
    const lastUse = new Map<number, number>();
    this.access.forEach((a, i) => { lastUse.set(a.read[0], i); lastUse.set(a.write[0], i); });
    lastUse.set(outputBuffer, Infinity);
    const written = new Map<number, Uint32Array>();
    const bitmap = (b: number): Uint32Array => {
      let w = written.get(b);
      if (!w) { w = new Uint32Array((this.buffers[b]!.channels + 31) >>> 5); written.set(b, w); }
      return w;
    };
    const span = (w: Uint32Array, lo: number, hi: number, set: boolean): boolean => {
      for (let k = lo >>> 5; k <= hi >>> 5; k++) {
        let mask = 0xffffffff;
        if (k === lo >>> 5) mask &= 0xffffffff << (lo & 31);
        if (k === hi >>> 5) mask &= 0xffffffff >>> (31 - (hi & 31));
        mask >>>= 0;
        if (set) w[k]! |= mask;
        else if ((w[k]! & mask) >>> 0 !== mask) return false;
      }
      return true;
    };
    span(bitmap(inputBuffer), 0, this.buffers[inputBuffer]!.channels - 1, true);
    this.access.forEach((a, i) => {
      const [rb, rlo, rhi] = a.read;
      const [wb, wlo, whi] = a.write;
      if (!span(bitmap(rb), rlo, rhi, false) || (a.acc && !span(bitmap(wb), wlo, whi, false))) {
        fail('unwritten', `op ${i} reads channels no earlier op writes`);
      }
      const w = bitmap(wb);
      if (a.outIndex && !a.acc) for (const v of a.outIndex.data) span(w, a.outChannel + v, a.outChannel + v, true);
      else span(w, wlo, whi, true);
      for (const b of [rb, wb]) if (lastUse.get(b) === i) written.delete(b);
    });
    if (!span(bitmap(outputBuffer), 0, this.buffers[outputBuffer]!.channels - 1, false)) {
      fail('unwritten', 'the output is not written by every run');
    }
  }

  private se(op: Extract<Op, { kind: 'se' }>): void {
    this.range(op.buffer, op.channel, op.channels, 'SE');
    if (op.hidden === 0 || op.hidden > 65535) this.fail('graph', `hidden width ${op.hidden} outside 1..65535`);
    if (op.gate !== 0) this.fail('graph', `unknown gate ${op.gate}`);
    const w1 = op.w1 === null ? undefined : this.tensors[op.w1], w2 = op.w2 === null ? undefined : this.tensors[op.w2];
    if (!w1 || !w2) return this.fail('range', 'weight tensor does not exist');
    if (!this.shapeIs(w1, [op.hidden, op.channels])) this.fail('shape', 'w1 must have shape [hidden, C]');
    if (!this.shapeIs(w2, [op.channels, op.hidden])) this.fail('shape', 'w2 must have shape [C, hidden]');
    this.floatValues(op.w1!, 'w1');
    this.floatValues(op.w2!, 'w2');
    this.optionalFloats(op.b1, op.hidden, 'b1');
    this.optionalFloats(op.b2, op.channels, 'b2');
    const hi = op.channel + op.channels - 1;
    this.record(op.buffer, op.channel, hi, op.buffer, op.channel, hi);
  }

  private pool(op: Extract<Op, { kind: 'avgpool' | 'global_avgpool' | 'maxpool' }>): void {
    this.record(op.inBuffer, op.inChannel, op.inChannel + op.channels - 1, op.outBuffer, op.outChannel, op.outChannel + op.channels - 1);
    const inB = this.range(op.inBuffer, op.inChannel, op.channels, 'input');
    const outB = this.range(op.outBuffer, op.outChannel, op.channels, 'output');
    this.alias(op.inBuffer, op.inChannel, op.inChannel + op.channels - 1, op.outBuffer, op.outChannel, op.outChannel + op.channels - 1);
    if (op.kind === 'global_avgpool') {
      this.act(op.inAct);
      if (outB.height !== 1 || outB.width !== 1) this.fail('shape', 'global pooling writes a 1x1 buffer');
      if ((op.inScale === null) !== (op.inShift === null)) this.fail('graph', 'inScale and inShift come together');
      this.optionalFloats(op.inScale, op.channels, 'inScale');
      this.optionalFloats(op.inShift, op.channels, 'inShift');
      return;
    }
    const { kernel: k, stride: s } = op;
    if (k < 1 || k > 16 || s < 1 || s > 16) this.fail('graph', 'pool kernel and stride must be 1..16');
    const pad = op.kind === 'maxpool' ? op.pad : 0;
    if (pad > (k >> 1)) this.fail('graph', `padding ${pad} larger than kernel/2`);
    if (inB.height + 2 * pad < k || inB.width + 2 * pad < k) this.fail('shape', 'input smaller than the pool kernel');
    if (Math.floor((inB.height + 2 * pad - k) / s) + 1 !== outB.height || Math.floor((inB.width + 2 * pad - k) / s) + 1 !== outB.width) {
      this.fail('shape', 'pooled size does not match the output buffer');
    }
    // The runtime's scratch for a max pool: one padded plane and 8 floats (assembly/kernels/maxpool.ts).
    if (((inB.height + 2 * pad) * (inB.width + 2 * pad) + 8) * 4 > 0x7fffffff) this.fail('overflow', 'scratch size overflows');
  }

  private fc(op: Extract<Op, { kind: 'fc' }>): void {
    const inB = this.range(op.inBuffer, op.inChannel, op.cin, 'input');
    const outB = this.range(op.outBuffer, op.outChannel, op.cout, 'output');
    this.act(op.outAct);
    if (inB.height !== 1 || inB.width !== 1 || outB.height !== 1 || outB.width !== 1) this.fail('shape', 'fully connected layers read and write 1x1 buffers');
    this.alias(op.inBuffer, op.inChannel, op.inChannel + op.cin - 1, op.outBuffer, op.outChannel, op.outChannel + op.cout - 1);
    this.floats(op.weight, [op.cout, op.cin], 'weight');
    this.optionalFloats(op.bias, op.cout, 'bias');
    this.record(op.inBuffer, op.inChannel, op.inChannel + op.cin - 1, op.outBuffer, op.outChannel, op.outChannel + op.cout - 1);
  }

  private shuffle(op: Extract<Op, { kind: 'channel_shuffle' }>): void {
    const inB = this.range(op.inBuffer, op.inChannel, op.channels, 'input');
    const outB = this.range(op.outBuffer, op.outChannel, op.channels, 'output');
    if (op.groups === 0 || op.channels % op.groups !== 0) this.fail('graph', `groups ${op.groups} must divide ${op.channels} channels`);
    if (inB.height !== outB.height || inB.width !== outB.width) this.fail('shape', 'shuffle keeps the spatial size');
    this.alias(op.inBuffer, op.inChannel, op.inChannel + op.channels - 1, op.outBuffer, op.outChannel, op.outChannel + op.channels - 1);
    this.record(op.inBuffer, op.inChannel, op.inChannel + op.channels - 1, op.outBuffer, op.outChannel, op.outChannel + op.channels - 1);
  }
}

interface Graph {
  buffers: BufferShape[];
  inputBuffer: number;
  outputBuffer: number;
  ops: Op[];
}

function parseGraph(bytes: Uint8Array, meta: MetaEntry[], tensors: Tensor[]): Graph {
  const c = new Cursor(bytes, 'GRPH');
  if (bytes.length < 16) fail('truncated', 'GRPH section too short');
  const bufferCount = c.u32('buffer count');
  const opCount = c.u32('op count');
  const inputBuffer = c.u32('input buffer');
  const outputBuffer = c.u32('output buffer');
  if (bufferCount < 1 || bufferCount > 65535) fail('graph', `GRPH: buffer count ${bufferCount} outside 1..65535`);
  if (opCount < 1 || opCount > 65535) fail('graph', `GRPH: op count ${opCount} outside 1..65535`);
  if (inputBuffer >= bufferCount || outputBuffer >= bufferCount || inputBuffer === outputBuffer) {
    fail('range', `GRPH: input buffer ${inputBuffer} and output buffer ${outputBuffer} must be two of the ${bufferCount} buffers`);
  }
  c.need(bufferCount * 12, `${bufferCount} buffer entries`);
  // Each op takes at least 4 bytes: the op count is bounded by the section size.
  if (opCount * 4 > bytes.length) fail('truncated', `GRPH: ${opCount} ops cannot fit in ${bytes.length} bytes`);
  const buffers: BufferShape[] = [];
  for (let i = 0; i < bufferCount; i++) {
    const b = { channels: c.u32('channels'), height: c.u32('height'), width: c.u32('width') };
    if ([b.channels, b.height, b.width].some((d) => d === 0 || d > 65535)) fail('shape', `buffer ${i}: a dimension outside 1..65535`);
    if (b.channels * b.height * b.width > MAX_BUFFER_ELEMENTS) fail('overflow', `buffer ${i}: ${b.channels}x${b.height}x${b.width} f32 overflows 32 bits`);
    buffers.push(b);
  }
  const shape = meta.find((e) => e.key === 'input.shape')!.value as Uint32Array;
  const inB = buffers[inputBuffer]!, outB = buffers[outputBuffer]!;
  if (shape[0] !== inB.channels || shape[1] !== inB.height || shape[2] !== inB.width) {
    fail('shape', `input buffer ${inB.channels}x${inB.height}x${inB.width} differs from 'input.shape' [${Array.from(shape)}]`);
  }
  // Optional since version 1.1: models of classes without shipped names (ImageNet configurations) omit them.
  const labels = meta.find((e) => e.key === 'labels')?.value as string[] | undefined;
  if (outB.height !== 1 || outB.width !== 1 || (labels && labels.length !== outB.channels)) {
    fail('shape', `output buffer ${outB.channels}x${outB.height}x${outB.width} must be 1x1 with one channel per label`);
  }
  const checker = new OpChecker(buffers, tensors);
  const ops: Op[] = [];
  for (let i = 0; i < opCount; i++) {
    const opcode = c.u16(`op ${i} opcode`);
    const words = c.u16(`op ${i} word count`);
    const kind = OP_BY_CODE.get(opcode);
    if (!kind) fail('graph', `op ${i}: unknown opcode ${opcode}`);
    const fields = OP_LAYOUT[kind].fields;
    if (words !== fields.length) fail('graph', `op ${i} (${kind}): ${words} words, expected ${fields.length}`);
    c.need(words * 4, `op ${i}`);
    const rec: Record<string, unknown> = { kind };
    for (const f of fields) {
      const v = c.u32(`op ${i} ${f}`);
      rec[f] = TENSOR_FIELDS.has(f) && v === NONE ? null : v;
    }
    const op = rec as unknown as Op;
    checker.check(op, i);
    ops.push(op);
  }
  if (c.remaining !== 0) fail('graph', `GRPH: ${c.remaining} bytes after its last op`);
  checker.proveWrites(inputBuffer, outputBuffer);
  return { buffers, inputBuffer, outputBuffer, ops };
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
  if (fileSize > bytes.length) fail('truncated', `header says ${fileSize} bytes, file has ${bytes.length}`);
  if (fileSize !== bytes.length) fail('size', `header says ${fileSize} bytes, file has ${bytes.length}`);
  const n = view.getUint32(12, true);
  if (n < 4 || n > 16) fail('size', `section count ${n} outside 4..16`);
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
    if (offset + size > bytes.length) fail('truncated', `section ${label} [${offset}, ${offset + size}) runs past the end of the file (${bytes.length})`);
    if (offset % 16 !== 0 || offset < dirEnd) fail('section', `section ${label} at ${offset} is misaligned or overlaps the header`);
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
  const graph = parseGraph(found.get('GRPH')!, meta, tensors);
  return { meta, buffers: graph.buffers, inputBuffer: graph.inputBuffer, outputBuffer: graph.outputBuffer, ops: graph.ops, tensors };
}

/** Alias names used by the CLI and tests. */
export const write = writeModel;
export const read = readModel;
