// The official folder augmentation (base/data/augment.ts) against its definitions in the official code's timm
// (transforms.py RandomResizedCropAndInterpolation, torchvision ColorJitter, auto_augment.py RandAugment,
// random_erasing.py) and Pillow's operations; and the resampler against the plain reference of Pillow's
// antialiased resize (test/reference/resize.ts).
import t from 'tap';

import {
  assembleAugmentedBatch, autoContrast, augmentImage, brightness, colorJitter, equalize, flipHorizontal, imageRng, invert,
  OFFICIAL_FOLDER_AUGMENT, parseRandAugment, posterize, RAND_OPS, randAugment, randomErasing, resizedCropBox, rotate, shearX,
  solarize, solarizeAdd, translateX, type AugmentTrace, type FolderAugment,
} from '../../base/data/augment.js';
import { resizeShorterCenterCrop, type Image8 } from '../../base/data/resample.js';
import type { ImageSource } from '../../base/data/source.js';
import { Rng } from '../../base/rng.js';
import { tinyConfig } from '../../trainer/tiny.js';
import { officialPreprocess } from '../reference/resize.js';

/** A w x h image with c channels whose samples follow a smooth pattern plus noise (fixed by seed). */
function image(w: number, h: number, c: number, seed = 1): Image8 {
  const rng = new Rng(seed);
  const data = new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) {
    data[(y * w + x) * c + k] = Math.max(0, Math.min(255, Math.round(128 + 90 * Math.sin(x / 3 + k) * Math.cos(y / 5) + 30 * (rng.next() - 0.5))));
  }
  return { width: w, height: h, channels: c, data };
}
const at = (img: Image8, x: number, y: number, c = 0): number => img.data[(y * img.width + x) * img.channels + c]!;

t.test('Pillow-style resize (shorter side, centre crop) against the plain reference, both filters, up and down', async (t) => {
  for (const [w, h, shorter, crop] of [[37, 23, 16, 16], [19, 41, 12, 10], [9, 7, 20, 18], [64, 64, 17, 15]] as const) {
    for (const cubic of [false, true]) {
      const img = image(w, h, 3, w + h);
      const got = resizeShorterCenterCrop(img, shorter, crop, crop, cubic ? 'bicubic' : 'bilinear');
      t.same([got.width, got.height, got.channels, got.data.length], [crop, crop, 3, crop * crop * 3], 'shape');
      const want = officialPreprocess(Float64Array.from(img.data, (v) => v / 255), w, h, 3, shorter, cubic, crop, [0, 0, 0], [1, 1, 1]);
      let worst = 0;
      for (let y = 0; y < crop; y++) for (let x = 0; x < crop; x++) for (let c = 0; c < 3; c++) {
        worst = Math.max(worst, Math.abs(at(got, x, y, c) - 255 * want[(c * crop + y) * crop + x]!));
      }
      // Each pass rounds to 8 bits as Pillow does; the reference does not round.
      t.ok(worst <= 1.5, `${w}x${h} -> ${shorter}, crop ${crop}, ${cubic ? 'bicubic' : 'bilinear'}: within ${worst.toFixed(2)} levels`);
    }
  }
});

t.test('RandomResizedCrop: area fraction and aspect within their ranges, box inside the image, fallback centre crop', async (t) => {
  const rng = new Rng(7);
  const [W, H] = [300, 200];
  let minArea = 1, maxArea = 0, minAspect = 9, maxAspect = 0, outside = 0;
  for (let i = 0; i < 5000; i++) {
    const b = resizedCropBox(W, H, [0.08, 1], [3 / 4, 4 / 3], rng);
    if (b.left < 0 || b.top < 0 || b.left + b.width > W || b.top + b.height > H || b.width < 1 || b.height < 1) outside++;
    const a = (b.width * b.height) / (W * H), r = b.width / b.height;
    minArea = Math.min(minArea, a); maxArea = Math.max(maxArea, a); minAspect = Math.min(minAspect, r); maxAspect = Math.max(maxAspect, r);
  }
  t.equal(outside, 0, 'every box lies inside the image');
  // Sides are rounded to whole pixels, so the bounds hold up to that rounding.
  t.ok(minArea >= 0.08 * 0.97 && maxArea <= 1, `area fraction in [0.08, 1] (seen ${minArea.toFixed(3)}..${maxArea.toFixed(3)})`);
  t.ok(minArea < 0.1 && maxArea > 0.6, 'the range is used');
  t.ok(minAspect >= 0.75 * 0.97 && maxAspect <= (4 / 3) * 1.03, `aspect in [3/4, 4/3] (seen ${minAspect.toFixed(3)}..${maxAspect.toFixed(3)})`);
  // A 1000x10 strip never fits a box of area >= 90% with aspect <= 4/3: the centre crop of aspect 4/3 (timm's fallback).
  t.same(resizedCropBox(1000, 10, [0.9, 1], [3 / 4, 4 / 3], rng), { left: 493, top: 0, width: 13, height: 10 });
});

