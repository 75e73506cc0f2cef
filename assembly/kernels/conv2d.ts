// k x k direct group convolution, any stride and padding (stem 3x3 s2/s1, the 3x3 group conv, generic 1x1..7x7).
//
// The input is first copied into a zero-padded scratch image (cin planes of (h+2pad) x (w+2pad) floats plus a small
// zeroed slack), so the inner loops need no bounds checks: every tap of every output pixel is inside the padded plane,
// and the SIMD tail vectors, which may compute up to 3 pixels past the row end, only read inside the scratch (padded rows, the next plane or the slack).
// Those extra lanes are never stored. After the slack the scratch holds a tap table (one i32 byte offset per
// (input, ky, kx) of a group), which flattens the tap loops into one loop like conv1x1's loop over inputs.
// SIMD paths (stride 1 and 2) use a register tile of 4 output channels x 8 output pixels (8 f32x4 accumulators):
// each input vector is reused for 4 outputs, each splatted weight for 8 pixels. Stride > 2 and the scalar build use
// a plain f32 loop over the same padded image.
import { madd_v128 } from './activation';
import { conv1x1_group, out_plane, emit_v128, emit_f32 } from './conv1x1';
import { copy_f32, zero_f32 } from './memory';

// Zeroed bytes after the last padded plane: the widest over-read is a stride-2 tail vector, 13 floats past a row end.
const SLACK_BYTES: i64 = 128;

/**
 * Scratch bytes conv2d_group needs for this shape (padded input, slack, tap table); 0 when none is needed (1x1, stride 1, pad 0), -1 when the size
 * does not fit in an i32 (the caller must reject such a layer).
 */
export function conv2d_scratch_bytes(cin: i32, h: i32, w: i32, kernel: i32, stride: i32, pad: i32): i32 {
  if (kernel == 1 && stride == 1 && pad == 0) return 0;
  const bytes = <i64>cin * <i64>(h + 2 * pad) * <i64>(w + 2 * pad) * 4 + SLACK_BYTES + <i64>cin * <i64>(kernel * kernel) * 4;
  return bytes > <i64>i32.MAX_VALUE ? -1 : <i32>bytes;
}

/**
 * y_o = outAct(bias[o] + sum w[o][i][ky][kx] * x[g*cin/groups + i](stride*oy + ky - pad, stride*ox + kx - pad)),
 * zero padding; written to (or added to, accumulate != 0) plane outIndex ? outIndex[o] : o of out (outH x outW).
 * weight f32[cout][cin/groups][kernel][kernel]. scratch: conv2d_scratch_bytes(...) bytes (ignored when that is 0).
 */
