// Activation functions shared by all kernels. Codes match docs/format.md.
export const ACT_NONE = 0;
export const ACT_RELU = 1;
export const ACT_HARDSWISH = 2;

// Hardswish multiplies by 1/6 instead of dividing: at most one rounding step away from x*relu6(x+3)/6 and
// much cheaper than f32x4.div on the hot path.
const SIXTH: f32 = 1.0 / 6.0;

/** Scalar activation. Unknown codes behave like ACT_NONE (the model loader rejects them earlier). */
@inline export function act_f32(x: f32, act: i32): f32 {
  if (act == ACT_RELU) return max<f32>(x, 0);
  if (act == ACT_HARDSWISH) return x * min<f32>(max<f32>(x + 3, 0), 6) * SIXTH;
  return x;
}

/**
 * Four-lane activation (SIMD builds only), the same values as act_f32 lane by lane. Pseudo-min/max (one minps/maxps
 * on x86, where f32x4.min/max take about eight instructions) give the same results here: x + 3 is never -0, a NaN
 * stays a NaN, and ReLU's pmax(x, 0) turns -0 into +0 by the + 0.
 */
@inline export function act_v128(x: v128, act: i32): v128 {
  const zero = f32x4.splat(0);
  if (act == ACT_RELU) return f32x4.add(f32x4.pmax(x, zero), zero);
  if (act == ACT_HARDSWISH) {
    const r6 = f32x4.pmin(f32x4.pmax(f32x4.add(x, f32x4.splat(3)), zero), f32x4.splat(6));
    return f32x4.mul(f32x4.mul(x, r6), f32x4.splat(SIXTH));
  }
  return x;
}

// madd_v128 lives with the micro-kernels (which import nothing from this folder); re-exported for the kernels here.
export { madd_v128 } from './ukernels/f32-madd-wasmsimd';

/** Applies `act` to n floats at ptr in place. One loop per activation, so no lane computes the others. */
export function activate_inplace(ptr: usize, n: i32, act: i32): void {
  if (act == ACT_NONE || n <= 0) return;
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    if (act == ACT_RELU) {
      for (; i + 4 <= n; i += 4) {
        const p = ptr + (<usize>i << 2);
        v128.store(p, act_v128(v128.load(p), ACT_RELU));
      }
    } else if (act == ACT_HARDSWISH) {
      for (; i + 4 <= n; i += 4) {
        const p = ptr + (<usize>i << 2);
        v128.store(p, act_v128(v128.load(p), ACT_HARDSWISH));
      }
    }
  }
  for (; i < n; i++) {
    const p = ptr + (<usize>i << 2);
    store<f32>(p, act_f32(load<f32>(p), act));
  }
}
