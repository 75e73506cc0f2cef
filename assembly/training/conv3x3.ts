// 3x3, stride 1, padding 1 group convolution for the training backend, forward and both gradients, on a
// "padded planar" layout: each channel is one plane holding the batch's images as rows of W+1 floats (W values
// and one zero, which is also the left neighbour of the next row), images back to back with one zero row before
// each and after the last (shared by neighbours), and a zero margin before and after. In that layout a 3x3 tap
// is a constant shift of the flat index, so every kernel below is a long, unit-stride SIMD loop over all
// positions of the batch; results at border positions are ignored (forward) or meet zeros (filter gradient).
// Sharing the borders keeps the wasted positions low on small maps (7x7: 64 positions per image, not 81).
import { madd_v128 } from '../kernels/activation';
import {
  f32_conv_4x8_taps__wasmsimd_splat, tap3x3_offset, TAPS_3X3_STRIDED,
} from '../kernels/ukernels/f32-conv-4x8-taps-wasmsimd';

/**
 * Floats before and after the positions of a plane, multiple of 4: covers the largest tap shift (W+3) plus the
 * 16-float overrun of the last vector tile, so no kernel reads or writes outside the planes.
 */
@inline export function plane_margin(W: i32): i32 {
  return (W + 3 + 16 + 3) & ~3;
}

/** Positions of a plane: N(H+1)+1 rows of W+1. */
@inline function plane_positions(N: i32, H: i32, W: i32): i32 {
  return (N * (H + 1) + 1) * (W + 1);
}

/** Position of (image n, row r, column 0): image n's rows follow its leading zero row. */
@inline function row_pos(n: i32, r: i32, H: i32, Wp: i32): i32 {
  return (n * (H + 1) + 1 + r) * Wp;
}

/** Floats from one plane to the next: the positions plus both margins, multiple of 4. */
export function plane_stride(N: i32, H: i32, W: i32): i32 {
  return ((plane_positions(N, H, W) + 3) & ~3) + 2 * plane_margin(W);
}

/**
 * Channels [j0, j1) of NHWC x[N,H,W,C] into padded planes j0..j1-1 at dst (position 0 of plane j is at
 * dst + 4*(j*stride + margin)); borders and margins are written as zeros, so every float of those planes is set.
 * Rows are read once per block of 4 channels (still in L1) and written as 4 unit-stride runs; threads split [j0, j1).
 */
export function pack_padded(x: usize, N: i32, H: i32, W: i32, C: i32, dst: usize, j0: i32, j1: i32): void {
  const stride = plane_stride(N, H, W), margin = plane_margin(W);
  const Wp = W + 1;
  const planeBytes = <usize>stride << 2, pixBytes = <usize>C << 2;
  for (let j = j0; j < j1; j++) zero_borders(dst + <usize>j * planeBytes, N, H, W, stride, margin);
  for (let n = 0; n < N; n++) {
    for (let y = 0; y < H; y++) {
      const srcRow = x + <usize>((n * H + y) * W) * pixBytes;
      const rowPos = <usize>(margin + row_pos(n, y, H, Wp)) << 2;
      let j = j0;
      if (ASC_FEATURE_SIMD) {
        for (; j + 4 <= j1; j += 4) {
          const d0 = dst + <usize>j * planeBytes + rowPos, d1 = d0 + planeBytes, d2 = d1 + planeBytes, d3 = d2 + planeBytes;
          const s = srcRow + (<usize>j << 2);
          let xx = 0;
          for (; xx + 4 <= W; xx += 4) {
            const p = s + <usize>xx * pixBytes;
            const a = v128.load(p), b = v128.load(p + pixBytes), c = v128.load(p + 2 * pixBytes), d = v128.load(p + 3 * pixBytes);
            // 4x4 transpose: pixel-major (4 channels each) -> channel-major (4 pixels each).
            const t0 = i32x4.shuffle(a, b, 0, 4, 1, 5), t1 = i32x4.shuffle(a, b, 2, 6, 3, 7);
            const t2 = i32x4.shuffle(c, d, 0, 4, 1, 5), t3 = i32x4.shuffle(c, d, 2, 6, 3, 7);
            const q = <usize>xx << 2;
            v128.store(d0 + q, i32x4.shuffle(t0, t2, 0, 1, 4, 5));
            v128.store(d1 + q, i32x4.shuffle(t0, t2, 2, 3, 6, 7));
            v128.store(d2 + q, i32x4.shuffle(t1, t3, 0, 1, 4, 5));
            v128.store(d3 + q, i32x4.shuffle(t1, t3, 2, 3, 6, 7));
          }
          for (; xx < W; xx++) {
            const p = s + <usize>xx * pixBytes, q = <usize>xx << 2;
            store<f32>(d0 + q, load<f32>(p)); store<f32>(d1 + q, load<f32>(p, 4));
            store<f32>(d2 + q, load<f32>(p, 8)); store<f32>(d3 + q, load<f32>(p, 12));
          }
        }
      }
      for (; j < j1; j++) {
        const d = dst + <usize>j * planeBytes + rowPos;
        const s = srcRow + (<usize>j << 2);
        for (let xx = 0; xx < W; xx++) store<f32>(d + (<usize>xx << 2), load<f32>(s + <usize>xx * pixBytes));
      }
    }
  }
}

