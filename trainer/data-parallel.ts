// Data-parallel training on two cores: a worker thread holds a replica of the model and computes the gradients
// of the second half of every batch while the main thread computes the first half; the main thread averages them
// and updates its weights, which the worker copies before the next step.
//
// Why: one training process keeps a second kernel thread idle through everything between the split kernels (the
// JS side of TF.js, small ops, hand-offs); two replicas with one thread each keep both cores busy. The price is
// batch-norm statistics over each half of the batch ("ghost" batch norm) in the forward pass; the running
// statistics are still those of the whole batch (combined exactly below).
//
// All tensors cross in SharedArrayBuffers laid out from the model's tensor and mask inventories (no copies
// through messages); the messages only say "step n with these sizes" and "done".
import * as tf from '@tensorflow/tfjs';
import { Worker } from 'node:worker_threads';

import type { NetworkConfig } from '../base/arch/networks.js';
import type { BackendChoice } from './backend.js';
import type { BnBatchStat } from './model.js';
import type { TrainModel } from './net.js';
import { disposeSlice, sliceGradients, type LossOptions, type SliceGradients } from './step.js';

export interface SharedBuffers {
  values: SharedArrayBuffer;   // f32, every tensor of the model in inventory order: the trainable parameters for a
                               // step, all of them (with BN running statistics, or EMA copies) for an evaluation
  grads: SharedArrayBuffer;    // f32, same layout (parameters only)
  masks: SharedArrayBuffer;    // u8, masks in model.maskList order
  x: SharedArrayBuffer;        // f32, the worker's images (NHWC)
  y: SharedArrayBuffer;        // i32, their labels
  logits: SharedArrayBuffer;   // f32, the worker's logits
  stats: SharedArrayBuffer;    // f32, per BN layer: mean[C] then biased variance[C], in forward order
}

export interface WorkerInit {
  config: NetworkConfig;
  sfr: boolean;
  backend: BackendChoice;
  threads: number;
  buffers: SharedBuffers;
}

export type ToWorker =
  | { type: 'step'; n: number; valuesVersion: number; masksVersion: number; loss: LossOptions }
  | { type: 'eval'; n: number; valuesVersion: number; masksVersion: number }
  | { type: 'close' };

export type FromWorker =
  | { type: 'ready'; backend: string }
  | { type: 'done'; loss: number; stats: { name: string; channels: number; count: number }[] }
  | { type: 'evaluated' }
  | { type: 'error'; message: string };

export interface TensorSlot { name: string; shape: number[]; offset: number; size: number; param: boolean }

/** Offsets of every tensor and mask in the shared buffers (same on both sides). */
export function sharedLayout(model: TrainModel): {
  tensors: TensorSlot[]; tensorCount: number; params: TensorSlot[];
  masks: { name: string; offset: number; size: number }[]; maskCount: number; bnChannels: number;
} {
  let off = 0;
  const tensors = model.inventory.map((t) => {
    const size = t.shape.reduce((a, b) => a * b, 1);
    const e = { name: t.name, shape: t.shape, offset: off, size, param: t.kind === 'param' };
    off += size;
    return e;
  });
  let moff = 0;
  const masks = model.maskList.map((m) => {
    const e = { name: m.name, offset: moff, size: m.inCh * m.outCh };
    moff += e.size;
    return e;
  });
  const bnChannels = model.inventory.filter((t) => t.name.endsWith('.gamma')).reduce((a, t) => a + t.shape[0]!, 0);
  return { tensors, tensorCount: off, params: tensors.filter((t) => t.param), masks, maskCount: moff, bnChannels };
}

/** The worker's bootstrap code (an eval'd script that imports dp-worker). */
function workerSource(): string {
  // Under tsx (sources) the worker must register tsx's loader itself: Node 20 does not pass it on to workers.
  const ts = import.meta.url.endsWith('.ts');
  const url = new URL(ts ? './dp-worker.ts' : './dp-worker.js', import.meta.url).href;
  return ts
    ? `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url)}); })`
    : `import(${JSON.stringify(url)})`;
}

export class DataParallel {
  private readonly layout: ReturnType<typeof sharedLayout>;
  private readonly views: { values: Float32Array; grads: Float32Array; masks: Uint8Array; x: Float32Array; y: Int32Array; logits: Float32Array; stats: Float32Array };
  /** Bumped at every publication of `values` (a step's parameters or an evaluation's tensors). */
  private valuesVersion = 0;
  private masksVersion = 0;
  private masksKey = '';
  private pending?: { resolve: (m: FromWorker) => void; reject: (e: Error) => void };
  private failure?: Error;
  private readonly onExit = (code: number): void => this.fail(new Error(`data-parallel worker exited (code ${code})`));
  private constructor(private readonly worker: Worker, model: TrainModel, buffers: SharedBuffers, readonly workerBackend: string) {
    this.layout = sharedLayout(model);
    this.views = {
      values: new Float32Array(buffers.values), grads: new Float32Array(buffers.grads), masks: new Uint8Array(buffers.masks),
      x: new Float32Array(buffers.x), y: new Int32Array(buffers.y), logits: new Float32Array(buffers.logits), stats: new Float32Array(buffers.stats),
    };
    worker.on('message', (m: FromWorker) => this.settle(m));
    worker.on('error', (e) => this.fail(new Error(`data-parallel worker failed: ${e.message}`)));
    worker.on('exit', this.onExit);
  }