t.test('a flip is an exact mirror', async (t) => {
  const img = image(7, 5, 3);
  const f = flipHorizontal(img);
  let wrong = 0;
  for (let y = 0; y < 5; y++) for (let x = 0; x < 7; x++) for (let c = 0; c < 3; c++) if (at(f, x, y, c) !== at(img, 6 - x, y, c)) wrong++;
  t.equal(wrong, 0, 'out(x, y) = in(W-1-x, y)');
  t.same(flipHorizontal(f).data, img.data, 'twice is the identity');
});

t.test('colour jitter 0.4: brightness, contrast and saturation factors in [0.6, 1.4], in a random order', async (t) => {
  const rng = new Rng(3);
  const img = image(6, 6, 3);
  let lo = 9, hi = 0;
  const orders = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const trace: AugmentTrace = {};
    colorJitter(img, 0.4, rng, trace);
    for (const f of Object.values(trace.jitter!.factors)) { lo = Math.min(lo, f); hi = Math.max(hi, f); }
    if (trace.jitter!.order.length !== 3) t.fail('3 operations');
    orders.add(trace.jitter!.order.join(','));
  }
  t.ok(lo >= 0.6 && hi <= 1.4 && lo < 0.62 && hi > 1.38, `factors in [0.6, 1.4], the range used (${lo.toFixed(3)}..${hi.toFixed(3)})`);
  t.equal(orders.size, 6, 'all 6 orders of the 3 operations occur');
  // Brightness is Image.blend with black: trunc(v * f), clamped.
  const b = brightness(img, 1.3);
  // In single precision, as Pillow's blend (alpha is a C float): float32(1.3) * 90 = 116.99999 -> 116 (Pillow 9.4 gives 116).
  t.same(Array.from(b.data), Array.from(img.data, (v) => Math.min(255, Math.trunc(Math.fround(Math.fround(1.3) * v)))), 'brightness 1.3 = trunc(1.3 v) in float32, clamped');
  t.equal(brightness({ width: 1, height: 1, channels: 1, data: Uint8Array.of(90) }, 1.3).data[0], 116, 'brightness 1.3 of 90: 116, as Pillow');
});

