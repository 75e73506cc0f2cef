// Training-mode batch normalisation fused with the activation that follows it, over x[P, C] (rows = pixels of
// the batch, NHWC). Statistics are the batch's (biased variance); sums run in f32 vectors over blocks of rows and
// are carried in f64 across blocks, so 50k-row batches lose no precision.
import { ACT_HARDSWISH, ACT_RELU, act_f32, act_v128 } from '../kernels/activation';

const BLOCK: i32 = 64;

// The kernels below are the phases of a training-mode batch norm over rows that two threads can share: each
// reduction runs over a range of rows into its own f64 totals (the caller gives each part its own), the caller
// combines the two parts, and the elementwise passes split rows too. The caller always cuts the rows at the same
// place, so the sums are the same whether one thread runs both parts or two threads run one each. Memory-bound
// passes split by rows, not channels: a channel split would make both threads stream every row.

/** f32 floats of scratch bn_sums / bn_grad_sums need per part (block partials), for C channels. */
export function bn_part_floats(C: i32): i32 {
  return (C + 3) & ~3;
}

/**
 * tot[c] (f64) = sum over rows [r0, r1) of x[r][c] (mode 0) or (x[r][c] - mean[c])^2 (mode 1), summed in f32
 * vectors over blocks of rows and carried in f64 across blocks. part: f32[bn_part_floats(C)] scratch.
 */
export function bn_sums(x: usize, C: i32, mean: usize, mode: i32, tot: usize, part: usize, r0: i32, r1: i32): void {
  memory.fill(tot, 0, <usize>C << 3);
  for (let b0 = r0; b0 < r1; b0 += BLOCK) {
    const b1 = min(b0 + BLOCK, r1);
    memory.fill(part, 0, <usize>C << 2);
    for (let r = b0; r < b1; r++) {
      const row = x + <usize>(r * C) * 4;
      let c = 0;
      if (ASC_FEATURE_SIMD) {
        for (; c + 4 <= C; c += 4) {
          const q = <usize>c << 2;
          let v = v128.load(row + q);
          if (mode) { v = f32x4.sub(v, v128.load(mean + q)); v = f32x4.mul(v, v); }
          v128.store(part + q, f32x4.add(v128.load(part + q), v));
        }
      }
      for (; c < C; c++) {
        const q = <usize>c << 2;
        let v = load<f32>(row + q);
        if (mode) { v -= load<f32>(mean + q); v *= v; }
        store<f32>(part + q, load<f32>(part + q) + v);
      }
    }
    for (let c = 0; c < C; c++) store<f64>(tot + (<usize>c << 3), load<f64>(tot + (<usize>c << 3)) + <f64>load<f32>(part + (<usize>c << 2)));
  }
}

/** mean[c] = (totA[c] + totB[c]) / P: the batch mean from the two parts' sums. */
export function bn_mean(totA: usize, totB: usize, P: i32, C: i32, mean: usize): void {
  for (let c = 0; c < C; c++) {
    const q = <usize>c << 3;
    store<f32>(mean + (<usize>c << 2), <f32>((load<f64>(totA + q) + load<f64>(totB + q)) / <f64>P));
  }
}

/**
 * From the two parts' sums of squared deviations: variance (biased), rstd = 1/sqrt(variance + eps), and the
 * affine form of the normalisation, scale = gamma*rstd, shift = beta - mean*scale.
 */
export function bn_scale_shift(totA: usize, totB: usize, P: i32, C: i32, gamma: usize, beta: usize, eps: f32, mean: usize,
                               variance: usize, rstd: usize, scale: usize, shift: usize): void {
  for (let c = 0; c < C; c++) {
    const q = <usize>c << 2;
    const v = <f32>((load<f64>(totA + (<usize>c << 3)) + load<f64>(totB + (<usize>c << 3))) / <f64>P);
    const rs: f32 = 1 / Mathf.sqrt(v + eps);
    store<f32>(variance + q, v);
    store<f32>(rstd + q, rs);
    const s = load<f32>(gamma + q) * rs;
    store<f32>(scale + q, s);
    store<f32>(shift + q, load<f32>(beta + q) - load<f32>(mean + q) * s);
  }
}

