// Browser entry of the JS API (`cdnv2/browser`): plain ESM with no `node:` imports, loaded by a page as it is from
// dist/. It fetches and compiles the wasm library build the browser supports best, loads models from bytes or a
// URL, and turns the browser's image objects into pixels for the shared engine (engine.ts), whose wasm
// preprocessing (resize rule, channels, mean/std from the model's metadata) is the one Node's decoder path uses.
import { Cdnv2Error, Cdnv2Model, type ImageData as Pixels, type Isa, type ModelMeta, type Prediction } from './engine.js';

export { Cdnv2Error, Cdnv2Model, ERROR_NAMES } from './engine.js';
export type { Isa, ModelMeta, Prediction, ImageData as Pixels } from './engine.js';

/** What `classify` accepts: the browser's image objects, an encoded image file, or decoded pixels. */
export type ImageSource =
  | ImageData | ImageBitmap | HTMLCanvasElement | OffscreenCanvas | HTMLImageElement | Blob | Pixels;

export interface BrowserLoadOptions {
  /** Force a build ('relaxed', 'simd' or 'scalar'); default: the best this browser validates. */
  isa?: Isa;
  /** Where `cdnv2-lib*.wasm` are; default: the package's `build/` (two levels above this file). */
  wasmBaseUrl?: string | URL;
  /** Refuse models whose activation arena exceeds this many bytes (default 512 MiB). */
  arenaLimitBytes?: number;
  /** Passed to fetch() for the model and the wasm build. */
  signal?: AbortSignal;
}

// The smallest modules that use a SIMD128 instruction (i8x16.splat) and a relaxed-SIMD one (f32x4.relaxed_madd):
// WebAssembly.validate on them says which builds this engine can compile, without fetching any build.
const PROBE_HEAD = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 5, 1, 0x60, 0, 1, 0x7b, 3, 2, 1, 0]; // one func () -> v128
const SIMD_PROBE = new Uint8Array([...PROBE_HEAD, 0x0a, 8, 1, 6, 0, 0x41, 0, 0xfd, 0x0f, 0x0b]);
const RELAXED_PROBE = new Uint8Array([...PROBE_HEAD, 0x0a, 0x13, 1, 0x11, 0,
  0x41, 0, 0xfd, 0x0f, 0x41, 0, 0xfd, 0x0f, 0x41, 0, 0xfd, 0x0f, 0xfd, 0x85, 0x02, 0x0b]);

const ISAS: readonly Isa[] = ['relaxed', 'simd', 'scalar'];

/** The builds this engine can run, best first ('scalar' always). */
export function supportedIsas(): Isa[] {
  const out: Isa[] = [];
  if (WebAssembly.validate(RELAXED_PROBE)) out.push('relaxed');
  if (WebAssembly.validate(SIMD_PROBE)) out.push('simd');
  out.push('scalar');
  return out;
}

/** The fastest build this engine can run: relaxed SIMD (fused multiply-add), else SIMD128, else scalar. */
export function detectIsa(): Isa {
  return supportedIsas()[0]!;
}

function parseUrl(url: string | URL, what: string): URL {
  try {
    return new URL(url, globalThis.location?.href);
  } catch {
    throw new Cdnv2Error('input', `${what}: not a URL: ${String(url)}`);
  }
}

/** URL of the library build for `isa` under `base` (default: the package's build/ directory). */
export function wasmUrl(isa: Isa, base: string | URL = new URL('../../build/', import.meta.url)): URL {
  const dir = parseUrl(base, 'wasmBaseUrl');
  if (!dir.pathname.endsWith('/')) dir.pathname += '/';
  return new URL(isa === 'simd' ? 'cdnv2-lib.wasm' : `cdnv2-lib-${isa}.wasm`, dir);
}

async function fetchOk(url: URL, what: string, signal?: AbortSignal): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { signal });
  } catch (err) {
    throw new Cdnv2Error('io', `${url}: cannot fetch the ${what} (${(err as Error).message})`);
  }
  if (!response.ok) throw new Cdnv2Error('io', `${url}: cannot fetch the ${what} (HTTP ${response.status})`);
  return response;
}

/**
 * Compiles while the bytes arrive when the server labels the file application/wasm (compileStreaming requires it);
 * otherwise, or where compileStreaming is missing, compiles the downloaded bytes.
 */
async function compileResponse(response: Response): Promise<WebAssembly.Module> {
  const type = response.headers.get('content-type') ?? '';
  if (typeof WebAssembly.compileStreaming === 'function' && /^application\/wasm\s*(;|$)/i.test(type)) {
    return WebAssembly.compileStreaming(response);
  }
  return WebAssembly.compile(await response.arrayBuffer());
}

const modules = new Map<string, Promise<WebAssembly.Module>>();

