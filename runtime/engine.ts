// Platform-neutral JS API over the library build (build/cdnv2-lib*.wasm). One WebAssembly instance per loaded
// model: no shared state, several models at once, and a model's memory is gone with it.
import { readMetaEntries, type MetaEntry } from '../base/cnv2/format.js';
import { ERROR_CODES } from '../base/cnv2/error-codes.js';

export type Isa = 'simd' | 'relaxed' | 'scalar';

/** Names of the runtime's numeric error codes (assembly/runtime/errors.ts), shared with the TypeScript reader. */
export const ERROR_NAMES = ERROR_CODES;

/** Every failure of the runtime: `code` is one of ERROR_NAMES (or 'wasm' for an engine fault). */
export class Cdnv2Error extends Error {
  override name = 'Cdnv2Error';
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export interface ModelMeta {
  name: string;
  arch?: string;
  inputShape: [number, number, number]; // channels, height, width
  mean: number[];
  std: number[];
  labels: string[]; // empty when the model names no classes (predictions are then labelled by index)
  resize: 'bilinear' | 'bicubic' | 'nearest';
  /** Official evaluation resize: shorter side to this size (antialiased, as PIL), then centre crop. */
  resizeShorter?: number;
  provenance?: Record<string, unknown>;
}

export interface Prediction {
  index: number;
  label: string;
  score: number;
}

/** Decoded pixels, interleaved (HWC). Integer samples are divided by maxValue; floats are taken as [0,1]. */
export interface ImageData {
  width: number;
  height: number;
  channels: number;  // 1, 3 or 4
  data: Uint8Array | Uint8ClampedArray | Uint16Array | Float32Array;
  maxValue?: number; // default 255 for 8-bit, 65535 for 16-bit arrays
}

interface LibExports {
  memory: WebAssembly.Memory;
  cdnv2_alloc(bytes: number): number;
  cdnv2_free(ptr: number): void;
  cdnv2_load(ptr: number, length: number, arenaLimitBytes: number): number;
  cdnv2_unload(handle: number): number;
  cdnv2_run(handle: number): number;
  cdnv2_preprocess(handle: number, pixels: number, width: number, height: number, channels: number): number;
  cdnv2_preprocess_pnm(handle: number, ptr: number, length: number): number;
  cdnv2_probabilities(handle: number, dst: number): number;
  cdnv2_top_k(src: number, n: number, k: number, dst: number): number;
  cdnv2_input_ptr(handle: number): number;
  cdnv2_input_length(handle: number): number;
  cdnv2_output_ptr(handle: number): number;
  cdnv2_output_length(handle: number): number;
  cdnv2_arena_bytes(handle: number): number;
  cdnv2_macs(handle: number): number;
  cdnv2_buffer_ptr(handle: number, index: number): number;
  cdnv2_buffer_length(handle: number, index: number): number;
  cdnv2_error_code(): number;
  cdnv2_error_message(): number;
  cdnv2_error_message_length(): number;
  cdnv2_peak_madd(iterations: number): number;
  cdnv2_peak_madds_per_iteration(): number;
  cdnv2_isa(): number;
  cdnv2_op_count(handle: number): number;
  cdnv2_run_ops(handle: number, first: number, end: number): number;
  cdnv2_op_info(handle: number, index: number, dst: number): number;
}

/** One op of a per-op profile (`Cdnv2Model.profile`, and the WASI command's `bench --profile`). */
export interface OpProfile {
  index: number;
  /** `conv3x3/s2`, `conv1x1`, `se`, `avgpool`, `global_avgpool`, `fc`, `channel_shuffle` */
  kind: string;
  input: [number, number, number];   // channels (as gathered), height, width
  output: [number, number, number];
  groups: number;
  /** Multiply-adds, counted as converter/flops.ts does (0 for pools and shuffles). */
  madds: number;
  /** Median over the profiled runs of this op's own time. */
  medianMs: number;
  /** medianMs over the sum of all ops' medians, 0..1. */
  share: number;
  /** madds / medianMs, per second (0 where the op has no multiply-adds). */
  maddsPerSecond: number;
}

/** Reads the per-op table of the WASI command's `bench --profile` output (the format of formatProfile). */
export function parseProfile(text: string): OpProfile[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^\s*op kind\s/.test(l));
  if (start < 0) return [];
  const rows: OpProfile[] = [];
  for (const line of lines.slice(start + 1)) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 9 || !/^\d+$/.test(f[0]!)) break;
    const dims = (s: string): [number, number, number] => s.split('x').map(Number) as [number, number, number];
    const madds = Number(f[5]), medianMs = Number(f[6]);
    rows.push({
      index: Number(f[0]), kind: f[1]!, input: dims(f[2]!), output: dims(f[3]!), groups: Number(f[4]), madds, medianMs,
      share: Number(f[7]!.replace('%', '')) / 100, maddsPerSecond: medianMs > 0 ? madds / (medianMs / 1000) : 0,
    });
  }
  return rows;
}

