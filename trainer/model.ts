// CondenseNetV2 in training form, written with plain TensorFlow.js ops (NHWC), backend-agnostic.
// Parameter names and layouts are the checkpoint's (docs/checkpoint.md): 1x1 convolutions and linear layers are
// matmul weights [in, out]; 3x3 convolutions are HWIO [3, 3, in/groups, out]; masks share their weight's layout.
import * as tf from '@tensorflow/tfjs';

import type { Activation, ArchConfig } from '../base/arch/configs.js';
import { BN_EPS, headSeHidden, layerSpecs, maskInventory, tensorInventory, type LayerSpec, type MaskInfo, type TensorInfo } from '../base/arch/schema.js';
import { MaskState } from './mask-state.js';
import { condenseStage, lgcDrop, sfrDrop } from './masks.js';
import { Rng } from '../base/rng.js';
import { fusedKernelsActive } from './wasm/backend.js';
import { affineAct, fusedBatchNormAct, fusedGroupConv3x3 } from './wasm/ops.js';

// The schema lives in the TF-free base, so reading a checkpoint does not load TensorFlow.js.
export { BN_EPS, finalChannels, headSeHidden, layerSpecs, maskInventory, tensorInventory } from '../base/arch/schema.js';
export type { LayerSpec, MaskInfo, TensorInfo, TensorKind } from '../base/arch/schema.js';

export const BN_MOMENTUM = 0.1; // PyTorch convention: running = (1 - m) * running + m * batch

/** Initial values (reference §1): kaiming normal fan_out for convs, BN 1/0, PyTorch Linear default otherwise. */
function initialValue(info: TensorInfo, rng: Rng): Float32Array {
  const n = info.shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  const name = info.name;
  const last = name.slice(name.lastIndexOf('.') + 1);
  if (last === 'gamma' || last === 'variance') v.fill(1);
  else if (last === 'beta' || last === 'mean') v.fill(0);
  else if (name === 'stem.weight' || name.endsWith('.conv.weight')) {
    const fanOut = info.shape[3]! * 9; // PyTorch fan_out = out_channels * kh * kw
    const std = Math.sqrt(2 / fanOut);
    for (let i = 0; i < n; i++) v[i] = rng.normal() * std;
  } else if (name.endsWith('.lgc.weight') || name.endsWith('.sfr.weight')) {
    const std = Math.sqrt(2 / info.shape[1]!); // 1x1 conv: fan_out = out_channels
    for (let i = 0; i < n; i++) v[i] = rng.normal() * std;
  } else {
    // Linear weights (SE, fc, classifier), [in, out]: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as PyTorch's default.
    const bound = 1 / Math.sqrt(info.shape[0]!);
    for (let i = 0; i < n; i++) v[i] = (rng.next() * 2 - 1) * bound;
  }
  return v;
}

export function initialValues(cfg: ArchConfig, sfr: boolean, seed: number): Map<string, Float32Array> {
  const rng = Rng.derive(seed, 0x1417);
  const inv = tensorInventory(cfg, sfr);
  const out = new Map<string, Float32Array>();
  const shapes = new Map(inv.map((t) => [t.name, t.shape]));
  for (const info of inv) {
    if (info.name.endsWith('.bias')) {
      // Linear bias: same bound as its weight, U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
      const bound = 1 / Math.sqrt(shapes.get(info.name.replace(/\.bias$/, '.weight'))![0]!);
      const n = info.shape[0]!;
      const v = new Float32Array(n);
      for (let i = 0; i < n; i++) v[i] = (rng.next() * 2 - 1) * bound;
      out.set(info.name, v);
    } else {
      out.set(info.name, initialValue(info, rng));
    }
  }
  return out;
}

/** Batch statistics recorded by a training forward pass, for the running-statistics update. */
export interface BnBatchStat {
  name: string;
  mean: tf.Tensor;           // [1, C]
  variance: tf.Tensor;       // [1, C], biased
  count: number;             // elements per channel
}

export interface StageEvent {
  kind: 'lgc' | 'sfr';
  from: number;
  to: number;
  progress: number;
}

/** Lookup of a tensor by name: the live variables, or EMA copies. */
export type TensorLookup = (name: string) => tf.Tensor;

let modelCount = 0;

