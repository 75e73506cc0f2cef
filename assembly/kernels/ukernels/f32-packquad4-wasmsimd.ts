// Quad-panel packing when all four outputs exist: four weight rows read as vectors, 4 weights at a time, each lane
// splatted by a shuffle. The per-weight form (a splat load per weight, and per store a check for missing outputs)
// compiled under Cranelift to about 15 instructions a weight with three multiplies for the address, a third of the
// 7x7 conv's time; this loop has one pointer step per 16 weights. Used by kernels/conv1x1.ts (pack_quad: 64-byte
// records of 4 splatted weights) and kernels/conv2d.ts (pack_taps: 80-byte records, a tap offset slot the caller
// fills, then the 4 weights).
// Layout: the 4 biases splatted (64 bytes), then per weight index k a record of `rec` bytes whose bytes
// [skip, skip + 64) hold the 4 outputs' weights k splatted; the other bytes of a record are not written.

/** Lane l of v in all four lanes. */
@inline function lane(v: v128, l: i32): v128 {
  if (l == 0) return i32x4.shuffle(v, v, 0, 0, 0, 0);
  if (l == 1) return i32x4.shuffle(v, v, 1, 1, 1, 1);
  if (l == 2) return i32x4.shuffle(v, v, 2, 2, 2, 2);
  return i32x4.shuffle(v, v, 3, 3, 3, 3);
}

/** Stores weight l of four rows' vectors (r0..r3) at d: the 4 outputs' weights of one index, splatted. */
@inline function store_input(d: usize, r0: v128, r1: v128, r2: v128, r3: v128, l: i32): void {
  v128.store(d, lane(r0, l)); v128.store(d, lane(r1, l), 16);
  v128.store(d, lane(r2, l), 32); v128.store(d, lane(r3, l), 48);
}

/**
 * Packs outputs o..o+3 (weight f32[cout][rowLen], bias f32[cout] or 0) into the quad panel at dst (16-aligned):
 * 64 + rowLen * rec bytes, the weights `skip` bytes into each record (rec = 64, skip = 0: conv1x1's panel;
 * rec = 80, skip = 16: conv2d's tap records).
 */
export function f32_packquad4__wasmsimd(weight: usize, bias: usize, rowLen: i32, o: i32, dst: usize, rec: usize,
                                        skip: usize): void {
  const rowBytes = <usize>rowLen << 2;
  const w0 = weight + <usize>o * rowBytes, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes;
  const b = bias ? v128.load(bias + (<usize>o << 2)) : f32x4.splat(0);
  v128.store(dst, lane(b, 0)); v128.store(dst, lane(b, 1), 16); v128.store(dst, lane(b, 2), 32); v128.store(dst, lane(b, 3), 48);
  let d = dst + 64 + skip;
  const end4 = rowBytes & ~<usize>15;
  let i: usize = 0;
  for (; i < end4; i += 16) {
    const r0 = v128.load(w0 + i), r1 = v128.load(w1 + i), r2 = v128.load(w2 + i), r3 = v128.load(w3 + i);
    store_input(d, r0, r1, r2, r3, 0); d += rec;
    store_input(d, r0, r1, r2, r3, 1); d += rec;
    store_input(d, r0, r1, r2, r3, 2); d += rec;
    store_input(d, r0, r1, r2, r3, 3); d += rec;
  }
  for (; i < rowBytes; i += 4) {
    v128.store(d, v128.load32_splat(w0 + i)); v128.store(d, v128.load32_splat(w1 + i), 16);
    v128.store(d, v128.load32_splat(w2 + i), 32); v128.store(d, v128.load32_splat(w3 + i), 48);
    d += rec;
  }
}