/** Zeros every float of one padded plane that is not an interior position: margins, border rows and columns. */
function zero_borders(plane: usize, N: i32, H: i32, W: i32, stride: i32, margin: i32): void {
  const Wp = W + 1;
  // Front margin and the zero row before image 0.
  memory.fill(plane, 0, <usize>(margin + Wp) << 2);
  for (let n = 0; n < N; n++) {
    const img = plane + (<usize>(margin + row_pos(n, 0, H, Wp)) << 2);
    for (let y = 0; y + 1 < H; y++) store<f32>(img + (<usize>(y * Wp + W) << 2), 0);
    // The last row's zero and the zero row after the image (before the next one, or up to the plane's end).
    const tail = margin + row_pos(n, H - 1, H, Wp) + W;
    memory.fill(plane + (<usize>tail << 2), 0, <usize>(n + 1 < N ? 1 + Wp : stride - tail) << 2);
  }
}

/**
 * Images [n0, n1) of C padded planes into NHWC y[N,H,W,C] (=|+=). Threads split the images, so each writes its own
 * contiguous part of y (a split by channels would have both write into every pixel's cache lines).
 */
export function unpack_padded(src: usize, N: i32, H: i32, W: i32, C: i32, y: usize, accumulate: i32, n0: i32, n1: i32): void {
  const j0 = 0, j1 = C;
  const stride = plane_stride(N, H, W), margin = plane_margin(W);
  const Wp = W + 1;
  const planeBytes = <usize>stride << 2, pixBytes = <usize>C << 2;
  for (let n = n0; n < n1; n++) {
    for (let r = 0; r < H; r++) {
      const dstRow = y + <usize>((n * H + r) * W) * pixBytes;
      const rowPos = <usize>(margin + row_pos(n, r, H, Wp)) << 2;
      let j = j0;
      if (ASC_FEATURE_SIMD) {
        for (; j + 4 <= j1; j += 4) {
          const s0 = src + <usize>j * planeBytes + rowPos, s1 = s0 + planeBytes, s2 = s1 + planeBytes, s3 = s2 + planeBytes;
          const d = dstRow + (<usize>j << 2);
          let xx = 0;
          for (; xx + 4 <= W; xx += 4) {
            const q = <usize>xx << 2;
            const a = v128.load(s0 + q), b = v128.load(s1 + q), c = v128.load(s2 + q), e = v128.load(s3 + q);
            const t0 = i32x4.shuffle(a, b, 0, 4, 1, 5), t1 = i32x4.shuffle(a, b, 2, 6, 3, 7);
            const t2 = i32x4.shuffle(c, e, 0, 4, 1, 5), t3 = i32x4.shuffle(c, e, 2, 6, 3, 7);
            let r0 = i32x4.shuffle(t0, t2, 0, 1, 4, 5), r1 = i32x4.shuffle(t0, t2, 2, 3, 6, 7);
            let r2 = i32x4.shuffle(t1, t3, 0, 1, 4, 5), r3 = i32x4.shuffle(t1, t3, 2, 3, 6, 7);
            const p = d + <usize>xx * pixBytes;
            if (accumulate) {
              r0 = f32x4.add(v128.load(p), r0); r1 = f32x4.add(v128.load(p + pixBytes), r1);
              r2 = f32x4.add(v128.load(p + 2 * pixBytes), r2); r3 = f32x4.add(v128.load(p + 3 * pixBytes), r3);
            }
            v128.store(p, r0); v128.store(p + pixBytes, r1); v128.store(p + 2 * pixBytes, r2); v128.store(p + 3 * pixBytes, r3);
          }
          for (; xx < W; xx++) {
            const q = <usize>xx << 2, p = d + <usize>xx * pixBytes;
            if (accumulate) {
              store<f32>(p, load<f32>(p) + load<f32>(s0 + q)); store<f32>(p, load<f32>(p, 4) + load<f32>(s1 + q), 4);
              store<f32>(p, load<f32>(p, 8) + load<f32>(s2 + q), 8); store<f32>(p, load<f32>(p, 12) + load<f32>(s3 + q), 12);
            } else {
              store<f32>(p, load<f32>(s0 + q)); store<f32>(p, load<f32>(s1 + q), 4);
              store<f32>(p, load<f32>(s2 + q), 8); store<f32>(p, load<f32>(s3 + q), 12);
            }
          }
        }
      }
      for (; j < j1; j++) {
        const s = src + <usize>j * planeBytes + rowPos;
        const d = dstRow + (<usize>j << 2);
        for (let xx = 0; xx < W; xx++) {
          const p = d + <usize>xx * pixBytes, v = load<f32>(s + (<usize>xx << 2));
          store<f32>(p, accumulate ? load<f32>(p) + v : v);
        }
      }
    }
  }
}

