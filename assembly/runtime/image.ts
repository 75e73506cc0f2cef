// Input preparation shared by the WASI command and the JS API: PGM/PPM decoding, and resizing (shorter side
// to the model input, centre crop, bilinear or nearest as META says; or the official evaluation resize, shorter
// side to input.resize_shorter with PIL's antialiased bilinear/bicubic filters, then centre crop), channel
// conversion and normalisation.
// Runs before inference, so it may allocate; it never reads outside the bytes it was given.

import { ERR_INPUT, fail, tryAlloc } from './errors';
import { Model } from './model';
import { dec } from './dec';

const MAX_SIDE: i32 = 16384;

@unmanaged export class Pixels {
  width: i32; height: i32; channels: i32;
  data: usize;  // f32 HWC in [0, 1], owned
}

function isSpace(c: u32): bool { return c == 32 || c == 9 || c == 10 || c == 13 || c == 11 || c == 12; }

/** Reads the next header integer of a PNM file, skipping whitespace and comments. -1 on error. */
function pnmInt(img: usize, len: u32, pos: usize): i32 {
  let p = load<u32>(pos);
  while (p < len) {
    const c = <u32>load<u8>(img + p);
    if (c == 35) { // '#': comment to end of line
      while (p < len && load<u8>(img + p) != 10) p++;
    } else if (isSpace(c)) {
      p++;
    } else break;
  }
  let v: i64 = 0;
  let digits = 0;
  while (p < len) {
    const c = <u32>load<u8>(img + p);
    if (c < 48 || c > 57) break;
    v = v * 10 + <i64>(c - 48);
    if (v > 0x7fffffff) return -1;
    digits++;
    p++;
  }
  store<u32>(pos, p);
  return digits > 0 ? <i32>v : -1;
}

/** Decodes binary PGM (P5) or PPM (P6), 8 or 16 bits per sample. Returns null after fail(). */
export function decodePnm(img: usize, len: u32): Pixels | null {
  if (len < 2 || load<u8>(img) != 80) { fail(ERR_INPUT, 'not a binary PGM/PPM image (expected P5 or P6)'); return null; }
  const kind = load<u8>(img + 1);
  if (kind != 53 && kind != 54) { fail(ERR_INPUT, 'only binary PGM (P5) and PPM (P6) images are supported'); return null; }
  const channels = kind == 53 ? 1 : 3;
  const pos = memory.data(4);
  store<u32>(pos, 2);
  const w = pnmInt(img, len, pos), h = pnmInt(img, len, pos), maxval = pnmInt(img, len, pos);
  if (w < 1 || h < 1 || w > MAX_SIDE || h > MAX_SIDE) { fail(ERR_INPUT, 'image size missing or outside 1..16384'); return null; }
  if (maxval < 1 || maxval > 65535) { fail(ERR_INPUT, 'PNM maxval outside 1..65535'); return null; }
  let p = load<u32>(pos);
  if (p >= len || !isSpace(<u32>load<u8>(img + p))) { fail(ERR_INPUT, 'truncated PNM header'); return null; }
  p++; // exactly one whitespace byte separates the header from the samples
  const bps: u64 = maxval > 255 ? 2 : 1;
  const samples = <u64>w * <u64>h * <u64>channels;
  if (<u64>p + samples * bps > <u64>len) { fail(ERR_INPUT, 'truncated image data'); return null; }
  const out = tryAlloc(<usize>samples * 4);
  if (out == 0) { fail(ERR_INPUT, 'image too large for wasm memory'); return null; }
  const scale = <f32>1.0 / <f32>maxval;
  for (let i: usize = 0; i < <usize>samples; i++) {
    let v: u32;
    if (bps == 2) {
      const q = img + p + i * 2;
      v = (<u32>load<u8>(q) << 8) | <u32>load<u8>(q + 1);  // PNM stores 16-bit samples big-endian
    } else {
      v = <u32>load<u8>(img + p + i);
    }
    if (v > <u32>maxval) v = <u32>maxval;
    store<f32>(out + i * 4, <f32>v * scale);
  }
  const px = changetype<Pixels>(heap.alloc(offsetof<Pixels>()));
  px.width = w; px.height = h; px.channels = channels; px.data = out;
  return px;
}

export function freePixels(px: Pixels): void {
  heap.free(px.data);
  heap.free(changetype<usize>(px));
}

@inline function sample(px: usize, w: i32, ch: i32, x: i32, y: i32, c: i32): f32 {
  return load<f32>(px + ((<usize>y * <usize>w + <usize>x) * <usize>ch + <usize>c) * 4);
}

