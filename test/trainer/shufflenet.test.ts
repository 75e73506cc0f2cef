// The SFR-ShuffleNetV2 training model: its eval forward against an independent float64 reference, the custom
// gradients against TF.js's own, the SFR mask schedule (expectations written here from the schedule's definition),
// training, checkpoints and resume (in process and after SIGKILL), on the CPU backend.
import * as tf from '@tensorflow/tfjs';
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { SHUFFLENET_CONFIGS, shuffleMaskInventory, shuffleTensorInventory, type ShuffleNetConfig } from '../../base/arch/shufflenet.js';
import { assembleBatch } from '../../base/data/index.js';
import { Rng } from '../../base/rng.js';
import { selectBackend } from '../../trainer/backend.js';
import { listCheckpointDirs, loadCheckpoint, maskReport, masksAreFinal, checkpointToNetworkParams } from '../../trainer/checkpoint.js';
import { evalLogits, networkEvalLogits } from '../../trainer/evaluate.js';
import { createTrainModel, networkInitialValues } from '../../trainer/net.js';
import { concatShuffle, depthwiseConv3x3, splitHalves, ShuffleModel } from '../../trainer/shufflenet-model.js';
import { tinyShuffleConfig } from '../../trainer/tiny.js';
import { train } from '../../trainer/train.js';
import { root } from '../helpers/cli.js';
import { tinyRun, tinySources } from '../helpers/tiny-run.js';
import { referenceShuffleForward } from '../reference/shufflenet.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-shufflenet-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
t.before(async () => { await selectBackend('cpu'); });

/** Random values for every tensor, BN statistics included, and random sparse masks. */
function randomState(cfg: ShuffleNetConfig, seed: number): { values: Map<string, Float32Array>; masks: Map<string, Uint8Array> } {
  const rng = new Rng([seed, 7, 11, 13]);
  const values = new Map<string, Float32Array>();
  for (const x of shuffleTensorInventory(cfg)) {
    const n = x.shape.reduce((a, b) => a * b, 1);
    const last = x.name.slice(x.name.lastIndexOf('.') + 1);
    values.set(x.name, Float32Array.from({ length: n }, () => (last === 'variance' ? 0.5 + rng.next() : last === 'gamma' ? 0.5 + rng.next() : (rng.next() * 2 - 1) * 0.6)));
  }
  const masks = new Map<string, Uint8Array>();
  for (const m of shuffleMaskInventory(cfg)) masks.set(m.name, Uint8Array.from({ length: m.inCh * m.outCh }, () => (rng.next() < 0.4 ? 1 : 0)));
  return { values, masks };
}

function chwOf(nhwc: Float32Array, i: number, h: number, w: number, c: number): Float64Array {
  const out = new Float64Array(c * h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) out[(k * h + y) * w + x] = nhwc[((i * h + y) * w + x) * c + k]!;
  return out;
}

t.test('eval forward equals the float64 reference (ImageNet stem with max pool, stride 2, odd sizes; SFR and plain)', async (t) => {
  for (const sfr of [true, false]) {
    // 3x19x19: stem stride 2 -> 10, max pool -> 5, stages at 3 and 2.
    const cfg = tinyShuffleConfig({ input: { channels: 3, height: 19, width: 19 }, stemStride: 2, maxPool: true, mean: [0, 0, 0], std: [1, 1, 1], sfr });
    const { values, masks } = randomState(cfg, sfr ? 1 : 2);
    const n = 3, per = 3 * 19 * 19;
    const rng = new Rng([5, 6, 7, 8]);
    const imgs = Float32Array.from({ length: n * per }, () => rng.next() * 2 - 1);
    const logits = networkEvalLogits(cfg, sfr, values, masks, imgs, n);
    let maxErr = 0, maxAbs = 0;
    for (let i = 0; i < n; i++) {
      const ref = referenceShuffleForward(cfg, values, masks, chwOf(imgs, i, 19, 19, 3));
      for (let k = 0; k < cfg.classes; k++) {
        maxErr = Math.max(maxErr, Math.abs(ref[k]! - logits[i * cfg.classes + k]!));
        maxAbs = Math.max(maxAbs, Math.abs(ref[k]!));
      }
    }
    t.ok(maxAbs > 0.1, `logits are not trivially small (${maxAbs.toFixed(3)})`);
    t.ok(maxErr < 1e-4 * Math.max(1, maxAbs), `${sfr ? 'SFR' : 'plain'}: max |TF.js - reference| ${maxErr.toExponential(2)}`);
  }
});

