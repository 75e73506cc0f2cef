// Pointwise (1x1, stride 1) group convolution: the condensed LGC and the SFR.
// SIMD path: register tile of 4 output channels x 8 pixels, the shared micro-kernel ukernels/f32-gemm-4x8-wasmsimd.ts
// (every input vector is loaded once and reused for the 4 outputs, every weight splatted once for the 8 pixels). The 4 outputs' weights
// are first packed side by side (pack_quad), so the inner loop has two pointers and no per-output address. Pixels are processed in
// chunks so that one group's input slice of a chunk stays in L1 while all of the group's outputs sweep over it.
import { ACT_NONE, act_f32, act_v128, activate_inplace } from './activation';
import { f32_packquad4__wasmsimd } from './ukernels/f32-packquad4-wasmsimd';
import { f32_gemm_4x4__wasmsimd_splat } from './ukernels/f32-gemm-4x4-wasmsimd';
import { f32_gemm_4x8__wasmsimd_splat, W_PANEL } from './ukernels/f32-gemm-4x8-wasmsimd';

// Target bytes of one group's input slice per pixel chunk (half a typical 32 KiB L1D).
const CHUNK_BYTES: i32 = 16384;
// A group's input slice up to this size is streamed from L2 rather than chunked (half of a 2 MiB L2).
const L2_BYTES: i32 = 1 << 20;

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
 * With accumulate != 0 the activated result is added to the plane (repeated outIndex targets sum up); without it
 * the outIndex targets must be distinct (the model loader checks this).
 */
