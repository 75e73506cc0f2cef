// Reads files written by torch.save without Python: the zip format (torch >= 1.6: <top>/data.pkl, one raw record
// per storage under <top>/data/) and the legacy format (magic, protocol and system-info pickles, the object pickle,
// the storage key list, then each storage as an 8-byte element count and its bytes). The pickle layer is
// `pickleparser`, the zip layer `fflate`. A .pth is a program; this reader executes nothing: only the Python globals
// a checkpoint of tensors needs resolve, each to inert data (ALLOWED_GLOBALS), and any other global is an error.
import { unzipSync } from 'fflate';
import { BufferReader, Parser } from 'pickleparser';

export class TorchFileError extends Error {
  override name = 'TorchFileError';
}

export type TorchDtype = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

const STORAGE_DTYPES: Record<string, TorchDtype> = {
  FloatStorage: 'float32', DoubleStorage: 'float64', HalfStorage: 'float16', BFloat16Storage: 'bfloat16',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8', BoolStorage: 'bool',
};
const ELEMENT_BYTES: Record<TorchDtype, number> = {
  float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

/** A storage referenced by the pickle: its bytes are attached after the pickle is read. */
interface StorageRef { kind: 'storage'; dtype: TorchDtype; key: string; numel: number; bytes?: Uint8Array }

/** One tensor as torch._utils._rebuild_tensor_v2 describes it: a strided view into a storage. */
export class TorchTensor {
  constructor(readonly storage: StorageRef, readonly offset: number, readonly shape: number[], readonly stride: number[]) {}

  get dtype(): TorchDtype { return this.storage.dtype; }
  get numel(): number { return this.shape.reduce((a, b) => a * b, 1); }

  private isContiguous(): boolean {
    let expect = 1;
    for (let d = this.shape.length - 1; d >= 0; d--) {
      if (this.shape[d] !== 1 && this.stride[d] !== expect) return false;
      expect *= this.shape[d]!;
    }
    return true;
  }

  /** Values in row-major order as float64 (exact for every dtype but int64 beyond 2^53, rejected). */
  values(): Float64Array {
    const bytes = this.storage.bytes;
    if (!bytes) throw new TorchFileError(`storage ${this.storage.key} has no data`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = this.numel;
    const out = new Float64Array(n);
    const read = elementReader(this.dtype, view);
    if (this.isContiguous()) { // the usual case: one run of elements, no index arithmetic
      for (let i = 0; i < n; i++) out[i] = read(this.offset + i);
      return out;
    }
    const idx = new Array<number>(this.shape.length).fill(0);
    for (let i = 0; i < n; i++) {
      let e = this.offset;
      for (let d = 0; d < idx.length; d++) e += idx[d]! * this.stride[d]!;
      out[i] = read(e);
      for (let d = idx.length - 1; d >= 0; d--) { if (++idx[d]! < this.shape[d]!) break; idx[d] = 0; }
    }
    return out;
  }
}

function elementReader(dtype: TorchDtype, v: DataView): (i: number) => number {
  switch (dtype) {
    case 'float32': return (i) => v.getFloat32(i * 4, true);
    case 'float64': return (i) => v.getFloat64(i * 8, true);
    case 'float16': return (i) => halfToFloat(v.getUint16(i * 2, true));
    case 'bfloat16': return (i) => { const b = new DataView(new ArrayBuffer(4)); b.setUint32(0, v.getUint16(i * 2, true) << 16); return b.getFloat32(0); };
    case 'int64': return (i) => {
      const x = v.getBigInt64(i * 8, true);
      if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < -BigInt(Number.MAX_SAFE_INTEGER)) throw new TorchFileError(`int64 value ${x} out of range`);
      return Number(x);
    };
    case 'int32': return (i) => v.getInt32(i * 4, true);
    case 'int16': return (i) => v.getInt16(i * 2, true);
    case 'int8': return (i) => v.getInt8(i);
    case 'uint8': case 'bool': return (i) => v.getUint8(i);
  }
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** Python objects a checkpoint may hold besides tensors, kept as inert records. */
export class PyObject {
  readonly state = new Map<unknown, unknown>();
  constructor(readonly type: string) {}
  __setstate__(s: unknown): void {
    if (s instanceof Map) for (const [k, v] of s) this.state.set(k, v);
  }
}

function isNat(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function rebuildTensor(storage: unknown, offset: unknown, size: unknown, stride: unknown): TorchTensor {
  if (!(storage && (storage as StorageRef).kind === 'storage')) throw new TorchFileError('_rebuild_tensor_v2: first argument is not a storage');
  if (!isNat(offset) || !Array.isArray(size) || !Array.isArray(stride) || size.length !== stride.length || !size.every(isNat) || !stride.every(isNat)) {
    throw new TorchFileError('_rebuild_tensor_v2: bad offset, size or stride');
  }
  const s = storage as StorageRef;
  // The last element the view reaches must lie inside the storage (checked before anything is read).
  let last = offset;
  for (let d = 0; d < size.length; d++) if (size[d] === 0) last = -1; else if (last >= 0) last += (size[d]! - 1) * stride[d]!;
  if (last >= s.numel) throw new TorchFileError(`tensor [${size.join(', ')}] at offset ${offset} reaches past its storage of ${s.numel} elements`);
  return new TorchTensor(s, offset, size as number[], stride as number[]);
}

function inertFunction(name: string): () => never {
  return () => { throw new TorchFileError(`the checkpoint calls ${name}, which a state dict never does`); };
}

/** The Python globals a checkpoint of tensors needs, each mapped to data; nothing else resolves. */
function allowedGlobals(): Map<string, (...args: any[]) => any> {
  const m = new Map<string, (...args: any[]) => any>();
  m.set('collections.OrderedDict', function OrderedDict() { return new Map(); });
  m.set('torch._utils._rebuild_tensor_v2', (storage: unknown, offset: unknown, size: unknown, stride: unknown) => rebuildTensor(storage, offset, size, stride));
  m.set('torch._utils._rebuild_tensor', (storage: unknown, offset: unknown, size: unknown, stride: unknown) => rebuildTensor(storage, offset, size, stride));
  m.set('torch._utils._rebuild_parameter', (data: unknown) => {
    if (!(data instanceof TorchTensor)) throw new TorchFileError('_rebuild_parameter: not a tensor');
    return data;
  });
  for (const name of Object.keys(STORAGE_DTYPES)) {
    const f = inertFunction(`torch.${name}`);
    (f as unknown as { storageType: string }).storageType = name;
    m.set(`torch.${name}`, f);
  }
  // train.py checkpoints carry the run's argparse.Namespace: kept as a record, never constructed for real.
  m.set('argparse.Namespace', function Namespace() { return new PyObject('argparse.Namespace'); });
  return m;
}

export const ALLOWED_GLOBALS = [...allowedGlobals().keys()];

function makeParser(storages: Map<string, StorageRef>): Parser {
  const globals = allowedGlobals();
  return new Parser({
    unpicklingTypeOfDictionary: 'Map',
    nameResolver: {
      resolve: (module: string, name: string) => {
        const f = globals.get(`${module}.${name}`);
        if (!f) {
          throw new TorchFileError(`refusing the Python global '${module}.${name}': a checkpoint of tensors needs only `
            + `${ALLOWED_GLOBALS.join(', ')} (a .pth file is a program and this reader runs none of it)`);
        }
        return f;
      },
    },
    persistentResolver: {
      resolve: (pid: unknown) => {
        // zip: ('storage', <torch.XStorage>, key, location, numel); legacy adds view metadata (always None here).
        if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) throw new TorchFileError('unsupported persistent id in the pickle');
        const type = (pid[1] as { storageType?: string } | undefined)?.storageType;
        const dtype = type ? STORAGE_DTYPES[type] : undefined;
        if (!dtype) throw new TorchFileError('persistent id names no known storage type');
        const key = String(pid[2]);
        const numel = pid[4];
        if (!isNat(numel)) throw new TorchFileError(`storage ${key}: bad element count`);
        if (pid.length > 5 && pid[5] !== null && pid[5] !== undefined) throw new TorchFileError(`storage ${key}: storage views are not supported`);
        const prev = storages.get(key);
        if (prev) {
          if (prev.dtype !== dtype || prev.numel !== numel) throw new TorchFileError(`storage ${key} is referenced with two different types or sizes`);
          return prev;
        }
        const ref: StorageRef = { kind: 'storage', dtype, key, numel };
        storages.set(key, ref);
        return ref;
      },
    },
  });
}

function unpickle(parser: Parser, reader: BufferReader, what: string): unknown {
  try {
    return parser.read(reader);
  } catch (e) {
    if (e instanceof TorchFileError) throw e;
    throw new TorchFileError(`${what}: not a valid pickle (${(e as Error).message})`);
  }
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_MAGIC_LE = Array.from({ length: 10 }, (_, i) => Number((LEGACY_MAGIC >> BigInt(8 * i)) & 0xffn));

function isZip(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04;
}

function readZip(bytes: Uint8Array): unknown {
  // Directory first (sizes only), so nothing is inflated or copied before the layout is known to be a torch file.
  const entries = new Map<string, { size: number; originalSize: number; compression: number }>();
  try {
    unzipSync(bytes, { filter: (f) => { entries.set(f.name, { size: f.size, originalSize: f.originalSize, compression: f.compression }); return false; } });
  } catch (e) {
    throw new TorchFileError(`not a readable zip archive (${(e as Error).message})`);
  }
  const pkl = [...entries.keys()].find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pkl) throw new TorchFileError('zip archive without <name>/data.pkl: not written by torch.save');
  const top = pkl.slice(0, pkl.indexOf('/'));
  const byteorder = entries.has(`${top}/byteorder`) ? 'check' : 'little';
  let total = 0;
  for (const e of entries.values()) {
    if (e.compression !== 0 && e.compression !== 8) throw new TorchFileError(`zip entry compressed with method ${e.compression}`);
    total += e.originalSize;
  }
  // Deflated entries could expand without bound: torch stores its records uncompressed, so allow little growth.
  if (total > 2 * bytes.length + (1 << 20)) throw new TorchFileError(`zip entries claim ${total} bytes unpacked from a ${bytes.length}-byte file`);
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes, { filter: (f) => f.name === pkl || f.name.startsWith(`${top}/data/`) || f.name === `${top}/byteorder` });
  } catch (e) {
    throw new TorchFileError(`zip archive: ${(e as Error).message}`);
  }
  if (byteorder === 'check' && new TextDecoder().decode(files[`${top}/byteorder`]) !== 'little') throw new TorchFileError('big-endian tensors are not supported');
  const storages = new Map<string, StorageRef>();
  const obj = unpickle(makeParser(storages), new BufferReader(files[pkl]!), 'data.pkl');
  for (const s of storages.values()) {
    const rec = files[`${top}/data/${s.key}`];
    if (!rec) throw new TorchFileError(`storage ${s.key}: record ${top}/data/${s.key} missing`);
    const want = s.numel * ELEMENT_BYTES[s.dtype];
    if (rec.length !== want) throw new TorchFileError(`storage ${s.key}: ${rec.length} bytes, expected ${want} (${s.numel} x ${s.dtype})`);
    s.bytes = rec;
  }
  return obj;
}