/** Channel c of the source at integer pixel (x, y), converting gray<->RGB as the model needs. */
function pixel(px: usize, w: i32, ch: i32, x: i32, y: i32, c: i32, want: i32): f32 {
  if (ch == want) return sample(px, w, ch, x, y, c);
  if (ch == 1) return sample(px, w, ch, x, y, 0);                         // gray -> every channel
  if (want == 1 && ch >= 3) {                                            // RGB -> luma (ITU-R BT.601)
    return <f32>0.299 * sample(px, w, ch, x, y, 0) + <f32>0.587 * sample(px, w, ch, x, y, 1) + <f32>0.114 * sample(px, w, ch, x, y, 2);
  }
  return sample(px, w, ch, x, y, c < ch ? c : ch - 1);
}

/** PIL's resampling filters (Resample.c): triangle with support 1, cubic (a = -0.5) with support 2. */
function filterAt(cubic: bool, x: f64): f64 {
  x = Math.abs(x);
  if (!cubic) return x < 1 ? 1 - x : 0;
  if (x < 1) return (1.5 * x - 2.5) * x * x + 1;
  return x < 2 ? (((x - 5) * x + 8) * x - 4) * -0.5 : 0;
}

/**
 * One antialiased resampling pass along an axis, as PIL: output o of a resize from `inSize` to `outSize` reads
 * source pixels [lo, hi) around (o + 0.5) * in/out with the filter stretched by in/out when shrinking. Runs over
 * `lines` lines of `ch` channels; `step`/`lineStep` are the source strides (in pixels) along/across the axis,
 * the output is written line-major with `count` pixels a line starting at resized coordinate `first`.
 * Results are clamped to [0, 1] as PIL clamps to 8 bits.
 */
function resamplePass(cubic: bool, src: usize, inSize: i32, outSize: i32, first: i32, count: i32,
  lines: i32, step: usize, lineStep: usize, ch: i32, dst: usize, dstStep: usize, dstLineStep: usize): void {
  const scale = <f64>inSize / <f64>outSize;
  const stretch = scale > 1 ? scale : 1;
  const support = (cubic ? 2.0 : 1.0) * stretch;
  for (let o = 0; o < count; o++) {
    const center = (<f64>(o + first) + 0.5) * scale;
    let lo = <i32>(center - support + 0.5), hi = <i32>(center + support + 0.5);
    if (lo < 0) lo = 0;
    if (hi > inSize) hi = inSize;
    let total = 0.0;
    for (let i = lo; i < hi; i++) total += filterAt(cubic, (<f64>i - center + 0.5) / stretch);
    const norm = total != 0 ? 1 / total : 0;
    for (let l = 0; l < lines; l++) {
      for (let c = 0; c < ch; c++) {
        let acc = 0.0;
        for (let i = lo; i < hi; i++) {
          acc += filterAt(cubic, (<f64>i - center + 0.5) / stretch) * <f64>load<f32>(src + ((<usize>i * step + <usize>l * lineStep) * <usize>ch + <usize>c) * 4);
        }
        acc *= norm;
        store<f32>(dst + ((<usize>o * dstStep + <usize>l * dstLineStep) * <usize>ch + <usize>c) * 4, <f32>(acc < 0 ? 0 : (acc > 1 ? 1 : acc)));
      }
    }
  }
}

/** torchvision CenterCrop's offset: round((size - crop) / 2) with Python's round-half-to-even. */
function cropOffset(size: i32, crop: i32): i32 {
  const d = size - crop;
  const half = d >> 1;
  return (d & 1) != 0 && (half & 1) != 0 ? half + 1 : half;
}

/**
 * The official evaluation preprocessing (torchvision Resize(N) on a PIL image, CenterCrop): the shorter side to
 * N = m.resizeShorter (the longer one to floor(N * long / short)), crop the input size from the middle; only
 * the pixels of the crop are computed. Leaves HWC pixels of the crop in a new heap block (caller frees).
 */
function resizeOfficial(m: Model, px: usize, w: i32, h: i32, ch: i32): usize {
  const n = m.resizeShorter != 0 ? m.resizeShorter : (m.inH > m.inW ? m.inH : m.inW);
  const rw = w <= h ? n : <i32>(<i64>n * <i64>w / <i64>h);
  const rh = w <= h ? <i32>(<i64>n * <i64>h / <i64>w) : n;
  const left = cropOffset(rw, m.inW), top = cropOffset(rh, m.inH);
  // Horizontal pass over every source row, then vertical, as PIL does.
  const rows = heap.alloc(<usize>m.inW * <usize>h * <usize>ch * 4);
  resamplePass(m.resizeCubic, px, w, rw, left, m.inW, h, 1, <usize>w, ch, rows, 1, <usize>m.inW);
  const out = heap.alloc(<usize>m.inW * <usize>m.inH * <usize>ch * 4);
  resamplePass(m.resizeCubic, rows, h, rh, top, m.inH, m.inW, <usize>m.inW, 1, ch, out, <usize>m.inW, 1);
  heap.free(rows);
  return out;
}

