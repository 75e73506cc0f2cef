// f32 direct-convolution micro-kernel, 4 x 8 register tile, wasm SIMD, addressed through a tap table: 4 outputs x 8
// output pixels of one row, 8 f32x4 accumulators, one tap (input, ky, kx) per inner iteration. The panel (pack_taps
// in kernels/conv2d.ts) holds per tap a record of 80 bytes: the tap's byte offset from the window's top-left (an i32
// in a 16-byte slot), then the 4 outputs' weights splatted (the same weight layout as f32-gemm-4x8-wasmsimd.ts's
// panel). Stride 1 or 2 (a constant: inlining folds load_px). Used by kernels/conv2d.ts.
// TAPS_3X3_STRIDED is the training backend's form (training/conv3x3.ts, conv_4out): no panel (it would be 5x the
// weights per thread), the 9 tap offsets of a 3x3 window computed in a padded plane of row length Wp, planes a
// constant stride apart, and the 4 outputs' weights read in place from 4 rows and splat-loaded (like W_STRIDED).
// @inline whole tile for the reason given in f32-gemm-4x8-wasmsimd.ts; the mode is a constant, so each caller
// compiles to the loop it had before.
import { madd_v128 } from './f32-madd-wasmsimd';
import { emit_v128, weight_v128, W_PANEL } from './f32-gemm-4x8-wasmsimd';

/** Bytes per tap record: the offset slot and 4 splatted weights. */
export const TAP_RECORD_BYTES: usize = 80;

/** Taps and weights from the panel's records [r0, r1) (offset slot, then 4 splatted weights). */
export const TAPS_TABLE: i32 = 0;
/**
 * 3x3 taps at computed offsets over `planes` input planes planeBytes apart (tap t = ky*3+kx at ((ky-1)*Wp + kx-1)
 * floats from base); weight (plane c, tap t, output r) at w + r * wRow + (c*9 + t) * 4, splat-loaded. Stride 1.
 */
export const TAPS_3X3_STRIDED: i32 = 1;

/** Byte offset of 3x3 tap t (ky*3+kx) from the window's centre in a plane with row length Wp. */
@inline export function tap3x3_offset(t: i32, Wp: i32): isize {
  return <isize>(((t / 3) - 1) * Wp + (t % 3) - 1) << 2;
}

/** Loads 4 input pixels of one tap: contiguous for stride 1, every other float for stride 2. */
@inline export function load_px(p: usize, stride: i32): v128 {
  if (stride == 1) return v128.load(p);
  return v128.shuffle<f32>(v128.load(p), v128.load(p, 16), 0, 2, 4, 6);
}

/**
 * c_r[0..7] (=|+=) init_r + sum over the tap records rec in [r0, r1) of w(rec, r) * x(base + offset(rec)), r = 0..3,
 * pixels 4 * stride floats apart per vector (TAPS_TABLE); or, with taps = TAPS_3X3_STRIDED (r0 = r1 = 0, stride 1),
 * over the planes c < planes and 3x3 taps t of w[r][c*9+t] * x(base + c * planeBytes + tap3x3_offset(t, Wp)), the
 * weight rows wRow bytes apart from w (planes in order, taps in order: the additions of training's conv_4out).
 * full != 0: all 8 pixels are written; otherwise only the first 4, and
 * the other 4 sums are stored at tail + 16 * r for the caller to write the row's last 1-3 pixels (their lanes read
 * inside the padded scratch and are discarded).
 */
@inline export function f32_conv_4x8_taps__wasmsimd_splat(
  base: usize, r0: usize, r1: usize, stride: i32,
  i0: v128, i1: v128, i2: v128, i3: v128,
  c0: usize, c1: usize, c2: usize, c3: usize, accumulate: i32, full: bool, tail: usize,
  taps: i32 = TAPS_TABLE, planes: i32 = 0, planeBytes: usize = 0, Wp: i32 = 0, w: usize = 0, wRow: usize = 0): void {
  const step = <usize>stride << 4; // input bytes spanned by 4 output pixels
  let a00 = i0, a10 = i1, a20 = i2, a30 = i3;
  let a01 = a00, a11 = a10, a21 = a20, a31 = a30;
  if (taps == TAPS_3X3_STRIDED) {
    const w0 = w, w1 = w0 + wRow, w2 = w1 + wRow, w3 = w2 + wRow;
    let ip = base;
    let wo: usize = 0;
    for (let c = 0; c < planes; c++) {
      for (let t = 0; t < 9; t++) {
        const xp = ip + tap3x3_offset(t, Wp);
        const x0 = v128.load(xp), x1 = v128.load(xp, 16);
        let s = v128.load32_splat(w0 + wo); a00 = madd_v128(x0, s, a00); a01 = madd_v128(x1, s, a01);
        s = v128.load32_splat(w1 + wo); a10 = madd_v128(x0, s, a10); a11 = madd_v128(x1, s, a11);
        s = v128.load32_splat(w2 + wo); a20 = madd_v128(x0, s, a20); a21 = madd_v128(x1, s, a21);
        s = v128.load32_splat(w3 + wo); a30 = madd_v128(x0, s, a30); a31 = madd_v128(x1, s, a31);
        wo += 4;
      }
      ip += planeBytes;
    }
  }
  // Bottom-tested (see f32_gemm_4x8__wasmsimd_splat): a panel has at least one tap; TAPS_3X3_STRIDED has no
  // records (folded away).
  let r = r0;
  if (taps == TAPS_TABLE) do {
    const xp = base + <usize>load<i32>(r);
    const x0 = load_px(xp, stride), x1 = load_px(xp + step, stride);
    let w = weight_v128(r, 0, 16, W_PANEL, 16); a00 = madd_v128(x0, w, a00); a01 = madd_v128(x1, w, a01);
    w = weight_v128(r, 1, 16, W_PANEL, 16); a10 = madd_v128(x0, w, a10); a11 = madd_v128(x1, w, a11);
    w = weight_v128(r, 2, 16, W_PANEL, 16); a20 = madd_v128(x0, w, a20); a21 = madd_v128(x1, w, a21);
    w = weight_v128(r, 3, 16, W_PANEL, 16); a30 = madd_v128(x0, w, a30); a31 = madd_v128(x1, w, a31);
    r += TAP_RECORD_BYTES;
  } while (r < r1);
  emit_v128(c0, a00, accumulate); emit_v128(c1, a10, accumulate);
  emit_v128(c2, a20, accumulate); emit_v128(c3, a30, accumulate);
  if (full) {
    emit_v128(c0 + 16, a01, accumulate); emit_v128(c1 + 16, a11, accumulate);
    emit_v128(c2 + 16, a21, accumulate); emit_v128(c3 + 16, a31, accumulate);
  } else {
    v128.store(tail, a01); v128.store(tail, a11, 16); v128.store(tail, a21, 32); v128.store(tail, a31, 48);
  }
}