t.test('the named Fashion-MNIST variant runs: logits of shape [n, 10]', async (t) => {
  const cfg = SHUFFLENET_CONFIGS['sfr-shufflenetv2-fmnist']!;
  const m = createTrainModel(cfg, true, networkInitialValues(cfg, true, 3));
  const out = tf.tidy(() => m.forward(tf.zeros([2, 28, 28, 1]) as tf.Tensor4D, false));
  t.same(out.shape, [2, 10]);
  out.dispose();
  m.dispose();
});

t.test('custom gradients equal TF.js\'s own (depthwise 3x3 stride 1 and 2, shuffle, split) on awkward shapes', async (t) => {
  const rng = new Rng([1, 2, 3, 4]);
  const rnd = (shape: number[]): tf.Tensor => tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.next() * 2 - 1), shape);
  const close = (a: tf.Tensor, b: tf.Tensor, what: string): void => {
    t.same(a.shape, b.shape, `${what} shape`);
    const d = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
    t.ok(d < 1e-4, `${what}: max diff ${d.toExponential(2)}`);
  };
  for (const [stride, hw] of [[1, 7], [2, 7], [2, 8], [1, 5]] as const) {
    const x = rnd([2, hw, hw, 3]) as tf.Tensor4D, w = rnd([3, 3, 3, 1]) as tf.Tensor4D;
    const dy = rnd([2, Math.floor((hw - 1) / stride) + 1, Math.floor((hw - 1) / stride) + 1, 3]);
    const mine = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(depthwiseConv3x3(a as tf.Tensor4D, b as tf.Tensor4D, stride), dy)))([x, w]);
    const theirs = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, [[0, 0], [1, 1], [1, 1], [0, 0]]), dy)))([x, w]);
    close(depthwiseConv3x3(x, w, stride), tf.depthwiseConv2d(x, w, stride, [[0, 0], [1, 1], [1, 1], [0, 0]]), `forward s${stride} ${hw}x${hw}`);
    close(mine[0]!, theirs[0]!, `dx s${stride} ${hw}x${hw}`);
    close(mine[1]!, theirs[1]!, `dw s${stride} ${hw}x${hw}`);
  }
  const a = rnd([2, 3, 2, 5]) as tf.Tensor4D, b = rnd([2, 3, 2, 5]) as tf.Tensor4D, g = rnd([2, 3, 2, 10]);
  // Independent formulation: stack on a new last axis, flatten.
  const plain = (p: tf.Tensor, q: tf.Tensor): tf.Tensor => tf.reshape(tf.stack([p, q], 4), [2, 3, 2, 10]);
  close(concatShuffle(a, b), plain(a, b), 'shuffle forward');
  const s1 = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(concatShuffle(p as tf.Tensor4D, q as tf.Tensor4D), g)))([a, b]);
  const s2 = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(plain(p, q), g)))([a, b]);
  close(s1[0]!, s2[0]!, 'shuffle grad a');
  close(s1[1]!, s2[1]!, 'shuffle grad b');
  t.same(Array.from(concatShuffle(tf.tensor4d([1, 2], [1, 1, 1, 2]), tf.tensor4d([3, 4], [1, 1, 1, 2])).dataSync()), [1, 3, 2, 4], 'out[2k] = a[k], out[2k+1] = b[k]');
  const x = rnd([2, 3, 2, 10]) as tf.Tensor4D, h = rnd([2, 3, 2, 5]);
  const [x1, x2] = splitHalves(x);
  close(x1, tf.slice(x, [0, 0, 0, 0], [2, 3, 2, 5]), 'split first half');
  close(x2, tf.slice(x, [0, 0, 0, 5], [2, 3, 2, 5]), 'split second half');
  const gs = tf.grad((v: tf.Tensor) => { const [p, q] = splitHalves(v as tf.Tensor4D); return tf.add(tf.sum(tf.mul(p, h)), tf.sum(tf.mul(q, tf.mul(h, 2)))); })(x);
  close(gs, tf.concat([h, tf.mul(h, 2)], 3), 'split gradient');
});