export function conv2d_group(input: usize, cin: i32, h: i32, w: i32, weight: usize, bias: usize, cout: i32, groups: i32,
                             kernel: i32, stride: i32, pad: i32, out: usize, outH: i32, outW: i32, outIndex: usize,
                             outAct: i32, accumulate: i32, scratch: usize): void {
  if (kernel == 1 && stride == 1 && pad == 0) {
    conv1x1_group(input, cin, h * w, weight, bias, cout, groups, out, outIndex, outAct, accumulate);
    return;
  }
  const Hp = h + 2 * pad, Wp = w + 2 * pad;
  const cinG = cin / groups, coutG = cout / groups;
  const planePad = <usize>(Hp * Wp) << 2, rowPad = <usize>Wp << 2;
  zero_f32(scratch + <usize>cin * planePad, <i32>SLACK_BYTES >> 2);
  // Tap table after the slack: byte offset of tap (i, ky, kx) from a window's top-left in input plane i.
  const taps = cinG * kernel * kernel;
  const tab = scratch + <usize>cin * planePad + <usize>SLACK_BYTES;
  let n = 0;
  for (let i = 0; i < cinG; i++) {
    for (let ky = 0; ky < kernel; ky++) {
      for (let kx = 0; kx < kernel; kx++) {
        store<i32>(tab + (<usize>n << 2), <i32>(<usize>i * planePad + <usize>ky * rowPad + (<usize>kx << 2)));
        n++;
      }
    }
  }
  const inPlane = <usize>(h * w) << 2;
  for (let g = 0; g < groups; g++) {
    const inG = scratch + <usize>(g * cinG) * planePad;
    // Padding one group at a time keeps its planes in L2 for the convolution that reads them right after. Tail
    // vectors of the group's last plane may read the next group's first floats before they are written: those lanes
    // are discarded.
    pad_copy(input + <usize>(g * cinG) * inPlane, cinG, h, w, pad, inG);
    let ol = 0;
    if (ASC_FEATURE_SIMD && stride <= 2) {
      for (; ol + 4 <= coutG; ol += 4) {
        if (stride == 1) conv_4oc_s1(inG, tab, taps, rowPad, outH, outW, weight, bias, g * coutG + ol, out, outIndex, outAct, accumulate);
        else conv_4oc_s2(inG, tab, taps, rowPad, outH, outW, weight, bias, g * coutG + ol, out, outIndex, outAct, accumulate);
      }
      for (; ol < coutG; ol++) {
        if (stride == 1) conv_1oc_s1(inG, tab, taps, rowPad, outH, outW, weight, bias, g * coutG + ol, out, outIndex, outAct, accumulate);
        else conv_1oc_s2(inG, tab, taps, rowPad, outH, outW, weight, bias, g * coutG + ol, out, outIndex, outAct, accumulate);
      }
    } else {
      for (; ol < coutG; ol++) {
        conv_scalar(inG, tab, taps, stride, rowPad, outH, outW, weight, bias, g * coutG + ol, out, outIndex, outAct, accumulate);
      }
    }
  }
}

// Copies cin planes of h x w into (h+2pad) x (w+2pad) zero-bordered planes at dst.
function pad_copy(src: usize, cin: i32, h: i32, w: i32, pad: i32, dst: usize): void {
  const Wp = w + 2 * pad;
  const rowBytes = <usize>w << 2;
  let d = dst, sp = src;
  for (let c = 0; c < cin; c++) {
    zero_f32(d, Wp * pad + pad); // top rows and the first left border
    d += <usize>(Wp * pad + pad) << 2;
    for (let y = 0; y < h; y++) {
      copy_f32(d, sp, w);
      d += rowBytes; sp += rowBytes;
      // right border of this row and left border of the next (or the bottom rows after the last row)
      const gap = y + 1 < h ? pad * 2 : pad + Wp * pad;
      zero_f32(d, gap);
      d += <usize>gap << 2;
    }
  }
}

// Loads 4 input pixels of one tap: contiguous for stride 1, every other float for stride 2.
@inline function load_px(p: usize, stride: i32): v128 {
  if (stride == 1) return v128.load(p);
  return v128.shuffle<f32>(v128.load(p), v128.load(p, 16), 0, 2, 4, 6);
}

// Stores lanes [0, n) of an activated vector (n = 1..3): the partial tail of an output row.
@inline function emit_partial(p: usize, y: v128, n: i32, act: i32, accumulate: i32): void {
  emit_f32(p, f32x4.extract_lane(y, 0), act, accumulate);
  if (n > 1) emit_f32(p + 4, f32x4.extract_lane(y, 1), act, accumulate);
  if (n > 2) emit_f32(p + 8, f32x4.extract_lane(y, 2), act, accumulate);
}

@inline function bias_at(bias: usize, o: i32): f32 {
  return bias ? load<f32>(bias + (<usize>o << 2)) : 0;
}

