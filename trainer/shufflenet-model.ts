// ShuffleNetV2 / SFR-ShuffleNetV2 in training form, with plain TensorFlow.js ops (NHWC). Unit semantics, names and
// layouts: docs/shufflenet.md and docs/checkpoint.md. The SFR masks are learned like CondenseNetV2's (masks.ts:
// the same schedule function and the same L1 drop per input group), each mask with its own sparse factor.
import * as tf from '@tensorflow/tfjs';

import { BN_EPS, type TensorInfo } from '../base/arch/schema.js';
import {
  shuffleMaskInventory, shuffleTensorInventory, shuffleUnits, type ShuffleMaskInfo, type ShuffleNetConfig, type ShuffleUnitSpec,
} from '../base/arch/shufflenet.js';
import { Rng } from '../base/rng.js';
import { MaskState } from './mask-state.js';
import { condenseStage, sfrDrop, sfrKeptPerGroup } from './masks.js';
import { activate, batchNormTrain, conv3x3, ownedVariable, type BnBatchStat, type StageEvent, type TensorLookup } from './model.js';
import { fusedKernelsActive } from './wasm/backend.js';
import { affineAct, fusedBatchNormAct } from './wasm/ops.js';

/**
 * Initial values: kaiming normal (fan_out, per group) for every convolution, BN 1/0, PyTorch's Linear default for
 * the classifier.
 */
export function shuffleInitialValues(cfg: ShuffleNetConfig, seed: number): Map<string, Float32Array> {
  const rng = Rng.derive(seed, 0x5f1e);
  const out = new Map<string, Float32Array>();
  for (const info of shuffleTensorInventory(cfg)) {
    const n = info.shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    const last = info.name.slice(info.name.lastIndexOf('.') + 1);
    const normal = (fanOut: number): void => {
      const std = Math.sqrt(2 / fanOut);
      for (let i = 0; i < n; i++) v[i] = rng.normal() * std;
    };
    const uniform = (fanIn: number): void => {
      const bound = 1 / Math.sqrt(fanIn);
      for (let i = 0; i < n; i++) v[i] = (rng.next() * 2 - 1) * bound;
    };
    if (last === 'gamma' || last === 'variance') v.fill(1);
    else if (last === 'beta' || last === 'mean') v.fill(0);
    else if (info.name === 'head.classifier.weight') uniform(info.shape[0]!);
    else if (info.name === 'head.classifier.bias') uniform(cfg.lastChannels);
    else if (info.shape.length === 4) normal(9 * info.shape[3]!);   // 3x3 HWIO; depthwise [3, 3, C, 1]: 9 per channel
    else normal(info.shape[1]!);                                     // 1x1 as a matmul weight [in, out]
    out.set(info.name, v);
  }
  return out;
}

type BnAct = 'relu' | 'none';

let modelCount = 0;

export class ShuffleModel {
  readonly cfg: ShuffleNetConfig;
  readonly sfr: boolean;
  readonly units: ShuffleUnitSpec[][];
  readonly inventory: TensorInfo[];
  readonly maskList: ShuffleMaskInfo[];
  readonly vars = new Map<string, tf.Variable>();
  readonly masks: Map<string, Uint8Array>;
  /** Drops done per SFR mask (each mask has its own sparse factor, so its own stage). */
  private readonly dropped = new Map<string, number>();
  private readonly maskState: MaskState;
  /** lgc: always 0; sfr: the drops of all masks together (docs/shufflenet.md). */
  stage = { lgc: 0, sfr: 0 };
  readonly id = ++modelCount;

  constructor(cfg: ShuffleNetConfig, values: Map<string, Float32Array>, masks?: Map<string, Uint8Array>) {
    this.cfg = cfg;
    this.sfr = cfg.sfr;
    this.units = shuffleUnits(cfg);
    this.inventory = shuffleTensorInventory(cfg);
    this.maskList = shuffleMaskInventory(cfg);
    for (const t of this.inventory) {
      const v = values.get(t.name);
      if (!v) throw new Error(`missing tensor ${t.name}`);
      this.vars.set(t.name, ownedVariable(tf.tensor(v, t.shape), t.kind === 'param', `s${this.id}/${t.name}`));
    }
    this.maskState = new MaskState(this.maskList);
    this.masks = this.maskState.masks;
    this.setMasks(MaskState.initial(this.maskList, masks));
  }