/**
 * out[o] = sum over the inputs c of o's group and the 9 taps t of w[o][c][t] * in[c] shifted by tap t, at every
 * position of the planes (L = plane_positions). in: cin padded planes; out: cout planes, same geometry;
 * w: f32[cout][cin/groups][9], taps row-major (ky*3+kx). Outputs [o0, o1) only (threads split them).
 */
export function conv3x3_planes(input: usize, cin: i32, w: usize, cout: i32, groups: i32, out: usize,
                               N: i32, H: i32, W: i32, o0: i32, o1: i32): void {
  const stride = plane_stride(N, H, W), margin = plane_margin(W);
  const L = plane_positions(N, H, W);
  const cinG = cin / groups, coutG = cout / groups;
  const Wp = W + 1;
  const planeBytes = <usize>stride << 2;
  let o = o0;
  while (o < o1) {
    const g = o / coutG;
    const groupEnd = min((g + 1) * coutG, o1);
    const inG = input + <usize>(g * cinG) * planeBytes + (<usize>margin << 2);
    if (ASC_FEATURE_SIMD && o + 4 <= groupEnd) {
      conv_4out(inG, cinG, planeBytes, w, o, out + (<usize>margin << 2), L, Wp);
      o += 4;
    } else if (ASC_FEATURE_SIMD && o + 2 <= groupEnd) {
      conv_2out(inG, cinG, planeBytes, w, o, out + (<usize>margin << 2), L, Wp);
      o += 2;
    } else {
      conv_1out(inG, cinG, planeBytes, w, o, out + (<usize>margin << 2), L, Wp);
      o += 1;
    }
  }
}

// Byte offset of tap t (ky*3+kx) in a plane with row length Wp (the micro-kernel's, for the 1- and 2-output tiles).
@inline function tap_offset(t: i32, Wp: i32): isize {
  return tap3x3_offset(t, Wp);
}