t.test('the SFR mask schedule: per-mask S - 1 steps by condenseStage, L1 over the taps per input group', async (t) => {
  // Masks: s0.u1 (b = 4, S = G = 4) and s1.u1 (b = 8, S = G = 8). condenseStage: floor(2p(S-1)) before p = 0.5.
  const cfg = tinyShuffleConfig();
  const values = networkInitialValues(cfg, true, 1);
  // s0.u1: only tap (0, 0) nonzero, |w[j][o]| = ((o + j) mod 4) + 1 (one sign flipped: L1 takes the absolute value).
  const w = new Float32Array(9 * 16);
  for (let j = 0; j < 4; j++) for (let o = 0; o < 4; o++) w[j * 4 + o] = (((o + j) % 4) + 1) * (o === 1 ? -1 : 1);
  values.set('s0.u1.sfr.weight', w);
  const m = new ShuffleModel(cfg, values);
  const rows = (): number[][] => { const v = m.masks.get('s0.u1.sfr.mask')!; return [0, 1, 2, 3].map((j) => Array.from(v.subarray(j * 4, j * 4 + 4))); };
  t.same(m.updateMasks(0.05), [], 'p = 0.05: no step yet (floor(0.3) = floor(0.7) = 0)');
  t.same(m.updateMasks(0.1), [{ kind: 'sfr', from: 0, to: 1, progress: 0.1 }], 'p = 0.1: S = 8 takes its first step (floor(1.4)), S = 4 none');
  t.same(rows(), [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]);
  t.same(m.updateMasks(0.2), [{ kind: 'sfr', from: 1, to: 3, progress: 0.2 }], 'p = 0.2: S = 4 one step, S = 8 two');
  // Each input j drops its smallest output, o = (4 - j) mod 4.
  t.same(rows(), [[0, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 1], [1, 0, 1, 1]]);
  t.same(m.updateMasks(0.5), [{ kind: 'sfr', from: 3, to: 10, progress: 0.5 }], 'p = 0.5: final, 3 + 7 steps');
  t.same(rows(), [[0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]], 'each input keeps its largest output, o = (3 - j) mod 4');
  const big = m.masks.get('s1.u1.sfr.mask')!;
  for (let j = 0; j < 8; j++) t.equal(big.subarray(j * 8, j * 8 + 8).reduce((a, v) => a + v, 0), 1, `s1.u1 input ${j} keeps 1 of 8`);
  t.same(m.updateMasks(0.9), [], 'nothing after the first half');
  // A model built from these masks knows how far each got.
  const again = new ShuffleModel(cfg, values, m.masks);
  t.same(again.stage, { lgc: 0, sfr: 10 });
  t.same(again.updateMasks(0.6), []);
  // Plain configurations have no masks and no steps.
  const plainCfg = tinyShuffleConfig({ sfr: false });
  const plain = new ShuffleModel(plainCfg, networkInitialValues(plainCfg, false, 1));
  t.same([plain.maskList.length, plain.updateMasks(0.5)], [0, []]);
  for (const x of [m, again, plain]) x.dispose();
});

t.test('training lowers the loss, ends with final masks; the checkpoint\'s eval logits equal the reference', async (t) => {
  const cfg = tinyShuffleConfig();
  const out = path.join(tmp, 'learn');
  const before = tf.memory().numTensors;
  const r = await train(tinyRun(out, { arch: cfg.name, config: cfg, batch: 16, lr: 0.3, augment: false }));
  const h = r.history;
  t.equal(h.length, 4);
  t.ok(h[3]!.trainLoss < h[0]!.trainLoss - 0.2, `train loss falls (${h[0]!.trainLoss.toFixed(3)} -> ${h[3]!.trainLoss.toFixed(3)})`);
  t.ok(h[3]!.testAccuracy > 0.5, `test accuracy ${h[3]!.testAccuracy} above chance 0.25`);
  t.equal(r.stages.at(-1)!.to, 10, 'the SFR steps of both masks: 3 + 7');
  t.ok(r.stages.every((s) => s.kind === 'sfr' && s.progress <= 0.5));
  const ck = await loadCheckpoint(out);
  t.equal(ck.state.config.name, 'tiny-shufflenet');
  t.ok(masksAreFinal(ck), 'masks are final');
  for (const rep of maskReport(ck)) t.ok(rep.groupwise && rep.keptPerGroup.every((k) => k === 1), `${rep.name}: one output per input`);
  t.throws(() => checkpointToNetworkParams(ck), /ShuffleNet checkpoint/);
  const src = tinySources(8, 8).test;
  const imgs = new Float32Array(8 * 64);
  assembleBatch(src, cfg, [0, 1, 2, 3, 4, 5, 6, 7], imgs, new Int32Array(8));
  const logits = evalLogits(ck, imgs, 8);
  let maxErr = 0;
  for (let i = 0; i < 8; i++) {
    const ref = referenceShuffleForward(cfg, ck.model, ck.masks, Float64Array.from(imgs.subarray(i * 64, (i + 1) * 64)));
    for (let k = 0; k < 4; k++) maxErr = Math.max(maxErr, Math.abs(ref[k]! - logits[i * 4 + k]!));
  }
  t.ok(maxErr < 1e-4, `checkpoint eval logits match the reference (max err ${maxErr.toExponential(2)})`);
  t.equal(tf.memory().numTensors, before, 'no tensor leak');
});