  get(name: string): tf.Tensor {
    const v = this.vars.get(name);
    if (!v) throw new Error(`no tensor ${name}`);
    return v;
  }

  trainable(): { name: string; variable: tf.Variable; decay: boolean }[] {
    return this.inventory.filter((t) => t.kind === 'param').map((t) => ({ name: t.name, variable: this.vars.get(t.name)!, decay: t.decay }));
  }

  /** Replaces every mask; the drops each has had are read off it (kept outputs per group). */
  setMasks(masks: Map<string, Uint8Array>): void {
    this.maskState.set(masks);
    let total = 0;
    for (const m of this.maskList) {
      const v = this.masks.get(m.name)!;
      const delta = Math.floor(m.outCh / m.factor);
      const kept = sfrKeptPerGroup(v, m.inCh, m.outCh, m.groups);
      const drops = delta > 0 ? Math.round((m.outCh - Math.max(...kept)) / delta) : 0;
      this.dropped.set(m.name, drops);
      total += drops;
    }
    this.stage = { lgc: 0, sfr: total };
  }

  /**
   * Advances every SFR mask to condenseStage(p, S) drops. A drop removes, per input group, the floor(out/S)
   * connected outputs with the smallest L1 norm of the group's masked weights over the nine taps (masks.ts).
   */
  updateMasks(p: number): StageEvent[] {
    if (!this.sfr) return [];
    const from = this.stage.sfr;
    let changed = false;
    for (const m of this.maskList) {
      const target = condenseStage(p, m.factor);
      let done = this.dropped.get(m.name)!;
      if (target <= done) continue;
      const w = this.vars.get(m.weight)!.dataSync() as Float32Array;
      const l1 = tapL1(w, m.inCh * m.outCh);
      const mask = this.masks.get(m.name)!;
      for (; done < target; done++) sfrDrop(l1, mask, m.inCh, m.outCh, m.groups, m.factor);
      this.dropped.set(m.name, done);
      changed = true;
    }
    if (!changed) return [];
    this.stage = { lgc: 0, sfr: [...this.dropped.values()].reduce((a, b) => a + b, 0) };
    this.maskState.refresh();
    return [{ kind: 'sfr', from, to: this.stage.sfr, progress: p }];
  }

  /** Group lasso on the SFR weights, per (input group, output) over the group's inputs and the taps, until final. */
  lassoLoss(): tf.Scalar {
    return tf.tidy(() => {
      let total: tf.Tensor = tf.scalar(0);
      for (const m of this.maskList) {
        if (this.dropped.get(m.name)! >= m.factor - 1) continue;
        const sq = tf.sum(tf.square(tf.mul(this.get(m.weight), this.maskState.tensor(m.name))), [0, 1]);
        const norms = tf.sqrt(tf.add(tf.sum(tf.reshape(sq, [m.inCh / m.groups, m.groups, m.outCh]), 0), 1e-12));
        total = tf.add(total, tf.sum(norms));
      }
      return total as tf.Scalar;
    });
  }