// 4 outputs x 8 positions per tile on the shared taps micro-kernel, in its panel-free 3x3 form.
function conv_4out(inG: usize, cinG: i32, planeBytes: usize, w: usize, o: i32, out: usize, L: i32, Wp: i32): void {
  const wRow = <usize>(cinG * 9) << 2;
  const w0 = w + <usize>o * wRow;
  const out0 = out + <usize>o * planeBytes, out1 = out0 + planeBytes, out2 = out1 + planeBytes, out3 = out2 + planeBytes;
  for (let p = 0; p < L; p += 8) {
    const z = f32x4.splat(0), q = <usize>p << 2;
    f32_conv_4x8_taps__wasmsimd_splat(inG + q, 0, 0, 1, z, z, z, z, out0 + q, out1 + q, out2 + q, out3 + q, 0, true, 0,
      TAPS_3X3_STRIDED, cinG, planeBytes, Wp, w0, wRow);
  }
}

function conv_2out(inG: usize, cinG: i32, planeBytes: usize, w: usize, o: i32, out: usize, L: i32, Wp: i32): void {
  const wRow = <usize>(cinG * 9) << 2;
  const w0 = w + <usize>o * wRow, w1 = w0 + wRow;
  const out0 = out + <usize>o * planeBytes, out1 = out0 + planeBytes;
  for (let p = 0; p < L; p += 16) {
    const z = f32x4.splat(0);
    let a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z;
    let ip = inG + (<usize>p << 2);
    let wo: usize = 0;
    for (let c = 0; c < cinG; c++) {
      for (let t = 0; t < 9; t++) {
        const q = ip + tap_offset(t, Wp);
        const x0 = v128.load(q), x1 = v128.load(q, 16), x2 = v128.load(q, 32), x3 = v128.load(q, 48);
        let s = v128.load32_splat(w0 + wo);
        a00 = madd_v128(x0, s, a00); a01 = madd_v128(x1, s, a01); a02 = madd_v128(x2, s, a02); a03 = madd_v128(x3, s, a03);
        s = v128.load32_splat(w1 + wo);
        a10 = madd_v128(x0, s, a10); a11 = madd_v128(x1, s, a11); a12 = madd_v128(x2, s, a12); a13 = madd_v128(x3, s, a13);
        wo += 4;
      }
      ip += planeBytes;
    }
    const q = <usize>p << 2;
    v128.store(out0 + q, a00); v128.store(out0 + q, a01, 16); v128.store(out0 + q, a02, 32); v128.store(out0 + q, a03, 48);
    v128.store(out1 + q, a10); v128.store(out1 + q, a11, 16); v128.store(out1 + q, a12, 32); v128.store(out1 + q, a13, 48);
  }
}

function conv_1out(inG: usize, cinG: i32, planeBytes: usize, w: usize, o: i32, out: usize, L: i32, Wp: i32): void {
  const wRow = <usize>(cinG * 9) << 2;
  const w0 = w + <usize>o * wRow;
  const out0 = out + <usize>o * planeBytes;
  if (ASC_FEATURE_SIMD) {
    for (let p = 0; p < L; p += 16) {
      const z = f32x4.splat(0);
      let a0 = z, a1 = z, a2 = z, a3 = z;
      let ip = inG + (<usize>p << 2);
      let wo: usize = 0;
      for (let c = 0; c < cinG; c++) {
        for (let t = 0; t < 9; t++) {
          const q = ip + tap_offset(t, Wp);
          const s = v128.load32_splat(w0 + wo);
          a0 = madd_v128(v128.load(q), s, a0); a1 = madd_v128(v128.load(q, 16), s, a1);
          a2 = madd_v128(v128.load(q, 32), s, a2); a3 = madd_v128(v128.load(q, 48), s, a3);
          wo += 4;
        }
        ip += planeBytes;
      }
      const q = out0 + (<usize>p << 2);
      v128.store(q, a0); v128.store(q, a1, 16); v128.store(q, a2, 32); v128.store(q, a3, 48);
    }
  } else {
    for (let p = 0; p < L; p++) {
      let s: f32 = 0;
      let ip = inG + (<usize>p << 2);
      let wo: usize = 0;
      for (let c = 0; c < cinG; c++) {
        for (let t = 0; t < 9; t++) { s += load<f32>(ip + tap_offset(t, Wp)) * load<f32>(w0 + wo); wo += 4; }
        ip += planeBytes;
      }
      store<f32>(out0 + (<usize>p << 2), s);
    }
  }
}

