// The official training augmentation for image folders (jianghaojun/CondenseNetV2 train.py through its vendored
// timm 0.1-era data pipeline: timm/data/transforms_factory.py, transforms.py, auto_augment.py, random_erasing.py,
// loader.py), on 8-bit HWC images; docs/training.md lists every value and where it comes from.
// Per image, in the official order: RandomResizedCrop (random bilinear/bicubic) -> horizontal flip ->
// RandAugment (or, only when RandAugment is off, colour jitter: timm applies one or the other) -> normalisation ->
// random erasing (after normalisation, as timm's prefetching loader does it).
// Randomness: one generator per image derived from (seed, epoch, image index), never a shared stream, so an
// interrupted run resumes bit-exactly whatever the batch boundaries.
import type { ArchConfig } from '../arch/configs.js';
import { Rng } from '../rng.js';
import { fitForModel } from './folder.js';
import { affine, resizeBox, roundHalfEven, type Filter, type Image8 } from './resample.js';
import { DataError, type ImageSource } from './source.js';

export interface FolderAugment {
  /** RandomResizedCrop's ranges (area fraction, aspect w/h); null: the evaluation resize instead (no crop). */
  resizedCrop: { scale: [number, number]; ratio: [number, number] } | null;
  /** Filter of the crop's resize and RandAugment's geometric ops: 'random' draws bilinear or bicubic per use. */
  interpolation: 'random' | Filter;
  /** Probability of a horizontal flip. */
  hflip: number;
  /** Brightness, contrast and saturation strength of colour jitter (0: off); used only when randAugment is null. */
  colorJitter: number;
  /** timm RandAugment specification ('rand-m9-mstd0.5'), or null. */
  randAugment: string | null;
  /** Probability of random erasing (one rectangle) and its fill. */
  randomErasing: number;
  erasingMode: 'pixel' | 'rand' | 'const';
}

/** train.py's defaults (see docs/training.md for each source). */
export const OFFICIAL_FOLDER_AUGMENT: FolderAugment = {
  resizedCrop: { scale: [0.08, 1], ratio: [3 / 4, 4 / 3] },
  interpolation: 'random', hflip: 0.5, colorJitter: 0.4, randAugment: 'rand-m9-mstd0.5', randomErasing: 0.2, erasingMode: 'pixel',
};

/** What was drawn for one image (tests and debugging). */
export interface AugmentTrace {
  crop?: { left: number; top: number; width: number; height: number; filter: Filter };
  flip?: boolean;
  jitter?: { order: string[]; factors: Record<string, number> };
  ops?: { name: string; applied: boolean; magnitude?: number; args?: number[] }[];
  erased?: { left: number; top: number; width: number; height: number } | null;
}

const uniform = (rng: Rng, a: number, b: number): number => a + (b - a) * rng.next();
/** Python's random.randint(a, b): both ends included. */
const randint = (rng: Rng, a: number, b: number): number => a + rng.int(b - a + 1);
const pickFilter = (i: FolderAugment['interpolation'], rng: Rng): Filter => (i === 'random' ? (rng.next() < 0.5 ? 'bilinear' : 'bicubic') : i);

// ---------- RandomResizedCrop (timm RandomResizedCropAndInterpolation.get_params) ----------

/** The crop box: 10 tries of a random area fraction and log-uniform aspect that fits, else a centre crop. */
export function resizedCropBox(width: number, height: number, scale: [number, number], ratio: [number, number], rng: Rng): { left: number; top: number; width: number; height: number } {
  const area = width * height;
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = uniform(rng, scale[0], scale[1]) * area;
    const aspect = Math.exp(uniform(rng, Math.log(ratio[0]), Math.log(ratio[1])));
    const w = roundHalfEven(Math.sqrt(target * aspect)), h = roundHalfEven(Math.sqrt(target / aspect));
    if (w <= width && h <= height) {
      const top = randint(rng, 0, height - h), left = randint(rng, 0, width - w);
      return { left, top, width: w, height: h };
    }
  }
  const inRatio = width / height;
  let w = width, h = height;
  if (inRatio < Math.min(...ratio)) h = roundHalfEven(w / Math.min(...ratio));
  else if (inRatio > Math.max(...ratio)) w = roundHalfEven(h * Math.max(...ratio));
  return { left: Math.floor((width - w) / 2), top: Math.floor((height - h) / 2), width: w, height: h };
}

