// k x k direct group convolution, any stride and padding (stem 3x3 s2/s1, the 3x3 group conv, generic 1x1..7x7).
//
// The input is first copied into a zero-padded scratch image (cin planes of (h+2pad) x (w+2pad) floats plus a small
// zeroed slack), so the inner loops need no bounds checks: every tap of every output pixel is inside the padded plane,
// and the SIMD tail vectors, which may compute up to 3 pixels past the row end, only read inside the scratch (padded rows, the next plane or the slack).
// Those extra lanes are never stored. After the slack the scratch holds a tap table (one i32 byte offset per
// (input, ky, kx) of a group), which flattens the tap loops into one loop like conv1x1's loop over inputs; the SIMD
// paths store each tap's weights of the current outputs next to its offset there (a panel, pack_taps).
// SIMD paths (stride 1 and 2) use a register tile of 4 output channels x 8 output pixels, the micro-kernel
// ukernels/f32-conv-4x8-taps-wasmsimd.ts: each input vector is reused for 4 outputs, each splatted weight for 8
// pixels. Stride > 2 and the scalar build use a plain f32 loop over the same padded image.
import { ACT_NONE, activate_inplace, madd_v128 } from './activation';
import { f32_conv_4x4_taps__wasmsimd_splat } from './ukernels/f32-conv-4x4-taps-wasmsimd';
import { f32_conv_4x8_taps__wasmsimd_splat, load_px, TAP_RECORD_BYTES } from './ukernels/f32-conv-4x8-taps-wasmsimd';
import { conv1x1_group, out_plane, emit_f32 } from './conv1x1';
import { copy_f32, zero_f32 } from './memory';
import { f32_packquad4__wasmsimd } from './ukernels/f32-packquad4-wasmsimd';

// Zeroed bytes after the last padded plane: the widest over-read is a stride-2 tail vector, 13 floats past a row end.
const SLACK_BYTES: i64 = 128;
// Bytes per tap of a quad panel: the tap's byte offset (in a 16-byte slot) and the 4 outputs' weights, splatted.
const TAP_BYTES: i64 = <i64>TAP_RECORD_BYTES;

/** Pointwise (1x1, stride 1, no padding): conv1x1_group's case, a matrix product over planes without a padded copy. */
@inline export function conv2d_is_pointwise(kernel: i32, stride: i32, pad: i32): bool {
  return kernel == 1 && stride == 1 && pad == 0;
}

/**
 * Scratch bytes conv2d_group needs for this shape (padded input, slack, tap table); 0 when none is needed (1x1, stride 1, pad 0), -1 when the size
 * does not fit in an i32 (the caller must reject such a layer).
 */
