// Quad-panel packing for conv1x1 (assembly/kernels/conv1x1.ts, pack_quad) when all four outputs exist: four weight
// rows read as vectors, 4 inputs at a time, each lane splatted by a shuffle. The per-weight form (a splat load per
// weight, and per store a check for missing outputs) compiled under Cranelift to about 15 instructions a weight with
// three multiplies for the address, a third of the 7x7 conv's time; this loop has one pointer step per 16 weights.
// Layout (as pack_quad): the 4 biases splatted, then per input i the 4 outputs' weights splatted, 64 bytes per input.

/** Lane l of v in all four lanes. */
@inline function lane(v: v128, l: i32): v128 {
  if (l == 0) return i32x4.shuffle(v, v, 0, 0, 0, 0);
  if (l == 1) return i32x4.shuffle(v, v, 1, 1, 1, 1);
  if (l == 2) return i32x4.shuffle(v, v, 2, 2, 2, 2);
  return i32x4.shuffle(v, v, 3, 3, 3, 3);
}

/** Stores input l of four rows' vectors (r0..r3) at d: the 4 outputs' weights of one input, splatted. */
@inline function store_input(d: usize, r0: v128, r1: v128, r2: v128, r3: v128, l: i32): void {
  v128.store(d, lane(r0, l)); v128.store(d, lane(r1, l), 16);
  v128.store(d, lane(r2, l), 32); v128.store(d, lane(r3, l), 48);
}

/**
 * Packs outputs o..o+3 (weight f32[cout][cinG], bias f32[cout] or 0) into the quad panel at dst
 * ((cinG + 1) * 64 bytes, 16-aligned).
 */
export function f32_conv1x1_packquad4(weight: usize, bias: usize, cinG: i32, o: i32, dst: usize): void {
  const rowBytes = <usize>cinG << 2;
  const w0 = weight + <usize>o * rowBytes, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes;
  const b = bias ? v128.load(bias + (<usize>o << 2)) : f32x4.splat(0);
  v128.store(dst, lane(b, 0)); v128.store(dst, lane(b, 1), 16); v128.store(dst, lane(b, 2), 32); v128.store(dst, lane(b, 3), 48);
  let d = dst + 64;
  const end4 = rowBytes & ~<usize>15;
  let i: usize = 0;
  for (; i < end4; i += 16) {
    const r0 = v128.load(w0 + i), r1 = v128.load(w1 + i), r2 = v128.load(w2 + i), r3 = v128.load(w3 + i);
    store_input(d, r0, r1, r2, r3, 0); store_input(d + 64, r0, r1, r2, r3, 1);
    store_input(d + 128, r0, r1, r2, r3, 2); store_input(d + 192, r0, r1, r2, r3, 3);
    d += 256;
  }
  for (; i < rowBytes; i += 4) {
    v128.store(d, v128.load32_splat(w0 + i)); v128.store(d, v128.load32_splat(w1 + i), 16);
    v128.store(d, v128.load32_splat(w2 + i), 32); v128.store(d, v128.load32_splat(w3 + i), 48);
    d += 64;
  }
}
