// Node entry of the JS API: finds and compiles the wasm builds, then hands out Cdnv2Model instances.
import { readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import v8 from 'node:v8';
import { fileErrorReason, MAX_MODEL_BYTES } from '../base/io.js';
import { Cdnv2Error, Cdnv2Model, measurePeak, type Isa, type Prediction } from './engine.js';

export { Cdnv2Error, Cdnv2Model, type Isa, type ImageData, type ModelMeta, type Prediction, type OpProfile, ERROR_NAMES, formatProfile, parseProfile } from './engine.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The build directory, from the sources (runtime/) or the compiled tree (dist/runtime/). */
export function buildDir(): string {
  for (const candidate of [path.join(here, '..', 'build'), path.join(here, '..', '..', 'build')]) {
    if (existsSync(path.join(candidate, 'cdnv2-lib.wasm'))) return candidate;
  }
  throw new Cdnv2Error('setup', 'build/cdnv2-lib.wasm not found: run `npm run build` first');
}

export function wasmPath(kind: 'lib' | 'command', isa: Isa): string {
  const suffix = isa === 'simd' ? '' : `-${isa}`;
  return path.join(buildDir(), kind === 'lib' ? `cdnv2-lib${suffix}.wasm` : `cdnv2${suffix}.wasm`);
}

let relaxedFlagSet = false;
/** Node 20's V8 ships relaxed SIMD behind a flag; later versions accept the flag as a no-op. */
export function enableRelaxedSimd(): void {
  if (!relaxedFlagSet) {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    relaxedFlagSet = true;
  }
}

const modules = new Map<string, Promise<WebAssembly.Module>>();

export function compileWasm(kind: 'lib' | 'command', isa: Isa): Promise<WebAssembly.Module> {
  const key = `${kind}:${isa}`;
  let m = modules.get(key);
  if (!m) {
    if (isa === 'relaxed') enableRelaxedSimd();
    m = readFile(wasmPath(kind, isa)).then((bytes) => WebAssembly.compile(bytes));
    modules.set(key, m);
  }
  return m;
}

/** Whether this engine can compile the given build. */
export async function isaSupported(isa: Isa): Promise<boolean> {
  try {
    await compileWasm('lib', isa);
    return true;
  } catch {
    modules.delete(`lib:${isa}`);
    return false;
  }
}

export interface LoadOptions {
  /** Which build runs the model; default 'simd'. */
  isa?: Isa;
  /** Refuse models whose activation arena exceeds this many bytes (default 512 MiB). */
  arenaLimitBytes?: number;
  /** Refuse models whose run needs more multiply-adds than this (default: no limit; `Cdnv2Model.macs`). */
  maxMacs?: number;
}

const ISAS: readonly Isa[] = ['simd', 'relaxed', 'scalar'];

/** Loads a .cnv2 model from bytes. Throws Cdnv2Error with a specific code for every invalid file. */
export async function loadModel(bytes: Uint8Array, opts: LoadOptions = {}): Promise<Cdnv2Model> {
  const isa = opts?.isa ?? 'simd';
  if (!ISAS.includes(isa)) throw new Cdnv2Error('input', `isa must be one of ${ISAS.join(', ')}, got ${JSON.stringify(isa)}`);
  let module: WebAssembly.Module;
  try {
    module = await compileWasm('lib', isa);
  } catch (err) {
    if (err instanceof Cdnv2Error) throw err;
    throw new Cdnv2Error('setup', `cannot compile the ${isa} build: ${(err as Error).message}`);
  }
  return Cdnv2Model.create(module, isa, bytes, opts.arenaLimitBytes ?? 0, opts.maxMacs ?? 0);
}

/** Loads a .cnv2 model from a file. */
export async function loadModelFile(file: string, opts: LoadOptions = {}): Promise<Cdnv2Model> {
  let bytes: Uint8Array;
  try {
    // By type and size before opening: a FIFO would block the read, /dev/zero never end it.
    const st = await stat(file);
    if (!st.isFile()) throw new Cdnv2Error('io', `${file}: not a regular file`);
    if (st.size > MAX_MODEL_BYTES) throw new Cdnv2Error('size', `${file}: ${st.size} bytes, more than wasm memory can hold`);
    bytes = await readFile(file);
  } catch (err) {
    if (err instanceof Cdnv2Error) throw err;
    throw new Cdnv2Error('io', `${file}: ${fileErrorReason(err, file)}`);
  }
  try {
    return await loadModel(bytes, opts);
  } catch (err) {
    if (err instanceof Cdnv2Error) throw new Cdnv2Error(err.code, `${file}: ${err.message}`);
    throw err;
  }
}

/**
 * Decodes an image file (PNG, JPEG, binary PGM/PPM, or a raw normalised .f32 tensor), preprocesses it with the
 * model's own rule (resize, centre crop, mean/std) and returns its top-k classes, as `cdnv2 classify` does.
 */
export async function classifyFile(model: Cdnv2Model, file: string, k = 5): Promise<Prediction[]> {
  const { readImageFile } = await import('./image.js'); // the decoders load only when a file is classified
  const input = await readImageFile(file);
  try {
    const logits = input.kind === 'tensor' ? model.run(input.data)
      : input.kind === 'pnm' ? model.runPnm(input.bytes) : model.runImage(input.image);
    return model.top(logits, k);
  } catch (err) {
    if (err instanceof Cdnv2Error) throw new Cdnv2Error(err.code, `${file}: ${err.message}`);
    throw err;
  }
}

/** Multiply-adds per second of the SIMD peak loop in the given build. */
export async function peakMaddsPerSecond(isa: Isa = 'simd', seconds = 0.3): Promise<number> {
  return measurePeak(await compileWasm('lib', isa), seconds);
}