/** scale = gamma*rstd, shift = beta - mean*scale (the backward pass recomputes z = x*scale + shift). */
export function bn_affine(gamma: usize, beta: usize, mean: usize, rstd: usize, C: i32, scale: usize, shift: usize): void {
  for (let c = 0; c < C; c++) {
    const q = <usize>c << 2;
    const s = load<f32>(gamma + q) * load<f32>(rstd + q);
    store<f32>(scale + q, s);
    store<f32>(shift + q, load<f32>(beta + q) - load<f32>(mean + q) * s);
  }
}

// Derivative of the activation at z, TF.js conventions: relu' = [z > 0]; hardswish' = 0 for z <= -3,
// (2z + 3)/6 for -3 < z <= 3, 1 above.
@inline function dact_f32(z: f32, act: i32): f32 {
  if (act == ACT_RELU) return z > 0 ? 1 : 0;
  if (act == ACT_HARDSWISH) return z <= -3 ? 0 : z <= 3 ? (2 * z + 3) * (<f32>1 / 6) : 1;
  return 1;
}

@inline function dact_v128(z: v128, act: i32): v128 {
  if (act == ACT_RELU) return v128.and(f32x4.splat(1), f32x4.gt(z, f32x4.splat(0)));
  if (act == ACT_HARDSWISH) {
    const mid = f32x4.mul(f32x4.add(f32x4.add(z, z), f32x4.splat(3)), f32x4.splat(<f32>1 / 6));
    const d = v128.bitselect(f32x4.splat(1), mid, f32x4.gt(z, f32x4.splat(3)));
    return v128.and(d, f32x4.gt(z, f32x4.splat(-3)));
  }
  return f32x4.splat(1);
}

/**
 * Backward reductions over rows [r0, r1): tot0[c] = sum of g, tot1[c] = sum of g*xhat (f64), with
 * g = dy * act'(x*scale + shift) and xhat = (x - mean)*rstd. part0, part1: f32[bn_part_floats(C)] scratch.
 */
export function bn_grad_sums(x: usize, dy: usize, C: i32, scale: usize, shift: usize, mean: usize, rstd: usize, act: i32,
                             tot0: usize, tot1: usize, part0: usize, part1: usize, r0: i32, r1: i32): void {
  memory.fill(tot0, 0, <usize>C << 3);
  memory.fill(tot1, 0, <usize>C << 3);
  for (let b0 = r0; b0 < r1; b0 += BLOCK) {
    const b1 = min(b0 + BLOCK, r1);
    memory.fill(part0, 0, <usize>C << 2);
    memory.fill(part1, 0, <usize>C << 2);
    for (let r = b0; r < b1; r++) {
      const row = <usize>(r * C) * 4;
      let c = 0;
      if (ASC_FEATURE_SIMD) {
        for (; c + 4 <= C; c += 4) {
          const q = <usize>c << 2;
          const xv = v128.load(x + row + q);
          const g = f32x4.mul(v128.load(dy + row + q), dact_v128(f32x4.add(f32x4.mul(xv, v128.load(scale + q)), v128.load(shift + q)), act));
          const xh = f32x4.mul(f32x4.sub(xv, v128.load(mean + q)), v128.load(rstd + q));
          v128.store(part0 + q, f32x4.add(v128.load(part0 + q), g));
          v128.store(part1 + q, f32x4.add(v128.load(part1 + q), f32x4.mul(g, xh)));
        }
      }
      for (; c < C; c++) {
        const q = <usize>c << 2;
        const xv = load<f32>(x + row + q);
        const g = load<f32>(dy + row + q) * dact_f32(xv * load<f32>(scale + q) + load<f32>(shift + q), act);
        const xh = (xv - load<f32>(mean + q)) * load<f32>(rstd + q);
        store<f32>(part0 + q, load<f32>(part0 + q) + g);
        store<f32>(part1 + q, load<f32>(part1 + q) + g * xh);
      }
    }
    for (let c = 0; c < C; c++) {
      store<f64>(tot0 + (<usize>c << 3), load<f64>(tot0 + (<usize>c << 3)) + <f64>load<f32>(part0 + (<usize>c << 2)));
      store<f64>(tot1 + (<usize>c << 3), load<f64>(tot1 + (<usize>c << 3)) + <f64>load<f32>(part1 + (<usize>c << 2)));
    }
  }
}

