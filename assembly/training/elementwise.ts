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
  for (let r = r0; r < r1; r++) {
    memory.copy(out + (<usize>r * <usize>dstCols + <usize>dstCol) * 4, x + (<usize>r * <usize>cols + <usize>c0) * 4, n);
  }
}