/**
 * Filter gradient: dw[o][c][t] = sum over all positions of dy[o] * in[c] shifted by tap t, for the inputs c of
 * o's group; dy must be zero at border positions (pack_padded of the output gradient). dw: f32[cout][cin/groups][9].
 * Outputs [o0, o1) only.
 */
export function conv3x3_filter_grad(input: usize, cin: i32, dy: usize, cout: i32, groups: i32, dw: usize,
                                    N: i32, H: i32, W: i32, o0: i32, o1: i32): void {
  const stride = plane_stride(N, H, W), margin = plane_margin(W);
  // Positions up to L rounded up to 16: the extra ones are margin zeros of dy.
  const L = (plane_positions(N, H, W) + 15) & ~15;
  const cinG = cin / groups, coutG = cout / groups;
  const Wp = W + 1;
  const planeBytes = <usize>stride << 2;
  for (let o = o0; o < o1; o++) {
    const g = o / coutG;
    const dyo = dy + <usize>o * planeBytes + (<usize>margin << 2);
    for (let c = 0; c < cinG; c++) {
      const inc = input + <usize>(g * cinG + c) * planeBytes + (<usize>margin << 2);
      const dst = dw + <usize>((o * cinG + c) * 9) * 4;
      if (ASC_FEATURE_SIMD) filter_taps_simd(inc, dyo, L, Wp, dst);
      else filter_taps_scalar(inc, dyo, L, Wp, dst);
    }
  }
}

function filter_taps_simd(inc: usize, dyo: usize, L: i32, Wp: i32, dst: usize): void {
  const z = f32x4.splat(0);
  let t0 = z, t1 = z, t2 = z, t3 = z, t4 = z, t5 = z, t6 = z, t7 = z, t8 = z;
  const up = <usize>(Wp << 2);
  for (let p = 0; p < L; p += 4) {
    const off = <usize>p << 2;
    const d = v128.load(dyo + off);
    const mid = inc + off;
    const top = mid - up, bot = mid + up;
    t0 = madd_v128(v128.load(top - 4), d, t0); t1 = madd_v128(v128.load(top), d, t1); t2 = madd_v128(v128.load(top + 4), d, t2);
    t3 = madd_v128(v128.load(mid - 4), d, t3); t4 = madd_v128(v128.load(mid), d, t4); t5 = madd_v128(v128.load(mid + 4), d, t5);
    t6 = madd_v128(v128.load(bot - 4), d, t6); t7 = madd_v128(v128.load(bot), d, t7); t8 = madd_v128(v128.load(bot + 4), d, t8);
  }
  store<f32>(dst, hsum(t0)); store<f32>(dst, hsum(t1), 4); store<f32>(dst, hsum(t2), 8);
  store<f32>(dst, hsum(t3), 12); store<f32>(dst, hsum(t4), 16); store<f32>(dst, hsum(t5), 20);
  store<f32>(dst, hsum(t6), 24); store<f32>(dst, hsum(t7), 28); store<f32>(dst, hsum(t8), 32);
}

@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

function filter_taps_scalar(inc: usize, dyo: usize, L: i32, Wp: i32, dst: usize): void {
  for (let t = 0; t < 9; t++) {
    const sh = tap_offset(t, Wp);
    let s: f32 = 0;
    for (let p = 0; p < L; p++) {
      const off = <usize>p << 2;
      s += load<f32>(dyo + off) * load<f32>(inc + off + sh);
    }
    store<f32>(dst + (<usize>t << 2), s);
  }
}
