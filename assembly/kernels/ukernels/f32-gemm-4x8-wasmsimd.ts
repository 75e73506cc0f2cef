// f32 GEMM micro-kernel, 4 x 8 register tile, wasm SIMD with splatted weights (XNNPACK's
// xnn_f32_gemm_ukernel_4x8__wasmsimd_splat): 4 outputs (rows of the weight matrix) x 8 pixels or columns, 8 f32x4
// accumulators; each pair of input vectors is loaded once for the 4 outputs, each weight splatted once for the 8
// columns. The K rows of the input are a constant stride apart. Shared by the runtime's pointwise convolution
// (kernels/conv1x1.ts) and the training backend's matrix multiply (training/gemm.ts).
//
// It is the whole tile (load, multiply-add over K, store): AssemblyScript cannot return 8 accumulators from an
// inlined helper. @inline, with the modes passed as constants, so each caller gets the loop it had before (the
// same instructions, the same order of additions: outputs are bit for bit what they were).
import { madd_v128 } from './f32-madd-wasmsimd';

/** Weights pre-splatted in a panel: record k holds the 4 outputs' weights as 4 vectors (64 bytes; pack_quad). */
export const W_PANEL: i32 = 0;
/** Weights as scalars: weight (k, r) at w + r * wRow + k * wStep bytes, splat-loaded (A read through strides). */
export const W_STRIDED: i32 = 1;

/**
 * Weight (k, r) of a tile as a vector: r = 0..3 (a constant), wp the record of k; a panel's weights start `skip`
 * bytes into the record (0 or 16, a constant). Panel loads keep the offset in the instruction's immediate: an
 * address add in the loop costs an instruction per weight (wasm cannot fold it, it may wrap).
 */
@inline export function weight_v128(wp: usize, r: i32, wRow: usize, mode: i32, skip: i32 = 0): v128 {
  if (mode == W_PANEL) {
    if (skip == 0) {
      if (r == 0) return v128.load(wp);
      if (r == 1) return v128.load(wp, 16);
      if (r == 2) return v128.load(wp, 32);
      return v128.load(wp, 48);
    }
    if (r == 0) return v128.load(wp, 16);
    if (r == 1) return v128.load(wp, 32);
    if (r == 2) return v128.load(wp, 48);
    return v128.load(wp, 64);
  }
  return v128.load32_splat(wp + <usize>r * wRow);
}

/**
 * c_r[0..7] (=|+=) init_r + sum over k of w(k, r) * x[k][0..7], for r < rows (1..4; weights of the missing outputs
 * may be anything, their sums are not written). x[k] is at x + k * xStride; k runs over the weight records
 * w, w + wStep, ... < wEnd. init: the 8 starting accumulators (bias splats, zeros or the current outputs).
 * accumulate != 0 adds the sums to c_r instead of storing them; output r is written before r + 1 (repeated output
 * planes add up in order).
 */
@inline export function f32_gemm_4x8__wasmsimd_splat(
  x: usize, xStride: usize, w: usize, wEnd: usize, wStep: usize, wRow: usize, wMode: i32,
  i00: v128, i01: v128, i10: v128, i11: v128, i20: v128, i21: v128, i30: v128, i31: v128,
  c0: usize, c1: usize, c2: usize, c3: usize, rows: i32, accumulate: i32): void {
  let a00 = i00, a01 = i01, a10 = i10, a11 = i11, a20 = i20, a21 = i21, a30 = i30, a31 = i31;
  let xp = x, wp = w;
  // Bottom-tested (do-while): Cranelift compiles a top-tested wasm loop to a compare at the top and a jump back at
  // the bottom, two branches per k. The panel callers always have k >= 1; W_STRIDED keeps the empty case.
  if (wMode == W_PANEL || wp < wEnd) do {
    const x0 = v128.load(xp), x1 = v128.load(xp, 16);
    let v = weight_v128(wp, 0, wRow, wMode);
    a00 = madd_v128(x0, v, a00); a01 = madd_v128(x1, v, a01);
    v = weight_v128(wp, 1, wRow, wMode);
    a10 = madd_v128(x0, v, a10); a11 = madd_v128(x1, v, a11);
    v = weight_v128(wp, 2, wRow, wMode);
    a20 = madd_v128(x0, v, a20); a21 = madd_v128(x1, v, a21);
    v = weight_v128(wp, 3, wRow, wMode);
    a30 = madd_v128(x0, v, a30); a31 = madd_v128(x1, v, a31);
    xp += xStride; wp += wStep;
  } while (wp < wEnd);
  // No calls here: Cranelift keeps no vector in a register across a call, and a call among the tile's stores sent
  // all the accumulators to the stack for the whole loop.
  emit_v128(c0, a00, accumulate); emit_v128(c0 + 16, a01, accumulate);
  if (rows > 1) { emit_v128(c1, a10, accumulate); emit_v128(c1 + 16, a11, accumulate); }
  if (rows > 2) { emit_v128(c2, a20, accumulate); emit_v128(c2 + 16, a21, accumulate); }
  if (rows > 3) { emit_v128(c3, a30, accumulate); emit_v128(c3 + 16, a31, accumulate); }
}

/** Stores y at p, or adds it to what is there. */
@inline export function emit_v128(p: usize, y: v128, accumulate: i32): void {
  v128.store(p, accumulate ? f32x4.add(v128.load(p), y) : y);
}
