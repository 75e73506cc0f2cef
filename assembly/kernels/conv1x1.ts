// Pointwise (1x1, stride 1) group convolution: the condensed LGC and the SFR.
// SIMD path: register tile of 4 output channels x 8 pixels (8 f32x4 accumulators); every input vector is loaded once
// and reused for the 4 outputs, every weight is splatted once and reused for the 8 pixels. Pixels are processed in
// chunks so that one group's input slice of a chunk stays in L1 while all of the group's outputs sweep over it.
import { act_f32, act_v128, madd_v128 } from './activation';

// Target bytes of one group's input slice per pixel chunk (half a typical 32 KiB L1D).
const CHUNK_BYTES: i32 = 16384;

/** Pixel chunk length: a multiple of 8 sized to CHUNK_BYTES, at least 64. */
@inline export function pixel_chunk(cinPerGroup: i32, hw: i32): i32 {
  let chunk = (CHUNK_BYTES / (cinPerGroup * 4)) & ~7;
  if (chunk < 64) chunk = 64;
  return chunk > hw ? hw : chunk;
}

/** Address of output plane o (outIndex remaps it). */
@inline export function out_plane(out: usize, outIndex: usize, o: i32, planeBytes: usize): usize {
  const t = outIndex ? load<i32>(outIndex + (<usize>o << 2)) : o;
  return out + <usize>t * planeBytes;
}

/** Writes (or adds) one activated vector. */
@inline export function emit_v128(p: usize, y: v128, act: i32, accumulate: i32): void {
  const v = act_v128(y, act);
  v128.store(p, accumulate ? f32x4.add(v128.load(p), v) : v);
}

/** Writes (or adds) one activated scalar. */
@inline export function emit_f32(p: usize, y: f32, act: i32, accumulate: i32): void {
  const v = act_f32(y, act);
  store<f32>(p, accumulate ? load<f32>(p) + v : v);
}

/**
 * out[outIndex ? outIndex[o] : o] (=|+=) outAct(bias[o] + sum_i weight[o][i] * input[g*cin/groups + i]).
 * input: cin planes of hw floats; weight f32[cout][cin/groups]; bias f32[cout] or 0; outIndex i32[cout] or 0.
 * With accumulate != 0 the activated result is added to the plane (repeated outIndex targets sum up).
 */
export function conv1x1_group(input: usize, cin: i32, hw: i32, weight: usize, bias: usize, cout: i32, groups: i32,
                              out: usize, outIndex: usize, outAct: i32, accumulate: i32): void {
  const cinG = cin / groups, coutG = cout / groups;
  const planeBytes = <usize>hw << 2;
  if (ASC_FEATURE_SIMD) {
    const chunk = pixel_chunk(cinG, hw);
    for (let g = 0; g < groups; g++) {
      const inG = input + <usize>(g * cinG) * planeBytes;
      for (let p0 = 0; p0 < hw; p0 += chunk) {
        const p1 = min(p0 + chunk, hw);
        let ol = 0;
        for (; ol + 4 <= coutG; ol += 4) {
          conv1x1_4oc(inG, cinG, planeBytes, weight, bias, g * coutG + ol, out, outIndex, outAct, accumulate, p0, p1);
        }
        for (; ol < coutG; ol++) {
          conv1x1_1oc(inG, cinG, planeBytes, weight, bias, g * coutG + ol, out, outIndex, outAct, accumulate, p0, p1);
        }
      }
    }
  } else {
    for (let o = 0; o < cout; o++) {
      const g = o / coutG;
      conv1x1_scalar(input + <usize>(g * cinG) * planeBytes, cinG, hw, weight, bias, o, out, outIndex, outAct, accumulate);
    }
  }
}