const OP_KINDS = ['', 'conv2d', 'se', 'avgpool', 'global_avgpool', 'fc', 'channel_shuffle', 'maxpool'];

/** The profile as the WASI command prints it (`bench --profile`): one aligned row per op, then the sum. */
export function formatProfile(rows: OpProfile[]): string {
  const dims = (d: [number, number, number]): string => d.join('x');
  const lines = [`${'op'.padStart(4)} ${'kind'.padEnd(10)} ${'input'.padStart(11)} ${'output'.padStart(11)} ${'groups'.padStart(6)} ${'madds'.padStart(11)} ${'median_ms'.padStart(9)} ${'share'.padStart(6)} Gmadd/s`];
  for (const r of rows) {
    lines.push(`${String(r.index).padStart(4)} ${r.kind.padEnd(10)} ${dims(r.input).padStart(11)} ${dims(r.output).padStart(11)} `
      + `${String(r.groups).padStart(6)} ${String(r.madds).padStart(11)} ${r.medianMs.toFixed(4).padStart(9)} `
      + `${`${(100 * r.share).toFixed(1)}%`.padStart(6)} ${r.madds > 0 && r.medianMs > 0 ? (r.maddsPerSecond / 1e9).toFixed(2) : '-'}`);
  }
  lines.push(`profile sum ms: ${rows.reduce((a, r) => a + r.medianMs, 0).toFixed(3)}`);
  return `${lines.join('\n')}\n`;
}

export function metaOf(entries: MetaEntry[]): ModelMeta {
  const getMeta = (key: string) => entries.find((e) => e.key === key)?.value;
  const shape = getMeta('input.shape') as Uint32Array;
  const provenance = getMeta('provenance') as string | undefined;
  let parsed: Record<string, unknown> | undefined;
  if (provenance) {
    try { parsed = JSON.parse(provenance) as Record<string, unknown>; } catch { parsed = { text: provenance }; }
  }
  return {
    name: getMeta('name') as string,
    arch: getMeta('arch') as string | undefined,
    inputShape: [shape[0]!, shape[1]!, shape[2]!],
    mean: Array.from(getMeta('input.mean') as Float32Array),
    std: Array.from(getMeta('input.std') as Float32Array),
    labels: ((getMeta('labels') as string[] | undefined) ?? []).slice(),
    resize: (['nearest', 'bicubic'] as const).find((r) => r === getMeta('input.resize')) ?? 'bilinear',
    ...(getMeta('input.resize_shorter') ? { resizeShorter: (getMeta('input.resize_shorter') as Uint32Array)[0]! } : {}),
    provenance: parsed,
  };
}

/** Runs the library's own engine against a thrown wasm fault so callers only ever see Cdnv2Error. */
function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Cdnv2Error) throw err;
    throw new Cdnv2Error('wasm', `runtime fault: ${(err as Error).message}`);
  }
}

export class Cdnv2Model {
  readonly meta: ModelMeta;
  readonly arenaBytes: number;
  /** Multiply-adds of one run (the compute budget; pooling, shuffles and gathers count one per element). */
  readonly macs: number;
  readonly inputLength: number;
  readonly outputLength: number;
  readonly isa: Isa;
  private exports: LibExports | null;
  private readonly handle: number;

  private constructor(exports: LibExports, handle: number, meta: ModelMeta, isa: Isa) {
    this.exports = exports;
    this.handle = handle;
    this.meta = meta;
    this.isa = isa;
    this.arenaBytes = exports.cdnv2_arena_bytes(handle) >>> 0;
    this.macs = exports.cdnv2_macs(handle);
    this.inputLength = exports.cdnv2_input_length(handle);
    this.outputLength = exports.cdnv2_output_length(handle);
  }