  forward(x: tf.Tensor4D, training: boolean, stats?: BnBatchStat[], lookup?: TensorLookup): tf.Tensor2D {
    const get = lookup ?? ((n: string) => this.get(n));
    const cfg = this.cfg;
    const n = x.shape[0];

    // BN (+ ReLU) over the channels of an NHWC map, as a [pixels, channels] matrix.
    const bn = (h: tf.Tensor4D, name: string, act: BnAct): tf.Tensor4D => {
      const [, hh, ww, c] = h.shape;
      const h2d = tf.reshape(h, [n * hh * ww, c]) as tf.Tensor2D;
      const gamma = get(`${name}.gamma`) as tf.Tensor1D;
      const beta = get(`${name}.beta`) as tf.Tensor1D;
      const record = (mean: tf.Tensor1D, variance: tf.Tensor1D): void => {
        if (stats) stats.push({ name, mean: tf.keep(mean), variance: tf.keep(variance), count: h2d.shape[0] });
      };
      let y: tf.Tensor2D;
      if (training && act !== 'none' && fusedKernelsActive()) {
        y = fusedBatchNormAct(h2d, gamma, beta, act, BN_EPS, record);
      } else if (training) {
        y = batchNormTrain(h2d, gamma, beta, record);
        if (act !== 'none') y = activate(y, act);
      } else {
        const scale = tf.mul(gamma, tf.rsqrt(tf.add(get(`${name}.variance`), BN_EPS))) as tf.Tensor1D;
        const shift = tf.sub(beta, tf.mul(get(`${name}.mean`), scale)) as tf.Tensor1D;
        if (act !== 'none' && fusedKernelsActive()) y = affineAct(h2d, scale, shift, act);
        else {
          y = tf.add(tf.mul(h2d, scale), shift) as tf.Tensor2D;
          if (act !== 'none') y = activate(y, act);
        }
      }
      return tf.reshape(y, [n, hh, ww, c]) as tf.Tensor4D;
    };
    const pointwise = (h: tf.Tensor4D, name: string): tf.Tensor4D => {
      const [, hh, ww, c] = h.shape;
      const w = get(`${name}.weight`) as tf.Tensor2D;
      const y = tf.matMul(tf.reshape(h, [n * hh * ww, c]) as tf.Tensor2D, w);
      return bn(tf.reshape(y, [n, hh, ww, w.shape[1]]) as tf.Tensor4D, `${name}.bn`, 'relu');
    };
    const depthwise = (h: tf.Tensor4D, name: string, stride: number): tf.Tensor4D =>
      bn(depthwiseConv3x3(h, get(`${name}.weight`) as tf.Tensor4D, stride), `${name}.bn`, 'none');
    const branch = (h: tf.Tensor4D, u: ShuffleUnitSpec): tf.Tensor4D =>
      pointwise(depthwise(pointwise(h, `${u.prefix}.main.pw1`), `${u.prefix}.main.dw`, u.stride), `${u.prefix}.main.pw2`);

    let f = bn(conv3x3(x, get('stem.weight') as tf.Tensor4D, cfg.stemStride), 'stem.bn', 'relu');
    if (cfg.maxPool) f = tf.maxPool(f, 3, 2, 1);
    for (const stage of this.units) {
      for (const u of stage) {
        if (u.stride === 2) {
          const proj = pointwise(depthwise(f, `${u.prefix}.proj.dw`, 2), `${u.prefix}.proj.pw`);
          f = concatShuffle(proj, branch(f, u));
          continue;
        }
        const [x1, x2] = splitHalves(f);
        const m = branch(x2, u);
        let kept = x1;
        if (u.sfr) {
          // SFR: BN-ReLU on the processed half, masked 3x3 conv, added onto the untouched half.
          const w = tf.mul(get(`${u.prefix}.sfr.weight`), this.maskState.tensor(`${u.prefix}.sfr.mask`)) as tf.Tensor4D;
          kept = tf.add(x1, conv3x3(bn(m, `${u.prefix}.sfr.bn`, 'relu'), w, 1));
        }
        f = concatShuffle(kept, m);
      }
    }
    const h = pointwise(f, 'head.conv');
    const [, hh, ww, c] = h.shape;
    const v = tf.reshape(tf.avgPool(h, [hh, ww], 1, 'valid'), [n, c]) as tf.Tensor2D;
    return tf.add(tf.matMul(v, get('head.classifier.weight') as tf.Tensor2D), get('head.classifier.bias')) as tf.Tensor2D;
  }

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

/** Sum of |w| over the nine taps of a [3, 3, in, out] weight: an [in, out] matrix (the L1 the SFR drop ranks). */
export function tapL1(w: Float32Array, inOut: number): Float32Array {
  const out = new Float32Array(inOut);
  for (let t = 0; t < 9; t++) for (let i = 0; i < inOut; i++) out[i] = out[i]! + Math.abs(w[t * inOut + i]!);
  return out;
}

type GradFn = Parameters<typeof tf.customGrad>[0];
const PAD1: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [1, 1], [1, 1], [0, 0]];

/**
 * 3x3 depthwise convolution, padding 1 (PyTorch's), weight [3, 3, C, 1]. Elsewhere than on cdnv2-wasm the filter
 * gradient is computed as a forward depthwise convolution of the input by the output gradient (batch folded into
 * channels), which the CPU kernels do an order of magnitude faster than their own filter-gradient kernel.
 */
