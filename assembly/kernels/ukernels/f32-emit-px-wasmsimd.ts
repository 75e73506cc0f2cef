// Writing (or adding) output vectors and their 1-3 pixel tails: shared by the depthwise kernels.

// Partial row tails (1-3 pixels) wait here, then go out lane by lane.
export const tailBuf: usize = memory.data(16, 16);

// The SIMD paths write without activation (stored planes are activated afterwards, in place; accumulate with an
// activation takes the plain path), which keeps their code small.
@inline export function emit_v(p: usize, y: v128, accumulate: i32): void {
  v128.store(p, accumulate ? f32x4.add(v128.load(p), y) : y);
}
@inline export function emit_s(p: usize, y: f32, accumulate: i32): void {
  store<f32>(p, accumulate ? load<f32>(p) + y : y);
}

/** Writes (or adds) the first n (1..4) pixels of an output vector. */
@inline export function emit_px(p: usize, y: v128, n: i32, accumulate: i32): void {
  if (n >= 4) emit_v(p, y, accumulate);
  else {
    v128.store(tailBuf, y);
    for (let i = 0; i < n; i++) emit_s(p + (<usize>i << 2), load<f32>(tailBuf + (<usize>i << 2)), accumulate);
  }
}