/** Compiles (once per URL) the library build for `isa`; a forced build this browser cannot run is an error. */
export function compileRuntime(isa: Isa, opts: Pick<BrowserLoadOptions, 'wasmBaseUrl' | 'signal'> = {}): Promise<WebAssembly.Module> {
  if (!ISAS.includes(isa)) return Promise.reject(new Cdnv2Error('setup', `unknown build '${String(isa)}' (relaxed, simd or scalar)`));
  if (!supportedIsas().includes(isa)) {
    return Promise.reject(new Cdnv2Error('setup', `this browser cannot run the ${isa} build (its WebAssembly lacks ${isa === 'relaxed' ? 'relaxed SIMD' : 'SIMD128'})`));
  }
  let url: URL;
  try {
    url = wasmUrl(isa, opts.wasmBaseUrl);
  } catch (err) {
    return Promise.reject(err);
  }
  let module = modules.get(url.href);
  if (!module) {
    module = fetchOk(url, `${isa} runtime build`, opts.signal).then(compileResponse).catch((err: unknown) => {
      modules.delete(url.href);
      if (err instanceof Cdnv2Error) throw err;
      throw new Cdnv2Error('setup', `${url}: cannot compile the ${isa} runtime build (${(err as Error).message})`);
    });
    modules.set(url.href, module);
  }
  return module;
}

/** A model loaded in its own WebAssembly instance, classifying the browser's image objects. */
export class BrowserModel {
  constructor(readonly engine: Cdnv2Model) {}

  get meta(): ModelMeta { return this.engine.meta; }
  /** The wasm build running this model. */
  get isa(): Isa { return this.engine.isa; }

  /** Top-k predictions (best first) with softmax scores. */
  async classify(source: ImageSource | Float32Array, k = 5): Promise<Prediction[]> {
    return this.engine.top(await this.logits(source), k);
  }

  /** The network's logits for an image (or for a normalised CHW input). */
  async logits(source: ImageSource | Float32Array): Promise<Float32Array> {
    if (source instanceof Float32Array) return this.engine.run(source);
    return this.engine.runImage(await toPixels(source));
  }

  /** The normalised CHW input the runtime makes of an image, without running the network. */
  async preprocess(source: ImageSource): Promise<Float32Array> {
    return this.engine.preprocess(await toPixels(source));
  }

  /** Frees the model's memory. */
  dispose(): void { this.engine.dispose(); }
}

function toBytes(source: ArrayBuffer | ArrayBufferView): Uint8Array {
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (ArrayBuffer.isView(source)) return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  throw new Cdnv2Error('input', 'a model must be given as an ArrayBuffer, a typed array or a URL');
}

/** Loads a `.cnv2` model from its bytes. Throws Cdnv2Error with a specific code for every invalid file. */
export async function loadModel(bytes: ArrayBuffer | ArrayBufferView, opts: BrowserLoadOptions = {}): Promise<BrowserModel> {
  const data = toBytes(bytes);
  const isa = opts.isa ?? detectIsa();
  const module = await compileRuntime(isa, opts);
  return new BrowserModel(await Cdnv2Model.create(module, isa, data, opts.arenaLimitBytes ?? 0));
}

/** Fetches a `.cnv2` model (the wasm build compiles meanwhile) and loads it. */
export async function loadModelUrl(url: string | URL, opts: BrowserLoadOptions = {}): Promise<BrowserModel> {
  const href = parseUrl(url, 'model URL');
  const isa = opts.isa ?? detectIsa();
  const module = compileRuntime(isa, opts);
  module.catch(() => {}); // awaited below; an early rejection must not count as unhandled meanwhile
  const response = await fetchOk(href, 'model', opts.signal);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch (err) {
    throw new Cdnv2Error('io', `${href}: the model's download failed (${(err as Error).message})`);
  }
  try {
    return new BrowserModel(await Cdnv2Model.create(await module, isa, bytes, opts.arenaLimitBytes ?? 0));
  } catch (err) {
    if (err instanceof Cdnv2Error && err.code !== 'setup') throw new Cdnv2Error(err.code, `${href}: ${err.message}`);
    throw err;
  }
}

// As the Node decoder (runtime/image.ts): refuse before drawing what the runtime would refuse or could not hold.
const MAX_SIDE = 16384;
const MAX_PIXELS = 100e6;

function checkSize(width: number, height: number): void {
  if (!(width >= 1 && height >= 1 && width <= MAX_SIDE && height <= MAX_SIDE)) {
    throw new Cdnv2Error('input', `image size ${width}x${height} outside 1..${MAX_SIDE}`);
  }
  if (width * height > MAX_PIXELS) throw new Cdnv2Error('input', `${width}x${height} pixels, more than ${MAX_PIXELS / 1e6} MP`);
}