export class CdnModel {
  readonly cfg: ArchConfig;
  readonly sfr: boolean;
  readonly specs: LayerSpec[][];
  readonly inventory: TensorInfo[];
  readonly maskList: MaskInfo[];
  readonly vars = new Map<string, tf.Variable>();
  readonly masks: Map<string, Uint8Array>;
  private readonly maskState: MaskState;
  stage = { lgc: 0, sfr: 0 };
  /** TF.js variable names are global: every model instance gets its own prefix. */
  readonly id = ++modelCount;

  constructor(cfg: ArchConfig, sfr: boolean, values: Map<string, Float32Array>, masks?: Map<string, Uint8Array>) {
    this.cfg = cfg;
    this.sfr = sfr;
    this.specs = layerSpecs(cfg, sfr);
    this.inventory = tensorInventory(cfg, sfr);
    this.maskList = maskInventory(cfg, sfr);
    for (const t of this.inventory) {
      const v = values.get(t.name);
      if (!v) throw new Error(`missing tensor ${t.name}`);
      this.vars.set(t.name, ownedVariable(tf.tensor(v, t.shape), t.kind === 'param', `m${this.id}/${t.name}`));
    }
    this.maskState = new MaskState(this.maskList);
    this.masks = this.maskState.masks;
    this.maskState.set(MaskState.initial(this.maskList, masks));
  }

  get(name: string): tf.Tensor {
    const v = this.vars.get(name);
    if (!v) throw new Error(`no tensor ${name}`);
    return v;
  }

  trainable(): { name: string; variable: tf.Variable; decay: boolean }[] {
    return this.inventory.filter((t) => t.kind === 'param').map((t) => ({ name: t.name, variable: this.vars.get(t.name)!, decay: t.decay }));
  }

  /** Replaces every mask (a data-parallel worker follows the main model's condensation stages this way). */
  setMasks(masks: Map<string, Uint8Array>): void {
    this.maskState.set(masks);
  }

  /** Advances the condensation schedule to progress p (fraction of all training iterations done). */
  updateMasks(p: number): StageEvent[] {
    const events: StageEvent[] = [];
    const lgcTarget = condenseStage(p, this.cfg.condenseFactor);
    const sfrTarget = condenseStage(p, this.cfg.sfrFactor);
    if (lgcTarget > this.stage.lgc || (this.sfr && sfrTarget > this.stage.sfr)) {
      for (const m of this.maskList) {
        const from = m.kind === 'lgc' ? this.stage.lgc : this.stage.sfr;
        const to = m.kind === 'lgc' ? lgcTarget : sfrTarget;
        if (to <= from) continue;
        const w = this.vars.get(m.weight)!.dataSync() as Float32Array;
        const mask = this.masks.get(m.name)!;
        for (let s = from; s < to; s++) {
          if (m.kind === 'lgc') lgcDrop(w, mask, m.inCh, m.outCh, this.cfg.group1x1, m.factor);
          else sfrDrop(w, mask, m.inCh, m.outCh, this.cfg.groupTrans, m.factor);
        }
      }
      if (lgcTarget > this.stage.lgc) events.push({ kind: 'lgc', from: this.stage.lgc, to: lgcTarget, progress: p });
      if (this.sfr && sfrTarget > this.stage.sfr) events.push({ kind: 'sfr', from: this.stage.sfr, to: sfrTarget, progress: p });
      this.stage.lgc = Math.max(this.stage.lgc, lgcTarget);
      if (this.sfr) this.stage.sfr = Math.max(this.stage.sfr, sfrTarget);
      this.maskState.refresh();
    }
    return events;
  }

  /** Group-lasso penalty of CondenseNet V1 on the masked 1x1 weights, until the final stage is reached. */
  lassoLoss(): tf.Scalar {
    return tf.tidy(() => {
      let total: tf.Tensor = tf.scalar(0);
      for (const m of this.maskList) {
        const final = (m.kind === 'lgc' ? this.stage.lgc : this.stage.sfr) >= m.factor - 1;
        if (final) continue;
        const w = tf.mul(this.get(m.weight), this.maskState.tensor(m.name));
        const sq = tf.square(w);
        let norms: tf.Tensor;
        const G = m.kind === 'lgc' ? this.cfg.group1x1 : this.cfg.groupTrans;
        if (m.kind === 'lgc') {
          // [in, out] -> [in, out/G, G]: sum over the group's outputs for each (input, group).
          norms = tf.sqrt(tf.add(tf.sum(tf.reshape(sq, [m.inCh, m.outCh / G, G]), 1), 1e-12));
        } else {
          // [k, out] -> [k/G, G, out]: sum over the group's inputs for each (group, output).
          norms = tf.sqrt(tf.add(tf.sum(tf.reshape(sq, [m.inCh / G, G, m.outCh]), 0), 1e-12));
        }
        total = tf.add(total, tf.sum(norms));
      }
      return total as tf.Scalar;
    });
  }

