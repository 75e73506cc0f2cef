// Average pooling: the 2x2/2 transitions (SIMD fast path), any kernel/stride without padding, and the global mean.
import { act_f32, act_v128 } from './activation';

/** out[c][oy][ox] = mean of the kernel x kernel window at (oy*stride, ox*stride); no padding. */
export function avgpool(input: usize, channels: i32, h: i32, w: i32, kernel: i32, stride: i32, out: usize, outH: i32, outW: i32): void {
  // Called through a function reference, so the kernel stays a function of its own: inlined into the executor's one
  // large function, Cranelift recomputed every address (and 1/(k*k)) inside the loops.
  const fn = ASC_FEATURE_SIMD && kernel == 2 && stride == 2 ? avgpool_2x2_simd : avgpool_any;
  fn(input, channels, h, w, kernel, stride, out, outH, outW);
}

// 2x2, stride 2: 4 outputs from 8 columns of two rows (add the rows, then the even and odd lanes); walking pointers.
function avgpool_2x2_simd(input: usize, channels: i32, h: i32, w: i32, kernel: i32, stride: i32, out: usize,
                          outH: i32, outW: i32): void {
  const rowBytes = <usize>w << 2, inPlane = <usize>(h * w) << 2;
  const vec = <usize>(outW >> 2) << 5; // input bytes of a row's 4-output steps
  const quarter = f32x4.splat(0.25);
  let src = input, d = out;
  for (let c = 0; c < channels; c++) {
    let row = src;
    for (let oy = 0; oy < outH; oy++) {
      const rowEnd = row + vec;
      let p = row;
      for (; p < rowEnd; p += 32) {
        const a = f32x4.add(v128.load(p), v128.load(p + rowBytes));
        const b = f32x4.add(v128.load(p, 16), v128.load(p + rowBytes, 16));
        const s = f32x4.add(v128.shuffle<f32>(a, b, 0, 2, 4, 6), v128.shuffle<f32>(a, b, 1, 3, 5, 7));
        v128.store(d, f32x4.mul(s, quarter));
        d += 16;
      }
      for (let ox = outW & ~3; ox < outW; ox++) {
        // The same order as avgpool_any (from 0, row by row), so both builds' tails agree bit for bit.
        let s: f32 = 0;
        s += load<f32>(p); s += load<f32>(p, 4); s += load<f32>(p + rowBytes); s += load<f32>(p + rowBytes, 4);
        store<f32>(d, s * 0.25);
        p += 8; d += 4;
      }
      row += rowBytes << 1;
    }
    src += inPlane;
  }
}

function avgpool_any(input: usize, channels: i32, h: i32, w: i32, kernel: i32, stride: i32, out: usize, outH: i32, outW: i32): void {
  const inPlane = <usize>(h * w) << 2, outPlane = <usize>(outH * outW) << 2, rowBytes = <usize>w << 2;
  const inv: f32 = <f32>1 / <f32>(kernel * kernel);
  for (let c = 0; c < channels; c++) {
    const src = input + <usize>c * inPlane, dst = out + <usize>c * outPlane;
    for (let oy = 0; oy < outH; oy++) {
      const row = src + <usize>(oy * stride) * rowBytes;
      const orow = dst + (<usize>(oy * outW) << 2);
      for (let ox = 0; ox < outW; ox++) {
        let s: f32 = 0;
        let p = row + (<usize>(ox * stride) << 2);
        for (let ky = 0; ky < kernel; ky++) {
          for (let kx = 0; kx < kernel; kx++) s += load<f32>(p + (<usize>kx << 2));
          p += rowBytes;
        }
        store<f32>(orow + (<usize>ox << 2), s * inv);
      }
    }
  }
}

// Pixels summed in f32 before the partial sum is added to an f64 total: keeps global means accurate on large planes.
const BLOCK: i32 = 256;

/** Mean over one plane of act(x * a + b) (a = 1, b = 0, act none for a plain mean), f64 result. */
export function plane_mean(p: usize, hw: i32, a: f32, b: f32, act: i32): f64 {
  let total: f64 = 0;
  for (let p0 = 0; p0 < hw; p0 += BLOCK) {
    const p1 = min(p0 + BLOCK, hw);
    let q = p0;
    let part: f32 = 0;
    if (ASC_FEATURE_SIMD) {
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
      const va = f32x4.splat(a), vb = f32x4.splat(b);
      for (; q + 8 <= p1; q += 8) {
        const r = p + (<usize>q << 2);
        s0 = f32x4.add(s0, act_v128(f32x4.add(f32x4.mul(v128.load(r), va), vb), act));
        s1 = f32x4.add(s1, act_v128(f32x4.add(f32x4.mul(v128.load(r, 16), va), vb), act));
      }
      s0 = f32x4.add(s0, s1);
      part = (f32x4.extract_lane(s0, 0) + f32x4.extract_lane(s0, 1)) + (f32x4.extract_lane(s0, 2) + f32x4.extract_lane(s0, 3));
    }
    for (; q < p1; q++) part += act_f32(load<f32>(p + (<usize>q << 2)) * a + b, act);
    total += <f64>part;
  }
  return total / <f64>hw;
}

/** out[c] = mean over the hw pixels of act(x_c * scale[c] + shift[c]); scale/shift optional (0 = absent). */
export function global_avgpool(input: usize, channels: i32, hw: i32, scale: usize, shift: usize, act: i32, out: usize): void {
  const plane = <usize>hw << 2;
  for (let c = 0; c < channels; c++) {
    const a: f32 = scale ? load<f32>(scale + (<usize>c << 2)) : 1;
    const b: f32 = shift ? load<f32>(shift + (<usize>c << 2)) : 0;
    store<f32>(out + (<usize>c << 2), <f32>plane_mean(input + <usize>c * plane, hw, a, b, act));
  }
}

