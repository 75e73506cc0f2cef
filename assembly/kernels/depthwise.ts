// Depthwise 3x3 convolution (groups == channels: output c reads only input plane c), stride 1 or 2, padding 1: the
// ShuffleNetV2 unit's middle conv. The general group path (conv2d.ts) packs a tap panel per output and runs a
// 4-output tile that a depthwise conv cannot fill; here each output vector of 4 pixels is 9 multiply-adds of shifted
// row loads with the plane's 9 weights kept in registers. Stride 1 reads the planes in place (dw_s1); stride 2
// (ukernels/f32-dwconv3x3s2p1-split) and the plain path copy each plane into a one-plane zero-bordered scratch (it
// stays in L1).
import { ACT_NONE, act_f32, activate_inplace, madd_v128 } from './activation';
import { out_plane } from './conv1x1';
import { copy_f32, zero_f32 } from './memory';
import { dwconv3x3s2p1_split } from './ukernels/f32-dwconv3x3s2p1-split-wasmsimd';
import { emit_px, emit_s, emit_v, tailBuf } from './ukernels/f32-emit-px-wasmsimd';
import { split_plane_floats } from './ukernels/x32-split-pad1-wasmsimd';

// Zeroed floats after the padded plane: the widest over-read is a stride-2 tail (9 floats past the last row).
const SLACK_FLOATS: i32 = 16;

/** Scratch bytes depthwise3x3 needs: one padded plane and its slack; -1 when that does not fit in an i32. */
export function depthwise3x3_scratch_bytes(h: i32, w: i32): i32 {
  const padded = <i64>(h + 2) * <i64>(w + 2), split = split_plane_floats(h, w); // the SIMD stride-2 copy
  const bytes = ((padded > split ? padded : split) + SLACK_FLOATS) * 4;
  return bytes > <i64>i32.MAX_VALUE ? -1 : <i32>bytes;
}

/**
 * out plane (outIndex ? outIndex[c] : c) (=|+=) outAct(bias[c] + sum w[c][ky][kx] * x_c(stride*oy + ky - 1,
 * stride*ox + kx - 1)), zero padding 1, stride 1 or 2. weight f32[channels][1][3][3]; bias, outIndex optional (0).
 * scratch: depthwise3x3_scratch_bytes(h, w) bytes.
 */
export function depthwise3x3(input: usize, channels: i32, h: i32, w: i32, weight: usize, bias: usize, stride: i32,
                             out: usize, outH: i32, outW: i32, outIndex: usize, outAct: i32, accumulate: i32,
                             scratch: usize): void {
  const rowPad = <usize>(w + 2) << 2, rowBytes = <usize>w << 2;
  const outPlane = <usize>(outH * outW) << 2;
  // The SIMD paths leave the activation of stored planes to a pass over the plane; they do not cover accumulate with
  // an activation, nor stride 1 on maps narrower than 5 pixels: those take the plain path.
  const simd = ASC_FEATURE_SIMD && !(accumulate && outAct != ACT_NONE) && (stride == 2 || w >= 5);
  if (simd && stride == 1) {
    zero_f32(scratch, w); // the rows above and below every plane
    for (let c = 0; c < channels; c++) {
      const b: f32 = bias ? load<f32>(bias + (<usize>c << 2)) : 0;
      const dst = out_plane(out, outIndex, c, outPlane);
      dw_s1(input + <usize>c * <usize>h * rowBytes, h, w, weight + <usize>c * 36, b, dst, scratch, accumulate);
      if (!accumulate) activate_inplace(dst, outH * outW, outAct);
    }
    return;
  }
  // The border is zeroed once: each plane's copy writes only the interior.
  zero_f32(scratch, (h + 2) * (w + 2) + SLACK_FLOATS);
  let src = input;
  for (let c = 0; c < channels; c++) {
    const dst = out_plane(out, outIndex, c, outPlane);
    const wc = weight + <usize>c * 36;
    const b: f32 = bias ? load<f32>(bias + (<usize>c << 2)) : 0;
    if (simd) { // stride 2: the kernel makes its own (even/odd split) copy
      dwconv3x3s2p1_split(src, h, w, wc, b, dst, outH, outW, accumulate, scratch);
      src += <usize>h * rowBytes;
      if (!accumulate) activate_inplace(dst, outH * outW, outAct);
      continue;
    }
    let d = scratch + rowPad + 4;
    for (let y = 0; y < h; y++) {
      copy_f32(d, src, w);
      d += rowPad; src += rowBytes;
    }
    dw_scalar(scratch, rowPad, wc, b, stride, dst, outH, outW, outAct, accumulate);
  }
}

// Stride 1 reads the input planes in place (a copy into a padded plane cost 15% of the kernel's time): rows above and
// below the plane are a zeroed row of the scratch, and only a row's first and last vector (edge_row) need the
// padding columns, which they shuffle in. Two output rows per step share the loads of their two common input rows
// (12 loads for 18 multiply-adds instead of 18).
@inline function row_at(input: usize, y: i32, h: i32, w: i32, zeroRow: usize): usize {
  return y < 0 || y >= h ? zeroRow : input + (<usize>(y * w) << 2);
}

