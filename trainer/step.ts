// One training step: the forward and backward pass on a slice of a batch (the label-smoothed cross-entropy plus the
// optional group-lasso term, its gradient for every trainable parameter, the logits and the BN batch statistics),
// and the update that applies it. Shared by the training loop, the data-parallel worker and bench/train-speed, so
// all of them compute exactly the same thing.
import * as tf from '@tensorflow/tfjs';

import { BN_MOMENTUM, type BnBatchStat } from './model.js';
import type { TrainModel } from './net.js';

export interface LossOptions {
  labelSmoothing: number;
  /** Weight of the group-lasso penalty added to this slice's loss (0: none). */
  groupLasso: number;
  /** Differentiate only these parameters (fine-tuning with frozen layers); absent: every trainable one. */
  params?: string[];
}

export interface SliceGradients {
  loss: number;
  /** Gradient of each trainable parameter (those of LossOptions.params, if given), by parameter name (the checkpoint's). */
  grads: Map<string, tf.Tensor>;
  logits: tf.Tensor2D;
  stats: BnBatchStat[];
  count: number;
}

/** x: n normalised NHWC images, y: their labels. The caller disposes the returned tensors (disposeSlice). */
export function sliceGradients(model: TrainModel, x: Float32Array, y: Int32Array, n: number, opts: LossOptions): SliceGradients {
  const { height: H, width: W, channels: C } = model.cfg.input;
  const only = opts.params ? new Set(opts.params) : undefined;
  const params = only ? model.trainable().filter((p) => only.has(p.name)) : model.trainable();
  const byVar = new Map(params.map((p) => [p.variable.name, p.name]));
  const stats: BnBatchStat[] = [];
  let logits: tf.Tensor2D | undefined;
  const xt = tf.tensor4d(x.subarray(0, n * H * W * C), [n, H, W, C]);
  const onehot = tf.tidy(() => tf.oneHot(tf.tensor1d(y.subarray(0, n), 'int32'), model.cfg.classes));
  try {
    const { value, grads } = tf.variableGrads(() => {
      const out = model.forward(xt, true, stats);
      logits = tf.keep(out);
      const logp = tf.logSoftmax(out);
      const nll = tf.neg(tf.sum(tf.mul(onehot, logp), 1));
      const smooth = tf.neg(tf.mean(logp, 1));
      let loss = tf.mean(tf.add(tf.mul(nll, 1 - opts.labelSmoothing), tf.mul(smooth, opts.labelSmoothing))) as tf.Scalar;
      if (opts.groupLasso > 0) loss = tf.add(loss, tf.mul(model.lassoLoss(), opts.groupLasso)) as tf.Scalar;
      return loss;
    }, params.map((p) => p.variable));
    const loss = value.dataSync()[0]!;
    value.dispose();
    const byName = new Map<string, tf.Tensor>();
    for (const [v, g] of Object.entries(grads)) byName.set(byVar.get(v)!, g);
    return { loss, grads: byName, logits: logits!, stats, count: n };
  } finally {
    tf.dispose([xt, onehot]);
  }
}

export function disposeSlice(s: SliceGradients): void {
  tf.dispose([...s.grads.values(), s.logits, ...s.stats.flatMap((b) => [b.mean, b.variance])]);
}

export interface UpdateOptions {
  lr: number; momentum: number; weightDecay: number;
  /** Learning-rate multipliers by parameter name (a new classifier's, when fine-tuning); absent: 1. */
  lrScale?: Map<string, number>;
}

/**
 * SGD with Nesterov momentum (PyTorch form; weight decay only on conv and linear weights) from a step's gradients,
 * and the BN running statistics from its batch statistics (PyTorch convention: unbiased batch variance).
 * `momentum` holds one buffer per trainable parameter, by name.
 */
export function applyStep(model: TrainModel, step: SliceGradients, momentum: Map<string, tf.Variable>, o: UpdateOptions): void {
  const decays = new Map(model.trainable().map((p) => [p.name, p.decay]));
  tf.tidy(() => {
    for (const [name, g0] of step.grads) {
      const v = model.vars.get(name)!;
      let g: tf.Tensor = g0;
      if (decays.get(name) && o.weightDecay > 0) g = tf.add(g, tf.mul(v, o.weightDecay));
      const buf = momentum.get(name)!;
      buf.assign(tf.add(tf.mul(buf, o.momentum), g));
      v.assign(tf.sub(v, tf.mul(tf.add(g, tf.mul(buf, o.momentum)), o.lr * (o.lrScale?.get(name) ?? 1))));
    }
    for (const s of step.stats) {
      const rm = model.vars.get(`${s.name}.mean`)!;
      const rv = model.vars.get(`${s.name}.variance`)!;
      rm.assign(tf.add(tf.mul(rm, 1 - BN_MOMENTUM), tf.mul(s.mean, BN_MOMENTUM)));
      rv.assign(tf.add(tf.mul(rv, 1 - BN_MOMENTUM), tf.mul(s.variance, (BN_MOMENTUM * s.count) / Math.max(1, s.count - 1))));
    }
  });
}