  /**
   * Validates and plans a model in a fresh instance of `module`. The wasm loader validates every byte; the
   * TypeScript side then only reads the META section of bytes already known to be well formed.
   */
  static async create(module: WebAssembly.Module, isa: Isa, bytes: Uint8Array, arenaLimitBytes = 0, maxMacs = 0): Promise<Cdnv2Model> {
    if (!(bytes instanceof Uint8Array)) throw new Cdnv2Error('input', 'model bytes must be a Uint8Array');
    for (const [what, v] of [['arenaLimitBytes', arenaLimitBytes], ['maxMacs', maxMacs]] as const) {
      if (typeof v !== 'number' || !(v >= 0)) throw new Cdnv2Error('input', `${what} must be a number >= 0 (0: no limit), got ${String(v)}`);
    }
    return guard(() => {
      // Synchronous instantiation of an already compiled module: no thread hop (the module has no imports).
      // Engines cap how many instances (each with its own memory) a process may hold: a RangeError here.
      const ex = new WebAssembly.Instance(module, {}).exports as unknown as LibExports;
      const ptr = allocIn(ex, bytes.length);
      new Uint8Array(ex.memory.buffer, ptr, bytes.length).set(bytes);
      // The wasm side takes a u32 byte count (0 = its default); larger limits cannot matter in wasm32.
      const limit = arenaLimitBytes > 0 ? Math.min(Math.floor(arenaLimitBytes), 0xffffffff) : 0;
      const handle = ex.cdnv2_load(ptr, bytes.length, limit >>> 0);
      if (handle <= 0) throw lastError(ex);
      const model = new Cdnv2Model(ex, handle, metaOf(readMetaEntries(bytes)), isa);
      if (maxMacs > 0 && model.macs > maxMacs) {
        model.dispose();
        throw new Cdnv2Error('compute', `a run needs ${model.macs} multiply-adds, above the limit of ${maxMacs}`);
      }
      return model;
    });
  }

  private get ex(): LibExports {
    if (!this.exports) throw new Cdnv2Error('handle', 'the model was disposed');
    return this.exports;
  }

  /** Runs the network on a normalised CHW input; returns a copy of the logits. */
  run(input: Float32Array): Float32Array {
    if (!(input instanceof Float32Array) || input.length !== this.inputLength) {
      throw new Cdnv2Error('input', `input must be a Float32Array of ${this.inputLength} values (got ${input?.length})`);
    }
    for (let i = 0; i < input.length; i++) {
      if (!Number.isFinite(input[i]!)) throw new Cdnv2Error('input', `input value ${i} is not finite`);
    }
    const ex = this.ex;
    return guard(() => {
      new Float32Array(ex.memory.buffer, ex.cdnv2_input_ptr(this.handle) >>> 0, this.inputLength).set(input);
      return this.runLoaded();
    });
  }

  /** Resizes/crops/normalises decoded pixels as the model's metadata says, runs, and returns the logits. */
  runImage(image: ImageData): Float32Array {
    return guard(() => {
      this.writeImage(image);
      return this.runLoaded();
    });
  }

  /** The normalised CHW input the runtime makes of an image, without running the network. */
  preprocess(image: ImageData): Float32Array {
    return guard(() => {
      this.writeImage(image);
      return this.inputCopy();
    });
  }

  /** Decodes a binary PGM/PPM (8 or 16 bit) in the runtime itself, preprocesses it, runs, returns the logits. */
  runPnm(bytes: Uint8Array): Float32Array {
    return guard(() => {
      this.writePnm(bytes);
      return this.runLoaded();
    });
  }

  /** The normalised CHW input the runtime makes of a PGM/PPM file, without running the network. */
  preprocessPnm(bytes: Uint8Array): Float32Array {
    return guard(() => {
      this.writePnm(bytes);
      return this.inputCopy();
    });
  }