function dw_s1(input: usize, h: i32, w: i32, wc: usize, b: f32, dst: usize, zeroRow: usize, accumulate: i32): void {
  const w0 = v128.load32_splat(wc), w1 = v128.load32_splat(wc, 4), w2 = v128.load32_splat(wc, 8);
  const w3 = v128.load32_splat(wc, 12), w4 = v128.load32_splat(wc, 16), w5 = v128.load32_splat(wc, 20);
  const w6 = v128.load32_splat(wc, 24), w7 = v128.load32_splat(wc, 28), w8 = v128.load32_splat(wc, 32);
  const vb = f32x4.splat(b);
  const outRow = <usize>w << 2;
  for (let oy = 0; oy < h; oy += 2) {
    const r0 = row_at(input, oy - 1, h, w, zeroRow), r1 = row_at(input, oy, h, w, zeroRow);
    const r2 = row_at(input, oy + 1, h, w, zeroRow), r3 = row_at(input, oy + 2, h, w, zeroRow);
    const q = dst + <usize>oy * outRow;
    const two = oy + 1 < h;
    let ox = 4;
    for (; ox + 4 < w; ox += 4) {
      const o = <usize>ox << 2;
      let x = v128.load(r0 + o - 4);
      let a = madd_v128(x, w0, vb);
      x = v128.load(r0 + o); a = madd_v128(x, w1, a);
      x = v128.load(r0 + o, 4); a = madd_v128(x, w2, a);
      x = v128.load(r1 + o - 4); a = madd_v128(x, w3, a); let c = madd_v128(x, w0, vb);
      x = v128.load(r1 + o); a = madd_v128(x, w4, a); c = madd_v128(x, w1, c);
      x = v128.load(r1 + o, 4); a = madd_v128(x, w5, a); c = madd_v128(x, w2, c);
      x = v128.load(r2 + o - 4); a = madd_v128(x, w6, a); c = madd_v128(x, w3, c);
      x = v128.load(r2 + o); a = madd_v128(x, w7, a); c = madd_v128(x, w4, c);
      x = v128.load(r2 + o, 4); a = madd_v128(x, w8, a); c = madd_v128(x, w5, c);
      x = v128.load(r3 + o - 4); c = madd_v128(x, w6, c);
      x = v128.load(r3 + o); c = madd_v128(x, w7, c);
      x = v128.load(r3 + o, 4); c = madd_v128(x, w8, c);
      emit_v(q + o, a, accumulate);
      if (two) emit_v(q + outRow + o, c, accumulate);
    }
    // Each output row's first vector, then its last, which ends at the row's last pixel and overlaps the one
    // before it by `skip` pixels it leaves alone.
    const o = <usize>(w - 4) << 2, skip = ox - (w - 4);
    for (let k = 0; k < 2; k++) {
      if (k == 1 && !two) break;
      const ra = k ? r1 : r0, rb = k ? r2 : r1, rc = k ? r3 : r2, qk = k ? q + outRow : q;
      emit_v(qk, edge_row(rc, 0, 1, w6, w7, w8, edge_row(rb, 0, 1, w3, w4, w5, edge_row(ra, 0, 1, w0, w1, w2, vb))), accumulate);
      const y = edge_row(rc, o, 2, w6, w7, w8, edge_row(rb, o, 2, w3, w4, w5, edge_row(ra, o, 2, w0, w1, w2, vb)));
      if (skip == 0) emit_v(qk + o, y, accumulate);
      else {
        v128.store(tailBuf, y);
        for (let i = skip; i < 4; i++) emit_s(qk + o + (<usize>i << 2), load<f32>(tailBuf + (<usize>i << 2)), accumulate);
      }
    }
  }
}

// One kernel row of an edge vector (edge 1: the row's first, 2: its last): the x-1 or x+1 vector takes a zero
// where it leaves the row.
@inline function edge_row(r: usize, o: usize, edge: i32, wl: v128, wm: v128, wr: v128, acc: v128): v128 {
  const c = v128.load(r + o);
  const l = edge == 1 ? v128.shuffle<f32>(f32x4.splat(0), c, 3, 4, 5, 6) : v128.load(r + o - 4);
  const g = edge == 2 ? v128.shuffle<f32>(c, f32x4.splat(0), 1, 2, 3, 4) : v128.load(r + o + 4);
  return madd_v128(g, wr, madd_v128(c, wm, madd_v128(l, wl, acc)));
}

// Plain f32 path (scalar build; accumulate with an activation; stride 1 on maps narrower than 5 pixels).
function dw_scalar(pad: usize, rowPad: usize, wc: usize, b: f32, stride: i32, dst: usize, outH: i32, outW: i32, act: i32,
                   accumulate: i32): void {
  const px = <usize>stride << 2;
  for (let oy = 0; oy < outH; oy++) {
    let r = pad + <usize>(oy * stride) * rowPad;
    const q = dst + (<usize>(oy * outW) << 2);
    for (let ox = 0; ox < outW; ox++) {
      let s = b;
      for (let ky: usize = 0; ky < 3; ky++) {
        const p = r + ky * rowPad, wr = wc + ky * 12;
        s += load<f32>(p) * load<f32>(wr) + load<f32>(p, 4) * load<f32>(wr, 4) + load<f32>(p, 8) * load<f32>(wr, 8);
      }
      const t = q + (<usize>ox << 2);
      const v = act_f32(s, act);
      store<f32>(t, accumulate ? load<f32>(t) + v : v);
      r += px;
    }
  }
}
