// Max pooling 3x3, stride 2, padding 1 (SIMD builds): ShuffleNetV2's pool after the stem. Each plane is copied split
// into even and odd columns with a -infinity border (x32-split-pad1), so the 3 taps of a window row for 4 outputs
// are 3 contiguous loads and no shuffle (maxpool.ts loads 2 vectors and shuffles once per tap). The taps are taken in
// maxpool.ts's order with the same pmax: the outputs are the same bits.
import { half_floats, split_pad, split_plane_floats } from './x32-split-pad1-wasmsimd';

/** Scratch bytes maxpool3x3s2p1_split needs: one split plane and 8 floats of over-read; -1 when above i32. */
export function maxpool3x3s2p1_split_scratch_bytes(h: i32, w: i32): i32 {
  const bytes = (split_plane_floats(h, w) + 8) * 4;
  return bytes > <i64>i32.MAX_VALUE ? -1 : <i32>bytes;
}

@inline function row3(r: usize, odd: usize, m: v128): v128 {
  m = f32x4.pmax(m, v128.load(r));
  m = f32x4.pmax(m, v128.load(r + odd));
  return f32x4.pmax(m, v128.load(r, 4));
}

/** maxpool(input, channels, h, w, 3, 2, 1, out, outH, outW, scratch) with maxpool3x3s2p1_split_scratch_bytes. */
export function maxpool3x3s2p1_split(input: usize, channels: i32, h: i32, w: i32, out: usize, outH: i32, outW: i32,
                                     scratch: usize): void {
  if (ASC_FEATURE_SIMD) { // compiled only in the SIMD builds (the harness exports it from all three)
    const half = half_floats(w);
    const rowD = <usize>half << 3, odd = <usize>half << 2;
    let src = input, dst = out;
    for (let c = 0; c < channels; c++) {
      split_pad(src, 1, h, w, half, scratch, -Infinity);
      src += <usize>(h * w) << 2;
      let r = scratch;
      for (let oy = 0; oy < outH; oy++) {
        let ox = 0;
        for (; ox + 4 <= outW; ox += 4) {
          const o = <usize>ox << 2;
          const m = row3(r + rowD * 2 + o, odd, row3(r + rowD + o, odd, row3(r + o, odd, f32x4.splat(-Infinity))));
          v128.store(dst + o, m);
        }
        // The last 1-3 outputs one at a time with max(), as maxpool.ts (it differs from pmax on NaNs).
        for (; ox < outW; ox++) {
          let m: f32 = -Infinity;
          let p = r + (<usize>ox << 2);
          for (let ky = 0; ky < 3; ky++) {
            m = max<f32>(max<f32>(max<f32>(m, load<f32>(p)), load<f32>(p + odd)), load<f32>(p, 4));
            p += rowD;
          }
          store<f32>(dst + (<usize>ox << 2), m);
        }
        r += rowD << 1; dst += <usize>outW << 2;
      }
    }
  }
}