export function cropImage(img: Image8, box: { left: number; top: number; width: number; height: number }): Image8 {
  const C = img.channels;
  const data = new Uint8Array(box.width * box.height * C);
  for (let y = 0; y < box.height; y++) {
    const from = ((box.top + y) * img.width + box.left) * C;
    data.set(img.data.subarray(from, from + box.width * C), y * box.width * C);
  }
  return { width: box.width, height: box.height, channels: C, data };
}

export function flipHorizontal(img: Image8): Image8 {
  const { width: W, height: H, channels: C, data } = img;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) out[(y * W + x) * C + c] = data[(y * W + W - 1 - x) * C + c]!;
  return { ...img, data: out };
}

// ---------- Pillow's ImageEnhance / ImageOps on 8-bit images ----------

/** Pillow's RGB -> L (ITU-R 601-2 luma in 16-bit fixed point); gray images are their own luma. */
function luma(img: Image8): Uint8Array {
  const { channels: C, data } = img;
  const n = img.width * img.height;
  if (C === 1) return data.slice();
  const l = new Uint8Array(n);
  for (let i = 0; i < n; i++) l[i] = (data[i * C]! * 19595 + data[i * C + 1]! * 38470 + data[i * C + 2]! * 7471 + 0x8000) >>> 16;
  return l;
}

/**
 * Image.blend(degenerate, img, factor) as Pillow's Blend.c: d + factor (v - d) in single precision (its alpha is a
 * C float), truncated to 8 bits; degenerate(i, c) per sample.
 */
