// Data-parallel training (trainer/data-parallel.ts): the worker's half of a batch must give exactly what the main
// thread would compute for that half itself, combined as the mean loss over the whole batch; a data-parallel run
// must learn and resume bit-exactly like a single-replica one.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import t from 'tap';

import { selectBackend } from '../../trainer/backend.js';
import { loadCheckpoint } from '../../trainer/checkpoint.js';
import { openSynthetic } from '../../base/data/synthetic.js';
import { DataParallel } from '../../trainer/data-parallel.js';
import { evaluateSource } from '../../trainer/evaluate.js';
import { CdnModel, initialValues } from '../../trainer/model.js';
import { Rng } from '../../base/rng.js';
import { disposeSlice, sliceGradients } from '../../trainer/step.js';
import { train, type TrainRun } from '../../trainer/train.js';
import { registerWasmTrainBackend, WASM_BACKEND } from '../../trainer/wasm/backend.js';
import { TINY, tinyRun, tinySources } from '../helpers/tiny-run.js';

const cfg = TINY;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-dp-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) { num += (a[i]! - b[i]!) ** 2; den += b[i]! ** 2; }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

function batch(n: number, seed: number): { x: Float32Array; y: Int32Array } {
  const rng = new Rng(seed);
  const x = new Float32Array(n * 64);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const y = Int32Array.from({ length: n }, (_, i) => (i * 7 + seed) % cfg.classes);
  return { x, y };
}

/** A model whose masks have dropped connections (stage 2 of the LGC schedule), so the worker must follow them. */
function maskedModel(): CdnModel {
  const m = new CdnModel(cfg, true, initialValues(cfg, true, 5));
  m.updateMasks(0.3);
  return m;
}

