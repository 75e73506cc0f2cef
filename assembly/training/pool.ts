// Max pool for the training backend (the ImageNet ShuffleNetV2 stem: 3x3, stride 2, padding 1), forward and gradient,
// NHWC, any window, stride and padding: each window is clipped to the map (padding never wins, as in TF.js).
// Channels are the SIMD lanes; a channel count that is not a multiple of 4 ends with the block ending at C
// (overlapping the previous one; the gradient masks the overlapped lanes of dy to zero). C < 4 runs scalar loops.

/** Lanes [k, 4) all ones, [0, k) zero. */
@inline function tail_mask(k: i32): v128 {
  return i32x4.ge_s(i32x4(0, 1, 2, 3), i32x4.splat(k));
}

/** y[n, oy, ox, c] = max of x over the window of (oy, ox), for output rows r = n*OH + oy in [r0, r1). */
export function maxpool_fwd(x: usize, H: i32, W: i32, C: i32, fh: i32, fw: i32, sh: i32, sw: i32, pt: i32, pl: i32,
                            OH: i32, OW: i32, y: usize, r0: i32, r1: i32): void {
  const pix = <usize>C << 2;
  for (let r = r0; r < r1; r++) {
    const n = r / OH, oy = r - n * OH;
    const y0 = max(0, oy * sh - pt), y1 = min(H, oy * sh - pt + fh);
    for (let ox = 0; ox < OW; ox++) {
      const x0 = max(0, ox * sw - pl), x1 = min(W, ox * sw - pl + fw);
      const out = y + <usize>(r * OW + ox) * pix;
      if (C >= 4) {
        for (let c = 0; c < C; c += 4) {
          const cb = <usize>min(c, C - 4) << 2;
          let best = f32x4.splat(-Infinity);
          for (let yy = y0; yy < y1; yy++) {
            const row = x + <usize>((n * H + yy) * W) * pix + cb;
            for (let xx = x0; xx < x1; xx++) best = f32x4.max(best, v128.load(row + <usize>xx * pix));
          }
          v128.store(out + cb, best);
        }
      } else {
        for (let c = 0; c < C; c++) {
          let best: f32 = -Infinity;
          for (let yy = y0; yy < y1; yy++) {
            for (let xx = x0; xx < x1; xx++) {
              const v = load<f32>(x + <usize>((n * H + yy) * W + xx) * pix + (<usize>c << 2));
              if (v > best) best = v;
            }
          }
          store<f32>(out + (<usize>c << 2), best);
        }
      }
    }
  }
}

/**
 * Gradient of maxpool_fwd for images [n0, n1): each output's dy goes to the first position of its window (row-major)
 * holding the window's maximum, as TF.js's CPU kernel chooses; dx (those images) is zeroed here first. Split by
 * images: overlapping windows of neighbouring output rows write common input rows.
 */
export function maxpool_grad(x: usize, H: i32, W: i32, C: i32, fh: i32, fw: i32, sh: i32, sw: i32, pt: i32, pl: i32,
                             OH: i32, OW: i32, dy: usize, dx: usize, n0: i32, n1: i32): void {
  const pix = <usize>C << 2, image = <usize>(H * W) * pix;
  memory.fill(dx + <usize>n0 * image, 0, <usize>(n1 - n0) * image);
  for (let n = n0; n < n1; n++) {
    const xi = x + <usize>n * image, dxi = dx + <usize>n * image;
    for (let oy = 0; oy < OH; oy++) {
      const y0 = max(0, oy * sh - pt), y1 = min(H, oy * sh - pt + fh);
      for (let ox = 0; ox < OW; ox++) {
        const x0 = max(0, ox * sw - pl), x1 = min(W, ox * sw - pl + fw);
        const g0 = dy + <usize>((n * OH + oy) * OW + ox) * pix;
        if (C >= 4) {
          for (let c = 0; c < C; c += 4) {
            const cc = min(c, C - 4);
            const cb = <usize>cc << 2;
            let best = f32x4.splat(-Infinity);
            let at = i32x4.splat(-1);
            for (let yy = y0; yy < y1; yy++) {
              for (let xx = x0; xx < x1; xx++) {
                const p = yy * W + xx;
                const v = v128.load(xi + <usize>p * pix + cb);
                const m = f32x4.gt(v, best);
                best = v128.bitselect(v, best, m);
                at = v128.bitselect(i32x4.splat(p), at, m);
              }
            }
            const g = v128.and(v128.load(g0 + cb), tail_mask(c - cc));
            add_at(dxi + cb, pix, i32x4.extract_lane(at, 0), f32x4.extract_lane(g, 0));
            add_at(dxi + cb + 4, pix, i32x4.extract_lane(at, 1), f32x4.extract_lane(g, 1));
            add_at(dxi + cb + 8, pix, i32x4.extract_lane(at, 2), f32x4.extract_lane(g, 2));
            add_at(dxi + cb + 12, pix, i32x4.extract_lane(at, 3), f32x4.extract_lane(g, 3));
          }
        } else {
          for (let c = 0; c < C; c++) {
            let best: f32 = -Infinity;
            let at = -1;
            for (let yy = y0; yy < y1; yy++) {
              for (let xx = x0; xx < x1; xx++) {
                const p = yy * W + xx;
                const v = load<f32>(xi + <usize>p * pix + (<usize>c << 2));
                if (v > best) { best = v; at = p; }
              }
            }
            add_at(dxi + (<usize>c << 2), pix, at, load<f32>(g0 + (<usize>c << 2)));
          }
        }
      }
    }
  }
}

/** base[p * pix] += g unless p < 0 (no position: every value of the window was -Infinity or NaN). */
@inline function add_at(base: usize, pix: usize, p: i32, g: f32): void {
  if (p < 0) return;
  const a = base + <usize>p * pix;
  store<f32>(a, load<f32>(a) + g);
}
