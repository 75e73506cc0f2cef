// Loads the kernel test harness (build/test/kernels{,-scalar,-relaxed}.wasm) and moves arrays in and out of its memory.
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import v8 from 'node:v8';

// Node 20 validates relaxed-SIMD modules only with this flag; it must be set before the module is compiled.
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const BUILDS = ['simd', 'scalar', 'relaxed'] as const;
export type BuildName = (typeof BUILDS)[number];
const suffix: Record<BuildName, string> = { simd: '', scalar: '-scalar', relaxed: '-relaxed' };

/** The harness exports (assembly/runtime/testing.ts). Pointers are byte addresses; 0 = absent. */
export interface KernelExports {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  free(ptr: number): void;
  activate_inplace(ptr: number, n: number, act: number): void;
  prepare_channels(src: number, hw: number, index: number, scale: number, shift: number, act: number, n: number, dst: number): void;
  conv1x1_group(input: number, cin: number, hw: number, weight: number, bias: number, cout: number, groups: number,
    out: number, outIndex: number, outAct: number, accumulate: number): void;
  conv2d_scratch_bytes(cin: number, h: number, w: number, kernel: number, stride: number, pad: number): number;
  conv2d_group(input: number, cin: number, h: number, w: number, weight: number, bias: number, cout: number, groups: number,
    kernel: number, stride: number, pad: number, out: number, outH: number, outW: number, outIndex: number,
    outAct: number, accumulate: number, scratch: number): void;
  avgpool(input: number, channels: number, h: number, w: number, kernel: number, stride: number, out: number, outH: number, outW: number): void;
  global_avgpool(input: number, channels: number, hw: number, scale: number, shift: number, act: number, out: number): void;
  maxpool_scratch_bytes(h: number, w: number, pad: number): number;
  maxpool(input: number, channels: number, h: number, w: number, kernel: number, stride: number, pad: number, out: number,
    outH: number, outW: number, scratch: number): void;
  conv3x3s2p1_split_scratch_bytes(cin: number, h: number, w: number): number;
  conv3x3s2p1_split(input: number, cin: number, h: number, w: number, weight: number, bias: number, cout: number,
    out: number, outH: number, outW: number, outIndex: number, outAct: number, accumulate: number, scratch: number): void;
  maxpool3x3s2p1_split_scratch_bytes(h: number, w: number): number;
  maxpool3x3s2p1_split(input: number, channels: number, h: number, w: number, out: number, outH: number, outW: number, scratch: number): void;
  depthwise3x3_scratch_bytes(h: number, w: number): number;
  depthwise3x3(input: number, channels: number, h: number, w: number, weight: number, bias: number, stride: number,
    out: number, outH: number, outW: number, outIndex: number, outAct: number, accumulate: number, scratch: number): void;
  squeeze_excite(x: number, channels: number, hw: number, hidden: number, w1: number, b1: number, w2: number, b2: number, scratch: number): void;
  fully_connected(input: number, cin: number, weight: number, bias: number, cout: number, outAct: number, out: number): void;
  channel_shuffle(input: number, channels: number, hw: number, groups: number, out: number): void;
  softmax(input: number, n: number, out: number): void;
  top_k(values: number, n: number, k: number, outIndex: number): void;
  peak_madd(iterations: number): number;
  peak_madds_per_iteration(): number;
}

export function wasmPath(build: BuildName, dir = path.join(root, 'build/test')): string {
  return path.join(dir, `kernels${suffix[build]}.wasm`);
}

const compiled = new Map<string, WebAssembly.Module>();

/** Compiles a build once; throws a clear error when it has not been built. */
export function kernelModule(build: BuildName, dir?: string): WebAssembly.Module {
  const key = dir ? `${build} ${dir}` : build;
  let m = compiled.get(key);
  if (!m) {
    const file = wasmPath(build, dir);
    if (!existsSync(file)) throw new Error(`${file} missing: run node scripts/build-wasm.mjs test/kernels`);
    m = new WebAssembly.Module(readFileSync(file));
    // A harness linked with the WASI shim (asc applied a project asconfig.json) defers global initialisation, the heap
    // pointer included, to _start, which would run the command; its alloc() then hands out memory over static data.
    if (WebAssembly.Module.exports(m).some((e) => e.name === '_start')) {
      throw new Error(`${file} was built with the WASI shim config (exports _start): build the harness without asconfig.json`);
    }
    compiled.set(key, m);
  }
  return m;
}

/**
 * Kernels call no imports, but a build may link some (e.g. a WASI shim picked up from a project asconfig.json);
 * each is satisfied by a function that throws, so using one fails loudly instead of failing instantiation.
 */