export function conv1x1_group(input: usize, cin: i32, hw: i32, weight: usize, bias: usize, cout: i32, groups: i32,
                              out: usize, outIndex: usize, outAct: i32, accumulate: i32): void {
  const cinG = cin / groups, coutG = cout / groups;
  const planeBytes = <usize>hw << 2;
  const quadBytes = (<usize>cinG + 1) << 6;
  // The tiles add without an activation: the (unused by converted models) accumulate + activation case takes the
  // plain path, as in conv2d_group.
  if (ASC_FEATURE_SIMD && quadBytes <= <usize>PANEL_BYTES && !(accumulate && outAct != ACT_NONE)) {
    const quads = (coutG + 3) >> 2;
    // All of a group's quads packed once when they fit, else each quad again for every pixel chunk.
    const whole = <u64>quads * <u64>quadBytes <= <u64>PANEL_BYTES;
    // Without a whole panel, one chunk while the group's input fits in L2: repacking a quad per chunk cost more
    // than streaming the input from L2 (ShuffleNetV2 116x14x14: 4 packs a quad).
    const chunk = whole || <u64>cinG * <u64>hw > <u64>(L2_BYTES >> 2) ? pixel_chunk(cinG, hw) : hw;
    // Called through a function reference, so the tile loop stays a function of its own (see conv2d_group).
    const quadFn = conv1x1_quad_any;
    for (let g = 0; g < groups; g++) {
      const inG = input + <usize>(g * cinG) * planeBytes;
      const og = g * coutG;
      if (whole) {
        for (let q = 0; q < quads; q++) pack_quad(weight, bias, cinG, og + 4 * q, min(4, coutG - 4 * q), panel + <usize>q * quadBytes);
      }
      for (let p0 = 0; p0 < hw; p0 += chunk) {
        const p1 = min(p0 + chunk, hw);
        for (let q = 0; q < quads; q++) {
          const n = min(4, coutG - 4 * q);
          let pan = panel;
          if (whole) pan += <usize>q * quadBytes;
          else pack_quad(weight, bias, cinG, og + 4 * q, n, panel);
          quadFn(inG, planeBytes, pan, pan + quadBytes, og + 4 * q, n, out, outIndex, outAct, accumulate, p0, p1);
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

// Weights of up to four outputs, packed so the inner loops read them at constant offsets from one pointer
// ("quad panel"): the 4 biases, then per input the 4 outputs' weights side by side; missing outputs get zeros.
// Each value is stored splatted (four equal lanes), so the tiles read it with a plain vector load: V8 turns
// v128.load32_splat into one broadcast load, but Cranelift into a scalar load, a move and a broadcast (two extra
// vector instructions per weight, and general registers it then lacked). (With four separate row pointers,
// Cranelift kept too few of the loop's values in registers.)
const PANEL_BYTES: i32 = 65536;
const panel: usize = memory.data(PANEL_BYTES, 16);

function pack_quad(weight: usize, bias: usize, cinG: i32, o: i32, n: i32, dst: usize): void {
  if (n == 4) { f32_packquad4__wasmsimd(weight, bias, cinG, o, dst, 64, 0); return; }
  const rowBytes = <usize>cinG << 2;
  for (let j = 0; j < 4; j++) {
    let d = dst + (<usize>j << 4);
    const row = weight + <usize>(o + j) * rowBytes;
    v128.store(d, f32x4.splat(j < n && bias ? load<f32>(bias + (<usize>(o + j) << 2)) : 0));
    for (let i: usize = 0; i < rowBytes; i += 4) { d += 64; v128.store(d, f32x4.splat(j < n ? load<f32>(row + i) : 0)); }
  }
}

// One function for both modes (accumulate is read only where a tile is written, not in the multiply-add loop): a
// store and an add copy cost 1.1 KB of the 64 KiB command.
function conv1x1_quad_any(inG: usize, planeBytes: usize, pan: usize, panEnd: usize, o: i32, n: i32,
                          out: usize, outIndex: usize, act: i32, accumulate: i32, p0: i32, p1: i32): void {
  conv1x1_quad(inG, planeBytes, pan, panEnd, o, n, out, outIndex, accumulate ? ACT_NONE : act, accumulate, p0, p1);
}

// Outputs o..o+n-1 (n = 1..4, one quad panel pan..panEnd) over pixels [p0, p1): register tile of 4 outputs x 8 pixels.
@inline function conv1x1_quad(inG: usize, planeBytes: usize, pan: usize, panEnd: usize, o: i32, n: i32,
                      out: usize, outIndex: usize, act: i32, accumulate: i32, p0: i32, p1: i32): void {
  const o0 = out_plane(out, outIndex, o, planeBytes);
  let o1 = o0, o2 = o0, o3 = o0;
  if (n > 1) o1 = out_plane(out, outIndex, o + 1, planeBytes);
  if (n > 2) o2 = out_plane(out, outIndex, o + 2, planeBytes);
  if (n > 3) o3 = out_plane(out, outIndex, o + 3, planeBytes);
  let p = p0;
  for (; p + 8 <= p1; p += 8) {
    const b0 = v128.load(pan), b1 = v128.load(pan, 16), b2 = v128.load(pan, 32), b3 = v128.load(pan, 48);
    const q = <usize>p << 2;
    f32_gemm_4x8__wasmsimd_splat(inG + q, planeBytes, pan + 64, panEnd, 64, 16, W_PANEL,
      b0, b0, b1, b1, b2, b2, b3, b3, o0 + q, o1 + q, o2 + q, o3 + q, n, accumulate);
  }
  for (; p + 4 <= p1; p += 4) {
    const q = <usize>p << 2;
    f32_gemm_4x4__wasmsimd_splat(inG + q, planeBytes, pan + 64, panEnd, 64, 16, W_PANEL,
      v128.load(pan), v128.load(pan, 16), v128.load(pan, 32), v128.load(pan, 48), o0 + q, o1 + q, o2 + q, o3 + q, n, accumulate);
  }
  // Last 1-3 pixels: scalar, so no vector ever reads past the end of a plane.
  for (; p < p1; p++) {
    let s0 = load<f32>(pan), s1 = load<f32>(pan, 16), s2 = load<f32>(pan, 32), s3 = load<f32>(pan, 48);
    let xp = inG + (<usize>p << 2);
    for (let wp = pan + 64; wp < panEnd; wp += 64) {
      const x = load<f32>(xp);
      s0 += x * load<f32>(wp); s1 += x * load<f32>(wp, 16);
      s2 += x * load<f32>(wp, 32); s3 += x * load<f32>(wp, 48);
      xp += planeBytes;
    }
    const q = <usize>p << 2;
    const a = accumulate ? act : ACT_NONE;
    emit_f32(o0 + q, s0, a, accumulate);
    if (n > 1) emit_f32(o1 + q, s1, a, accumulate);
    if (n > 2) emit_f32(o2 + q, s2, a, accumulate);
    if (n > 3) emit_f32(o3 + q, s3, a, accumulate);
  }
  // Stored (not accumulated) outputs are activated in place while they are still in L1; their planes are distinct.
  if (!accumulate && act != ACT_NONE) {
    const q = <usize>p0 << 2;
    activate_inplace(o0 + q, p1 - p0, act);
    if (n > 1) activate_inplace(o1 + q, p1 - p0, act);
    if (n > 2) activate_inplace(o2 + q, p1 - p0, act);
    if (n > 3) activate_inplace(o3 + q, p1 - p0, act);
  }
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
