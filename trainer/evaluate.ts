// Eval-mode forward passes (BN running statistics, EMA weights when present) on checkpoints.
import * as tf from '@tensorflow/tfjs';

import type { NetworkConfig } from '../base/arch/networks.js';
import type { LoadedCheckpoint } from './checkpoint.js';
import { assembleBatch, type ImageSource } from '../base/data/index.js';
import { createTrainModel, type TrainModel } from './net.js';

/** Builds the TF.js model of a checkpoint (EMA weights when opts.ema is true or, by default, when present). */
export function modelFromCheckpoint(ckpt: LoadedCheckpoint, opts: { ema?: boolean } = {}): TrainModel {
  const useEma = opts.ema ?? ckpt.ema !== undefined;
  if (useEma && !ckpt.ema) throw new Error(`${ckpt.dir}: EMA weights requested but the checkpoint has none`);
  const m = createTrainModel(ckpt.state.config, ckpt.state.options.sfr, useEma ? ckpt.ema! : ckpt.model, ckpt.masks);
  m.stage = { ...ckpt.state.stage };
  return m;
}

/**
 * Eval-mode logits of `n` images. `images` are normalised ((pixel/255 - mean)/std, the config's mean/std), laid
 * out N x H x W x C (NHWC, channels last) as float32. Returns N x classes logits (row-major).
 */
export function evalLogits(ckpt: LoadedCheckpoint, images: Float32Array, n: number, opts: { ema?: boolean; batch?: number } = {}): Float32Array {
  const cfg = ckpt.state.config;
  const per = cfg.input.height * cfg.input.width * cfg.input.channels;
  if (images.length < n * per) throw new Error(`evalLogits: ${images.length} values for ${n} images of ${per}`);
  const model = modelFromCheckpoint(ckpt, opts);
  try {
    return logitsOf(model, cfg, n, opts.batch ?? 64, (start, count) => images.subarray(start * per, (start + count) * per));
  } finally {
    model.dispose();
  }
}

/**
 * Eval-mode logits of `n` normalised NHWC images for a network given by its parameters (training-form tensors in
 * the checkpoint's layouts, BN running statistics included, and its masks; either family): what a converted model
 * must reproduce. Returns N x classes logits (row-major).
 */
export function networkEvalLogits(cfg: NetworkConfig, sfr: boolean, values: Map<string, Float32Array>, masks: Map<string, Uint8Array>,
  images: Float32Array, n: number, opts: { batch?: number } = {}): Float32Array {
  const per = cfg.input.height * cfg.input.width * cfg.input.channels;
  if (images.length < n * per) throw new Error(`networkEvalLogits: ${images.length} values for ${n} images of ${per}`);
  const model = createTrainModel(cfg, sfr, values, masks);
  try {
    return logitsOf(model, cfg, n, opts.batch ?? 64, (start, count) => images.subarray(start * per, (start + count) * per));
  } finally {
    model.dispose();
  }
}

function logitsOf(model: TrainModel, cfg: NetworkConfig, n: number, batch: number, slice: (start: number, count: number) => Float32Array): Float32Array {
  const out = new Float32Array(n * cfg.classes);
  for (let s = 0; s < n; s += batch) {
    const c = Math.min(batch, n - s);
    const logits = tf.tidy(() => model.forward(tf.tensor4d(slice(s, c), [c, cfg.input.height, cfg.input.width, cfg.input.channels]), false));
    out.set(logits.dataSync() as Float32Array, s * cfg.classes);
    logits.dispose();
  }
  return out;
}

export interface EvalResult { accuracy: number; loss: number; count: number; logits?: Float32Array }

export interface EvalOptions {
  batch?: number;
  keepLogits?: boolean;
  lookup?: (n: string) => tf.Tensor;
  onBatch?: (done: number) => void;
  /** Eval-mode logits of `count` normalised NHWC images (default: this thread's model.forward; data-parallel: split). */
  logitsOf?: (images: Float32Array, count: number) => Promise<tf.Tensor2D>;
}

/** Evaluates a model on the first `src.count` images in file order, batch by batch. */
export async function evaluateSource(model: TrainModel, src: ImageSource, opts: EvalOptions = {}): Promise<EvalResult> {
  const cfg = model.cfg;
  const batch = opts.batch ?? 100;
  const per = cfg.input.height * cfg.input.width * cfg.input.channels;
  const buf = new Float32Array(batch * per);
  const labels = new Int32Array(batch);
  const all = opts.keepLogits ? new Float32Array(src.count * cfg.classes) : undefined;
  let correct = 0, lossSum = 0;
  for (let s = 0; s < src.count; s += batch) {
    const c = Math.min(batch, src.count - s);
    const idx = Array.from({ length: c }, (_, i) => s + i);
    assembleBatch(src, cfg, idx, buf, labels);
    const given = opts.logitsOf ? await opts.logitsOf(buf, c) : undefined;
    const [logitsT, lossT] = tf.tidy(() => {
      const logits = given ?? model.forward(tf.tensor4d(buf.subarray(0, c * per), [c, cfg.input.height, cfg.input.width, cfg.input.channels]), false, undefined, opts.lookup);
      const oh = tf.oneHot(tf.tensor1d(labels.subarray(0, c), 'int32'), cfg.classes);
      const loss = tf.sum(tf.neg(tf.sum(tf.mul(oh, tf.logSoftmax(logits)), 1)));
      return [logits, loss];
    });
    const l = logitsT.dataSync() as Float32Array;
    lossSum += (lossT.dataSync() as Float32Array)[0]!;
    for (let i = 0; i < c; i++) {
      let best = 0;
      for (let k = 1; k < cfg.classes; k++) if (l[i * cfg.classes + k]! > l[i * cfg.classes + best]!) best = k;
      if (best === labels[i]) correct++;
    }
    all?.set(l, s * cfg.classes);
    tf.dispose([logitsT, lossT]); // logitsT is `given` when that was passed
    opts.onBatch?.(s + c);
  }
  return { accuracy: src.count ? correct / src.count : 0, loss: src.count ? lossSum / src.count : 0, count: src.count, logits: all };
}
