// f32 GEMM micro-kernel, 4 x 4 register tile, wasm SIMD with splatted weights: the 4-column remainder of
// f32-gemm-4x8-wasmsimd.ts (same operands and modes, one input vector per k). Shared by kernels/conv1x1.ts and
// training/gemm.ts.
import { madd_v128 } from './f32-madd-wasmsimd';
import { emit_v128, weight_v128, W_PANEL } from './f32-gemm-4x8-wasmsimd';

/** c_r[0..3] (=|+=) init_r + sum over k of w(k, r) * x[k][0..3], r < rows; see f32_gemm_4x8__wasmsimd_splat. */
@inline export function f32_gemm_4x4__wasmsimd_splat(
  x: usize, xStride: usize, w: usize, wEnd: usize, wStep: usize, wRow: usize, wMode: i32,
  i0: v128, i1: v128, i2: v128, i3: v128,
  c0: usize, c1: usize, c2: usize, c3: usize, rows: i32, accumulate: i32): void {
  let a0 = i0, a1 = i1, a2 = i2, a3 = i3;
  let xp = x, wp = w;
  if (wMode == W_PANEL || wp < wEnd) do { // bottom-tested, as in f32_gemm_4x8__wasmsimd_splat
    const v = v128.load(xp);
    a0 = madd_v128(v, weight_v128(wp, 0, wRow, wMode), a0);
    a1 = madd_v128(v, weight_v128(wp, 1, wRow, wMode), a1);
    a2 = madd_v128(v, weight_v128(wp, 2, wRow, wMode), a2);
    a3 = madd_v128(v, weight_v128(wp, 3, wRow, wMode), a3);
    xp += xStride; wp += wStep;
  } while (wp < wEnd);
  emit_v128(c0, a0, accumulate);
  if (rows > 1) emit_v128(c1, a1, accumulate);
  if (rows > 2) emit_v128(c2, a2, accumulate);
  if (rows > 3) emit_v128(c3, a3, accumulate);
}