for (const backend of ['cpu', 'wasm'] as const) {
  t.test(`${backend}: one step equals the two halves computed here, weighted; BN statistics of the whole batch`, async (t) => {
    if (backend === 'cpu') await selectBackend('cpu');
    else {
      if (!registerWasmTrainBackend({ threads: 1 })) return t.skip('cdnv2-wasm backend unavailable');
      await tf.setBackend(WASM_BACKEND);
    }
    const model = maskedModel();
    t.ok(model.stage.lgc > 0, 'masks have dropped connections');
    const n = 13; // odd: 7 here, 6 on the worker
    const { x, y } = batch(n, 3);
    const lasso = 1e-3;
    const dp = await DataParallel.start(model, { backend, threads: 1, maxSlice: 8 });
    t.teardown(() => dp.close());
    const before = tf.memory().numTensors;
    const got = await dp.step(model, x, y, n, { labelSmoothing: 0.1, groupLasso: lasso });

    // Reference: the definition of the batch loss, L = (7 L_a + 6 L_b) / 13 + lambda * lasso, each half with its own
    // batch-norm statistics, all computed on this thread.
    const a = sliceGradients(model, x, y, 7, { labelSmoothing: 0.1, groupLasso: 0 });
    const b = sliceGradients(model, x.subarray(7 * 64), y.subarray(7), 6, { labelSmoothing: 0.1, groupLasso: 0 });
    const params = model.trainable();
    const { value: lv, grads: lg } = tf.variableGrads(() => model.lassoLoss(), params.map((p) => p.variable));
    const lassoByName = new Map(params.map((p) => [p.name, lg[p.variable.name]]));
    const lassoValue = model.lassoLoss();
    const wantLoss = (7 * a.loss + 6 * b.loss) / 13 + lasso * lassoValue.dataSync()[0]!;
    lassoValue.dispose();
    t.ok(Math.abs(got.loss - wantLoss) < 1e-5 * Math.abs(wantLoss), `loss ${got.loss} = ${wantLoss}`);
    let worst = 0, worstName = '';
    for (const p of params) {
      const want = new Float32Array(p.variable.size);
      const ga = a.grads.get(p.name)!.dataSync(), gb = b.grads.get(p.name)!.dataSync();
      const gl = lassoByName.get(p.name)?.dataSync();
      for (let i = 0; i < want.length; i++) want[i] = (7 * ga[i]! + 6 * gb[i]!) / 13 + (gl ? lasso * gl[i]! : 0);
      const e = relErr(got.grads.get(p.name)!.dataSync() as Float32Array, want);
      if (e > worst) { worst = e; worstName = p.name; }
    }
    t.equal(got.grads.size, params.length, 'a gradient for every parameter');
    t.ok(worst < 1e-5, `gradients match (worst relative RMS ${worst.toExponential(2)} at ${worstName})`);
    const wantLogits = tf.concat([a.logits, b.logits], 0);
    t.same(got.logits.shape, [13, cfg.classes]);
    t.ok(relErr(got.logits.dataSync() as Float32Array, wantLogits.dataSync() as Float32Array) < 1e-6, 'logits of both halves, in batch order');

    // The first batch norm normalises the stem's output, which no other batch norm precedes: its combined
    // statistics must be those of the whole batch in one pass.
    const full = sliceGradients(model, x, y, n, { labelSmoothing: 0.1, groupLasso: 0 });
    t.equal(got.stats.length, full.stats.length);
    t.equal(got.stats[0]!.name, full.stats[0]!.name);
    t.equal(got.stats[0]!.count, full.stats[0]!.count, 'count over the whole batch');
    t.ok(relErr(got.stats[0]!.mean.dataSync() as Float32Array, full.stats[0]!.mean.dataSync() as Float32Array) < 1e-5, 'whole-batch mean');
    t.ok(relErr(got.stats[0]!.variance.dataSync() as Float32Array, full.stats[0]!.variance.dataSync() as Float32Array) < 1e-5, 'whole-batch variance');
    tf.dispose([wantLogits, lv, ...Object.values(lg)]);
    for (const s of [a, b, full]) disposeSlice(s);
    disposeSlice(got);
    t.equal(tf.memory().numTensors, before, 'no tensor leak');

    // The worker follows a later mask stage (the main model's masks change between steps).
    model.updateMasks(0.45);
    const again = await dp.step(model, x, y, n, { labelSmoothing: 0.1, groupLasso: 0 });
    const a2 = sliceGradients(model, x, y, 7, { labelSmoothing: 0.1, groupLasso: 0 });
    const b2 = sliceGradients(model, x.subarray(7 * 64), y.subarray(7), 6, { labelSmoothing: 0.1, groupLasso: 0 });
    const name = `${model.specs[0]![0]!.prefix}.lgc.weight`;
    const want = new Float32Array(a2.grads.get(name)!.size);
    const ga = a2.grads.get(name)!.dataSync(), gb = b2.grads.get(name)!.dataSync();
    for (let i = 0; i < want.length; i++) want[i] = (7 * ga[i]! + 6 * gb[i]!) / 13;
    t.ok(relErr(again.grads.get(name)!.dataSync() as Float32Array, want) < 1e-5, 'after a mask change, the worker uses the new masks');
    for (const s of [a2, b2, again]) disposeSlice(s);

    await t.rejects(dp.step(model, x, y, 1, { labelSmoothing: 0, groupLasso: 0 }), /at least 2 images/);
    await t.rejects(dp.step(model, x, y, 13 + 8, { labelSmoothing: 0, groupLasso: 0 }), /exceed the worker's buffer/);
    model.dispose();
  });
}

t.test('evaluation split over both replicas gives the logits of one, for live and for other (EMA) weights', async (t) => {
  await selectBackend('cpu');
  const model = maskedModel();
  // Running statistics that are not the initial 0/1, so that a worker ignoring them would differ.
  for (const [name, v] of model.vars) {
    if (name.endsWith('.mean')) v.assign(tf.fill(v.shape, 0.1));
    if (name.endsWith('.variance')) v.assign(tf.fill(v.shape, 1.7));
  }
  const other = new CdnModel(cfg, true, initialValues(cfg, true, 9));
  const dp = await DataParallel.start(model, { backend: 'cpu', threads: 1, maxSlice: 50 });
  t.teardown(() => dp.close());
  const src = () => openSynthetic({ split: 'test', count: 37, height: 8, width: 8, channels: 1, classes: 4 });
  for (const [what, lookup] of [['live weights', undefined], ['another set of weights', (n: string) => other.get(n)]] as const) {
    const want = await evaluateSource(model, src(), { keepLogits: true, batch: 10, lookup });
    const before = tf.memory().numTensors;
    const got = await evaluateSource(model, src(), { keepLogits: true, batch: 10, lookup, logitsOf: dp.evaluator(model, lookup) });
    t.equal(tf.memory().numTensors, before, `${what}: no tensor leak`);
    t.equal(got.count, 37);
    t.ok(relErr(got.logits!, want.logits!) < 1e-6, `${what}: same logits (${relErr(got.logits!, want.logits!).toExponential(1)})`);
    t.equal(got.accuracy, want.accuracy, `${what}: same accuracy`);
  }
  // The next training step uses the training weights again, not the ones evaluated last.
  const { x, y } = batch(10, 5);
  const step = await dp.step(model, x, y, 10, { labelSmoothing: 0, groupLasso: 0 });
  const a = sliceGradients(model, x, y, 5, { labelSmoothing: 0, groupLasso: 0 });
  const b = sliceGradients(model, x.subarray(5 * 64), y.subarray(5), 5, { labelSmoothing: 0, groupLasso: 0 });
  t.ok(Math.abs(step.loss - (a.loss + b.loss) / 2) < 1e-6, 'a step after the evaluation uses the training weights');
  for (const s of [step, a, b]) disposeSlice(s);
  other.dispose();
  model.dispose();
});

const sources = tinySources;

/** tinyRun trained data-parallel, both replicas on the CPU backend. */
function run(out: string, over: Partial<TrainRun> = {}): TrainRun {
  return tinyRun(out, { batch: 16, lr: 0.3, augment: false, backendChoice: 'cpu', workers: 2, ...over });
}

t.test('a data-parallel run learns, and resumes from inside an epoch exactly', async (t) => {
  await selectBackend('cpu');
  const logs: string[] = [];
  const before = tf.memory().numTensors;
  const r = await train(run(path.join(tmp, 'learn'), { log: (m) => logs.push(m) }));
  t.match(logs.join('\n'), /data-parallel: 2 replicas of 8 \+ 8 images \(worker: cpu/, 'the log says how the batch is split');
  const h = r.history;
  t.ok(h[3]!.trainLoss < h[0]!.trainLoss - 0.2, `train loss falls (${h[0]!.trainLoss.toFixed(3)} -> ${h[3]!.trainLoss.toFixed(3)})`);
  t.ok(h[3]!.testAccuracy > 0.6, `test accuracy ${h[3]!.testAccuracy} well above chance 0.25`);
  t.equal(tf.memory().numTensors, before, 'no tensor leak');
  t.match((await loadCheckpoint(path.join(tmp, 'learn'))).state.backend, /^cpu, data-parallel x2 \(worker: cpu/, 'checkpoints record the split');

  const a = path.join(tmp, 'full'), c = path.join(tmp, 'mid');
  const opts = { epochs: 2, batch: 32, sources: sources(96, 32) };
  await train(run(a, opts));
  await train(run(c, { ...opts, sources: sources(96, 32), stopAfterIterations: 4 }));
  await train(run(c, { ...opts, sources: sources(96, 32), resume: true }));
  const ca = await loadCheckpoint(a), cc = await loadCheckpoint(c);
  let same = 0;
  for (const [name, v] of ca.model) if (Buffer.compare(Buffer.from(cc.model.get(name)!.buffer), Buffer.from(v.buffer)) === 0) same++;
  t.equal(same, ca.model.size, 'every tensor (weights and BN running statistics) bit-identical after the resume');
  t.same(cc.state.history.map((x) => x.trainLoss), ca.state.history.map((x) => x.trainLoss));
});

t.test('a worker that dies gives a clear error, not a hang', async (t) => {
  await selectBackend('cpu');
  const model = maskedModel();
  const dp = await DataParallel.start(model, { backend: 'cpu', threads: 1, maxSlice: 8 });
  const { x, y } = batch(8, 4);
  disposeSlice(await dp.step(model, x, y, 8, { labelSmoothing: 0, groupLasso: 0 }));
  // Killed between steps (e.g. out of memory): the next step fails at once.
  await (dp as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
  await t.rejects(dp.step(model, x, y, 8, { labelSmoothing: 0, groupLasso: 0 }), /data-parallel worker exited/);
  await dp.close();
  // Killed while a step is in flight (terminated, its exit not yet seen when the step starts): that step fails.
  const dp2 = await DataParallel.start(model, { backend: 'cpu', threads: 1, maxSlice: 8 });
  void (dp2 as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
  await t.rejects(dp2.step(model, x, y, 8, { labelSmoothing: 0, groupLasso: 0 }), /data-parallel worker exited/);
  await dp2.close();
  model.dispose();
});

t.test('bad worker counts are refused', async (t) => {
  await t.rejects(train(run(path.join(tmp, 'bad'), { workers: 3 })), /workers must be 1 or 2, got 3/);
});