  /**
   * Per-op profile: runs the network `runs` times (after `warmup` whole runs), timing each op alone from the host
   * (the library build has no imports, so no clock of its own): ops run one call each, in order, on the same
   * arena, so the work is exactly that of `run`. The input is rewritten before every run (default: a fixed
   * pattern). `run` itself is untouched: profiling costs nothing when not asked for.
   */
  profile(opts: { runs?: number; warmup?: number; input?: Float32Array } = {}): OpProfile[] {
    const runs = opts.runs ?? 20;
    if (!Number.isInteger(runs) || runs < 1) throw new Cdnv2Error('input', `runs must be a positive integer (got ${runs})`);
    const input = opts.input ?? Float32Array.from({ length: this.inputLength }, (_, i) => Math.sin(i * 0.37));
    for (let i = 0; i < (opts.warmup ?? 3); i++) this.run(input);
    const ex = this.ex;
    const h = this.handle;
    const n = ex.cdnv2_op_count(h);
    const times = Array.from({ length: n }, () => new Float64Array(runs));
    guard(() => {
      for (let r = 0; r < runs; r++) {
        new Float32Array(ex.memory.buffer, ex.cdnv2_input_ptr(h), this.inputLength).set(input);
        for (let i = 0; i < n; i++) {
          const t0 = performance.now();
          const status = ex.cdnv2_run_ops(h, i, i + 1);
          times[i]![r] = performance.now() - t0;
          if (status < 0) throw lastError(ex);
        }
      }
    });
    const medians = times.map((t) => { t.sort(); return runs % 2 ? t[runs >> 1]! : (t[runs / 2 - 1]! + t[runs / 2]!) / 2; });
    const total = medians.reduce((a, b) => a + b, 0);
    const info = ex.cdnv2_alloc(48);
    try {
      return medians.map((medianMs, index) => {
        if (ex.cdnv2_op_info(h, index, info) < 0) throw lastError(ex);
        const v = new Int32Array(ex.memory.buffer, info, 10);
        const madds = new Float64Array(ex.memory.buffer, info + 40, 1)[0]!;
        const [code, cin, ih, iw, cout, oh, ow, groups, kernel, stride] = Array.from(v) as number[];
        const kind = code === 1 ? `conv${kernel}x${kernel}${stride! > 1 ? `/s${stride}` : ''}` : OP_KINDS[code!] ?? `op${code}`;
        return {
          index, kind, input: [cin!, ih!, iw!], output: [cout!, oh!, ow!], groups: groups!, madds, medianMs,
          share: total > 0 ? medianMs / total : 0, maddsPerSecond: medianMs > 0 ? madds / (medianMs / 1000) : 0,
        };
      });
    } finally {
      ex.cdnv2_free(info);
    }
  }

  /** Copy of feature buffer `index` after the last run (debugging and tests; see cdnv2_buffer_ptr). */
  bufferValues(index: number): Float32Array {
    const ex = this.ex;
    const ptr = ex.cdnv2_buffer_ptr(this.handle, index) >>> 0;
    const len = ex.cdnv2_buffer_length(this.handle, index);
    if (ptr === 0 || len < 0) throw new Cdnv2Error('range', `no live buffer ${index}`);
    return new Float32Array(ex.memory.buffer, ptr, len).slice();
  }

  private inputCopy(): Float32Array {
    const ex = this.ex;
    return new Float32Array(ex.memory.buffer, ex.cdnv2_input_ptr(this.handle) >>> 0, this.inputLength).slice();
  }