// Four outputs o..o+3 over pixels [p0, p1).
function conv1x1_4oc(inG: usize, cinG: i32, planeBytes: usize, weight: usize, bias: usize, o: i32,
                     out: usize, outIndex: usize, act: i32, accumulate: i32, p0: i32, p1: i32): void {
  const rowBytes = <usize>cinG << 2;
  const w0 = weight + <usize>o * rowBytes, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes;
  const b0: f32 = bias ? load<f32>(bias + (<usize>o << 2)) : 0;
  const b1: f32 = bias ? load<f32>(bias + (<usize>o << 2), 4) : 0;
  const b2: f32 = bias ? load<f32>(bias + (<usize>o << 2), 8) : 0;
  const b3: f32 = bias ? load<f32>(bias + (<usize>o << 2), 12) : 0;
  const vb0 = f32x4.splat(b0), vb1 = f32x4.splat(b1), vb2 = f32x4.splat(b2), vb3 = f32x4.splat(b3);
  const o0 = out_plane(out, outIndex, o, planeBytes), o1 = out_plane(out, outIndex, o + 1, planeBytes);
  const o2 = out_plane(out, outIndex, o + 2, planeBytes), o3 = out_plane(out, outIndex, o + 3, planeBytes);
  let p = p0;
  for (; p + 8 <= p1; p += 8) {
    let a00 = vb0, a01 = vb0, a10 = vb1, a11 = vb1, a20 = vb2, a21 = vb2, a30 = vb3, a31 = vb3;
    let xp = inG + (<usize>p << 2);
    for (let i: usize = 0; i < rowBytes; i += 4) {
      const x0 = v128.load(xp), x1 = v128.load(xp, 16);
      let w = v128.load32_splat(w0 + i);
      a00 = madd_v128(x0, w, a00); a01 = madd_v128(x1, w, a01);
      w = v128.load32_splat(w1 + i);
      a10 = madd_v128(x0, w, a10); a11 = madd_v128(x1, w, a11);
      w = v128.load32_splat(w2 + i);
      a20 = madd_v128(x0, w, a20); a21 = madd_v128(x1, w, a21);
      w = v128.load32_splat(w3 + i);
      a30 = madd_v128(x0, w, a30); a31 = madd_v128(x1, w, a31);
      xp += planeBytes;
    }
    const q = <usize>p << 2;
    // Sequential read-modify-write per plane, so repeated outIndex targets accumulate correctly.
    emit_v128(o0 + q, a00, act, accumulate); emit_v128(o0 + q + 16, a01, act, accumulate);
    emit_v128(o1 + q, a10, act, accumulate); emit_v128(o1 + q + 16, a11, act, accumulate);
    emit_v128(o2 + q, a20, act, accumulate); emit_v128(o2 + q + 16, a21, act, accumulate);
    emit_v128(o3 + q, a30, act, accumulate); emit_v128(o3 + q + 16, a31, act, accumulate);
  }
  for (; p + 4 <= p1; p += 4) {
    let a0 = vb0, a1 = vb1, a2 = vb2, a3 = vb3;
    let xp = inG + (<usize>p << 2);
    for (let i: usize = 0; i < rowBytes; i += 4) {
      const x = v128.load(xp);
      a0 = madd_v128(x, v128.load32_splat(w0 + i), a0);
      a1 = madd_v128(x, v128.load32_splat(w1 + i), a1);
      a2 = madd_v128(x, v128.load32_splat(w2 + i), a2);
      a3 = madd_v128(x, v128.load32_splat(w3 + i), a3);
      xp += planeBytes;
    }
    const q = <usize>p << 2;
    emit_v128(o0 + q, a0, act, accumulate); emit_v128(o1 + q, a1, act, accumulate);
    emit_v128(o2 + q, a2, act, accumulate); emit_v128(o3 + q, a3, act, accumulate);
  }
  // Last 1-3 pixels: scalar, so no vector ever reads past the end of a plane.
  for (; p < p1; p++) {
    let s0 = b0, s1 = b1, s2 = b2, s3 = b3;
    let xp = inG + (<usize>p << 2);
    for (let i: usize = 0; i < rowBytes; i += 4) {
      const x = load<f32>(xp);
      s0 += x * load<f32>(w0 + i); s1 += x * load<f32>(w1 + i);
      s2 += x * load<f32>(w2 + i); s3 += x * load<f32>(w3 + i);
      xp += planeBytes;
    }
    const q = <usize>p << 2;
    emit_f32(o0 + q, s0, act, accumulate); emit_f32(o1 + q, s1, act, accumulate);
    emit_f32(o2 + q, s2, act, accumulate); emit_f32(o3 + q, s3, act, accumulate);
  }
}

