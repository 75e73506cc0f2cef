// 3x3 depthwise convolution (channel multiplier 1) for the training backend, forward and both gradients, NHWC.
// The input is first copied into a zero-padded NHWC buffer (dw_pad), so no kernel below tests a border: every output
// pixel reads a full 3x3 window of that buffer. Channels are the SIMD lanes (4 per vector); when C is not a multiple
// of 4 the last block is the 4 channels ending at C, which overlaps the previous block: the forward pass recomputes
// and rewrites the overlapped channels with the same values, the accumulating kernels zero the overlapped lanes of
// dy (tail_mask) so those channels get +0. C < 4 runs a scalar loop. Work is split by output rows (or images).
import { madd_v128 } from '../kernels/activation';

/** Lanes [k, 4) all ones, [0, k) zero: keeps the channels of an overlapping last block that earlier blocks missed. */
@inline function tail_mask(k: i32): v128 {
  return i32x4.ge_s(i32x4(0, 1, 2, 3), i32x4.splat(k));
}

/**
 * Images [n0, n1) of NHWC x[N,H,W,C] into dst[N,Hp,Wp,C] at row pt, column pl; every other float of those images
 * of dst is set to zero.
 */
export function dw_pad(x: usize, H: i32, W: i32, C: i32, pt: i32, pl: i32, Hp: i32, Wp: i32, dst: usize, n0: i32, n1: i32): void {
  const pix = <usize>C << 2, srcRow = <usize>W * pix, row = <usize>Wp * pix;
  const left = <usize>pl * pix, right = <usize>(Wp - W - pl) * pix;
  for (let n = n0; n < n1; n++) {
    const img = dst + <usize>n * <usize>Hp * row;
    memory.fill(img, 0, <usize>pt * row);
    for (let y = 0; y < H; y++) {
      const d = img + <usize>(pt + y) * row;
      memory.fill(d, 0, left);
      memory.copy(d + left, x + <usize>(n * H + y) * srcRow, srcRow);
      memory.fill(d + left + srcRow, 0, right);
    }
    memory.fill(img + <usize>(pt + H) * row, 0, <usize>(Hp - pt - H) * row);
  }
}

/** Images [n0, n1) of dst[N,H,W,C] from src[N,Hp,Wp,C] at row pt, column pl (the inverse of dw_pad). */
export function dw_crop(src: usize, Hp: i32, Wp: i32, C: i32, pt: i32, pl: i32, H: i32, W: i32, dst: usize, n0: i32, n1: i32): void {
  const pix = <usize>C << 2, dstRow = <usize>W * pix, row = <usize>Wp * pix;
  for (let n = n0; n < n1; n++) {
    for (let y = 0; y < H; y++) {
      memory.copy(dst + <usize>(n * H + y) * dstRow, src + (<usize>(n * Hp + pt + y) * row) + <usize>pl * pix, dstRow);
    }
  }
}

/**
 * y[n, oy, ox, c] = sum over ky, kx of xp[n, oy*s + ky, ox*s + kx, c] * w[ky, kx, c] for output rows r = n*OH + oy
 * in [r0, r1). xp: the padded input [N,Hp,Wp,C]; w: [3,3,C] (TF.js's [3,3,C,1] filter); y: [N,OH,OW,C].
 */
