// Input preparation shared by the WASI command and the JS API: PGM/PPM decoding, and resizing (shorter side
// to the model input, centre crop, bilinear or nearest as META says), channel conversion and normalisation.
// Runs before inference, so it may allocate; it never reads outside the bytes it was given.

import { ERR_INPUT, fail, tryAlloc } from './errors';
import { Model } from './model';

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

/**
 * Writes the model input (CHW, normalised) from HWC pixels in [0,1]: scale so the shorter side covers the
 * input, centre crop, sample bilinearly (or nearest), convert channels, then (v - mean) / std.
 */
export function preprocess(m: Model, px: usize, w: i32, h: i32, ch: i32, dst: usize): bool {
  if (w < 1 || h < 1 || w > MAX_SIDE || h > MAX_SIDE) return fail(ERR_INPUT, 'image size outside 1..16384');
  if (ch != 1 && ch != 3 && ch != 4) return fail(ERR_INPUT, 'images need 1, 3 or 4 channels, got ' + ch.toString());
  const oc = m.inC, oh = m.inH, ow = m.inW;
  if (oc != 1 && ch != 1 && ch < oc) return fail(ERR_INPUT, 'the model wants ' + oc.toString() + ' channels');
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