function blend(img: Image8, factor: number, degenerate: (pixel: number, c: number) => number): Image8 {
  const C = img.channels;
  const out = new Uint8Array(img.data.length);
  const f = Math.fround(factor);
  for (let i = 0; i < out.length; i++) {
    const d = degenerate(Math.floor(i / C), i % C);
    const v = Math.trunc(Math.fround(d + Math.fround(f * (img.data[i]! - d))));
    out[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return { ...img, data: out };
}

export const brightness = (img: Image8, f: number): Image8 => blend(img, f, () => 0);
export function contrast(img: Image8, f: number): Image8 {
  const l = luma(img);
  let sum = 0;
  for (let i = 0; i < l.length; i++) sum += l[i]!;
  const mean = Math.trunc(sum / l.length + 0.5);
  return blend(img, f, () => mean);
}
export function color(img: Image8, f: number): Image8 {
  if (img.channels === 1) return img; // saturation of a gray image: itself
  const l = luma(img);
  return blend(img, f, (p) => l[p]!);
}
/** ImageEnhance.Sharpness: blend with ImageFilter.SMOOTH (3x3 kernel 1 1 1 / 1 5 1 / 1 1 1, /13; border kept). */
export function sharpness(img: Image8, f: number): Image8 {
  const { width: W, height: H, channels: C, data } = img;
  const smooth = data.slice();
  for (let y = 1; y < H - 1; y++) for (let x = 1; x < W - 1; x++) for (let c = 0; c < C; c++) {
    let s = 4 * data[(y * W + x) * C + c]!;
    for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) s += data[((y + dy) * W + x + dx) * C + c]!;
    smooth[(y * W + x) * C + c] = Math.min(255, Math.floor(s / 13 + 0.5));
  }
  return blend(img, f, (p, c) => smooth[p * C + c]!);
}

function mapLut(img: Image8, lutOf: (c: number) => (v: number) => number): Image8 {
  const C = img.channels;
  const luts = Array.from({ length: C }, (_, c) => { const f = lutOf(c); return Uint8Array.from({ length: 256 }, (_, v) => f(v)); });
  return { ...img, data: img.data.map((v, i) => luts[i % C]![v]!) };
}
function histogram(img: Image8, c: number): number[] {
  const h = new Array<number>(256).fill(0);
  for (let i = c; i < img.data.length; i += img.channels) h[img.data[i]!]!++;
  return h;
}
export const invert = (img: Image8): Image8 => mapLut(img, () => (v) => 255 - v);
export const solarize = (img: Image8, threshold: number): Image8 => mapLut(img, () => (v) => (v < threshold ? v : 255 - v));
export const solarizeAdd = (img: Image8, add: number, threshold = 128): Image8 => mapLut(img, () => (v) => (v < threshold ? Math.min(255, v + add) : v));
export function posterize(img: Image8, bits: number): Image8 {
  if (bits >= 8) return img;
  const mask = ~((1 << (8 - bits)) - 1) & 0xff;
  return mapLut(img, () => (v) => v & mask);
}
/** ImageOps.autocontrast (cutoff 0): each channel's darkest level to 0, brightest to 255. */
export function autoContrast(img: Image8): Image8 {
  return mapLut(img, (c) => {
    const h = histogram(img, c);
    let lo = 0, hi = 255;
    while (lo < 255 && !h[lo]) lo++;
    while (hi > 0 && !h[hi]) hi--;
    if (hi <= lo) return (v) => v;
    const scale = 255 / (hi - lo), offset = -lo * scale;
    return (v) => Math.max(0, Math.min(255, Math.trunc(v * scale + offset)));
  });
}
/** ImageOps.equalize: each channel's cumulative histogram spread over 0..255 (Pillow's step rule). */
export function equalize(img: Image8): Image8 {
  return mapLut(img, (c) => {
    const h = histogram(img, c);
    const used = h.filter((n) => n > 0);
    if (used.length <= 1) return (v) => v;
    const step = Math.floor((used.reduce((a, b) => a + b, 0) - used[used.length - 1]!) / 255);
    if (!step) return (v) => v;
    const lut: number[] = [];
    let n = Math.floor(step / 2);
    for (let i = 0; i < 256; i++) { lut.push(Math.min(255, Math.floor(n / step))); n += h[i]!; }
    return (v) => lut[v]!;
  });
}
/** img.rotate(degrees) (counter-clockwise about the centre, same size), as Pillow builds its affine matrix. */
export function rotate(img: Image8, degrees: number, filter: Filter, fill: readonly number[]): Image8 {
  const a = -(degrees * Math.PI) / 180;
  // Pillow rounds the matrix to 15 decimals, so quarter turns map pixel centres exactly.
  const cos = Math.round(Math.cos(a) * 1e15) / 1e15, sin = Math.round(Math.sin(a) * 1e15) / 1e15;
  const cx = img.width / 2, cy = img.height / 2;
  return affine(img, [cos, sin, cx - cos * cx - sin * cy, -sin, cos, cy + sin * cx - cos * cy], filter, fill);
}
export const shearX = (img: Image8, f: number, filter: Filter, fill: readonly number[]): Image8 => affine(img, [1, f, 0, 0, 1, 0], filter, fill);
export const shearY = (img: Image8, f: number, filter: Filter, fill: readonly number[]): Image8 => affine(img, [1, 0, 0, f, 1, 0], filter, fill);
export const translateX = (img: Image8, px: number, filter: Filter, fill: readonly number[]): Image8 => affine(img, [1, 0, px, 0, 1, 0], filter, fill);
export const translateY = (img: Image8, px: number, filter: Filter, fill: readonly number[]): Image8 => affine(img, [1, 0, 0, 0, 1, px], filter, fill);

// ---------- RandAugment (timm auto_augment.py: rand_augment_transform, AugmentOp, the level functions) ----------

/** timm's _RAND_TRANSFORMS (and _RAND_INCREASING_TRANSFORMS with 'inc1'), in its order. */
export const RAND_OPS = ['AutoContrast', 'Equalize', 'Invert', 'Rotate', 'Posterize', 'Solarize', 'SolarizeAdd', 'Color', 'Contrast',
  'Brightness', 'Sharpness', 'ShearX', 'ShearY', 'TranslateXRel', 'TranslateYRel'] as const;
const MAX_LEVEL = 10;

export interface RandAugmentSpec { magnitude: number; layers: number; magnitudeStd: number; increasing: boolean }

/** Parses 'rand-m9-n2-mstd0.5-inc1' (timm's syntax; defaults m10, n2, mstd0, inc0; weights 'w' are not supported). */
export function parseRandAugment(spec: string): RandAugmentSpec {
  const parts = spec.split('-');
  if (parts[0] !== 'rand') throw new DataError(`RandAugment specification must start with 'rand', got '${spec}'`);
  const r: RandAugmentSpec = { magnitude: MAX_LEVEL, layers: 2, magnitudeStd: 0, increasing: false };
  for (const p of parts.slice(1)) {
    const m = /^([a-z]+)(\d.*)$/.exec(p);
    const v = m ? Number(m[2]) : NaN;
    if (!m || !Number.isFinite(v)) throw new DataError(`RandAugment specification '${spec}': cannot read '${p}'`);
    if (m[1] === 'm' && Number.isInteger(v) && v <= 30) r.magnitude = v;
    else if (m[1] === 'n' && Number.isInteger(v) && v >= 1 && v <= 10) r.layers = v;
    else if (m[1] === 'mstd' && v <= 10) r.magnitudeStd = v;
    else if (m[1] === 'inc' && (v === 0 || v === 1)) r.increasing = v === 1;
    else throw new DataError(`RandAugment specification '${spec}': '${p}' is not m<0..30>, n<1..10>, mstd<0..10> or inc<0|1>`);
  }
  return r;
}

const negate = (v: number, rng: Rng): number => (rng.next() > 0.5 ? -v : v);

/** One op at magnitude m (already clipped to 0..10), with timm's level-to-argument rule. */
function applyOp(name: string, img: Image8, m: number, inc: boolean, rng: Rng, interp: FolderAugment['interpolation'], fill: readonly number[]): { img: Image8; args: number[] } {
  const enhance = (): number => (inc ? 1 + negate((m / MAX_LEVEL) * 0.9, rng) : (m / MAX_LEVEL) * 1.8 + 0.1);
  switch (name) {
    case 'AutoContrast': return { img: autoContrast(img), args: [] };
    case 'Equalize': return { img: equalize(img), args: [] };
    case 'Invert': return { img: invert(img), args: [] };
    case 'Rotate': { const d = negate((m / MAX_LEVEL) * 30, rng); return { img: rotate(img, d, pickFilter(interp, rng), fill), args: [d] }; }
    case 'Posterize': {
      const bits = inc ? 4 - Math.trunc((m / MAX_LEVEL) * 4) : Math.trunc((m / MAX_LEVEL) * 4);
      return { img: posterize(img, bits), args: [bits] };
    }
    case 'Solarize': {
      const t = inc ? 256 - Math.trunc((m / MAX_LEVEL) * 256) : Math.trunc((m / MAX_LEVEL) * 256);
      return { img: solarize(img, t), args: [t] };
    }
    case 'SolarizeAdd': { const a = Math.trunc((m / MAX_LEVEL) * 110); return { img: solarizeAdd(img, a), args: [a] }; }
    case 'Color': { const f = enhance(); return { img: color(img, f), args: [f] }; }
    case 'Contrast': { const f = enhance(); return { img: contrast(img, f), args: [f] }; }
    case 'Brightness': { const f = enhance(); return { img: brightness(img, f), args: [f] }; }
    case 'Sharpness': { const f = enhance(); return { img: sharpness(img, f), args: [f] }; }
    case 'ShearX': { const f = negate((m / MAX_LEVEL) * 0.3, rng); return { img: shearX(img, f, pickFilter(interp, rng), fill), args: [f] }; }
    case 'ShearY': { const f = negate((m / MAX_LEVEL) * 0.3, rng); return { img: shearY(img, f, pickFilter(interp, rng), fill), args: [f] }; }
    case 'TranslateXRel': { const p = negate((m / MAX_LEVEL) * 0.45, rng) * img.width; return { img: translateX(img, p, pickFilter(interp, rng), fill), args: [p] }; }
    case 'TranslateYRel': { const p = negate((m / MAX_LEVEL) * 0.45, rng) * img.height; return { img: translateY(img, p, pickFilter(interp, rng), fill), args: [p] }; }
    default: throw new DataError(`unknown RandAugment op ${name}`);
  }
}

/**
 * timm's RandAugment: `layers` ops drawn uniformly with replacement from RAND_OPS; each runs with probability 0.5
 * at a magnitude drawn from N(magnitude, magnitudeStd) clipped to [0, 10]. Geometric ops fill with `fill`.
 */
export function randAugment(img: Image8, spec: RandAugmentSpec, rng: Rng, interp: FolderAugment['interpolation'], fill: readonly number[], trace?: AugmentTrace): Image8 {
  for (let k = 0; k < spec.layers; k++) {
    const name = RAND_OPS[rng.int(RAND_OPS.length)]!;
    if (rng.next() > 0.5) { trace?.ops?.push({ name, applied: false }); continue; }
    let m = spec.magnitude;
    if (spec.magnitudeStd > 0) m += spec.magnitudeStd * rng.normal();
    m = Math.min(MAX_LEVEL, Math.max(0, m));
    const r = applyOp(name, img, m, spec.increasing, rng, interp, fill);
    img = r.img;
    trace?.ops?.push({ name, applied: true, magnitude: m, args: r.args });
  }
  return img;
}

/** torchvision ColorJitter(s, s, s) on a PIL image: brightness, contrast, saturation factors in [1-s, 1+s], random order. */
export function colorJitter(img: Image8, strength: number, rng: Rng, trace?: AugmentTrace): Image8 {
  const ops: [string, (i: Image8, f: number) => Image8][] = [['brightness', brightness], ['contrast', contrast], ['saturation', color]];
  rng.shuffle(ops);
  const factors: Record<string, number> = {};
  for (const [name, fn] of ops) {
    const f = uniform(rng, Math.max(0, 1 - strength), 1 + strength);
    factors[name] = f;
    img = fn(img, f);
  }
  if (trace) trace.jitter = { order: ops.map(([n]) => n), factors };
  return img;
}

/**
 * timm RandomErasing (count 1) on a normalised HWC image: with probability p, 10 tries of an area fraction in
 * [0.02, 1/3] and a log-uniform aspect in [0.3, 1/0.3] that fits strictly inside; filled with N(0, 1) per value
 * ('pixel'), one N(0, 1) per channel ('rand') or 0, the mean colour ('const').
 */
export function randomErasing(x: Float32Array, H: number, W: number, C: number, p: number, mode: FolderAugment['erasingMode'], rng: Rng, trace?: AugmentTrace): void {
  if (trace) trace.erased = null;
  if (rng.next() > p) return;
  const area = H * W;
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = uniform(rng, 0.02, 1 / 3) * area;
    const aspect = Math.exp(uniform(rng, Math.log(0.3), Math.log(1 / 0.3)));
    const h = roundHalfEven(Math.sqrt(target * aspect)), w = roundHalfEven(Math.sqrt(target / aspect));
    if (w < W && h < H) {
      const top = randint(rng, 0, H - h), left = randint(rng, 0, W - w);
      const perChannel = mode === 'rand' ? Array.from({ length: C }, () => rng.normal()) : undefined;
      for (let y = top; y < top + h; y++) for (let xx = left; xx < left + w; xx++) for (let c = 0; c < C; c++) {
        x[(y * W + xx) * C + c] = mode === 'pixel' ? rng.normal() : perChannel ? perChannel[c]! : 0;
      }
      if (trace) trace.erased = { left, top, width: w, height: h };
      return;
    }
  }
}