export function dw_forward(xp: usize, Hp: i32, Wp: i32, C: i32, w: usize, s: i32, OH: i32, OW: i32, y: usize, r0: i32, r1: i32): void {
  const pix = <usize>C << 2, row = <usize>Wp * pix, step = <usize>s * pix;
  for (let r = r0; r < r1; r++) {
    const n = r / OH, oy = r - n * OH;
    const in0 = xp + <usize>(n * Hp + oy * s) * row;
    const out = y + <usize>r * <usize>OW * pix;
    if (C >= 4) {
      for (let c = 0; c < C; c += 4) {
        const cb = <usize>min(c, C - 4) << 2;
        const wc = w + cb;
        const w0 = v128.load(wc), w1 = v128.load(wc + pix), w2 = v128.load(wc + 2 * pix);
        const w3 = v128.load(wc + 3 * pix), w4 = v128.load(wc + 4 * pix), w5 = v128.load(wc + 5 * pix);
        const w6 = v128.load(wc + 6 * pix), w7 = v128.load(wc + 7 * pix), w8 = v128.load(wc + 8 * pix);
        let p = in0 + cb, q = out + cb;
        for (let ox = 0; ox < OW; ox++) {
          const b = p + row, d = b + row;
          let acc = f32x4.mul(v128.load(p), w0);
          acc = madd_v128(v128.load(p + pix), w1, acc);
          acc = madd_v128(v128.load(p + 2 * pix), w2, acc);
          acc = madd_v128(v128.load(b), w3, acc);
          acc = madd_v128(v128.load(b + pix), w4, acc);
          acc = madd_v128(v128.load(b + 2 * pix), w5, acc);
          acc = madd_v128(v128.load(d), w6, acc);
          acc = madd_v128(v128.load(d + pix), w7, acc);
          acc = madd_v128(v128.load(d + 2 * pix), w8, acc);
          v128.store(q, acc);
          p += step;
          q += pix;
        }
      }
    } else {
      for (let c = 0; c < C; c++) {
        const cb = <usize>c << 2;
        for (let ox = 0; ox < OW; ox++) {
          const p = in0 + cb + <usize>ox * step;
          let acc: f32 = 0;
          for (let t = 0; t < 9; t++) {
            acc += load<f32>(p + <usize>(t / 3) * row + <usize>(t % 3) * pix) * load<f32>(w + cb + <usize>t * pix);
          }
          store<f32>(out + <usize>ox * pix + cb, acc);
        }
      }
    }
  }
}

/**
 * Input gradient by scattering, for any stride: dxp[n, oy*s + ky, ox*s + kx, c] += dy[n, oy, ox, c] * w[ky, kx, c]
 * into the padded gradient dxp[N,Hp,Wp,C] (images [n0, n1), zeroed here first; dw_crop cuts the unpadded dx out).
 * Split by images: neighbouring output rows of a stride-2 convolution write a common input row.
 */
export function dw_input_grad_scatter(dy: usize, OH: i32, OW: i32, C: i32, w: usize, s: i32, dxp: usize, Hp: i32, Wp: i32, n0: i32, n1: i32): void {
  const pix = <usize>C << 2, row = <usize>Wp * pix, step = <usize>s * pix;
  memory.fill(dxp + <usize>n0 * <usize>Hp * row, 0, <usize>(n1 - n0) * <usize>Hp * row);
  for (let n = n0; n < n1; n++) {
    for (let oy = 0; oy < OH; oy++) {
      const base = dxp + <usize>(n * Hp + oy * s) * row;
      const dyRow = dy + <usize>(n * OH + oy) * <usize>OW * pix;
      if (C >= 4) {
        for (let c = 0; c < C; c += 4) {
          const cc = min(c, C - 4);
          const cb = <usize>cc << 2;
          const mask = tail_mask(c - cc);
          const wc = w + cb;
          const w0 = v128.load(wc), w1 = v128.load(wc + pix), w2 = v128.load(wc + 2 * pix);
          const w3 = v128.load(wc + 3 * pix), w4 = v128.load(wc + 4 * pix), w5 = v128.load(wc + 5 * pix);
          const w6 = v128.load(wc + 6 * pix), w7 = v128.load(wc + 7 * pix), w8 = v128.load(wc + 8 * pix);
          let p = base + cb, q = dyRow + cb;
          for (let ox = 0; ox < OW; ox++) {
            const g = v128.and(v128.load(q), mask);
            const b = p + row, d = b + row;
            v128.store(p, madd_v128(g, w0, v128.load(p)));
            v128.store(p + pix, madd_v128(g, w1, v128.load(p + pix)));
            v128.store(p + 2 * pix, madd_v128(g, w2, v128.load(p + 2 * pix)));
            v128.store(b, madd_v128(g, w3, v128.load(b)));
            v128.store(b + pix, madd_v128(g, w4, v128.load(b + pix)));
            v128.store(b + 2 * pix, madd_v128(g, w5, v128.load(b + 2 * pix)));
            v128.store(d, madd_v128(g, w6, v128.load(d)));
            v128.store(d + pix, madd_v128(g, w7, v128.load(d + pix)));
            v128.store(d + 2 * pix, madd_v128(g, w8, v128.load(d + 2 * pix)));
            p += step;
            q += pix;
          }
        }
      } else {
        for (let c = 0; c < C; c++) {
          const cb = <usize>c << 2;
          for (let ox = 0; ox < OW; ox++) {
            const g = load<f32>(dyRow + <usize>ox * pix + cb);
            const p = base + cb + <usize>ox * step;
            for (let t = 0; t < 9; t++) {
              const a = p + <usize>(t / 3) * row + <usize>(t % 3) * pix;
              store<f32>(a, load<f32>(a) + g * load<f32>(w + cb + <usize>t * pix));
            }
          }
        }
      }
    }
  }
}