  private writeImage(image: ImageData): void {
    const ex = this.ex;
    if (typeof image !== 'object' || image === null) throw new Cdnv2Error('input', 'image must be an object {width, height, channels, data}');
    const { width, height, channels, data } = image;
    if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray || data instanceof Uint16Array || data instanceof Float32Array)) {
      throw new Cdnv2Error('input', 'image data must be a Uint8Array, Uint8ClampedArray, Uint16Array or Float32Array');
    }
    if (![1, 3, 4].includes(channels)) throw new Cdnv2Error('input', `images need 1, 3 or 4 channels, got ${channels}`);
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > 16384 || height > 16384) {
      throw new Cdnv2Error('input', `image size ${width}x${height} outside 1..16384`);
    }
    const n = width * height * channels;
    if (data.length !== n) throw new Cdnv2Error('input', `image data has ${data.length} samples, expected ${n}`);
    const max = image.maxValue ?? (data instanceof Uint16Array ? 65535 : data instanceof Float32Array ? 1 : 255);
    if (typeof max !== 'number' || !Number.isFinite(max) || max <= 0) throw new Cdnv2Error('input', `maxValue must be a finite number > 0, got ${String(max)}`);
    const ptr = allocIn(ex, n * 4);
    try {
      const dst = new Float32Array(ex.memory.buffer, ptr, n);
      const inv = 1 / max;
      for (let i = 0; i < n; i++) {
        const v = data[i]! * inv;
        dst[i] = Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0;
      }
      if (ex.cdnv2_preprocess(this.handle, ptr, width, height, channels) < 0) throw lastError(ex);
    } finally {
      ex.cdnv2_free(ptr);
    }
  }

  private writePnm(bytes: Uint8Array): void {
    const ex = this.ex;
    if (!(bytes instanceof Uint8Array)) throw new Cdnv2Error('input', 'PGM/PPM bytes must be a Uint8Array');
    const ptr = allocIn(ex, bytes.length);
    try {
      new Uint8Array(ex.memory.buffer, ptr, bytes.length).set(bytes);
      if (ex.cdnv2_preprocess_pnm(this.handle, ptr, bytes.length) < 0) throw lastError(ex);
    } finally {
      ex.cdnv2_free(ptr);
    }
  }

  private runLoaded(): Float32Array {
    const ex = this.ex;
    if (ex.cdnv2_run(this.handle) < 0) throw lastError(ex);
    return new Float32Array(ex.memory.buffer, ex.cdnv2_output_ptr(this.handle) >>> 0, this.outputLength).slice();
  }

  /** Softmax of logits, computed as the runtime does. */
  static softmax(logits: Float32Array): Float32Array {
    let max = -Infinity;
    for (const v of logits) max = Math.max(max, v);
    const out = new Float32Array(logits.length);
    let sum = 0;
    for (let i = 0; i < logits.length; i++) sum += (out[i] = Math.exp(logits[i]! - max));
    for (let i = 0; i < out.length; i++) out[i]! /= sum;
    return out;
  }

  /** Top-k predictions (best first, ties to the lower index) with softmax scores. */
  top(logits: Float32Array, k = 5): Prediction[] {
    if (!(logits instanceof Float32Array)) throw new Cdnv2Error('input', 'logits must be a Float32Array');
    if (!Number.isInteger(k) || k < 0) throw new Cdnv2Error('input', `k must be an integer >= 0, got ${String(k)}`);
    const probs = Cdnv2Model.softmax(logits);
    const order = Array.from(probs.keys()).sort((a, b) => probs[b]! - probs[a]! || a - b);
    return order.slice(0, Math.max(0, Math.min(k, probs.length))).map((index) => ({
      index, label: this.meta.labels[index] ?? String(index), score: probs[index]!,
    }));
  }

  classify(input: Float32Array | ImageData, k = 5): Prediction[] {
    return this.top(input instanceof Float32Array ? this.run(input) : this.runImage(input), k);
  }

  /** Frees the model's memory; the instance is dropped with it. */
  dispose(): void {
    if (this.exports) {
      this.exports.cdnv2_unload(this.handle);
      this.exports = null;
    }
  }
}

/** A block of wasm memory; its address unsigned (memories may pass 2 GiB). 'size' when it cannot be had. */
function allocIn(ex: LibExports, bytes: number): number {
  const ptr = bytes <= 0x3fff0000 ? ex.cdnv2_alloc(bytes) >>> 0 : 0;
  if (ptr === 0) throw new Cdnv2Error('size', `cannot allocate ${bytes} bytes in wasm memory (1 GiB a block, 4 GiB in all)`);
  return ptr;
}

function lastError(ex: LibExports): Cdnv2Error {
  const code = ex.cdnv2_error_code();
  const ptr = ex.cdnv2_error_message() >>> 0;
  const len = ex.cdnv2_error_message_length();
  const message = new TextDecoder().decode(new Uint8Array(ex.memory.buffer, ptr, len));
  return new Cdnv2Error(ERROR_NAMES[code] ?? `error-${code}`, message || 'unknown runtime error');
}

/** Multiply-adds per second of the register-only SIMD loop, in this engine (for "percent of peak"). */
export async function measurePeak(module: WebAssembly.Module, seconds = 0.3): Promise<number> {
  const instance = await WebAssembly.instantiate(module, {});
  const ex = instance.exports as unknown as LibExports;
  const per = ex.cdnv2_peak_madds_per_iteration();
  let iterations = 1 << 16;
  ex.cdnv2_peak_madd(iterations); // warm-up / tier-up
  for (;;) {
    const t0 = performance.now();
    ex.cdnv2_peak_madd(iterations);
    const dt = (performance.now() - t0) / 1000;
    if (dt >= seconds) return (iterations * per) / dt;
    iterations *= dt > 0.01 ? Math.ceil(seconds / dt) : 16;
  }
}