  /** Starts the worker with a replica of `model` (same configuration); resolves once its backend is ready. */
  static async start(model: TrainModel, opts: { backend: BackendChoice; threads?: number; maxSlice: number }): Promise<DataParallel> {
    const lay = sharedLayout(model);
    const { height: H, width: W, channels: C } = model.cfg.input;
    const buffers: SharedBuffers = {
      values: new SharedArrayBuffer(4 * lay.tensorCount), grads: new SharedArrayBuffer(4 * lay.tensorCount),
      masks: new SharedArrayBuffer(Math.max(1, lay.maskCount)), x: new SharedArrayBuffer(4 * opts.maxSlice * H * W * C),
      y: new SharedArrayBuffer(4 * opts.maxSlice), logits: new SharedArrayBuffer(4 * opts.maxSlice * model.cfg.classes),
      stats: new SharedArrayBuffer(4 * 2 * lay.bnChannels),
    };
    const init: WorkerInit = { config: model.cfg, sfr: model.sfr, backend: opts.backend, threads: opts.threads ?? 1, buffers };
    const worker = new Worker(workerSource(), { eval: true, workerData: init });
    const listeners: { message?: (m: FromWorker) => void; error?: (e: Error) => void; exit?: (code: number) => void } = {};
    const ready = await new Promise<FromWorker>((resolve, reject) => {
      listeners.message = resolve;
      listeners.error = reject;
      listeners.exit = (code) => reject(new Error(`exited during start-up (code ${code})`));
      worker.once('message', listeners.message).once('error', listeners.error).once('exit', listeners.exit);
    }).catch((e: Error) => { void worker.terminate(); throw new Error(`data-parallel worker could not start: ${e.message}`); });
    // Only our own listeners: Worker keeps internal ones (its message port starts and stops with them).
    worker.off('message', listeners.message!).off('error', listeners.error!).off('exit', listeners.exit!);
    if (ready.type !== 'ready') {
      void worker.terminate();
      throw new Error(`data-parallel worker could not start: ${ready.type === 'error' ? ready.message : ready.type}`);
    }
    return new DataParallel(worker, model, buffers, ready.backend);
  }

  private settle(m: FromWorker): void {
    const p = this.pending;
    this.pending = undefined;
    if (!p) return;
    if (m.type === 'error') p.reject(new Error(`data-parallel worker: ${m.message}`));
    else p.resolve(m);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    const p = this.pending;
    this.pending = undefined;
    p?.reject(e);
  }

  /**
   * Gradients of the mean loss over the whole batch (n images of x, y): the first ceil(n/2) images here, the rest
   * on the worker, combined weighted by their sizes. Same result type as sliceGradients over the whole batch.
   */
  async step(model: TrainModel, x: Float32Array, y: Int32Array, n: number, loss: LossOptions): Promise<SliceGradients> {
    if (this.failure) throw this.failure;
    const { height: H, width: W, channels: C } = model.cfg.input;
    const per = H * W * C;
    const n1 = Math.floor(n / 2);
    const n0 = n - n1;
    if (n1 < 1) throw new Error(`data-parallel step needs at least 2 images, got ${n}`);
    if (n1 * per > this.views.x.length) throw new Error(`data-parallel step: ${n1} images exceed the worker's buffer`);
    // Publish the current weights (every step: the last update changed them) and, on a stage change, the masks.
    for (const p of this.layout.params) this.views.values.set(model.get(p.name).dataSync() as Float32Array, p.offset);
    this.valuesVersion++;
    this.publishMasks(model);
    this.views.x.set(x.subarray(n0 * per, n * per));
    this.views.y.set(y.subarray(n0, n));
    const remote = new Promise<FromWorker>((resolve, reject) => { this.pending = { resolve, reject }; });
    const msg: ToWorker = { type: 'step', n: n1, valuesVersion: this.valuesVersion, masksVersion: this.masksVersion, loss: { ...loss, groupLasso: 0 } };
    this.worker.postMessage(msg);
    // The group-lasso term is added once, on this half, scaled so that the weighting below leaves it whole.
    let local: SliceGradients;
    try {
      local = sliceGradients(model, x, y, n0, { ...loss, groupLasso: (loss.groupLasso * n) / n0 });
    } catch (e) {
      await remote.catch(() => undefined);
      throw e;
    }
    let done: FromWorker;
    try {
      done = await remote;
    } catch (e) {
      disposeSlice(local);
      throw e;
    }
    if (done.type !== 'done') throw new Error(`data-parallel worker: unexpected ${done.type}`);
    return combine(local, done, this.views, this.layout, n0, n1);
  }