  /**
   * Forward pass on normalised NHWC input. training: batch statistics (recorded into `stats`), else running
   * statistics. `lookup` selects the weights (default: the live variables; EMA evaluation passes its copies).
   */
  forward(x: tf.Tensor4D, training: boolean, stats?: BnBatchStat[], lookup?: TensorLookup): tf.Tensor2D {
    const get = lookup ?? ((n: string) => this.get(n));
    const cfg = this.cfg;
    const G = cfg.group3x3;
    const n = x.shape[0];

    const bnAct = (h2d: tf.Tensor2D, name: string, act: Activation): tf.Tensor2D => {
      const gamma = get(`${name}.gamma`);
      const beta = get(`${name}.beta`);
      let y: tf.Tensor2D;
      if (training && fusedKernelsActive()) {
        return fusedBatchNormAct(h2d, gamma as tf.Tensor1D, beta as tf.Tensor1D, act, BN_EPS, (mean, variance) => {
          if (stats) stats.push({ name, mean: tf.keep(mean), variance: tf.keep(variance), count: h2d.shape[0] });
        });
      } else if (training) {
        y = batchNormTrain(h2d, gamma as tf.Tensor1D, beta as tf.Tensor1D, (mean, variance) => {
          if (stats) stats.push({ name, mean: tf.keep(mean), variance: tf.keep(variance), count: h2d.shape[0] });
        });
      } else {
        const scale = tf.mul(gamma, tf.rsqrt(tf.add(get(`${name}.variance`), BN_EPS)));
        const shift = tf.sub(beta, tf.mul(get(`${name}.mean`), scale));
        if (fusedKernelsActive()) return affineAct(h2d, scale as tf.Tensor1D, shift as tf.Tensor1D, act);
        y = tf.add(tf.mul(h2d, scale), shift) as tf.Tensor2D;
      }
      return activate(y, act);
    };

    const masked = (weight: string, mask: string): tf.Tensor2D =>
      tf.mul(get(weight), this.maskState.tensor(mask)) as tf.Tensor2D;

    const se = (h: tf.Tensor4D, prefix: string): tf.Tensor4D => {
      const [, hh, ww, c] = h.shape;
      const pooled = tf.reshape(tf.avgPool(h, [hh, ww], 1, 'valid'), [n, c]) as tf.Tensor2D;
      const s = tf.sigmoid(tf.matMul(tf.relu(tf.matMul(pooled, get(`${prefix}.w1`) as tf.Tensor2D)), get(`${prefix}.w2`) as tf.Tensor2D));
      return tf.mul(h, tf.reshape(s, [n, 1, 1, c]));
    };

    // Stem: plain 3x3 conv, padding 1, no BN/activation after it (pre-activation design).
    let feat = conv3x3(x, get('stem.weight') as tf.Tensor4D, cfg.stemStride);
    for (let b = 0; b < this.specs.length; b++) {
      if (b > 0) feat = tf.avgPool(feat, 2, 2, 'valid');
      for (const s of this.specs[b]!) {
        const [, hh, ww] = feat.shape;
        const m = n * hh * ww;
        const x2d = tf.reshape(feat, [m, s.inChannels]) as tf.Tensor2D;
        // LGC: BN-act-1x1 conv with the learned mask; output o belongs to group o mod G.
        let h: tf.Tensor2D = tf.matMul(bnAct(x2d, `${s.prefix}.lgc.bn`, s.activation), masked(`${s.prefix}.lgc.weight`, `${s.prefix}.lgc.mask`));
        // 3x3 group conv on contiguous channel chunks (the implicit shuffle of the interleaved LGC groups).
        h = bnAct(h, `${s.prefix}.conv.bn`, s.activation);
        let nf = groupConv3x3(tf.reshape(h, [n, hh, ww, s.mid]) as tf.Tensor4D, get(`${s.prefix}.conv.weight`) as tf.Tensor4D, G);
        if (s.seHidden > 0) nf = se(nf, `${s.prefix}.se`);
        let base: tf.Tensor4D = feat;
        if (s.sfr) {
          // SFR: BN-act-1x1 conv (k -> in) with the learned mask, added to the layer's input features.
          const nf2d = tf.reshape(nf, [m, s.growth]) as tf.Tensor2D;
          const y = tf.matMul(bnAct(nf2d, `${s.prefix}.sfr.bn`, s.activation), masked(`${s.prefix}.sfr.weight`, `${s.prefix}.sfr.mask`));
          base = tf.add(feat, tf.reshape(y, [n, hh, ww, s.inChannels]));
        }
        feat = concatChannels([base, nf]);
      }
    }
    // Head: BN -> ReLU -> global average pool -> SE -> [Linear + hardswish] -> Linear.
    const [, hh, ww, c] = feat.shape;
    const h2d = bnAct(tf.reshape(feat, [n * hh * ww, c]) as tf.Tensor2D, 'head.bn', 'relu');
    let v = tf.reshape(tf.avgPool(tf.reshape(h2d, [n, hh, ww, c]) as tf.Tensor4D, [hh, ww], 1, 'valid'), [n, c]) as tf.Tensor2D;
    if (headSeHidden(cfg) > 0) {
      const s = tf.sigmoid(tf.matMul(tf.relu(tf.matMul(v, get('head.se.w1') as tf.Tensor2D)), get('head.se.w2') as tf.Tensor2D));
      v = tf.mul(v, s);
    }
    if (cfg.fcChannels > 0) {
      v = activate(tf.add(tf.matMul(v, get('head.fc.weight') as tf.Tensor2D), get('head.fc.bias')), 'hardswish');
    }
    const logits = tf.add(tf.matMul(v, get('head.classifier.weight') as tf.Tensor2D), get('head.classifier.bias')) as tf.Tensor2D;
    return logits;
  }