// Writes a 4-output x 4-pixel tile, of which only n pixels may be valid (row tail).
@inline function emit4(o0: usize, o1: usize, o2: usize, o3: usize, q: usize, a0: v128, a1: v128, a2: v128, a3: v128,
                       n: i32, act: i32, accumulate: i32): void {
  if (n >= 4) {
    emit_v128(o0 + q, a0, act, accumulate); emit_v128(o1 + q, a1, act, accumulate);
    emit_v128(o2 + q, a2, act, accumulate); emit_v128(o3 + q, a3, act, accumulate);
  } else {
    emit_partial(o0 + q, a0, n, act, accumulate); emit_partial(o1 + q, a1, n, act, accumulate);
    emit_partial(o2 + q, a2, n, act, accumulate); emit_partial(o3 + q, a3, n, act, accumulate);
  }
}

// Stride-specialised copies: inlining the workers with a constant stride folds load_px and the pixel step.
function conv_4oc_s1(inG: usize, tab: usize, taps: i32, rowPad: usize, outH: i32, outW: i32,
                     weight: usize, bias: usize, o: i32, out: usize, outIndex: usize, act: i32, accumulate: i32): void {
  conv_simd_4oc(inG, tab, taps, 1, rowPad, outH, outW, weight, bias, o, out, outIndex, act, accumulate);
}
function conv_4oc_s2(inG: usize, tab: usize, taps: i32, rowPad: usize, outH: i32, outW: i32,
                     weight: usize, bias: usize, o: i32, out: usize, outIndex: usize, act: i32, accumulate: i32): void {
  conv_simd_4oc(inG, tab, taps, 2, rowPad, outH, outW, weight, bias, o, out, outIndex, act, accumulate);
}
function conv_1oc_s1(inG: usize, tab: usize, taps: i32, rowPad: usize, outH: i32, outW: i32,
                     weight: usize, bias: usize, o: i32, out: usize, outIndex: usize, act: i32, accumulate: i32): void {
  conv_simd_1oc(inG, tab, taps, 1, rowPad, outH, outW, weight, bias, o, out, outIndex, act, accumulate);
}
function conv_1oc_s2(inG: usize, tab: usize, taps: i32, rowPad: usize, outH: i32, outW: i32,
                     weight: usize, bias: usize, o: i32, out: usize, outIndex: usize, act: i32, accumulate: i32): void {
  conv_simd_1oc(inG, tab, taps, 2, rowPad, outH, outW, weight, bias, o, out, outIndex, act, accumulate);
}