  private publishMasks(model: TrainModel): void {
    const key = `${model.stage.lgc}/${model.stage.sfr}`;
    if (key !== this.masksKey) {
      for (const m of this.layout.masks) this.views.masks.set(model.masks.get(m.name)!, m.offset);
      this.masksKey = key;
      this.masksVersion++;
    }
  }

  /**
   * An evaluateSource `logitsOf` that splits every batch between the two replicas: eval-mode logits of the weights
   * and running statistics `lookup` gives (default: the model's own), published to the worker once, here.
   */
  evaluator(model: TrainModel, lookup?: (name: string) => tf.Tensor): (images: Float32Array, count: number) => Promise<tf.Tensor2D> {
    const get = lookup ?? ((n: string) => model.get(n));
    for (const v of this.layout.tensors) this.views.values.set(get(v.name).dataSync() as Float32Array, v.offset);
    this.valuesVersion++;
    this.publishMasks(model);
    const valuesVersion = this.valuesVersion;
    const { height: H, width: W, channels: C } = model.cfg.input;
    const per = H * W * C, classes = model.cfg.classes;
    return async (images, count) => {
      if (this.failure) throw this.failure;
      const n1 = Math.min(Math.floor(count / 2), Math.floor(this.views.x.length / per));
      const n0 = count - n1;
      this.views.x.set(images.subarray(n0 * per, count * per));
      const remote = new Promise<FromWorker>((resolve, reject) => { this.pending = { resolve, reject }; });
      const msg: ToWorker = { type: 'eval', n: n1, valuesVersion, masksVersion: this.masksVersion };
      if (n1 > 0) this.worker.postMessage(msg);
      else this.pending = undefined;
      const local = tf.tidy(() => model.forward(tf.tensor4d(images.subarray(0, n0 * per), [n0, H, W, C]), false, undefined, lookup));
      if (n1 === 0) return local;
      try {
        await remote;
      } catch (e) {
        local.dispose();
        throw e;
      }
      const both = tf.tidy(() => tf.concat([local, tf.tensor2d(this.views.logits.slice(0, n1 * classes), [n1, classes])], 0) as tf.Tensor2D);
      local.dispose();
      return both;
    };
  }

  async close(): Promise<void> {
    this.worker.off('exit', this.onExit);
    this.worker.postMessage({ type: 'close' } satisfies ToWorker);
    await this.worker.terminate();
  }
}

function combine(local: SliceGradients, done: Extract<FromWorker, { type: 'done' }>, views: DataParallel['views'],
  layout: ReturnType<typeof sharedLayout>, n0: number, n1: number): SliceGradients {
  const n = n0 + n1;
  const w0 = n0 / n, w1 = n1 / n;
  if (done.stats.length !== local.stats.length || done.stats.some((s, i) => s.name !== local.stats[i]!.name)) {
    throw new Error('data-parallel worker: batch-norm layers differ from the main replica');
  }
  const classes = local.logits.shape[1];
  const grads = new Map<string, tf.Tensor>();
  let logits!: tf.Tensor2D;
  let stats: BnBatchStat[] = [];
  // One plain loop per parameter rather than three TF.js ops: this runs while the worker waits.
  for (const p of layout.params) {
    const t0 = local.grads.get(p.name);
    if (!t0) continue; // frozen in this step (the worker skipped it too)
    const g0 = t0.dataSync() as Float32Array;
    const g = new Float32Array(p.size);
    for (let i = 0, j = p.offset; i < p.size; i++, j++) g[i] = w0 * g0[i]! + w1 * views.grads[j]!;
    grads.set(p.name, tf.tensor(g, p.shape));
  }
  tf.tidy(() => {
    logits = tf.keep(tf.concat([local.logits, tf.tensor2d(views.logits.slice(0, n1 * classes), [n1, classes])], 0)) as tf.Tensor2D;
    // Whole-batch statistics from the halves': mean = weighted mean; E[x^2] likewise, variance = E[x^2] - mean^2.
    let off = 0;
    stats = local.stats.map((s, i) => {
      const c = done.stats[i]!.channels;
      // Same shape as this replica's own statistics, whatever batch-norm kernel made them.
      const m1 = tf.tensor(views.stats.slice(off, off + c), s.mean.shape);
      const v1 = tf.tensor(views.stats.slice(off + c, off + 2 * c), s.variance.shape);
      off += 2 * c;
      const c0 = s.count, c1 = done.stats[i]!.count;
      const a = c0 / (c0 + c1), b = c1 / (c0 + c1);
      const mean = tf.add(tf.mul(s.mean, a), tf.mul(m1, b));
      const sq = tf.add(tf.mul(tf.add(s.variance, tf.square(s.mean)), a), tf.mul(tf.add(v1, tf.square(m1)), b));
      const variance = tf.relu(tf.sub(sq, tf.square(mean)));
      return { name: s.name, mean: tf.keep(mean), variance: tf.keep(variance), count: c0 + c1 };
    });
  });
  const result: SliceGradients = { loss: w0 * local.loss + w1 * done.loss, grads, logits, stats, count: n };
  disposeSlice(local);
  return result;
}