export function depthwiseConv3x3(x: tf.Tensor4D, w: tf.Tensor4D, stride: number): tf.Tensor4D {
  // cdnv2-wasm has SIMD kernels for the convolution and both its gradients under TF.js's own kernel names.
  if (fusedKernelsActive()) return tf.depthwiseConv2d(x, w, stride, PAD1);
  const op = tf.customGrad(((xi: tf.Tensor, wi: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xi, wi]);
    return {
      value: tf.depthwiseConv2d(xi as tf.Tensor4D, wi as tf.Tensor4D, stride, PAD1),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor4D];
        const d = dy as tf.Tensor4D;
        // The kernel tf.depthwiseConv2d's own gradient runs (not exported as an op).
        const dx = tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy: d, filter: ws },
          { strides: stride, pad: PAD1, dilations: 1, inputShape: xs.shape } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
        return [dx, depthwiseFilterGrad(xs, d, stride)];
      },
    };
  }) as unknown as GradFn);
  return op(x, w) as tf.Tensor4D;
}

/** dW[ky, kx, c] = sum over n, h, w of xpad[n, s*h + ky, s*w + kx, c] * dy[n, h, w, c]. */
function depthwiseFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, stride: number): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const [, ho, wo] = dy.shape;
  // Images side by side as channels: [1, H, W, n*C]; the output gradient as a dilated [Ho, Wo, n*C, 1] filter.
  const xs = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, h, w, n * c]) as tf.Tensor4D;
  const f = tf.reshape(tf.transpose(dy, [1, 2, 0, 3]), [ho, wo, n * c, 1]) as tf.Tensor4D;
  let r = tf.depthwiseConv2d(xs, f, 1, PAD1, 'NHWC', stride) as tf.Tensor4D;
  if (r.shape[1] !== 3 || r.shape[2] !== 3) r = tf.slice(r, [0, 0, 0, 0], [1, 3, 3, n * c]);
  return tf.reshape(tf.sum(tf.reshape(r, [9, n, c]), 1), [3, 3, c, 1]) as tf.Tensor4D;
}

/** shuffle(concat[a, b]) with 2 groups: out[2k] = a[k], out[2k + 1] = b[k] (channels last). */
export function concatShuffle(a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor4D {
  const [n, h, w, c] = a.shape;
  const m = n * h * w;
  // Concat and slices rather than stack/unstack: those are the kernels the wasm training backend copies in runs.
  const op = tf.customGrad(((ai: tf.Tensor, bi: tf.Tensor) => ({
    value: tf.reshape(tf.concat([tf.reshape(ai, [m, c, 1]), tf.reshape(bi, [m, c, 1])], 2), [n, h, w, 2 * c]),
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
      const d = tf.reshape(dy as tf.Tensor, [m, c, 2]);
      return [tf.reshape(tf.slice(d, [0, 0, 0], [m, c, 1]), [n, h, w, c]), tf.reshape(tf.slice(d, [0, 0, 1], [m, c, 1]), [n, h, w, c])];
    },
  })) as unknown as GradFn);
  return op(a, b) as tf.Tensor4D;
}

/** One half of the channels (0: the first, 1: the second); its gradient is a concat with zeros. */
function channelHalf(x: tf.Tensor4D, half: 0 | 1): tf.Tensor4D {
  const [n, h, w, c2] = x.shape;
  const c = c2 / 2;
  const op = tf.customGrad(((xi: tf.Tensor) => ({
    value: tf.slice(xi, [0, 0, 0, half * c], [n, h, w, c]),
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
      const z = tf.zeros([n, h, w, c]);
      return [tf.concat(half === 0 ? [dy as tf.Tensor, z] : [z, dy as tf.Tensor], 3)];
    },
  })) as unknown as GradFn);
  return op(x) as tf.Tensor4D;
}

/** The channel split of a basic unit: [X[0 .. C/2), X[C/2 .. C)]. */
export function splitHalves(x: tf.Tensor4D): [tf.Tensor4D, tf.Tensor4D] {
  return [channelHalf(x, 0), channelHalf(x, 1)];
}
