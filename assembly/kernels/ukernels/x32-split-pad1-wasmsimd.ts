// The split padded copy of the stride-2, padding-1 kernels (x32: it only moves floats; SIMD builds): each padded
// row (padding 1: a zero column on either side, zero rows above and below) is stored as its even columns, then its
// odd columns, so that the kx = 0, 1, 2 taps of 4 stride-2 output pixels are 3 contiguous loads (even[ox],
// odd[ox], even[ox + 1]) instead of 4 loads and 3 shuffles per tap row.

/** Floats in each half (even, odd columns) of a split padded row of an input w wide (16-byte multiple). */
@inline export function half_floats(w: i32): i32 {
  return (((w + 1) >> 1) + 4) & ~3; // even[0 .. (w + 1) / 2] and 3 more
}

/** Floats of one split padded plane of an input h x w. */
@inline export function split_plane_floats(h: i32, w: i32): i64 {
  return <i64>(h + 2) * <i64>(2 * half_floats(w));
}

// n floats = v (SIMD: n a multiple of 4).
@inline function fill_row(d: usize, n: i32, v: v128): void {
  for (let i = 0; i < n; i += 4) v128.store(d + (<usize>i << 2), v);
}

// Copies cin planes h x w into (h + 2) split padded rows each: rows of `pad` above and below; padded column c
// (input column c - 1, `pad` at 0 and w + 1) goes to even[c / 2] or odd[c / 2]. pad: 0 for the convolutions,
// -infinity for max pooling.
export function split_pad(src: usize, cin: i32, h: i32, w: i32, half: i32, dst: usize, pad: f32): void {
  const border = f32x4.splat(pad);
  const rowD = <usize>half << 3, odd = <usize>half << 2;
  let d = dst, sp = src;
  for (let c = 0; c < cin; c++) {
    fill_row(d, half << 1, border);
    d += rowD;
    for (let y = 0; y < h; y++) {
      // Even widths of 8 or more end with a chunk backed up to w - 8 (same parity: it rewrites equal values) instead
      // of up to 6 scalar stores per row (they made 14x14 planes slower than the former path in wasmtime).
      const full = (w & 1) == 0 && w >= 8 ? w : w & ~7;
      for (let j = 0; j < full; j += 8) {
        const i = min(j, w - 8);
        const p = sp + (<usize>i << 2), e = d + (<usize>i << 1);
        const a = v128.load(p), b = v128.load(p, 16);
        v128.store(e + odd, v128.shuffle<f32>(a, b, 0, 2, 4, 6)); // x[i], x[i+2], ..: padded columns i+1, .. (odd)
        v128.store(e, v128.shuffle<f32>(a, b, 1, 3, 5, 7), 4); // x[i+1], x[i+3], ..: padded columns i+2, .. (even)
      }
      for (let i = full; i < w; i++) store<f32>(d + (i & 1 ? 0 : odd) + (<usize>((i + 1) >> 1) << 2), load<f32>(sp + (<usize>i << 2)));
      store<f32>(d, pad);
      store<f32>(d + ((w + 1) & 1 ? odd : 0) + (<usize>((w + 1) >> 1) << 2), pad);
      d += rowD; sp += <usize>w << 2;
    }
    fill_row(d, half << 1, border);
    d += rowD;
  }
}