function readLegacy(bytes: Uint8Array): unknown {
  const reader = new BufferReader(bytes);
  const storages = new Map<string, StorageRef>();
  const parser = makeParser(storages);
  // The magic number is an 80-bit LONG1, beyond what pickleparser decodes: match its pickle byte for byte.
  const magicPickle = [0x80, bytes[1]!, 0x8a, 0x0a, ...LEGACY_MAGIC_LE, 0x2e];
  if (bytes.length < magicPickle.length || magicPickle.some((b, i) => bytes[i] !== b)) {
    throw new TorchFileError('neither a torch.save zip archive nor a legacy torch.save file (bad magic number)');
  }
  reader.skip(magicPickle.length);
  const protocol = unpickle(parser, reader, 'legacy header');
  if (protocol !== 1001) throw new TorchFileError(`legacy format protocol ${String(protocol)}, expected 1001`);
  const sys = unpickle(parser, reader, 'legacy header');
  if (sys instanceof Map && sys.get('little_endian') === false) throw new TorchFileError('big-endian tensors are not supported');
  const obj = unpickle(parser, reader, 'legacy pickle');
  const keys = unpickle(parser, reader, 'legacy storage list');
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw new TorchFileError('legacy storage list is not a list of keys');
  let pos = reader.position;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const key of keys as string[]) {
    const s = storages.get(key);
    if (!s) throw new TorchFileError(`legacy storage ${key} is not referenced by the pickle`);
    if (pos + 8 > bytes.length) throw new TorchFileError(`legacy storage ${key}: truncated`);
    const count = view.getBigUint64(pos, true);
    if (count !== BigInt(s.numel)) throw new TorchFileError(`legacy storage ${key}: ${count} elements, the pickle says ${s.numel}`);
    const n = s.numel * ELEMENT_BYTES[s.dtype];
    if (pos + 8 + n > bytes.length) throw new TorchFileError(`legacy storage ${key}: ${n} bytes do not fit in the file`);
    s.bytes = bytes.subarray(pos + 8, pos + 8 + n);
    pos += 8 + n;
  }
  for (const s of storages.values()) if (!s.bytes) throw new TorchFileError(`storage ${s.key} has no data in the file`);
  return obj;
}

/** The object a torch.save file holds, with tensors as TorchTensor, dicts as Map, tuples and lists as arrays. */
export function readTorchFile(bytes: Uint8Array): unknown {
  if (bytes.length < 4) throw new TorchFileError('file too short to be a torch.save file');
  if (isZip(bytes)) return readZip(bytes);
  if (bytes[0] === 0x80) return readLegacy(bytes);
  if (bytes.length > 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === 'ustar') {
    throw new TorchFileError('tar-format torch.save files (PyTorch < 0.4) are not supported');
  }
  throw new TorchFileError('neither a torch.save zip archive nor a legacy torch.save file');
}