/** The fill of the geometric ops: the configuration's mean as 8-bit levels (timm's img_mean). */
export const meanFill = (cfg: Pick<ArchConfig, 'mean'>): number[] => cfg.mean.map((m) => Math.min(255, roundHalfEven(255 * m)));

/**
 * The augmented 8-bit image of one original image: crop (or the evaluation resize), flip, RandAugment or colour
 * jitter. `fitEval` is the evaluation resize used when the crop is off.
 */
export function augmentImage(img: Image8, height: number, width: number, aug: FolderAugment, fill: readonly number[], rng: Rng,
  fitEval: (img: Image8) => Image8, trace?: AugmentTrace): Image8 {
  let out: Image8;
  if (aug.resizedCrop) {
    const box = resizedCropBox(img.width, img.height, aug.resizedCrop.scale, aug.resizedCrop.ratio, rng);
    const filter = pickFilter(aug.interpolation, rng);
    if (trace) trace.crop = { ...box, filter };
    // torchvision's resized_crop: crop, then resize the crop (the filter reads no pixel outside the box).
    out = resizeBox(cropImage(img, box), { left: 0, top: 0, width: box.width, height: box.height }, width, height, filter);
  } else {
    out = fitEval(img);
  }
  const flip = aug.hflip > 0 && rng.next() < aug.hflip;
  if (trace) trace.flip = flip;
  if (flip) out = flipHorizontal(out);
  if (aug.randAugment) {
    if (trace) trace.ops = [];
    out = randAugment(out, parseRandAugment(aug.randAugment), rng, aug.interpolation, fill, trace);
  } else if (aug.colorJitter > 0) {
    out = colorJitter(out, aug.colorJitter, rng, trace);
  }
  return out;
}

