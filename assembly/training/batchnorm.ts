// Training-mode batch normalisation fused with the activation that follows it, over x[P, C] (rows = pixels of
// the batch, NHWC). Statistics are the batch's (biased variance); sums run in f32 vectors over blocks of rows and
// are carried in f64 across blocks, so 50k-row batches lose no precision.
import { ACT_HARDSWISH, ACT_RELU, act_f32, act_v128 } from '../kernels/activation';

const BLOCK: i32 = 64;

/** Scratch bytes the kernels below need for C channels. */
export function bn_scratch_bytes(C: i32): i32 {
  return 32 * ((C + 3) & ~3) + 64;
}

// Scratch layout: f64 tot0[C4], f64 tot1[C4], f32 part0[C4], f32 part1[C4], f32 scale[C4], f32 shift[C4].
@inline function c4(C: i32): usize { return <usize>((C + 3) & ~3); }

/** Block sums of f(row) over all rows into f64 totals: mode 0 sums x, mode 1 sums (x - mean)^2. */
function column_sums(x: usize, P: i32, C: i32, mean: usize, mode: i32, tot: usize, part: usize): void {
  memory.fill(tot, 0, c4(C) * 8);
  for (let r0 = 0; r0 < P; r0 += BLOCK) {
    const r1 = min(r0 + BLOCK, P);
    memory.fill(part, 0, c4(C) * 4);
    for (let r = r0; r < r1; r++) {
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

/**
 * y = act(gamma * (x - mean) * rstd + beta) with the batch mean and biased variance, which are written to
 * mean[C] and variance[C]; rstd[C] = 1/sqrt(variance + eps) is written for the backward pass.
 */
export function bn_act_forward(x: usize, P: i32, C: i32, gamma: usize, beta: usize, eps: f32, act: i32,
                               y: usize, mean: usize, variance: usize, rstd: usize, scratch: usize): void {
  const n = c4(C);
  const tot = scratch, part = scratch + n * 16, scale = part + n * 8, shift = scale + n * 4;
  column_sums(x, P, C, 0, 0, tot, part);
  for (let c = 0; c < C; c++) store<f32>(mean + (<usize>c << 2), <f32>(load<f64>(tot + (<usize>c << 3)) / <f64>P));
  column_sums(x, P, C, mean, 1, tot, part);
  for (let c = 0; c < C; c++) {
    const q = <usize>c << 2;
    const v = <f32>(load<f64>(tot + (<usize>c << 3)) / <f64>P);
    const rs: f32 = 1 / Mathf.sqrt(v + eps);
    store<f32>(variance + q, v);
    store<f32>(rstd + q, rs);
    const s = load<f32>(gamma + q) * rs;
    store<f32>(scale + q, s);
    store<f32>(shift + q, load<f32>(beta + q) - load<f32>(mean + q) * s);
  }
  affine_act(x, C, scale, shift, act, y, 0, P);
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
 * Gradients of bn_act_forward: dx[P,C], dgamma[C], dbeta[C] from dy[P,C], the input x, and the saved batch
 * mean and rstd. dx = gamma*rstd*(g - mean(g) - xhat*mean(g*xhat)) with g = dy*act'(z), xhat = (x-mean)*rstd.
 */
export function bn_act_backward(x: usize, dy: usize, P: i32, C: i32, gamma: usize, beta: usize, mean: usize, rstd: usize,
                                act: i32, dx: usize, dgamma: usize, dbeta: usize, scratch: usize): void {
  const n = c4(C);
  const tot0 = scratch, tot1 = scratch + n * 8, part0 = scratch + n * 16, part1 = part0 + n * 4;
  const scale = part1 + n * 4, shift = scale + n * 4;
  for (let c = 0; c < C; c++) {
    const q = <usize>c << 2;
    const s = load<f32>(gamma + q) * load<f32>(rstd + q);
    store<f32>(scale + q, s);
    store<f32>(shift + q, load<f32>(beta + q) - load<f32>(mean + q) * s);
  }
  memory.fill(tot0, 0, n * 16);
  for (let r0 = 0; r0 < P; r0 += BLOCK) {
    const r1 = min(r0 + BLOCK, P);
    memory.fill(part0, 0, n * 8);
    for (let r = r0; r < r1; r++) {
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
  // Reuse part0/part1 for mean(g) and mean(g*xhat).
  for (let c = 0; c < C; c++) {
    const db = load<f64>(tot0 + (<usize>c << 3)), dg = load<f64>(tot1 + (<usize>c << 3));
    store<f32>(dbeta + (<usize>c << 2), <f32>db);
    store<f32>(dgamma + (<usize>c << 2), <f32>dg);
    store<f32>(part0 + (<usize>c << 2), <f32>(db / <f64>P));
    store<f32>(part1 + (<usize>c << 2), <f32>(dg / <f64>P));
  }
  for (let r = 0; r < P; r++) {
    const row = <usize>(r * C) * 4;
    let c = 0;
    if (ASC_FEATURE_SIMD) {
      for (; c + 4 <= C; c += 4) {
        const q = <usize>c << 2;
        const xv = v128.load(x + row + q);
        const s = v128.load(scale + q);
        const g = f32x4.mul(v128.load(dy + row + q), dact_v128(f32x4.add(f32x4.mul(xv, s), v128.load(shift + q)), act));
        const xh = f32x4.mul(f32x4.sub(xv, v128.load(mean + q)), v128.load(rstd + q));
        const t = f32x4.sub(f32x4.sub(g, v128.load(part0 + q)), f32x4.mul(xh, v128.load(part1 + q)));
        v128.store(dx + row + q, f32x4.mul(s, t));
      }
    }
    for (; c < C; c++) {
      const q = <usize>c << 2;
      const xv = load<f32>(x + row + q);
      const s = load<f32>(scale + q);
      const g = load<f32>(dy + row + q) * dact_f32(xv * s + load<f32>(shift + q), act);
      const xh = (xv - load<f32>(mean + q)) * load<f32>(rstd + q);
      store<f32>(dx + row + q, s * (g - load<f32>(part0 + q) - xh * load<f32>(part1 + q)));
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