// One output o over pixels [p0, p1): 16-pixel tile (4 accumulators).
function conv1x1_1oc(inG: usize, cinG: i32, planeBytes: usize, weight: usize, bias: usize, o: i32,
                     out: usize, outIndex: usize, act: i32, accumulate: i32, p0: i32, p1: i32): void {
  const rowBytes = <usize>cinG << 2;
  const w0 = weight + <usize>o * rowBytes;
  const b0: f32 = bias ? load<f32>(bias + (<usize>o << 2)) : 0;
  const vb0 = f32x4.splat(b0);
  const o0 = out_plane(out, outIndex, o, planeBytes);
  let p = p0;
  for (; p + 16 <= p1; p += 16) {
    let a0 = vb0, a1 = vb0, a2 = vb0, a3 = vb0;
    let xp = inG + (<usize>p << 2);
    for (let i: usize = 0; i < rowBytes; i += 4) {
      const w = v128.load32_splat(w0 + i);
      a0 = madd_v128(v128.load(xp), w, a0); a1 = madd_v128(v128.load(xp, 16), w, a1);
      a2 = madd_v128(v128.load(xp, 32), w, a2); a3 = madd_v128(v128.load(xp, 48), w, a3);
      xp += planeBytes;
    }
    const q = o0 + (<usize>p << 2);
    emit_v128(q, a0, act, accumulate); emit_v128(q + 16, a1, act, accumulate);
    emit_v128(q + 32, a2, act, accumulate); emit_v128(q + 48, a3, act, accumulate);
  }
  for (; p + 4 <= p1; p += 4) {
    let a0 = vb0;
    let xp = inG + (<usize>p << 2);
    for (let i: usize = 0; i < rowBytes; i += 4) {
      a0 = madd_v128(v128.load(xp), v128.load32_splat(w0 + i), a0);
      xp += planeBytes;
    }
    emit_v128(o0 + (<usize>p << 2), a0, act, accumulate);
  }
  one_output_f32(inG, planeBytes, rowBytes, w0, b0, o0, act, accumulate, p, p1);
}

// Plain f32 path for the scalar build: one output, 4-pixel register tile.
function conv1x1_scalar(inG: usize, cinG: i32, hw: i32, weight: usize, bias: usize, o: i32,
                        out: usize, outIndex: usize, act: i32, accumulate: i32): void {
  const planeBytes = <usize>hw << 2;
  const rowBytes = <usize>cinG << 2;
  const w0 = weight + <usize>o * rowBytes;
  const b0: f32 = bias ? load<f32>(bias + (<usize>o << 2)) : 0;
  const o0 = out_plane(out, outIndex, o, planeBytes);
  let p = 0;
  for (; p + 4 <= hw; p += 4) {
    let s0 = b0, s1 = b0, s2 = b0, s3 = b0;
    let xp = inG + (<usize>p << 2);
    for (let i: usize = 0; i < rowBytes; i += 4) {
      const w = load<f32>(w0 + i);
      s0 += load<f32>(xp) * w; s1 += load<f32>(xp, 4) * w;
      s2 += load<f32>(xp, 8) * w; s3 += load<f32>(xp, 12) * w;
      xp += planeBytes;
    }
    const q = o0 + (<usize>p << 2);
    emit_f32(q, s0, act, accumulate); emit_f32(q + 4, s1, act, accumulate);
    emit_f32(q + 8, s2, act, accumulate); emit_f32(q + 12, s3, act, accumulate);
  }
  one_output_f32(inG, planeBytes, rowBytes, w0, b0, o0, act, accumulate, p, hw);
}

// One output over pixels [p, p1), plain f32: the pixel tails of both builds.
@inline function one_output_f32(inG: usize, planeBytes: usize, rowBytes: usize, w0: usize, b0: f32, o0: usize,
                                act: i32, accumulate: i32, p: i32, p1: i32): void {
  for (; p < p1; p++) {
    let s0 = b0;
    let xp = inG + (<usize>p << 2);
    for (let i: usize = 0; i < rowBytes; i += 4) {
      s0 += load<f32>(xp) * load<f32>(w0 + i);
      xp += planeBytes;
    }
    emit_f32(o0 + (<usize>p << 2), s0, act, accumulate);
  }
}