t.test('random erasing: probability, area fraction [0.02, 1/3], aspect [0.3, 3.33], N(0,1) fill inside, nothing outside', async (t) => {
  const [H, W, C] = [40, 30, 3];
  const rng = new Rng(11);
  let erased = 0, minA = 1, maxA = 0, minR = 9, maxR = 0;
  const inside: number[] = [];
  const n = 2000;
  for (let i = 0; i < n; i++) {
    const x = new Float32Array(H * W * C).fill(7);
    const trace: AugmentTrace = {};
    randomErasing(x, H, W, C, 0.2, 'pixel', rng, trace);
    if (!trace.erased) { if (!x.every((v) => v === 7)) t.fail('untouched when not erased'); continue; }
    erased++;
    const e = trace.erased;
    const a = (e.width * e.height) / (H * W);
    minA = Math.min(minA, a); maxA = Math.max(maxA, a); minR = Math.min(minR, e.height / e.width); maxR = Math.max(maxR, e.height / e.width);
    let changedOutside = 0, changedInside = 0;
    for (let y = 0; y < H; y++) for (let xx = 0; xx < W; xx++) for (let c = 0; c < C; c++) {
      const inRect = y >= e.top && y < e.top + e.height && xx >= e.left && xx < e.left + e.width;
      const v = x[(y * W + xx) * C + c]!;
      if (!inRect && v !== 7) changedOutside++;
      if (inRect) { changedInside += v !== 7 ? 1 : 0; if (inside.length < 200000) inside.push(v); }
    }
    if (changedOutside) t.fail('a value outside the rectangle changed');
    if (changedInside !== e.width * e.height * C) t.fail('every value of the rectangle is redrawn');
  }
  // Binomial(2000, 0.2): mean 400, sd 17.9.
  t.ok(Math.abs(erased - 0.2 * n) < 5 * 17.9, `erased ${erased} of ${n} images (p = 0.2)`);
  t.ok(minA >= 0.02 * 0.8 && maxA <= (1 / 3) * 1.15, `area fraction in [0.02, 1/3] up to pixel rounding (${minA.toFixed(3)}..${maxA.toFixed(3)})`);
  t.ok(minR >= 0.3 * 0.8 && maxR <= (1 / 0.3) * 1.25, `aspect h/w in [0.3, 3.33] up to rounding (${minR.toFixed(2)}..${maxR.toFixed(2)})`);
  const mean = inside.reduce((a, b) => a + b, 0) / inside.length;
  const sd = Math.sqrt(inside.reduce((a, b) => a + (b - mean) ** 2, 0) / inside.length);
  t.ok(Math.abs(mean) < 0.02 && Math.abs(sd - 1) < 0.02, `pixel fill ~ N(0, 1): mean ${mean.toFixed(4)}, sd ${sd.toFixed(4)}`);
  const c = new Float32Array(H * W * C).fill(7);
  const tr: AugmentTrace = {};
  randomErasing(c, H, W, C, 1, 'const', new Rng(1), tr);
  t.equal(c.filter((v) => v === 0).length, tr.erased!.width * tr.erased!.height * C, "'const' fills 0 (the mean colour after normalisation)");
});

t.test('RandAugment rand-m9-mstd0.5: 2 ops per image from the 15, each applied with p 0.5, magnitude N(9, 0.5) in [0, 10]', async (t) => {
  t.same(parseRandAugment('rand-m9-mstd0.5'), { magnitude: 9, layers: 2, magnitudeStd: 0.5, increasing: false });
  t.same(parseRandAugment('rand-m7-n3-inc1'), { magnitude: 7, layers: 3, magnitudeStd: 0, increasing: true });
  t.throws(() => parseRandAugment('augmix-m5'), /must start with 'rand'/);
  t.throws(() => parseRandAugment('rand-w0'), /'w0' is not/);
  t.same([...RAND_OPS].sort(), ['AutoContrast', 'Brightness', 'Color', 'Contrast', 'Equalize', 'Invert', 'Posterize', 'Rotate', 'Sharpness',
    'ShearX', 'ShearY', 'Solarize', 'SolarizeAdd', 'TranslateXRel', 'TranslateYRel'], "timm's _RAND_TRANSFORMS");
  const spec = parseRandAugment('rand-m9-mstd0.5');
  const rng = new Rng(5);
  const img = image(8, 8, 3);
  const seen = new Map<string, number>();
  const mags: number[] = [];
  let applied = 0, chosen = 0;
  for (let i = 0; i < 3000; i++) {
    const trace: AugmentTrace = { ops: [] };
    const out = randAugment(img, spec, rng, 'random', [124, 116, 104], trace);
    if (out.data.length !== img.data.length || out.width !== 8 || out.height !== 8) t.fail('the image keeps its shape');
    if (trace.ops!.length !== 2) t.fail('2 ops per image');
    for (const op of trace.ops!) {
      chosen++;
      seen.set(op.name, (seen.get(op.name) ?? 0) + 1);
      if (op.applied) { applied++; mags.push(op.magnitude!); }
    }
  }
  t.equal(chosen, 6000, 'exactly 2 ops drawn per image');
  t.equal(seen.size, 15, 'every op of the list is drawn');
  t.ok([...seen.keys()].every((k) => (RAND_OPS as readonly string[]).includes(k)), 'only ops of the list');
  t.ok(Math.min(...seen.values()) > 6000 / 15 - 5 * 19.4, 'uniformly (each near 400 of 6000)');
  t.ok(Math.abs(applied - 3000) < 5 * 38.7, `each applied with probability 0.5 (${applied} of 6000)`);
  const mean = mags.reduce((a, b) => a + b, 0) / mags.length;
  const sd = Math.sqrt(mags.reduce((a, b) => a + (b - mean) ** 2, 0) / mags.length);
  t.ok(Math.min(...mags) >= 0 && Math.max(...mags) <= 10, 'magnitudes clipped to [0, 10]');
  t.ok(Math.abs(mean - 9) < 0.05 && Math.abs(sd - 0.5) < 0.05, `magnitude N(9, 0.5): mean ${mean.toFixed(3)}, sd ${sd.toFixed(3)}`);
});