/** The generator of image `index` in epoch `epoch`: independent of batch boundaries and of every other image. */
export const imageRng = (seed: number, epoch: number, index: number): Rng => Rng.derive(seed, 0xa46, epoch, index);

/**
 * A training batch of an image folder with the official augmentation: like assembleBatch, but from each image's
 * original pixels (`src.readOriginal`) and with one generator per (seed, epoch, image).
 */
export function assembleAugmentedBatch(src: ImageSource, cfg: Pick<ArchConfig, 'input' | 'mean' | 'std' | 'resize' | 'resizeShorter'>, indices: ArrayLike<number>, out: Float32Array, labels: Int32Array,
  aug: FolderAugment, seed: number, epoch: number): void {
  if (!src.readOriginal) throw new DataError(`${src.name}: the folder augmentation needs the original images`);
  const { height: H, width: W, channels: C } = cfg.input;
  if (aug.randAugment) parseRandAugment(aug.randAugment);
  const fill = meanFill(cfg);
  // Without the crop: the model's own evaluation resize.
  const fitEval = (img: Image8): Image8 => {
    const data = new Uint8Array(H * W * C);
    fitForModel(img, H, W, C, { resize: cfg.resize, resizeShorter: cfg.resizeShorter }, data);
    return { width: W, height: H, channels: C, data };
  };
  for (let b = 0; b < indices.length; b++) {
    const idx = indices[b]!;
    const rng = imageRng(seed, epoch, idx);
    const img = augmentImage(src.readOriginal(idx), H, W, aug, fill, rng, fitEval);
    labels[b] = src.label(idx);
    const x = out.subarray(b * H * W * C, (b + 1) * H * W * C);
    for (let i = 0; i < H * W * C; i++) x[i] = (img.data[i]! / 255 - cfg.mean[i % C]!) / cfg.std[i % C]!;
    if (aug.randomErasing > 0) randomErasing(x, H, W, C, aug.randomErasing, aug.erasingMode, rng);
  }
}
