// Matrix multiply for the training backend: C[M,N] (=|+=) A·B with A read through strides (so A, or Aᵀ, needs no
// copy) and B row-major [K,N]. Register tile: 4 rows x 8 columns, the micro-kernel the runtime's 1x1 convolution
// uses (kernels/ukernels/f32-gemm-4x8-wasmsimd.ts): each B vector pair is reused for 4 rows and each A scalar is
// splatted once for 8 columns. K is cut into panels (size chosen by the
// host) so that the B panel stays in cache while every row tile sweeps over it (the filter gradient has K = all
// pixels of the batch). Panels only split the loop: each C element is still summed over k in order.
// Measured on V8 x64 (no FMA in the SIMD build): 4x8 is the largest tile without spills (5x8, 6x8, 3x12 ran at
// ~60% of its speed), and packing A or B into contiguous panels did not pay for the copy.
import { madd_v128 } from '../kernels/activation';
import { f32_gemm_4x4__wasmsimd_splat } from '../kernels/ukernels/f32-gemm-4x4-wasmsimd';
import { f32_gemm_4x8__wasmsimd_splat, W_STRIDED } from '../kernels/ukernels/f32-gemm-4x8-wasmsimd';

/**
 * Rows [m0, m1) of C[M,N] (=|+=) sum_k A(i,k) * B[k,j], with A(i,k) at a + 4*(i*sAi + k*sAk), in panels of kc
 * rows of B. accumulate = 0 overwrites C; rows outside [m0, m1) are untouched (threads split M).
 */
export function gemm(a: usize, sAi: i32, sAk: i32, b: usize, c: usize, K: i32, N: i32,
                     accumulate: i32, kc: i32, m0: i32, m1: i32): void {
  if (K == 0) {
    if (!accumulate) for (let i = m0; i < m1; i++) memory.fill(c + <usize>(i * N) * 4, 0, <usize>N * 4);
    return;
  }
  if (kc <= 0) kc = K;
  for (let k0 = 0; k0 < K; k0 += kc) {
    const k1 = min(k0 + kc, K);
    const acc: bool = accumulate != 0 || k0 > 0;
    let i = m0;
    for (; i + 4 <= m1; i += 4) rows4(a, sAi, sAk, b, c, N, acc, i, k0, k1);
    for (; i < m1; i++) rows1(a, sAi, sAk, b, c, N, acc, i, k0, k1);
  }
}

function rows4(a: usize, sAi: i32, sAk: i32, b: usize, c: usize, N: i32, acc: bool, i: i32, k0: i32, k1: i32): void {
  const rowStep = <usize>sAi << 2, kStep = <usize>sAk << 2, bRow = <usize>N << 2;
  const aBase = a + (<usize>i * <usize>sAi + <usize>k0 * <usize>sAk) * 4;
  const c0 = c + <usize>i * bRow, c1 = c0 + bRow, c2 = c1 + bRow, c3 = c2 + bRow;
  const bBase = b + <usize>k0 * bRow;
  let j = 0;
  if (ASC_FEATURE_SIMD) {
    // A's scalars are splat-loaded where they lie (W_STRIDED): packing A into a panel did not pay (header).
    const aEnd = aBase + <usize>(k1 - k0) * kStep;
    for (; j + 8 <= N; j += 8) {
      const q = <usize>j << 2;
      const z = f32x4.splat(0);
      f32_gemm_4x8__wasmsimd_splat(bBase + q, bRow, aBase, aEnd, kStep, rowStep, W_STRIDED,
        acc ? v128.load(c0 + q) : z, acc ? v128.load(c0 + q, 16) : z, acc ? v128.load(c1 + q) : z, acc ? v128.load(c1 + q, 16) : z,
        acc ? v128.load(c2 + q) : z, acc ? v128.load(c2 + q, 16) : z, acc ? v128.load(c3 + q) : z, acc ? v128.load(c3 + q, 16) : z,
        c0 + q, c1 + q, c2 + q, c3 + q, 4, 0);
    }
    for (; j + 4 <= N; j += 4) {
      const q = <usize>j << 2;
      const z = f32x4.splat(0);
      f32_gemm_4x4__wasmsimd_splat(bBase + q, bRow, aBase, aEnd, kStep, rowStep, W_STRIDED,
        acc ? v128.load(c0 + q) : z, acc ? v128.load(c1 + q) : z, acc ? v128.load(c2 + q) : z, acc ? v128.load(c3 + q) : z,
        c0 + q, c1 + q, c2 + q, c3 + q, 4, 0);
    }
  }
  // Column tail (and every column in the scalar build).
  for (; j < N; j++) {
    const q = <usize>j << 2;
    let s0: f32 = acc ? load<f32>(c0 + q) : 0, s1: f32 = acc ? load<f32>(c1 + q) : 0;
    let s2: f32 = acc ? load<f32>(c2 + q) : 0, s3: f32 = acc ? load<f32>(c3 + q) : 0;
    let ap = aBase, bp = bBase + q;
    for (let k = k0; k < k1; k++) {
      const bv = load<f32>(bp);
      s0 += load<f32>(ap) * bv; s1 += load<f32>(ap + rowStep) * bv;
      s2 += load<f32>(ap + 2 * rowStep) * bv; s3 += load<f32>(ap + 3 * rowStep) * bv;
      ap += kStep; bp += bRow;
    }
    store<f32>(c0 + q, s0); store<f32>(c1 + q, s1); store<f32>(c2 + q, s2); store<f32>(c3 + q, s3);
  }
}