/**
 * Filter gradient over output rows r = n*OH + oy in [r0, r1): dw[ky, kx, c] = sum of xp[n, oy*s + ky, ox*s + kx, c]
 * * dy[n, oy, ox, c]. dw [3,3,C] is this part's own (zeroed here); the host adds the parts. Each row's sum over ox
 * is kept in registers and added to dw once per row.
 */
export function dw_filter_grad(xp: usize, Hp: i32, Wp: i32, C: i32, dy: usize, s: i32, OH: i32, OW: i32, dw: usize, r0: i32, r1: i32): void {
  const pix = <usize>C << 2, row = <usize>Wp * pix, step = <usize>s * pix;
  memory.fill(dw, 0, 9 * pix);
  for (let r = r0; r < r1; r++) {
    const n = r / OH, oy = r - n * OH;
    const in0 = xp + <usize>(n * Hp + oy * s) * row;
    const dyRow = dy + <usize>r * <usize>OW * pix;
    if (C >= 4) {
      for (let c = 0; c < C; c += 4) {
        const cc = min(c, C - 4);
        const cb = <usize>cc << 2;
        const mask = tail_mask(c - cc);
        const z = f32x4.splat(0);
        let a0 = z, a1 = z, a2 = z, a3 = z, a4 = z, a5 = z, a6 = z, a7 = z, a8 = z;
        let p = in0 + cb, q = dyRow + cb;
        for (let ox = 0; ox < OW; ox++) {
          const g = v128.and(v128.load(q), mask);
          const b = p + row, d = b + row;
          a0 = madd_v128(v128.load(p), g, a0);
          a1 = madd_v128(v128.load(p + pix), g, a1);
          a2 = madd_v128(v128.load(p + 2 * pix), g, a2);
          a3 = madd_v128(v128.load(b), g, a3);
          a4 = madd_v128(v128.load(b + pix), g, a4);
          a5 = madd_v128(v128.load(b + 2 * pix), g, a5);
          a6 = madd_v128(v128.load(d), g, a6);
          a7 = madd_v128(v128.load(d + pix), g, a7);
          a8 = madd_v128(v128.load(d + 2 * pix), g, a8);
          p += step;
          q += pix;
        }
        const o = dw + cb;
        v128.store(o, f32x4.add(v128.load(o), a0));
        v128.store(o + pix, f32x4.add(v128.load(o + pix), a1));
        v128.store(o + 2 * pix, f32x4.add(v128.load(o + 2 * pix), a2));
        v128.store(o + 3 * pix, f32x4.add(v128.load(o + 3 * pix), a3));
        v128.store(o + 4 * pix, f32x4.add(v128.load(o + 4 * pix), a4));
        v128.store(o + 5 * pix, f32x4.add(v128.load(o + 5 * pix), a5));
        v128.store(o + 6 * pix, f32x4.add(v128.load(o + 6 * pix), a6));
        v128.store(o + 7 * pix, f32x4.add(v128.load(o + 7 * pix), a7));
        v128.store(o + 8 * pix, f32x4.add(v128.load(o + 8 * pix), a8));
      }
    } else {
      for (let c = 0; c < C; c++) {
        const cb = <usize>c << 2;
        for (let t = 0; t < 9; t++) {
          const src = in0 + cb + <usize>(t / 3) * row + <usize>(t % 3) * pix;
          let acc: f32 = 0;
          for (let ox = 0; ox < OW; ox++) acc += load<f32>(src + <usize>ox * step) * load<f32>(dyRow + <usize>ox * pix + cb);
          const o = dw + cb + <usize>t * pix;
          store<f32>(o, load<f32>(o) + acc);
        }
      }
    }
  }
}