function failingImports(module: WebAssembly.Module): WebAssembly.Imports {
  const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.kind !== 'function') throw new Error(`kernel harness imports a ${imp.kind} (${imp.module}.${imp.name})`);
    (imports[imp.module] ??= {})[imp.name] = () => { throw new Error(`kernel harness called import ${imp.module}.${imp.name}`); };
  }
  return imports;
}

/** Sentinel written around output buffers; a kernel that writes outside its planes changes it. */
export const SENTINEL = -7777.25;
const GUARD_FLOATS = 32;

/** One fresh instance of a build with helpers. Instances are cheap; use one per test case to start from empty memory. */
export class Kernels {
  readonly k: KernelExports;
  private guards: { ptr: number; n: number }[] = [];
  /** dir: a folder holding another build of the harness (e.g. the previous commit's build/test), for A/B benchmarks. */
  constructor(readonly build: BuildName, dir?: string) {
    const module = kernelModule(build, dir);
    this.k = new WebAssembly.Instance(module, failingImports(module)).exports as unknown as KernelExports;
  }
  private get buf(): ArrayBuffer { return this.k.memory.buffer; }

  /** Allocates n floats (16-byte aligned), zeroed. */
  allocF32(n: number): number {
    const p = this.k.alloc(Math.max(4, n * 4));
    new Float32Array(this.buf, p, n).fill(0);
    return p;
  }
  /** Copies an array into fresh memory; returns its address. */
  put(a: Float32Array | Int32Array | ArrayLike<number>, type: 'f32' | 'i32' = 'f32'): number {
    const n = a.length;
    const p = this.k.alloc(Math.max(4, n * 4));
    const view = type === 'i32' || a instanceof Int32Array ? new Int32Array(this.buf, p, n) : new Float32Array(this.buf, p, n);
    view.set(a as ArrayLike<number>);
    return p;
  }
  putI32(a: ArrayLike<number>): number { return this.put(Int32Array.from(a), 'i32'); }
  /** Copies n floats out of memory. */
  getF32(ptr: number, n: number): Float32Array { return new Float32Array(this.buf, ptr, n).slice(); }
  getI32(ptr: number, n: number): Int32Array { return new Int32Array(this.buf, ptr, n).slice(); }

  /** Like put, but surrounded by SENTINEL floats that checkGuards verifies. `shift` (0..3 floats) misaligns the data. */
  putGuarded(a: Float32Array, shift = 0): number {
    const base = this.allocF32(a.length + 2 * GUARD_FLOATS + shift);
    const all = new Float32Array(this.buf, base, a.length + 2 * GUARD_FLOATS + shift);
    all.fill(SENTINEL);
    const p = base + (GUARD_FLOATS + shift) * 4;
    new Float32Array(this.buf, p, a.length).set(a);
    this.guards.push({ ptr: p, n: a.length });
    return p;
  }
  /** Number of guard floats (before and after every guarded buffer) that no longer hold SENTINEL. */
  damagedGuards(): number {
    let bad = 0;
    for (const g of this.guards) {
      const before = new Float32Array(this.buf, g.ptr - GUARD_FLOATS * 4, GUARD_FLOATS);
      const after = new Float32Array(this.buf, g.ptr + g.n * 4, GUARD_FLOATS);
      for (const v of before) if (v !== SENTINEL) bad++;
      for (const v of after) if (v !== SENTINEL) bad++;
    }
    return bad;
  }

  /**
   * Copies a into the last bytes of linear memory (after growing it), so any read past its end traps. Call after all
   * alloc() calls of a case: a later alloc could grow memory and lift the protection.
   */
  putAtEnd(a: Float32Array | Int32Array, extraBytes = 0): number {
    const bytes = a.length * 4 + extraBytes;
    this.k.memory.grow(Math.ceil(bytes / 65536) + 1);
    const p = this.buf.byteLength - bytes;
    const view = a instanceof Int32Array ? new Int32Array(this.buf, p, a.length) : new Float32Array(this.buf, p, a.length);
    view.set(a);
    return p;
  }
  /** Reserves `bytes` at the very end of memory (filled with a NaN pattern) and returns the address. */
  reserveAtEnd(bytes: number): number {
    this.k.memory.grow(Math.ceil(bytes / 65536) + 1);
    const p = this.buf.byteLength - bytes;
    new Uint8Array(this.buf, p, bytes).fill(0xff);
    return p;
  }
}

/** Deterministic PRNG (mulberry32) for test data. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n uniform floats in [lo, hi). */
export function randomF32(r: () => number, n: number, lo = -1, hi = 1): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

/** max |a - b| / max(1e-6, max |ref|): error relative to the output's scale (see test/assembly/kernels.test.ts). */
export function relError(actual: Float32Array, ref: Float32Array): number {
  if (actual.length !== ref.length) return Infinity;
  let maxDiff = 0, maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(actual[i] - ref[i]);
    if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Infinity : d;
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
  }
  return maxDiff / Math.max(1e-6, maxRef);
}