  /** Current values of every tensor (copies). */
  snapshot(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const [name, v] of this.vars) out.set(name, (v.dataSync() as Float32Array).slice());
    return out;
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.maskState.dispose();
  }
}

/** A variable initialised from `t`, which is disposed (tf.variable keeps its own reference to the data). */
export function ownedVariable(t: tf.Tensor, trainable: boolean, name?: string): tf.Variable {
  const v = tf.variable(t, trainable, name);
  t.dispose();
  return v;
}

export function activate<T extends tf.Tensor>(x: T, act: Activation): T {
  if (act === 'relu') return tf.relu(x);
  // hardswish(x) = x * relu6(x + 3) / 6
  return tf.mul(x, tf.div(tf.relu6(tf.add(x, 3)), 6));
}

/**
 * Training-mode batch normalisation over the rows of [M, C] with batch statistics (biased variance), written so
 * that every reduction is a matmul with a constant row and every broadcast is over the last axis: the TF.js CPU
 * backend is very slow at reductions over axis 0 and [1, C] broadcasts. `onStats` receives the batch mean and
 * variance ([C]) for the running-statistics update.
 */
export function batchNormTrain(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D,
  onStats?: (mean: tf.Tensor1D, variance: tf.Tensor1D) => void): tf.Tensor2D {
  const [m, c] = x.shape;
    const op = tf.customGrad(((xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    const avg = tf.fill([1, m], 1 / m);
    const mean = tf.reshape(tf.matMul(avg, xi as tf.Tensor2D), [c]) as tf.Tensor1D;
    const xc = tf.sub(xi, mean);
    const variance = tf.reshape(tf.matMul(avg, tf.square(xc) as tf.Tensor2D), [c]) as tf.Tensor1D;
    onStats?.(mean, variance);
    const rstd = tf.rsqrt(tf.add(variance, BN_EPS));
    const xhat = tf.mul(xc, rstd);
    save([xhat, rstd, g]);
    return {
      value: tf.add(tf.mul(xhat, g), b),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const d = dy as tf.Tensor2D;
        const [xh, rs, gm] = saved as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
        const sumRow = tf.ones([1, m]);
        const dBeta = tf.reshape(tf.matMul(sumRow, d), [c]);
        const dGamma = tf.reshape(tf.matMul(sumRow, tf.mul(d, xh) as tf.Tensor2D), [c]);
        // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * gamma.
        const dxhat = tf.mul(d, gm);
        const meanD = tf.div(tf.mul(dBeta, gm), m);
        const meanDX = tf.div(tf.mul(dGamma, gm), m);
        const dx = tf.mul(tf.sub(tf.sub(dxhat, meanD), tf.mul(xh, meanDX)), rs);
        return [dx, dGamma, dBeta];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x, gamma, beta) as tf.Tensor2D;
}

/** Filter gradient of a 3x3, padding 1 convolution, computed as a forward conv2d with batch and channels swapped. */
function conv3x3FilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, stride: number): tf.Tensor4D {
  // dW[kh,kw,ci,co] = sum_{n,h,w} xpad[n, s*h+kh, s*w+kw, ci] * dy[n,h,w,co]: a conv over (h, w) with input
  // [ci, H, W, n] and filter [Hout, Wout, n, co] dilated by the stride. (The CPU backend's own filter-gradient
  // kernel is orders of magnitude slower.)
  const xs = tf.transpose(x, [3, 1, 2, 0]) as tf.Tensor4D;
  const f = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
  // Explicit padding: a numeric pad makes TF.js size the output from the filter height on both axes, which is
  // wrong for non-square maps.
  let r = tf.conv2d(xs, f, 1, [[0, 0], [1, 1], [1, 1], [0, 0]], 'NHWC', stride) as tf.Tensor4D;
  if (r.shape[1] !== 3 || r.shape[2] !== 3) r = tf.slice(r, [0, 0, 0, 0], [r.shape[0], 3, 3, r.shape[3]]);
  return tf.transpose(r, [1, 2, 0, 3]) as tf.Tensor4D;
}

/** 3x3 convolution with padding 1 (PyTorch semantics), weight HWIO; fast gradients on every backend. */
export function conv3x3(x: tf.Tensor4D, w: tf.Tensor4D, stride: number): tf.Tensor4D {
  if (stride === 1 && fusedKernelsActive()) return fusedGroupConv3x3(x, w, 1);
  const op = tf.customGrad(((xi: tf.Tensor, wi: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xi, wi]);
    return {
      value: tf.conv2d(xi as tf.Tensor4D, wi as tf.Tensor4D, stride, 1),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor4D];
        const d = dy as tf.Tensor4D;
        const dx = tf.conv2dTranspose(d, ws, xs.shape, stride, 1);
        return [dx, conv3x3FilterGrad(xs, d, stride)];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x, w) as tf.Tensor4D;
}

/**
 * Concatenation along the channel (last) axis. Its gradient splits the channel axis, which the CPU backend does
 * element by element; going through a transpose (channels first, contiguous row slices) is far faster there.
 * The wasm backend's slice copies whole runs, so it slices directly.
 */
export function concatChannels(xs: tf.Tensor4D[]): tf.Tensor4D {
  const widths = xs.map((t) => t.shape[3]);
  if (fusedKernelsActive()) {
    const offsets = widths.map((_, i) => widths.slice(0, i).reduce((a, b) => a + b, 0));
    const fast = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
      value: tf.concat(args.slice(0, xs.length) as tf.Tensor4D[], 3),
      gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
        const d = dy as tf.Tensor4D;
        const [n, h, w] = d.shape;
        return widths.map((wd, i) => tf.slice(d, [0, 0, 0, offsets[i]!], [n, h, w, wd]));
      },
    })) as unknown as Parameters<typeof tf.customGrad>[0]);
    return fast(...xs) as tf.Tensor4D;
  }
  const op = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const inputs = args.slice(0, xs.length) as tf.Tensor4D[];
    return {
      value: tf.concat(inputs, 3),
      gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
        const d = dy as tf.Tensor4D;
        const [n, h, w, c] = d.shape;
        const t = tf.transpose(tf.reshape(d, [n * h * w, c]));
        const parts = tf.split(t, widths, 0);
        return parts.map((p, i) => tf.reshape(tf.transpose(p), [n, h, w, widths[i]!]));
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(...xs) as tf.Tensor4D;
}

/** 3x3 convolution, stride 1, padding 1, with `groups` contiguous channel groups; weight [3, 3, in/groups, out]. */
export function groupConv3x3(x: tf.Tensor4D, w: tf.Tensor4D, groups: number): tf.Tensor4D {
  if (groups === 1) return conv3x3(x, w, 1);
  if (fusedKernelsActive()) return fusedGroupConv3x3(x, w, groups);
  const [n, h, wd, c] = x.shape;
  const cpg = c / groups;
  // Bring the group axis to the front so that each group is a contiguous slice (slicing the channel axis is
  // slow on the CPU backend).
  const byGroup = tf.transpose(tf.reshape(x, [n * h * wd, groups, cpg]), [1, 0, 2]);
  const parts = tf.unstack(byGroup, 0);
  const ws = tf.split(w, groups, 3);
  return concatChannels(parts.map((p, g) => conv3x3(tf.reshape(p, [n, h, wd, cpg]) as tf.Tensor4D, ws[g] as tf.Tensor4D, 1)));
}