/**
 * Writes the model input (CHW, normalised) from HWC pixels in [0,1]: scale so the shorter side covers the
 * input, centre crop, sample bilinearly (or nearest), convert channels, then (v - mean) / std.
 */
export function preprocess(m: Model, px: usize, w: i32, h: i32, ch: i32, dst: usize): bool {
  if (w < 1 || h < 1 || w > MAX_SIDE || h > MAX_SIDE) return fail(ERR_INPUT, 'image size outside 1..16384');
  if (ch != 1 && ch != 3 && ch != 4) return fail(ERR_INPUT, 'images need 1, 3 or 4 channels, got ' + dec(ch));
  const oc = m.inC, oh = m.inH, ow = m.inW;
  if (oc != 1 && ch != 1 && ch < oc) return fail(ERR_INPUT, 'the model wants ' + dec(oc) + ' channels');
  if (m.resizeShorter != 0 || m.resizeCubic) {
    const crop = resizeOfficial(m, px, w, h, ch);
    for (let c = 0; c < oc; c++) {
      const mean = load<f32>(m.image + m.meanOff + <usize>c * 4);
      const inv = <f32>1.0 / load<f32>(m.image + m.stdOff + <usize>c * 4);
      for (let y = 0; y < oh; y++) for (let x = 0; x < ow; x++) {
        store<f32>(dst + ((<usize>c * <usize>oh + <usize>y) * <usize>ow + <usize>x) * 4, (pixel(crop, ow, ch, x, y, c, oc) - mean) * inv);
      }
    }
    heap.free(crop);
    return true;
  }
  const sx = <f64>ow / <f64>w, sy = <f64>oh / <f64>h;
  const scale = sx > sy ? sx : sy;
  // Crop offsets in the resized image, expressed in output pixels.
  const offX = (<f64>w * scale - <f64>ow) * 0.5;
  const offY = (<f64>h * scale - <f64>oh) * 0.5;
  for (let c = 0; c < oc; c++) {
    const mean = load<f32>(m.image + m.meanOff + <usize>c * 4);
    const inv = <f32>1.0 / load<f32>(m.image + m.stdOff + <usize>c * 4);
    for (let y = 0; y < oh; y++) {
      const fy = (<f64>y + offY + 0.5) / scale - 0.5;
      for (let x = 0; x < ow; x++) {
        const fx = (<f64>x + offX + 0.5) / scale - 0.5;
        let v: f32;
        if (m.resizeNearest) {
          let ix = <i32>Math.floor(fx + 0.5), iy = <i32>Math.floor(fy + 0.5);
          ix = ix < 0 ? 0 : (ix >= w ? w - 1 : ix);
          iy = iy < 0 ? 0 : (iy >= h ? h - 1 : iy);
          v = pixel(px, w, ch, ix, iy, c, oc);
        } else {
          const x0f = Math.floor(fx), y0f = Math.floor(fy);
          const ax = <f32>(fx - x0f), ay = <f32>(fy - y0f);
          let x0 = <i32>x0f, y0 = <i32>y0f;
          let x1 = x0 + 1, y1 = y0 + 1;
          x0 = x0 < 0 ? 0 : (x0 >= w ? w - 1 : x0);
          x1 = x1 < 0 ? 0 : (x1 >= w ? w - 1 : x1);
          y0 = y0 < 0 ? 0 : (y0 >= h ? h - 1 : y0);
          y1 = y1 < 0 ? 0 : (y1 >= h ? h - 1 : y1);
          const top = pixel(px, w, ch, x0, y0, c, oc) * (1 - ax) + pixel(px, w, ch, x1, y0, c, oc) * ax;
          const bot = pixel(px, w, ch, x0, y1, c, oc) * (1 - ax) + pixel(px, w, ch, x1, y1, c, oc) * ax;
          v = top * (1 - ay) + bot * ay;
        }
        store<f32>(dst + ((<usize>c * <usize>oh + <usize>y) * <usize>ow + <usize>x) * 4, (v - mean) * inv);
      }
    }
  }
  return true;
}