/**
 * Combines the two parts' backward sums: dbeta = sum g, dgamma = sum g*xhat, and their means over P rows
 * (mg, mgx) for the input gradient.
 */
export function bn_grad_finish(a0: usize, a1: usize, b0: usize, b1: usize, P: i32, C: i32,
                               dbeta: usize, dgamma: usize, mg: usize, mgx: usize): void {
  for (let c = 0; c < C; c++) {
    const q = <usize>c << 3;
    const db = load<f64>(a0 + q) + load<f64>(b0 + q), dg = load<f64>(a1 + q) + load<f64>(b1 + q);
    store<f32>(dbeta + (<usize>c << 2), <f32>db);
    store<f32>(dgamma + (<usize>c << 2), <f32>dg);
    store<f32>(mg + (<usize>c << 2), <f32>(db / <f64>P));
    store<f32>(mgx + (<usize>c << 2), <f32>(dg / <f64>P));
  }
}

/** Rows [r0, r1) of dx = scale*(g - mg - xhat*mgx), g and xhat as in bn_grad_sums. */
export function bn_grad_dx(x: usize, dy: usize, C: i32, scale: usize, shift: usize, mean: usize, rstd: usize, mg: usize, mgx: usize,
                           act: i32, dx: usize, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const row = <usize>(r * C) * 4;
    let c = 0;
    if (ASC_FEATURE_SIMD) {
      for (; c + 4 <= C; c += 4) {
        const q = <usize>c << 2;
        const xv = v128.load(x + row + q);
        const s = v128.load(scale + q);
        const g = f32x4.mul(v128.load(dy + row + q), dact_v128(f32x4.add(f32x4.mul(xv, s), v128.load(shift + q)), act));
        const xh = f32x4.mul(f32x4.sub(xv, v128.load(mean + q)), v128.load(rstd + q));
        const t = f32x4.sub(f32x4.sub(g, v128.load(mg + q)), f32x4.mul(xh, v128.load(mgx + q)));
        v128.store(dx + row + q, f32x4.mul(s, t));
      }
    }
    for (; c < C; c++) {
      const q = <usize>c << 2;
      const xv = load<f32>(x + row + q);
      const s = load<f32>(scale + q);
      const g = load<f32>(dy + row + q) * dact_f32(xv * s + load<f32>(shift + q), act);
      const xh = (xv - load<f32>(mean + q)) * load<f32>(rstd + q);
      store<f32>(dx + row + q, s * (g - load<f32>(mg + q) - xh * load<f32>(mgx + q)));
    }
  }
}

/** Rows [r0, r1) of y = act(x * scale + shift) over x[P, C] (inference-mode batch norm with folded statistics). */
export function affine_act(x: usize, C: i32, scale: usize, shift: usize, act: i32, y: usize, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const row = <usize>(r * C) * 4;
    let c = 0;
    if (ASC_FEATURE_SIMD) {
      for (; c + 4 <= C; c += 4) {
        const q = <usize>c << 2;
        v128.store(y + row + q, act_v128(f32x4.add(f32x4.mul(v128.load(x + row + q), v128.load(scale + q)), v128.load(shift + q)), act));
      }
    }
    for (; c < C; c++) {
      const q = <usize>c << 2;
      store<f32>(y + row + q, act_f32(load<f32>(x + row + q) * load<f32>(scale + q) + load<f32>(shift + q), act));
    }
  }
}