// Any kernel size, stride 1 or 2, four outputs o..o+3. One tap per inner iteration: the tap table turns the
// (input, ky, kx) nest into a flat loop whose tap number also indexes the weights, like conv1x1's loop over inputs.
// (A fully unrolled 3x3 body measured slower in V8: its larger loop body allocates registers worse.)
@inline function conv_simd_4oc(inG: usize, tab: usize, taps: i32, stride: i32, rowPad: usize, outH: i32, outW: i32,
                       weight: usize, bias: usize, o: i32, out: usize, outIndex: usize, act: i32, accumulate: i32): void {
  const tapBytes = <usize>taps << 2;
  const w0 = weight + <usize>o * tapBytes, w1 = w0 + tapBytes, w2 = w1 + tapBytes, w3 = w2 + tapBytes;
  const planeBytes = <usize>(outH * outW) << 2;
  const o0 = out_plane(out, outIndex, o, planeBytes), o1 = out_plane(out, outIndex, o + 1, planeBytes);
  const o2 = out_plane(out, outIndex, o + 2, planeBytes), o3 = out_plane(out, outIndex, o + 3, planeBytes);
  const vb0 = f32x4.splat(bias_at(bias, o)), vb1 = f32x4.splat(bias_at(bias, o + 1));
  const vb2 = f32x4.splat(bias_at(bias, o + 2)), vb3 = f32x4.splat(bias_at(bias, o + 3));
  const step = <usize>stride << 4; // input bytes spanned by 4 output pixels
  for (let oy = 0; oy < outH; oy++) {
    const rowIn = inG + <usize>(oy * stride) * rowPad;
    const rowOut = <usize>(oy * outW) << 2;
    let ox = 0;
    for (; ox + 8 <= outW; ox += 8) {
      let a00 = vb0, a01 = vb0, a10 = vb1, a11 = vb1, a20 = vb2, a21 = vb2, a30 = vb3, a31 = vb3;
      const base = rowIn + (<usize>(ox * stride) << 2);
      for (let t: usize = 0; t < tapBytes; t += 4) {
        const xp = base + <usize>load<i32>(tab + t);
        const x0 = load_px(xp, stride), x1 = load_px(xp + step, stride);
        let w = v128.load32_splat(w0 + t); a00 = madd_v128(x0, w, a00); a01 = madd_v128(x1, w, a01);
        w = v128.load32_splat(w1 + t); a10 = madd_v128(x0, w, a10); a11 = madd_v128(x1, w, a11);
        w = v128.load32_splat(w2 + t); a20 = madd_v128(x0, w, a20); a21 = madd_v128(x1, w, a21);
        w = v128.load32_splat(w3 + t); a30 = madd_v128(x0, w, a30); a31 = madd_v128(x1, w, a31);
      }
      const q = rowOut + (<usize>ox << 2);
      emit_v128(o0 + q, a00, act, accumulate); emit_v128(o0 + q + 16, a01, act, accumulate);
      emit_v128(o1 + q, a10, act, accumulate); emit_v128(o1 + q + 16, a11, act, accumulate);
      emit_v128(o2 + q, a20, act, accumulate); emit_v128(o2 + q + 16, a21, act, accumulate);
      emit_v128(o3 + q, a30, act, accumulate); emit_v128(o3 + q + 16, a31, act, accumulate);
    }
    for (; ox < outW; ox += 4) {
      let a0 = vb0, a1 = vb1, a2 = vb2, a3 = vb3;
      const base = rowIn + (<usize>(ox * stride) << 2);
      for (let t: usize = 0; t < tapBytes; t += 4) {
        const x = load_px(base + <usize>load<i32>(tab + t), stride);
        a0 = madd_v128(x, v128.load32_splat(w0 + t), a0);
        a1 = madd_v128(x, v128.load32_splat(w1 + t), a1);
        a2 = madd_v128(x, v128.load32_splat(w2 + t), a2);
        a3 = madd_v128(x, v128.load32_splat(w3 + t), a3);
      }
      emit4(o0, o1, o2, o3, rowOut + (<usize>ox << 2), a0, a1, a2, a3, outW - ox, act, accumulate);
    }
  }
}