t.test('the RandAugment ops against their definitions (Pillow ImageOps / affine transforms)', async (t) => {
  const img = image(6, 4, 3);
  t.same(Array.from(invert(img).data), Array.from(img.data, (v) => 255 - v), 'Invert: 255 - v');
  t.same(Array.from(solarize(img, 128).data), Array.from(img.data, (v) => (v < 128 ? v : 255 - v)), 'Solarize(128)');
  t.same(Array.from(solarizeAdd(img, 99).data), Array.from(img.data, (v) => (v < 128 ? Math.min(255, v + 99) : v)), 'SolarizeAdd(99)');
  t.same(Array.from(posterize(img, 3).data), Array.from(img.data, (v) => v & 0xe0), 'Posterize(3 bits)');
  t.same(Array.from(posterize(img, 0).data), Array.from(img.data, () => 0), 'Posterize(0 bits): black');
  // AutoContrast maps each channel's range [lo, hi] onto [0, 255].
  const ramp: Image8 = { width: 3, height: 1, channels: 1, data: Uint8Array.from([50, 100, 150]) };
  t.same(Array.from(autoContrast(ramp).data), [0, 127, 255], 'AutoContrast: 50..150 -> 0..255 (truncating)');
  // Equalize on 4 levels with counts 2, 2, 2, 2: step = (8 - 2) // 255 = 0, so Pillow leaves it unchanged; with
  // 600 pixels (counts 150 each) step = 450 // 255 = 1 and the levels go to their cumulative counts.
  const tiny: Image8 = { width: 8, height: 1, channels: 1, data: Uint8Array.from([0, 0, 10, 10, 20, 20, 30, 30]) };
  t.same(equalize(tiny).data, tiny.data, 'Equalize: step 0 keeps the image');
  const big: Image8 = { width: 600, height: 1, channels: 1, data: Uint8Array.from({ length: 600 }, (_, i) => [0, 10, 20, 30][Math.floor(i / 150)]!) };
  t.same([0, 150, 300, 450].map((i) => equalize(big).data[i]), [0, 150, 255, 255], 'Equalize: lut[v] = (step//2 + cumulative count below v) // step, clipped');
  // Geometric ops with whole-pixel offsets sample pixel centres exactly: a shift, a shear of rows, a quarter turn.
  const fill = [1, 2, 3];
  const tx = translateX(img, 2, 'bilinear', fill);
  let wrong = 0;
  for (let y = 0; y < 4; y++) for (let x = 0; x < 6; x++) for (let c = 0; c < 3; c++) {
    const want = x + 2 < 6 ? at(img, x + 2, y, c) : fill[c]!;
    if (at(tx, x, y, c) !== want) wrong++;
  }
  t.equal(wrong, 0, 'TranslateX(2 px): out(x, y) = in(x + 2, y), the fill beyond the edge');
  const sq = image(6, 6, 1, 9);
  const r = rotate(sq, 90, 'bicubic', [0]);
  wrong = 0;
  for (let y = 0; y < 6; y++) for (let x = 0; x < 6; x++) if (at(r, x, y) !== at(sq, 5 - y, x)) wrong++;
  t.equal(wrong, 0, 'Rotate(90): counter-clockwise, out(x, y) = in(W-1-y, x)');
  const sh = shearX(sq, 1, 'bilinear', [0]);
  wrong = 0;
  // The centre (x+.5, y+.5) maps to x + y + 1: halfway between source pixels x+y and x+y+1; the fill past the edge.
  for (let y = 0; y < 6; y++) for (let x = 0; x < 6; x++) {
    const want = x + y + 1 < 6 ? Math.floor((at(sq, x + y, y) + at(sq, x + y + 1, y)) / 2) : 0; // truncated, as Pillow
    if (at(sh, x, y) !== want) wrong++;
  }
  t.equal(wrong, 0, 'ShearX(1): out(x, y) = mean of in(x+y, y) and in(x+y+1, y), the fill where x+y+1 >= W');
});