export function conv2d_scratch_bytes(cin: i32, h: i32, w: i32, kernel: i32, stride: i32, pad: i32): i32 {
  if (conv2d_is_pointwise(kernel, stride, pad)) return 0;
  // + 16: aligning the panel; + 64: its four splatted biases.
  const bytes = <i64>cin * <i64>(h + 2 * pad) * <i64>(w + 2 * pad) * 4 + SLACK_BYTES + 16 + 64 + <i64>cin * <i64>(kernel * kernel) * TAP_BYTES;
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
  if (conv2d_is_pointwise(kernel, stride, pad)) {
    conv1x1_group(input, cin, h * w, weight, bias, cout, groups, out, outIndex, outAct, accumulate);
    return;
  }
  const Hp = h + 2 * pad, Wp = w + 2 * pad;
  const cinG = cin / groups, coutG = cout / groups;
  const planePad = <usize>(Hp * Wp) << 2, rowPad = <usize>Wp << 2;
  zero_f32(scratch + <usize>cin * planePad, <i32>SLACK_BYTES >> 2);
  // After the slack: the panel (SIMD) or the tap table (scalar).
  const taps = cinG * kernel * kernel;
  const tab = (scratch + <usize>cin * planePad + <usize>SLACK_BYTES + 15) & ~<usize>15;
  // The SIMD workers carry no activation for added tiles: the (unused by converted models) accumulate + activation
  // case takes the plain path.
  const simd = ASC_FEATURE_SIMD && stride <= 2 && !(accumulate && outAct != ACT_NONE);
  if (!simd) {
    // Tap table: byte offset of tap (i, ky, kx) from a window's top-left in input plane i.
    let n = 0;
    for (let i = 0; i < cinG; i++) {
      for (let ky = 0; ky < kernel; ky++) {
        for (let kx = 0; kx < kernel; kx++) {
          store<i32>(tab + (<usize>n << 2), <i32>(<usize>i * planePad + <usize>ky * rowPad + (<usize>kx << 2)));
          n++;
        }
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
    if (simd) {
      // Called through function references: a worker inlined into the (large) caller had its accumulators spilled
      // to the stack by Cranelift's register allocator; as functions of their own they stay in registers.
      const quadFn = stride == 1 ? conv_4oc_s1 : conv_4oc_s2;
      const oneFn = stride == 1 ? conv_1oc_s1 : conv_1oc_s2;
      for (; ol + 4 <= coutG; ol += 4) {
        const panEnd = pack_taps(weight, bias, g * coutG + ol, 4, cinG, kernel, planePad, rowPad, tab);
        quadFn(inG, tab, panEnd, rowPad, outH, outW, g * coutG + ol, out, outIndex, outAct, accumulate);
      }
      for (; ol < coutG; ol++) {
        const panEnd = pack_taps(weight, bias, g * coutG + ol, 1, cinG, kernel, planePad, rowPad, tab);
        oneFn(inG, tab, panEnd, rowPad, outH, outW, g * coutG + ol, out, outIndex, outAct, accumulate);
      }
    } else {
      for (; ol < coutG; ol++) {
        conv_scalar(inG, tab, taps, stride, rowPad, outH, outW, weight, bias, g * coutG + ol, out, outIndex, outAct, accumulate);
      }
    }
  }
}

// Packs n (4 or 1) outputs' biases and, per tap (i, ky, kx), the tap's byte offset from a window's top-left (in a
// 16-byte slot) followed by the n weights, so the inner loops walk one pointer and read everything at constant
// offsets from it. (Cranelift recomputed the separate weight, tap-table and output addresses inside the loops and ran
// out of registers.) Biases and weights are stored splatted, one vector each, for the reason given at conv1x1's
// panel. Weights first (4 outputs: the vectorised quad packer; per weight, this packing was 4-5% of cdnv2-c's
// instructions), then the offset slots. Returns the panel's end.
function pack_taps(weight: usize, bias: usize, o: i32, n: i32, cinG: i32, kernel: i32, planePad: usize, rowPad: usize,
                   dst: usize): usize {
  const taps = cinG * kernel * kernel;
  const rec = (<usize>n + 1) << 4;
  if (n == 4) f32_packquad4__wasmsimd(weight, bias, taps, o, dst, rec, 16);
  else {
    v128.store(dst, f32x4.splat(bias_at(bias, o)));
    const row = weight + <usize>o * (<usize>taps << 2), end = row + (<usize>taps << 2);
    let d = dst + 32;
    for (let w = row; w < end; w += 4) { v128.store(d, v128.load32_splat(w)); d += 32; }
  }
  let d = dst + (<usize>n << 4);
  for (let i = 0; i < cinG; i++) {
    for (let ky = 0; ky < kernel; ky++) {
      let off = <i32>(<usize>i * planePad + <usize>ky * rowPad);
      for (let kx = 0; kx < kernel; kx++) { store<i32>(d, off); d += rec; off += 4; }
    }
  }
  return d;
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

// Lanes of partial row-tail vectors wait here until the tile's vectors are all written; then emit_tail copies them
// with no vector live across its call (Cranelift keeps none in a register across a call).
const tailBuf: usize = memory.data(64, 16);

/** Writes (stores or adds) one tile vector of the SIMD workers, which carry no activation (see activate_plane). */
@inline function emit_tile(p: usize, y: v128, accumulate: i32): void {
  v128.store(p, accumulate ? f32x4.add(v128.load(p), y) : y);
}

// Stores (or adds) the n (1..3) floats at src: the partial tail of an output row.
function emit_tail(p: usize, src: usize, n: i32, accumulate: i32): void {
  for (let i: usize = 0; i < <usize>n << 2; i += 4) {
    const v = load<f32>(src + i);
    store<f32>(p + i, accumulate ? load<f32>(p + i) + v : v);
  }
}

@inline function bias_at(bias: usize, o: i32): f32 {
  return bias ? load<f32>(bias + (<usize>o << 2)) : 0;
}

// Stored (not accumulated) outputs are activated afterwards in place, one plane at a time.
@inline function activate_plane(p: usize, n: i32, act: i32, accumulate: i32): void {
  if (!accumulate && act != ACT_NONE) activate_inplace(p, n, act);
}

// Stride-specialised copies: inlining the workers with a constant stride folds load_px and the pixel step.
export function conv_4oc_s1(inG: usize, pan: usize, panEnd: usize, rowPad: usize, outH: i32, outW: i32,
                     o: i32, out: usize, outIndex: usize, act: i32, accumulate: i32): void {
  conv_simd_4oc(inG, pan, panEnd, 1, rowPad, outH, outW, o, out, outIndex, act, accumulate);
}
function conv_4oc_s2(inG: usize, pan: usize, panEnd: usize, rowPad: usize, outH: i32, outW: i32,
                     o: i32, out: usize, outIndex: usize, act: i32, accumulate: i32): void {
  conv_simd_4oc(inG, pan, panEnd, 2, rowPad, outH, outW, o, out, outIndex, act, accumulate);
}
function conv_1oc_s1(inG: usize, pan: usize, panEnd: usize, rowPad: usize, outH: i32, outW: i32,
                     o: i32, out: usize, outIndex: usize, act: i32, accumulate: i32): void {
  conv_simd_1oc(inG, pan, panEnd, 1, rowPad, outH, outW, o, out, outIndex, act, accumulate);
}
function conv_1oc_s2(inG: usize, pan: usize, panEnd: usize, rowPad: usize, outH: i32, outW: i32,
                     o: i32, out: usize, outIndex: usize, act: i32, accumulate: i32): void {
  conv_simd_1oc(inG, pan, panEnd, 2, rowPad, outH, outW, o, out, outIndex, act, accumulate);
}

// Any kernel size, stride 1 or 2, four outputs o..o+3 with a quad panel (pack_taps). One tap per inner iteration.
// Register tile 4 outputs x 8 pixels, also for a row tail of 5-7 pixels (the extra lanes read inside the padded
// scratch and are not stored); a tail of 1-4 pixels takes a 4-pixel tile.
// (A fully unrolled 3x3 body measured slower in V8: its larger loop body allocates registers worse.)
@inline function conv_simd_4oc(inG: usize, pan: usize, panEnd: usize, stride: i32, rowPad: usize, outH: i32, outW: i32,
                       o: i32, out: usize, outIndex: usize, act: i32, accumulate: i32): void {
  const planeBytes = <usize>(outH * outW) << 2;
  const o0 = out_plane(out, outIndex, o, planeBytes), o1 = out_plane(out, outIndex, o + 1, planeBytes);
  const o2 = out_plane(out, outIndex, o + 2, planeBytes), o3 = out_plane(out, outIndex, o + 3, planeBytes);
  const step = <usize>stride << 4; // input bytes spanned by 4 output pixels
  let rowIn = inG, rowOut: usize = 0;
  for (let oy = 0; oy < outH; oy++) {
    let base = rowIn, q = rowOut, ox = 0;
    for (; ox + 4 < outW; ox += 8) {
      const n = outW - ox - 4;
      f32_conv_4x8_taps__wasmsimd_splat(base, pan + 64, panEnd, stride,
        v128.load(pan), v128.load(pan, 16), v128.load(pan, 32), v128.load(pan, 48),
        o0 + q, o1 + q, o2 + q, o3 + q, accumulate, n >= 4, tailBuf);
      if (n < 4) {
        emit_tail(o0 + q + 16, tailBuf, n, accumulate); emit_tail(o1 + q + 16, tailBuf + 16, n, accumulate);
        emit_tail(o2 + q + 16, tailBuf + 32, n, accumulate); emit_tail(o3 + q + 16, tailBuf + 48, n, accumulate);
      }
      base += step << 1; q += 32;
    }
    if (ox < outW) {
      const n = outW - ox;
      f32_conv_4x4_taps__wasmsimd_splat(base, pan + 64, panEnd, stride,
        v128.load(pan), v128.load(pan, 16), v128.load(pan, 32), v128.load(pan, 48),
        o0 + q, o1 + q, o2 + q, o3 + q, accumulate, n >= 4, tailBuf);
      if (n < 4) {
        emit_tail(o0 + q, tailBuf, n, accumulate); emit_tail(o1 + q, tailBuf + 16, n, accumulate);
        emit_tail(o2 + q, tailBuf + 32, n, accumulate); emit_tail(o3 + q, tailBuf + 48, n, accumulate);
      }
    }
    rowIn += <usize>stride * rowPad; rowOut += <usize>outW << 2;
  }
  activate_plane(o0, outH * outW, act, accumulate); activate_plane(o1, outH * outW, act, accumulate);
  activate_plane(o2, outH * outW, act, accumulate); activate_plane(o3, outH * outW, act, accumulate);
}

// Any kernel size, stride 1 or 2, one output o (the group remainder, e.g. one output per group), panel records of
// 32 bytes (tap offset, splatted weight). 16-pixel tiles; the 4-pixel row tail splits the taps over four accumulators so it is
// not bound by one dependency chain.
@inline function conv_simd_1oc(inG: usize, pan: usize, panEnd: usize, stride: i32, rowPad: usize, outH: i32, outW: i32,
                       o: i32, out: usize, outIndex: usize, act: i32, accumulate: i32): void {
  const o0 = out_plane(out, outIndex, o, <usize>(outH * outW) << 2);
  const vb0 = v128.load(pan), zero = f32x4.splat(0);
  const step = <usize>stride << 4;
  const taps = (panEnd - pan - 16) >> 5;
  const end4 = pan + 16 + ((taps & ~<usize>3) << 5); // taps handled four at a time in the tail tile
  let rowIn = inG, rowOut = o0;
  for (let oy = 0; oy < outH; oy++) {
    let base = rowIn, q = rowOut, ox = 0;
    for (; ox + 16 <= outW; ox += 16) {
      let a0 = vb0, a1 = vb0, a2 = vb0, a3 = vb0;
      let r = pan + 16;
      do { // bottom-tested (see f32_gemm_4x8__wasmsimd_splat); a panel has at least one tap
        const p = base + <usize>load<i32>(r), w = v128.load(r, 16);
        a0 = madd_v128(load_px(p, stride), w, a0);
        a1 = madd_v128(load_px(p + step, stride), w, a1);
        a2 = madd_v128(load_px(p + 2 * step, stride), w, a2);
        a3 = madd_v128(load_px(p + 3 * step, stride), w, a3);
        r += 32;
      } while (r < panEnd);
      emit_tile(q, a0, accumulate); emit_tile(q + 16, a1, accumulate);
      emit_tile(q + 32, a2, accumulate); emit_tile(q + 48, a3, accumulate);
      base += step << 2; q += 64;
    }
    for (; ox < outW; ox += 4) {
      let a0 = vb0, a1 = zero, a2 = zero, a3 = zero;
      let r = pan + 16;
      for (; r < end4; r += 128) {
        a0 = madd_v128(load_px(base + <usize>load<i32>(r), stride), v128.load(r, 16), a0);
        a1 = madd_v128(load_px(base + <usize>load<i32>(r, 32), stride), v128.load(r, 48), a1);
        a2 = madd_v128(load_px(base + <usize>load<i32>(r, 64), stride), v128.load(r, 80), a2);
        a3 = madd_v128(load_px(base + <usize>load<i32>(r, 96), stride), v128.load(r, 112), a3);
      }
      for (; r < panEnd; r += 32) {
        a0 = madd_v128(load_px(base + <usize>load<i32>(r), stride), v128.load(r, 16), a0);
      }
      const y = f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
      const n = min(4, outW - ox);
      if (n >= 4) emit_tile(q, y, accumulate);
      else { v128.store(tailBuf, y); emit_tail(q, tailBuf, n, accumulate); }
      base += step; q += 16;
    }
    rowIn += <usize>stride * rowPad; rowOut += <usize>outW << 2;
  }
  activate_plane(o0, outH * outW, act, accumulate);
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
