// Register-only multiply-add loop: the wasm multiply-add peak the kernel benchmark compares against.
// CHAINS independent accumulators v = v * m + c (relaxed_madd in the relaxed build, mul + add in the SIMD build,
// scalar f32 in the scalar build). Twelve chains cover the latency of a dependent mul+add (or FMA) on the targets
// while leaving registers for m and c on x64 (16 xmm). v converges to c / (1 - m), so values stay normal.
import { madd_v128 } from './activation';

const CHAINS: i32 = 12;

/** Multiply-adds (f32 lanes) one iteration of peak_madd performs. */
export function peak_madds_per_iteration(): i32 {
  return ASC_FEATURE_SIMD ? CHAINS * 4 : CHAINS;
}

/** Runs the loop `iterations` times; returns a checksum so the work cannot be optimised away. */
export function peak_madd(iterations: i32): f32 {
  if (ASC_FEATURE_SIMD) {
    const m = f32x4.splat(0.999), c = f32x4.splat(0.001);
    let v0 = f32x4.splat(1.0), v1 = f32x4.splat(1.1), v2 = f32x4.splat(1.2), v3 = f32x4.splat(1.3);
    let v4 = f32x4.splat(1.4), v5 = f32x4.splat(1.5), v6 = f32x4.splat(1.6), v7 = f32x4.splat(1.7);
    let v8 = f32x4.splat(1.8), v9 = f32x4.splat(1.9), v10 = f32x4.splat(2.0), v11 = f32x4.splat(2.1);
    for (let i = 0; i < iterations; i++) {
      v0 = madd_v128(v0, m, c); v1 = madd_v128(v1, m, c); v2 = madd_v128(v2, m, c); v3 = madd_v128(v3, m, c);
      v4 = madd_v128(v4, m, c); v5 = madd_v128(v5, m, c); v6 = madd_v128(v6, m, c); v7 = madd_v128(v7, m, c);
      v8 = madd_v128(v8, m, c); v9 = madd_v128(v9, m, c); v10 = madd_v128(v10, m, c); v11 = madd_v128(v11, m, c);
    }
    const s = f32x4.add(f32x4.add(f32x4.add(v0, v1), f32x4.add(v2, v3)), f32x4.add(f32x4.add(v4, v5), f32x4.add(v6, v7)));
    const t = f32x4.add(f32x4.add(s, f32x4.add(v8, v9)), f32x4.add(v10, v11));
    return f32x4.extract_lane(t, 0) + f32x4.extract_lane(t, 1) + f32x4.extract_lane(t, 2) + f32x4.extract_lane(t, 3);
  }
  const m: f32 = 0.999, c: f32 = 0.001;
  let s0: f32 = 1.0, s1: f32 = 1.1, s2: f32 = 1.2, s3: f32 = 1.3, s4: f32 = 1.4, s5: f32 = 1.5;
  let s6: f32 = 1.6, s7: f32 = 1.7, s8: f32 = 1.8, s9: f32 = 1.9, s10: f32 = 2.0, s11: f32 = 2.1;
  for (let i = 0; i < iterations; i++) {
    s0 = s0 * m + c; s1 = s1 * m + c; s2 = s2 * m + c; s3 = s3 * m + c; s4 = s4 * m + c; s5 = s5 * m + c;
    s6 = s6 * m + c; s7 = s7 * m + c; s8 = s8 * m + c; s9 = s9 * m + c; s10 = s10 * m + c; s11 = s11 * m + c;
  }
  return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7 + s8 + s9 + s10 + s11;
}
