// Resampling of 8-bit HWC images as Pillow does it, for the training augmentation and the folder evaluation:
// - resize (Pillow's Resample.c): separable, antialiased (the filter stretched by the shrink factor), horizontal
//   pass then vertical, each rounded to 8 bits; triangle filter (bilinear) or Keys cubic with a = -0.5 (bicubic);
// - affine transform (Pillow's Geometry.c, used by rotate/shear/translate): each output pixel centre mapped
//   through the matrix, sampled bilinearly (2x2) or bicubically (4x4) without antialiasing, the fill colour where
//   the mapped point falls outside the source; its bicubic is the cubic convolution with a = -1 (Geometry.c's
//   BICUBIC macro), not the resize's a = -0.5.
// Pillow computes in fixed point or float32; this computes in float64, so a value may differ from Pillow's by one
// level (test/base/augment-pil.test.ts compares with Pillow). Own code rather than an image library: the evaluation side has to equal the runtime's Pillow resize
// (assembly/image.ts) and the training side the official Pillow pipeline, while image libraries (sharp/libvips,
// jimp, pica) define their own filters.

export interface Image8 { width: number; height: number; channels: number; data: Uint8Array }
export type Filter = 'bilinear' | 'bicubic';

function kernel(filter: Filter, x: number): number {
  x = Math.abs(x);
  if (filter === 'bilinear') return x < 1 ? 1 - x : 0;
  if (x < 1) return (1.5 * x - 2.5) * x * x + 1;
  return x < 2 ? (((x - 5) * x + 8) * x - 4) * -0.5 : 0;
}

/** Cubic convolution with a = -1 (Pillow's affine-transform bicubic). */
function cubicA1(x: number): number {
  x = Math.abs(x);
  if (x < 1) return (x - 2) * x * x + 1;
  return x < 2 ? ((-x + 5) * x - 8) * x + 4 : 0;
}

const to8 = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : Math.floor(v + 0.5));

/** For each output coordinate: the first source index and the normalised weights (Pillow's precompute_coeffs). */
function coefficients(filter: Filter, inSize: number, outSize: number, boxStart: number, boxSize: number): { lo: Int32Array; w: Float64Array[] } {
  const scale = boxSize / outSize;
  const stretch = Math.max(1, scale);
  const support = (filter === 'bilinear' ? 1 : 2) * stretch;
  const lo = new Int32Array(outSize);
  const w: Float64Array[] = [];
  for (let o = 0; o < outSize; o++) {
    const center = boxStart + (o + 0.5) * scale;
    const a = Math.max(0, Math.trunc(center - support + 0.5));
    const b = Math.min(inSize, Math.trunc(center + support + 0.5));
    const ws = new Float64Array(Math.max(0, b - a));
    let total = 0;
    for (let i = a; i < b; i++) total += (ws[i - a] = kernel(filter, (i - center + 0.5) / stretch));
    if (total !== 0) for (let k = 0; k < ws.length; k++) ws[k]! /= total;
    lo[o] = a;
    w.push(ws);
  }
  return { lo, w };
}

/**
 * Pillow's `img.resize((outW, outH), filter, box)`: the box [left, top, left + boxW, top + boxH) of `img` resized
 * to outW x outH (torchvision's resized_crop is the crop then this resize, the same as the box).
 */
export function resizeBox(img: Image8, box: { left: number; top: number; width: number; height: number }, outW: number, outH: number, filter: Filter): Image8 {
  const C = img.channels;
  const cx = coefficients(filter, img.width, outW, box.left, box.width);
  const cy = coefficients(filter, img.height, outH, box.top, box.height);
  // Only the source rows the vertical pass reads go through the horizontal pass.
  let rowLo = img.height, rowHi = 0;
  for (let o = 0; o < outH; o++) { rowLo = Math.min(rowLo, cy.lo[o]!); rowHi = Math.max(rowHi, cy.lo[o]! + cy.w[o]!.length); }
  rowLo = Math.min(rowLo, rowHi);
  const rows = new Uint8Array((rowHi - rowLo) * outW * C);
  for (let y = rowLo; y < rowHi; y++) {
    for (let x = 0; x < outW; x++) {
      const lo = cx.lo[x]!, ws = cx.w[x]!;
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let k = 0; k < ws.length; k++) s += ws[k]! * img.data[(y * img.width + lo + k) * C + c]!;
        rows[((y - rowLo) * outW + x) * C + c] = to8(s);
      }
    }
  }
  const out = new Uint8Array(outW * outH * C);
  for (let y = 0; y < outH; y++) {
    const lo = cy.lo[y]! - rowLo, ws = cy.w[y]!;
    for (let x = 0; x < outW; x++) {
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let k = 0; k < ws.length; k++) s += ws[k]! * rows[((lo + k) * outW + x) * C + c]!;
        out[(y * outW + x) * C + c] = to8(s);
      }
    }
  }
  return { width: outW, height: outH, channels: C, data: out };
}

