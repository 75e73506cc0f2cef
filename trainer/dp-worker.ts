// The data-parallel worker thread (see data-parallel.ts): a replica of the model that computes the gradients of
// its part of each batch from the weights and masks the main thread publishes in shared memory.
import * as tf from '@tensorflow/tfjs';
import { parentPort, workerData } from 'node:worker_threads';

import { selectBackend } from './backend.js';
import { sharedLayout, type FromWorker, type ToWorker, type WorkerInit } from './data-parallel.js';
import { networkTensorInventory } from '../base/arch/networks.js';
import { createTrainModel } from './net.js';
import { disposeSlice, sliceGradients } from './step.js';

const init = workerData as WorkerInit;
const port = parentPort!;
const send = (m: FromWorker): void => port.postMessage(m);

try {
  const backend = await selectBackend(init.backend, () => {}, { threads: init.threads });
  const values = new Float32Array(init.buffers.values);
  const grads = new Float32Array(init.buffers.grads);
  const masks = new Uint8Array(init.buffers.masks);
  const x = new Float32Array(init.buffers.x);
  const y = new Int32Array(init.buffers.y);
  const logits = new Float32Array(init.buffers.logits);
  const stats = new Float32Array(init.buffers.stats);

  // Batch-norm running statistics are never used here (training-mode forward passes only): placeholders.
  const placeholders = new Map<string, Float32Array>();
  for (const t of networkTensorInventory(init.config, init.sfr)) placeholders.set(t.name, new Float32Array(t.shape.reduce((a, b) => a * b, 1)));
  const model = createTrainModel(init.config, init.sfr, placeholders);
  const layout = sharedLayout(model);
  // Which publication of `values` the model holds: a step's (parameters only) or an evaluation's (every tensor).
  let loaded = { version: 0, all: false };
  let masksVersion = 0;
  const { height: H, width: W, channels: C } = init.config.input;
  const load = (version: number, all: boolean): void => {
    if (loaded.version === version && (loaded.all || !all)) return;
    for (const v of all ? layout.tensors : layout.params) {
      const t = tf.tensor(values.slice(v.offset, v.offset + v.size), v.shape);
      (model.get(v.name) as tf.Variable).assign(t);
      t.dispose();
    }
    loaded = { version, all };
  };
  const loadMasks = (version: number): void => {
    if (version === masksVersion) return;
    model.setMasks(new Map(layout.masks.map((e) => [e.name, masks.subarray(e.offset, e.offset + e.size)])));
    masksVersion = version;
  };

  port.on('message', (m: ToWorker) => {
    if (m.type === 'close') { model.dispose(); port.close(); return; }
    try {
      if (m.type === 'eval') {
        // Eval-mode logits of the published weights and running statistics (the live ones or EMA copies).
        load(m.valuesVersion, true);
        loadMasks(m.masksVersion);
        const out = tf.tidy(() => model.forward(tf.tensor4d(x.slice(0, m.n * H * W * C), [m.n, H, W, C]), false));
        logits.set(out.dataSync() as Float32Array);
        out.dispose();
        send({ type: 'evaluated' });
        return;
      }
      load(m.valuesVersion, false);
      loadMasks(m.masksVersion);
      const r = sliceGradients(model, x, y, m.n, m.loss);
      for (const p of layout.params) {
        const g = r.grads.get(p.name); // absent: frozen in this step
        if (g) grads.set(g.dataSync() as Float32Array, p.offset);
      }
      logits.set(r.logits.dataSync() as Float32Array);
      let off = 0;
      const shapes: { name: string; channels: number; count: number }[] = [];
      for (const s of r.stats) {
        const c = s.mean.size;
        stats.set(s.mean.dataSync() as Float32Array, off);
        stats.set(s.variance.dataSync() as Float32Array, off + c);
        off += 2 * c;
        shapes.push({ name: s.name, channels: c, count: s.count });
      }
      disposeSlice(r);
      send({ type: 'done', loss: r.loss, stats: shapes });
    } catch (e) {
      send({ type: 'error', message: (e as Error).message });
    }
  });
  send({ type: 'ready', backend });
} catch (e) {
  send({ type: 'error', message: (e as Error).message });
}