t.test('resume, at an epoch end and inside an epoch, reproduces the uninterrupted run exactly', async (t) => {
  const cfg = tinyShuffleConfig();
  const base = { arch: cfg.name, config: cfg, epochs: 3, ema: 0.9 };
  const a = path.join(tmp, 'full'), b = path.join(tmp, 'split'), c = path.join(tmp, 'mid');
  await train(tinyRun(a, { ...base, sources: tinySources(96, 32) }));
  await train(tinyRun(b, { ...base, sources: tinySources(96, 32), stopAfterEpochs: 1 }));
  await train(tinyRun(b, { ...base, sources: tinySources(96, 32), resume: true }));
  const first = await train(tinyRun(c, { ...base, sources: tinySources(96, 32), stopAfterIterations: 4 }));
  t.match(path.basename(first.checkpoint), /^epoch-0001-it0000001$/);
  await train(tinyRun(c, { ...base, sources: tinySources(96, 32), resume: true }));
  const ca = await loadCheckpoint(a);
  for (const dir of [b, c]) {
    const cb = await loadCheckpoint(dir);
    for (const [name, v] of ca.model) t.same(Buffer.from(cb.model.get(name)!.buffer), Buffer.from(v.buffer), `${path.basename(dir)} ${name}`);
    for (const [name, v] of ca.momentum) t.same(Buffer.from(cb.momentum.get(name)!.buffer), Buffer.from(v.buffer), `${path.basename(dir)} momentum ${name}`);
    for (const [name, v] of ca.ema!) t.same(Buffer.from(cb.ema!.get(name)!.buffer), Buffer.from(v.buffer), `${path.basename(dir)} ema ${name}`);
    for (const [name, v] of ca.masks) t.same(cb.masks.get(name), v, `${path.basename(dir)} ${name}`);
    t.same(cb.state.stage, ca.state.stage);
    t.same(cb.state.history.map((x) => [x.trainLoss, x.testAccuracy]), ca.state.history.map((x) => [x.trainLoss, x.testAccuracy]));
  }
});

t.test('SIGKILL mid-epoch, then resume, equals an uninterrupted run', async (t) => {
  const child = path.join(root, 'test/helpers/train-child.ts');
  // 160 images: epochs of 10 iterations, the SFR stages in the first 15 of 30; the kill at iteration 14, so that the
  // resumed run goes through the last stage changes from a restored mask state, as it did with 320 images.
  const env = { ...process.env, CDNV2_CHILD_NET: 'shufflenet', CDNV2_CHILD_IMAGES: '160' };
  const run = (out: string, resume: boolean, killAt?: string) => spawnSync(process.execPath,
    ['--import', 'tsx', child, out, ...(resume ? ['--resume'] : [])],
    { cwd: root, encoding: 'utf8', timeout: 600_000, env: killAt ? { ...env, CDNV2_KILL_AT: killAt } : env });
  const full = path.join(tmp, 'kill-full'), killed = path.join(tmp, 'kill-killed');
  const a = run(full, false);
  t.equal(a.status, 0, a.status === 0 ? 'uninterrupted run finished' : a.stderr.slice(-800));
  const k = run(killed, false, 'epoch 2/3 iteration 4/10');
  t.equal(k.signal, 'SIGKILL');
  t.equal(listCheckpointDirs(killed).length, 1, 'only the epoch-1 checkpoint');
  const b = run(killed, true);
  t.equal(b.status, 0, b.status === 0 ? 'resumed run finished' : b.stderr.slice(-800));
  t.match(b.stderr, /resuming after epoch 1/);
  t.match(b.stderr, /sfr stage \d+ -> \d+ at iteration 1[5-9]/, 'a mask stage change after the kill point, in the resumed run');
  const ca = await loadCheckpoint(full), cb = await loadCheckpoint(killed);
  t.equal(cb.state.epochsDone, 3);
  const bytes = (m: Map<string, Float32Array | Uint8Array>): Buffer =>
    Buffer.concat([...m.keys()].sort().map((key) => { const v = m.get(key)!; return Buffer.from(v.buffer, v.byteOffset, v.byteLength); }));
  t.ok(bytes(cb.model).equals(bytes(ca.model)), 'weights and BN statistics: identical bytes');
  t.ok(bytes(cb.ema!).equals(bytes(ca.ema!)), 'EMA: identical bytes');
  t.ok(bytes(cb.momentum).equals(bytes(ca.momentum)), 'momentum: identical bytes');
  t.ok(bytes(cb.masks).equals(bytes(ca.masks)), 'masks: identical');
});
