// Writes a state dict (an ordered dict of float32 / int64 tensors) in the zip format of torch.save (torch >= 1.6),
// which torch.load reads into an OrderedDict for load_state_dict. The pickle is the small fixed shape torch.save
// itself emits for a state dict (protocol 2: OrderedDict, _rebuild_tensor_v2, one persistent storage per tensor);
// pickle libraries on npm read pickles but do not write this one, so the few opcodes are emitted here. Zip: fflate.
import { zipSync } from 'fflate';

export interface SaveTensor { key: string; dtype: 'float32' | 'int64'; shape: number[]; data: Float32Array | BigInt64Array }

class PickleWriter {
  private readonly parts: number[] = [];
  private memo = 0;
  byte(...b: number[]): void { this.parts.push(...b); }
  u32(n: number): void { this.byte(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff); }
  put(): void { if (this.memo < 256) this.byte(0x71, this.memo++); else { this.byte(0x72); this.u32(this.memo++); } } // BINPUT / LONG_BINPUT
  global(module: string, name: string): void { this.byte(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`)); this.put(); } // GLOBAL
  str(s: string): void { const b = new TextEncoder().encode(s); this.byte(0x58); this.u32(b.length); this.byte(...b); this.put(); } // BINUNICODE
  int(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`cannot pickle ${n}`);
    if (n < 256) this.byte(0x4b, n);                 // BININT1
    else if (n < 0x80000000) { this.byte(0x4a); this.u32(n); } // BININT
    else { // LONG1 with 8 little-endian bytes
      this.byte(0x8a, 8);
      let v = BigInt(n);
      for (let i = 0; i < 8; i++) { this.byte(Number(v & 0xffn)); v >>= 8n; }
    }
  }
  tuple(items: (() => void)[]): void {
    if (items.length === 0) { this.byte(0x29); return; } // EMPTY_TUPLE
    if (items.length <= 3) { for (const f of items) f(); this.byte(0x85 + items.length - 1); return; } // TUPLE1..3
    this.byte(0x28); for (const f of items) f(); this.byte(0x74); // MARK ... TUPLE
  }
  emptyOrderedDict(): void { this.global('collections', 'OrderedDict'); this.byte(0x29, 0x52); this.put(); } // () REDUCE
  bytes(): Uint8Array { return Uint8Array.from(this.parts); }
}

const STORAGE_TYPE = { float32: 'FloatStorage', int64: 'LongStorage' } as const;

function contiguousStride(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) { s[d] = acc; acc *= shape[d]!; }
  return s;
}

/** The bytes of a torch.save zip file holding OrderedDict(key -> tensor) in the given order. */
export function torchSaveStateDict(tensors: SaveTensor[], archiveName = 'archive'): Uint8Array {
  const w = new PickleWriter();
  w.byte(0x80, 2); // PROTO 2
  w.emptyOrderedDict();
  w.byte(0x28); // MARK for SETITEMS
  const records: Record<string, Uint8Array> = {};
  tensors.forEach((t, i) => {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== numel) throw new Error(`${t.key}: ${t.data.length} values for shape [${t.shape}]`);
    w.str(t.key);
    w.global('torch._utils', '_rebuild_tensor_v2');
    w.tuple([
      () => { // persistent id ('storage', torch.XStorage, key, 'cpu', numel)
        w.tuple([() => w.str('storage'), () => w.global('torch', STORAGE_TYPE[t.dtype]), () => w.str(String(i)), () => w.str('cpu'), () => w.int(numel)]);
        w.byte(0x51); // BINPERSID
      },
      () => w.int(0),
      () => w.tuple(t.shape.map((d) => () => w.int(d))),
      () => w.tuple(contiguousStride(t.shape).map((d) => () => w.int(d))),
      () => w.byte(0x89), // NEWFALSE: requires_grad
      () => w.emptyOrderedDict(), // backward hooks
    ]);
    w.byte(0x52); w.put(); // REDUCE
    records[`${archiveName}/data/${i}`] = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  });
  w.byte(0x75, 0x2e); // SETITEMS, STOP
  const files: Record<string, Uint8Array> = { [`${archiveName}/data.pkl`]: w.bytes(), [`${archiveName}/byteorder`]: new TextEncoder().encode('little') };
  Object.assign(files, records);
  files[`${archiveName}/version`] = new TextEncoder().encode('3\n');
  return zipSync(files, { level: 0 });
}
