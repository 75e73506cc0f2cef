// Float copy and zero fill with exact bounds. Plain loops instead of memory.copy/memory.fill: the build's second
// wasm-opt pass does not enable bulk memory, and these loops avoid the per-call overhead on short rows anyway.

/** dst[0..n) = src[0..n) (floats); the ranges must not overlap. */
export function copy_f32(dst: usize, src: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 8 <= n; i += 8) {
      const o = <usize>i << 2;
      const a = v128.load(src + o), b = v128.load(src + o, 16);
      v128.store(dst + o, a); v128.store(dst + o, b, 16);
    }
    for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), v128.load(src + (<usize>i << 2)));
  } else {
    for (; i + 2 <= n; i += 2) store<u64>(dst + (<usize>i << 2), load<u64>(src + (<usize>i << 2)));
  }
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), load<f32>(src + (<usize>i << 2)));
}

/** dst[0..n) = 0 (floats). */
export function zero_f32(dst: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const z = f32x4.splat(0);
    for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), z);
  }
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), 0);
}