/** Python's round(): halves to even (torchvision's CenterCrop offsets, RandomResizedCrop's sizes). */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d !== 0.5) return Math.round(x);
  return f % 2 === 0 ? f : f + 1;
}

/**
 * The official evaluation preprocessing (torchvision Resize(shorter) then CenterCrop on a PIL image): the shorter
 * side to `shorter` (the longer to floor(shorter * long / short)), the height x width crop from the middle.
 */
export function resizeShorterCenterCrop(img: Image8, shorter: number, height: number, width: number, filter: Filter): Image8 {
  const rw = img.width <= img.height ? shorter : Math.floor((shorter * img.width) / img.height);
  const rh = img.width <= img.height ? Math.floor((shorter * img.height) / img.width) : shorter;
  const resized = resizeBox(img, { left: 0, top: 0, width: img.width, height: img.height }, rw, rh, filter);
  const top = roundHalfEven((rh - height) / 2), left = roundHalfEven((rw - width) / 2);
  const C = img.channels;
  const out = new Uint8Array(height * width * C);
  for (let y = 0; y < height; y++) {
    const sy = y + top;
    for (let x = 0; x < width; x++) {
      const sx = x + left;
      // A crop larger than the image pads with zeros, as torchvision's CenterCrop.
      if (sy < 0 || sy >= rh || sx < 0 || sx >= rw) continue;
      for (let c = 0; c < C; c++) out[(y * width + x) * C + c] = resized.data[(sy * rw + sx) * C + c]!;
    }
  }
  return { width, height, channels: C, data: out };
}

/**
 * Pillow's `img.transform(size, AFFINE, (a, b, c, d, e, f), resample, fillcolor)`: output pixel (x, y) samples the
 * source at (a(x+.5) + b(y+.5) + c, d(x+.5) + e(y+.5) + f); points outside the source get `fill`.
 */
export function affine(img: Image8, m: readonly number[], filter: Filter, fill: readonly number[]): Image8 {
  const { width: W, height: H, channels: C, data } = img;
  const out = new Uint8Array(W * H * C);
  const [a, b, cc, d, e, f] = m as [number, number, number, number, number, number];
  const taps = filter === 'bilinear' ? 2 : 4, first = filter === 'bilinear' ? 0 : -1;
  const wx = new Float64Array(taps), wy = new Float64Array(taps);
  const ix = new Int32Array(taps), iy = new Int32Array(taps);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const xin = a * (x + 0.5) + b * (y + 0.5) + cc, yin = d * (x + 0.5) + e * (y + 0.5) + f;
      const o = (y * W + x) * C;
      if (!(xin >= 0 && xin < W && yin >= 0 && yin < H)) {
        for (let c = 0; c < C; c++) out[o + c] = fill[c]!;
        continue;
      }
      const sx = xin - 0.5, sy = yin - 0.5;
      const x0 = Math.floor(sx), y0 = Math.floor(sy), fx = sx - x0, fy = sy - y0;
      // Taps and weights once per pixel; source indices clamped to the edge.
      for (let k = 0; k < taps; k++) {
        const i = x0 + first + k, j = y0 + first + k;
        ix[k] = i < 0 ? 0 : i >= W ? W - 1 : i;
        iy[k] = j < 0 ? 0 : j >= H ? H - 1 : j;
        wx[k] = filter === 'bilinear' ? (k === 0 ? 1 - fx : fx) : cubicA1(fx - first - k);
        wy[k] = filter === 'bilinear' ? (k === 0 ? 1 - fy : fy) : cubicA1(fy - first - k);
      }
      for (let c = 0; c < C; c++) {
        let v = 0;
        for (let j = 0; j < taps; j++) {
          const row = iy[j]! * W;
          let s = 0;
          for (let i = 0; i < taps; i++) s += wx[i]! * data[(row + ix[i]!) * C + c]!;
          v += wy[j]! * s;
        }
        // Pillow's transform casts to 8 bits (truncates), unlike its resize, which rounds.
        out[o + c] = v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v);
      }
    }
  }
  return { width: W, height: H, channels: C, data: out };
}
