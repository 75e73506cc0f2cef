// Elementwise and copy kernels of the training backend over tensors already in wasm memory, split into row ranges
// so both threads share them. A tensor pair is seen as a[outer, mid, inner] op b[outer, 1, inner]: this covers
// equal shapes (mid = 1), a per-channel vector (outer = 1) and SE's per-image channel scales.

/** out[o, m, i] = a[o, m, i] op b[o, i] for rows r = o*mid + m in [r0, r1); op: 0 add, 1 sub, 2 mul, 3 div. */
export function binary_bcast(op: i32, a: usize, b: usize, out: usize, mid: i32, inner: i32, r0: i32, r1: i32): void {
  const rowBytes = <usize>inner << 2;
  for (let r = r0; r < r1; r++) {
    const o = r / mid;
    const pa = a + <usize>r * rowBytes, pb = b + <usize>o * rowBytes, po = out + <usize>r * rowBytes;
    let j = 0;
    if (ASC_FEATURE_SIMD) {
      for (; j + 4 <= inner; j += 4) {
        const q = <usize>j << 2;
        const x = v128.load(pa + q), y = v128.load(pb + q);
        v128.store(po + q, op == 0 ? f32x4.add(x, y) : op == 1 ? f32x4.sub(x, y) : op == 2 ? f32x4.mul(x, y) : f32x4.div(x, y));
      }
    }
    for (; j < inner; j++) {
      const q = <usize>j << 2;
      const x = load<f32>(pa + q), y = load<f32>(pb + q);
      store<f32>(po + q, op == 0 ? x + y : op == 1 ? x - y : op == 2 ? x * y : x / y);
    }
  }
}

/** Rows [r0, r1) of out[rows, outCols] from columns [c0, c0+outCols) of x[rows, cols] (a slice of the last axis). */
export function copy_columns(x: usize, cols: i32, c0: i32, out: usize, outCols: i32, dstCol: i32, dstCols: i32, r0: i32, r1: i32): void {
  // Also the concat step: the columns land at [dstCol, dstCol+outCols) of rows dstCols wide.
  const n = <usize>outCols << 2;
  if (outCols < 4) {
    // Stack and unstack along the last axis move one float per row: a call of memory.copy each would cost more.
    for (let r = r0; r < r1; r++) {
      const s = x + (<usize>r * <usize>cols + <usize>c0) * 4, d = out + (<usize>r * <usize>dstCols + <usize>dstCol) * 4;
      for (let j: usize = 0; j < n; j += 4) store<f32>(d + j, load<f32>(s + j));
    }
    return;
  }
  for (let r = r0; r < r1; r++) {
    memory.copy(out + (<usize>r * <usize>dstCols + <usize>dstCol) * 4, x + (<usize>r * <usize>cols + <usize>c0) * 4, n);
  }
}

/**
 * Average pool over windows that tile the map exactly (fh x fw, stride = window), NHWC, images [n0, n1):
 * out[n, y/fh, x/fw, c] = mean of the window. Covers the 2x2 transitions and the global pools.
 */
export function avgpool_tiled(x: usize, H: i32, W: i32, C: i32, fh: i32, fw: i32, out: usize, n0: i32, n1: i32): void {
  const oh = H / fh, ow = W / fw;
  const rowBytes = <usize>C << 2;
  const scale: f32 = <f32>1 / <f32>(fh * fw);
  memory.fill(out + <usize>(n0 * oh * ow) * rowBytes, 0, <usize>((n1 - n0) * oh * ow) * rowBytes);
  for (let n = n0; n < n1; n++) {
    for (let y = 0; y < H; y++) {
      const orow = out + <usize>((n * oh + y / fh) * ow) * rowBytes;
      const irow = x + <usize>((n * H + y) * W) * rowBytes;
      for (let xx = 0; xx < W; xx++) add_row(orow + <usize>(xx / fw) * rowBytes, irow + <usize>xx * rowBytes, C);
    }
  }
  const total = <usize>((n1 - n0) * oh * ow * C);
  const base = out + <usize>(n0 * oh * ow) * rowBytes;
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) for (; i + 4 <= total; i += 4) v128.store(base + (i << 2), f32x4.mul(v128.load(base + (i << 2)), f32x4.splat(scale)));
  for (; i < total; i++) store<f32>(base + (i << 2), load<f32>(base + (i << 2)) * scale);
}

/** Gradient of avgpool_tiled: every input pixel gets its window's dy / (fh*fw); images [n0, n1). */
export function avgpool_tiled_grad(dy: usize, H: i32, W: i32, C: i32, fh: i32, fw: i32, dx: usize, n0: i32, n1: i32): void {
  const oh = H / fh, ow = W / fw;
  const rowBytes = <usize>C << 2;
  const scale: f32 = <f32>1 / <f32>(fh * fw);
  for (let n = n0; n < n1; n++) {
    for (let y = 0; y < H; y++) {
      const orow = dy + <usize>((n * oh + y / fh) * ow) * rowBytes;
      const irow = dx + <usize>((n * H + y) * W) * rowBytes;
      for (let xx = 0; xx < W; xx++) scale_row(irow + <usize>xx * rowBytes, orow + <usize>(xx / fw) * rowBytes, C, scale);
    }
  }
}

// dst[0..C) += src[0..C)
@inline function add_row(dst: usize, src: usize, C: i32): void {
  let c = 0;
  if (ASC_FEATURE_SIMD) for (; c + 4 <= C; c += 4) v128.store(dst + (<usize>c << 2), f32x4.add(v128.load(dst + (<usize>c << 2)), v128.load(src + (<usize>c << 2))));
  for (; c < C; c++) store<f32>(dst + (<usize>c << 2), load<f32>(dst + (<usize>c << 2)) + load<f32>(src + (<usize>c << 2)));
}

// dst[0..C) = src[0..C) * s
@inline function scale_row(dst: usize, src: usize, C: i32, s: f32): void {
  let c = 0;
  if (ASC_FEATURE_SIMD) for (; c + 4 <= C; c += 4) v128.store(dst + (<usize>c << 2), f32x4.mul(v128.load(src + (<usize>c << 2)), f32x4.splat(s)));
  for (; c < C; c++) store<f32>(dst + (<usize>c << 2), load<f32>(src + (<usize>c << 2)) * s);
}