// Any kernel size, stride 1 or 2, one output o (the group remainder, e.g. one output per group). 16-pixel tiles;
// the 4-pixel row tail splits the taps over four accumulators so it is not bound by one dependency chain.
@inline function conv_simd_1oc(inG: usize, tab: usize, taps: i32, stride: i32, rowPad: usize, outH: i32, outW: i32,
                       weight: usize, bias: usize, o: i32, out: usize, outIndex: usize, act: i32, accumulate: i32): void {
  const tapBytes = <usize>taps << 2;
  const w0 = weight + <usize>o * tapBytes;
  const planeBytes = <usize>(outH * outW) << 2;
  const o0 = out_plane(out, outIndex, o, planeBytes);
  const vb0 = f32x4.splat(bias_at(bias, o)), zero = f32x4.splat(0);
  const step = <usize>stride << 4;
  const tap4 = tapBytes & ~15; // taps handled four at a time in the tail tile
  for (let oy = 0; oy < outH; oy++) {
    const rowIn = inG + <usize>(oy * stride) * rowPad;
    const rowOut = o0 + (<usize>(oy * outW) << 2);
    let ox = 0;
    for (; ox + 16 <= outW; ox += 16) {
      let a0 = vb0, a1 = vb0, a2 = vb0, a3 = vb0;
      const base = rowIn + (<usize>(ox * stride) << 2);
      for (let t: usize = 0; t < tapBytes; t += 4) {
        const p = base + <usize>load<i32>(tab + t), w = v128.load32_splat(w0 + t);
        a0 = madd_v128(load_px(p, stride), w, a0);
        a1 = madd_v128(load_px(p + step, stride), w, a1);
        a2 = madd_v128(load_px(p + 2 * step, stride), w, a2);
        a3 = madd_v128(load_px(p + 3 * step, stride), w, a3);
      }
      const q = rowOut + (<usize>ox << 2);
      emit_v128(q, a0, act, accumulate); emit_v128(q + 16, a1, act, accumulate);
      emit_v128(q + 32, a2, act, accumulate); emit_v128(q + 48, a3, act, accumulate);
    }
    for (; ox < outW; ox += 4) {
      let a0 = vb0, a1 = zero, a2 = zero, a3 = zero;
      const base = rowIn + (<usize>(ox * stride) << 2);
      let t: usize = 0;
      for (; t < tap4; t += 16) {
        a0 = madd_v128(load_px(base + <usize>load<i32>(tab + t), stride), v128.load32_splat(w0 + t), a0);
        a1 = madd_v128(load_px(base + <usize>load<i32>(tab + t, 4), stride), v128.load32_splat(w0 + t, 4), a1);
        a2 = madd_v128(load_px(base + <usize>load<i32>(tab + t, 8), stride), v128.load32_splat(w0 + t, 8), a2);
        a3 = madd_v128(load_px(base + <usize>load<i32>(tab + t, 12), stride), v128.load32_splat(w0 + t, 12), a3);
      }
      for (; t < tapBytes; t += 4) {
        a0 = madd_v128(load_px(base + <usize>load<i32>(tab + t), stride), v128.load32_splat(w0 + t), a0);
      }
      const y = f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
      const q = rowOut + (<usize>ox << 2);
      if (outW - ox >= 4) emit_v128(q, y, act, accumulate);
      else emit_partial(q, y, outW - ox, act, accumulate);
    }
  }
}

// Plain f32 path (scalar build, and strides > 2): one output, 4 output pixels per tap-table sweep, then single pixels.
function conv_scalar(inG: usize, tab: usize, taps: i32, stride: i32, rowPad: usize, outH: i32, outW: i32,
                     weight: usize, bias: usize, o: i32, out: usize, outIndex: usize, act: i32, accumulate: i32): void {
  const tapBytes = <usize>taps << 2;
  const w0 = weight + <usize>o * tapBytes;
  const o0 = out_plane(out, outIndex, o, <usize>(outH * outW) << 2);
  const b0 = bias_at(bias, o);
  const px = <usize>stride << 2; // input bytes between neighbouring output pixels
  for (let oy = 0; oy < outH; oy++) {
    const rowIn = inG + <usize>(oy * stride) * rowPad;
    const rowOut = o0 + (<usize>(oy * outW) << 2);
    let ox = 0;
    for (; ox + 4 <= outW; ox += 4) {
      let s0 = b0, s1 = b0, s2 = b0, s3 = b0;
      const base = rowIn + <usize>ox * px;
      for (let t: usize = 0; t < tapBytes; t += 4) {
        const p = base + <usize>load<i32>(tab + t), w = load<f32>(w0 + t);
        s0 += load<f32>(p) * w; s1 += load<f32>(p + px) * w;
        s2 += load<f32>(p + 2 * px) * w; s3 += load<f32>(p + 3 * px) * w;
      }
      const q = rowOut + (<usize>ox << 2);
      emit_f32(q, s0, act, accumulate); emit_f32(q + 4, s1, act, accumulate);
      emit_f32(q + 8, s2, act, accumulate); emit_f32(q + 12, s3, act, accumulate);
    }
    for (; ox < outW; ox++) {
      let s0 = b0;
      const base = rowIn + <usize>ox * px;
      for (let t: usize = 0; t < tapBytes; t += 4) s0 += load<f32>(base + <usize>load<i32>(tab + t)) * load<f32>(w0 + t);
      emit_f32(rowOut + (<usize>ox << 2), s0, act, accumulate);
    }
  }
}