function rows1(a: usize, sAi: i32, sAk: i32, b: usize, c: usize, N: i32, acc: bool, i: i32, k0: i32, k1: i32): void {
  const kStep = <usize>sAk << 2, bRow = <usize>N << 2;
  const aBase = a + (<usize>i * <usize>sAi + <usize>k0 * <usize>sAk) * 4;
  const c0 = c + <usize>i * bRow;
  const bBase = b + <usize>k0 * bRow;
  let j = 0;
  if (ASC_FEATURE_SIMD) {
    for (; j + 8 <= N; j += 8) {
      const q = <usize>j << 2;
      const z = f32x4.splat(0);
      let x0 = acc ? v128.load(c0 + q) : z, x1 = acc ? v128.load(c0 + q, 16) : z;
      let ap = aBase, bp = bBase + q;
      for (let k = k0; k < k1; k++) {
        const s = v128.load32_splat(ap);
        x0 = madd_v128(s, v128.load(bp), x0); x1 = madd_v128(s, v128.load(bp, 16), x1);
        ap += kStep; bp += bRow;
      }
      v128.store(c0 + q, x0); v128.store(c0 + q, x1, 16);
    }
    for (; j + 4 <= N; j += 4) {
      const q = <usize>j << 2;
      let x0 = acc ? v128.load(c0 + q) : f32x4.splat(0);
      let ap = aBase, bp = bBase + q;
      for (let k = k0; k < k1; k++) {
        x0 = madd_v128(v128.load32_splat(ap), v128.load(bp), x0);
        ap += kStep; bp += bRow;
      }
      v128.store(c0 + q, x0);
    }
  }
  for (; j < N; j++) {
    const q = <usize>j << 2;
    let s0: f32 = acc ? load<f32>(c0 + q) : 0;
    let ap = aBase, bp = bBase + q;
    for (let k = k0; k < k1; k++) {
      s0 += load<f32>(ap) * load<f32>(bp);
      ap += kStep; bp += bRow;
    }
    store<f32>(c0 + q, s0);
  }
}

/** dst[cols][rows] = src[rows][cols] (row-major), in 4x4 blocks where possible. */
export function transpose(src: usize, rows: i32, cols: i32, dst: usize): void {
  const TB = 32;
  for (let r0 = 0; r0 < rows; r0 += TB) {
    const r1 = min(r0 + TB, rows);
    for (let c0 = 0; c0 < cols; c0 += TB) {
      const c1 = min(c0 + TB, cols);
      for (let r = r0; r < r1; r++) {
        const s = src + <usize>(r * cols) * 4;
        for (let c = c0; c < c1; c++) store<f32>(dst + <usize>(c * rows + r) * 4, load<f32>(s + (<usize>c << 2)));
      }
    }
  }
}