function isPixels(source: object): source is Pixels {
  return 'channels' in source && 'data' in source && 'width' in source && 'height' in source;
}

/**
 * RGBA from a canvas as pixels for the runtime. An image whose every pixel has R = G = B goes as one gray channel,
 * as Node's decoder passes a gray PNG, so a gray picture reaches a gray model exactly (no luma weights rounding);
 * otherwise all four channels go (the runtime ignores alpha, as for an RGBA PNG).
 */
function rgbaPixels(width: number, height: number, rgba: Uint8ClampedArray): Pixels {
  const n = width * height;
  let gray = true;
  for (let i = 0; i < n && gray; i++) gray = rgba[4 * i] === rgba[4 * i + 1] && rgba[4 * i] === rgba[4 * i + 2];
  if (!gray) return { width, height, channels: 4, data: rgba };
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = rgba[4 * i]!;
  return { width, height, channels: 1, data };
}

/** Draws an image object on a scratch canvas and reads its pixels back (sRGB, 8 bits, unpremultiplied). */
function drawnPixels(source: CanvasImageSource, width: number, height: number): Pixels {
  checkSize(width, height);
  const canvas = typeof OffscreenCanvas === 'function'
    ? new OffscreenCanvas(width, height)
    : Object.assign(document.createElement('canvas'), { width, height });
  const ctx = canvas.getContext('2d', { willReadFrequently: true }) as CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D | null;
  if (!ctx) throw new Cdnv2Error('input', 'no 2D canvas context to read the image\'s pixels');
  ctx.drawImage(source, 0, 0);
  try {
    return rgbaPixels(width, height, ctx.getImageData(0, 0, width, height).data);
  } catch (err) {
    // A cross-origin image without CORS taints the canvas: its pixels cannot be read.
    throw new Cdnv2Error('input', `cannot read the image's pixels (${(err as Error).message}); a cross-origin image needs CORS (crossorigin="anonymous")`);
  }
}

// Decode without colour management, as Node's decoders do (they ignore gAMA/iCCP), and keep straight alpha.
const BITMAP_OPTIONS: ImageBitmapOptions = { colorSpaceConversion: 'none', premultiplyAlpha: 'none' };

async function bitmapPixels(make: () => Promise<ImageBitmap>, what: string): Promise<Pixels> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await make();
  } catch (err) {
    throw new Cdnv2Error('input', `${what}: not a decodable image (${(err as Error).message})`);
  }
  try {
    return drawnPixels(bitmap, bitmap.width, bitmap.height);
  } finally {
    bitmap.close();
  }
}

/**
 * Pixels of any supported source. ImageData, canvases and bitmaps are read as they are; an `<img>` and a Blob are
 * decoded again without colour-space conversion. Transparent pixels lose precision in a canvas (it stores
 * premultiplied alpha); pass ImageData or Pixels to avoid that.
 */
export async function toPixels(source: ImageSource): Promise<Pixels> {
  if (source === null || typeof source !== 'object') throw new Cdnv2Error('input', `not an image: ${String(source)}`);
  if (typeof ImageData === 'function' && source instanceof ImageData) {
    checkSize(source.width, source.height);
    return rgbaPixels(source.width, source.height, source.data);
  }
  if (typeof ImageBitmap === 'function' && source instanceof ImageBitmap) {
    if (source.width === 0) throw new Cdnv2Error('input', 'the ImageBitmap is closed or empty');
    return drawnPixels(source, source.width, source.height);
  }
  if ((typeof HTMLCanvasElement === 'function' && source instanceof HTMLCanvasElement)
    || (typeof OffscreenCanvas === 'function' && source instanceof OffscreenCanvas)) {
    return drawnPixels(source, source.width, source.height);
  }
  if (typeof HTMLImageElement === 'function' && source instanceof HTMLImageElement) {
    const what = `image ${source.currentSrc || source.src || '(no src)'}`;
    try {
      await source.decode();
    } catch (err) {
      throw new Cdnv2Error('input', `${what}: not a decodable image (${(err as Error).message})`);
    }
    checkSize(source.naturalWidth, source.naturalHeight);
    return bitmapPixels(() => createImageBitmap(source, BITMAP_OPTIONS), what);
  }
  if (typeof Blob === 'function' && source instanceof Blob) {
    const what = typeof File === 'function' && source instanceof File ? source.name : `${source.type || 'untyped'} blob`;
    return bitmapPixels(() => createImageBitmap(source, BITMAP_OPTIONS), what);
  }
  if (isPixels(source)) return source;
  throw new Cdnv2Error('input', 'not an image: expected ImageData, ImageBitmap, a canvas, an <img>, a Blob or pixels');
}
