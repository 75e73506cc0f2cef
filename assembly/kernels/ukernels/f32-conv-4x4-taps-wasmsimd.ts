// f32 direct-convolution micro-kernel, 4 x 4 register tile, wasm SIMD, through a tap table: the 1-4 pixel row
// remainder of f32-conv-4x8-taps-wasmsimd.ts (same panel, one input vector per tap). Used by kernels/conv2d.ts.
import { madd_v128 } from './f32-madd-wasmsimd';
import { emit_v128, weight_v128, W_PANEL } from './f32-gemm-4x8-wasmsimd';
import { load_px, TAP_RECORD_BYTES } from './f32-conv-4x8-taps-wasmsimd';

/**
 * c_r[0..3] (=|+=) init_r + sum over the tap records of w(rec, r) * x(base + offset(rec)), r = 0..3. full != 0:
 * the 4 pixels are written; otherwise the sums are stored at tail + 16 * r for the caller to write the 1-3 valid ones.
 */
@inline export function f32_conv_4x4_taps__wasmsimd_splat(
  base: usize, r0: usize, r1: usize, stride: i32,
  i0: v128, i1: v128, i2: v128, i3: v128,
  c0: usize, c1: usize, c2: usize, c3: usize, accumulate: i32, full: bool, tail: usize): void {
  let a0 = i0, a1 = i1, a2 = i2, a3 = i3;
  let r = r0;
  do { // bottom-tested (see f32_gemm_4x8__wasmsimd_splat); a panel has at least one tap
    const x = load_px(base + <usize>load<i32>(r), stride);
    a0 = madd_v128(x, weight_v128(r, 0, 16, W_PANEL, 16), a0);
    a1 = madd_v128(x, weight_v128(r, 1, 16, W_PANEL, 16), a1);
    a2 = madd_v128(x, weight_v128(r, 2, 16, W_PANEL, 16), a2);
    a3 = madd_v128(x, weight_v128(r, 3, 16, W_PANEL, 16), a3);
    r += TAP_RECORD_BYTES;
  } while (r < r1);
  if (full) {
    emit_v128(c0, a0, accumulate); emit_v128(c1, a1, accumulate);
    emit_v128(c2, a2, accumulate); emit_v128(c3, a3, accumulate);
  } else {
    v128.store(tail, a0); v128.store(tail, a1, 16); v128.store(tail, a2, 32); v128.store(tail, a3, 48);
  }
}
