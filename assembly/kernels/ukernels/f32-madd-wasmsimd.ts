// The one multiply-add every SIMD micro-kernel uses; the ISA is chosen at build time.

/** Multiply-add a*b+c: fused (relaxed_madd) in the relaxed build, mul then add otherwise. */
@inline export function madd_v128(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}
