// Depthwise 3x3, stride 2, padding 1, one plane (SIMD builds): ShuffleNetV2's down-sampling units. The plane is
// first copied split into even and odd columns (x32-split-pad1), so each kernel row of 4 output pixels is 3
// contiguous loads and no shuffle (the former path loaded 4 vectors and shuffled 3 per kernel row). The sums keep
// the former order (bias + row 0, then row 1 + row 2, added last): the outputs are the same bits.
import { madd_v128 } from './f32-madd-wasmsimd';
import { emit_px } from './f32-emit-px-wasmsimd';
import { half_floats, split_pad } from './x32-split-pad1-wasmsimd';

@inline function row3(r: usize, odd: usize, wa: v128, wb: v128, wc: v128, acc: v128): v128 {
  acc = madd_v128(v128.load(r), wa, acc);
  acc = madd_v128(v128.load(r + odd), wb, acc);
  return madd_v128(v128.load(r, 4), wc, acc);
}

/**
 * One plane: dst (outH x outW) (=|+=) b + sum wc[ky][kx] * x(2oy + ky - 1, 2ox + kx - 1), zero padding; no activation
 * (the caller activates stored planes). scratch: split_plane_floats(h, w) + 8 floats.
 */
export function dwconv3x3s2p1_split(src: usize, h: i32, w: i32, wc: usize, b: f32, dst: usize, outH: i32, outW: i32,
                                    accumulate: i32, scratch: usize): void {
  const half = half_floats(w);
  split_pad(src, 1, h, w, half, scratch, 0);
  const rowD = <usize>half << 3, odd = <usize>half << 2;
  const w0 = v128.load32_splat(wc), w1 = v128.load32_splat(wc, 4), w2 = v128.load32_splat(wc, 8);
  const w3 = v128.load32_splat(wc, 12), w4 = v128.load32_splat(wc, 16), w5 = v128.load32_splat(wc, 20);
  const w6 = v128.load32_splat(wc, 24), w7 = v128.load32_splat(wc, 28), w8 = v128.load32_splat(wc, 32);
  const vb = f32x4.splat(b), zero = f32x4.splat(0);
  let r0 = scratch, q = dst;
  for (let oy = 0; oy < outH; oy++) {
    const r1 = r0 + rowD, r2 = r1 + rowD;
    for (let ox = 0; ox < outW; ox += 4) {
      const o = <usize>ox << 2;
      const a = row3(r0 + o, odd, w0, w1, w2, vb);
      const m = row3(r1 + o, odd, w3, w4, w5, zero);
      const z = row3(r2 + o, odd, w6, w7, w8, zero);
      emit_px(q + o, f32x4.add(a, f32x4.add(m, z)), outW - ox, accumulate);
    }
    r0 = r2; q += <usize>outW << 2;
  }
}