/** A source of original images of different sizes (as a folder gives them), labels i mod 3. */
function fakeFolder(n: number, channels: number): ImageSource {
  const imgs = Array.from({ length: n }, (_, i) => image(20 + (i % 5) * 7, 16 + (i % 3) * 9, channels, i + 1));
  return {
    name: 'fake', count: n, height: 8, width: 8, channels, classes: 3,
    read: () => { throw new Error('the augmentation reads the originals'); },
    readOriginal: (i) => imgs[i]!, label: (i) => i % 3, close: () => {},
  };
}

t.test('batches: shapes, values, labels; the same seed gives the same images whatever the batching, another seed others', async (t) => {
  const cfg = tinyConfig({ input: { channels: 3, height: 8, width: 8 }, mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] });
  const src = fakeFolder(12, 3);
  const per = 8 * 8 * 3;
  const batch = (idx: number[], seed: number, epoch: number, aug: FolderAugment = OFFICIAL_FOLDER_AUGMENT): { x: Float32Array; y: Int32Array } => {
    const x = new Float32Array(idx.length * per), y = new Int32Array(idx.length);
    assembleAugmentedBatch(src, cfg, idx, x, y, aug, seed, epoch);
    return { x, y };
  };
  const all = batch([3, 7, 1, 0, 11, 5], 1, 2);
  t.same(Array.from(all.y), [0, 1, 1, 0, 2, 2], 'labels of the images');
  t.ok(all.x.every(Number.isFinite), 'finite values');
  // Outside erased rectangles every value is a normalised 8-bit level: (k/255 - mean)/std.
  t.ok(all.x.every((v, i) => v >= (0 - 0.5) / 0.2 - 6 && v <= (1 - 0.3) / 0.2 + 6), 'values in range (levels, or N(0,1) where erased)');
  const split = [batch([3, 7, 1], 1, 2), batch([0, 11, 5], 1, 2)];
  t.same(Array.from(all.x), [...split[0]!.x, ...split[1]!.x], 'batch boundaries do not change an image');
  t.same(Array.from(batch([7], 1, 2).x), Array.from(all.x.subarray(per, 2 * per)), 'image 7 alone: the same');
  const other = batch([3, 7, 1, 0, 11, 5], 2, 2), nextEpoch = batch([3, 7, 1, 0, 11, 5], 1, 3);
  for (let b = 0; b < 6; b++) {
    const slice = (x: Float32Array): number[] => Array.from(x.subarray(b * per, (b + 1) * per));
    t.notSame(slice(other.x), slice(all.x), `image ${b}: another seed, another draw`);
    t.notSame(slice(nextEpoch.x), slice(all.x), `image ${b}: another epoch, another draw`);
  }
  // Everything off: the model's evaluation resize, normalised, no randomness.
  const off: FolderAugment = { resizedCrop: null, interpolation: 'bilinear', hflip: 0, colorJitter: 0, randAugment: null, randomErasing: 0, erasingMode: 'pixel' };
  t.same(Array.from(batch([4], 1, 0, off).x), Array.from(batch([4], 9, 5, off).x), 'no augmentation: independent of seed and epoch');
  // The uint8 image before normalisation: input-sized.
  const trace: AugmentTrace = {};
  const img = augmentImage(src.readOriginal!(2), 8, 8, OFFICIAL_FOLDER_AUGMENT, [128, 102, 77], imageRng(1, 0, 2), () => { throw new Error('crop is on'); }, trace);
  t.same([img.width, img.height, img.channels, img.data.length], [8, 8, 3, 192], 'output 8x8x3');
  t.ok(trace.crop && ['bilinear', 'bicubic'].includes(trace.crop.filter), `crop ${JSON.stringify(trace.crop)} with a random filter`);
  t.equal(trace.ops?.length, 2, 'two RandAugment draws');
  const filters = new Set<string>();
  for (let i = 0; i < 200; i++) { const tr: AugmentTrace = {}; augmentImage(src.readOriginal!(0), 8, 8, OFFICIAL_FOLDER_AUGMENT, [0, 0, 0], imageRng(1, 0, i), () => img, tr); filters.add(tr.crop!.filter); }
  t.same([...filters].sort(), ['bicubic', 'bilinear'], "'random' interpolation: bilinear and bicubic (timm's _RANDOM_INTERPOLATION)");
});
