import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import t from 'tap';

import { selectBackend } from '../../trainer/backend.js';
import { checkpointToNetworkParams, listCheckpointDirs, loadCheckpoint, masksAreFinal, maskReport } from '../../trainer/checkpoint.js';
import { assembleBatch } from '../../base/data/index.js';
import { evalLogits } from '../../trainer/evaluate.js';
import { train } from '../../trainer/train.js';
import { TINY, tinyRun, tinySources } from '../helpers/tiny-run.js';
import { referenceForward } from '../reference/network.js';

const cfg = TINY;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-train-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

const sources = tinySources;
const run = tinyRun;

t.before(async () => { await selectBackend('cpu'); });

t.test('loss falls and accuracy rises well above chance; masks end final; export matches a plain forward', async (t) => {
  const out = path.join(tmp, 'learn');
  const tensorsBefore = tf.memory().numTensors;
  const r = await train(run(out, { batch: 16, lr: 0.3, augment: false }));
  const h = r.history;
  t.equal(h.length, 4);
  t.ok(h[3]!.trainLoss < h[0]!.trainLoss - 0.2, `train loss falls (${h[0]!.trainLoss.toFixed(3)} -> ${h[3]!.trainLoss.toFixed(3)})`);
  t.ok(h[3]!.testAccuracy > 0.6, `test accuracy ${h[3]!.testAccuracy} well above chance 0.25`);
  // C = 4: three LGC drops, S = 2: one SFR drop, all within the first half of training.
  t.same(r.stages.filter((s) => s.kind === 'lgc').map((s) => s.to).at(-1), 3);
  t.same(r.stages.filter((s) => s.kind === 'sfr').map((s) => s.to).at(-1), 1);
  t.ok(r.stages.every((s) => s.progress <= 0.5));
  const ck = await loadCheckpoint(out);
  t.ok(masksAreFinal(ck), 'masks are final');
  for (const m of maskReport(ck)) t.ok(m.keptPerGroup.every((k) => k === m.expected) && m.groupwise, m.name);
  const lines = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.equal(lines.filter((l) => l.type === 'epoch').length, 4);

  // The converter's view (PyTorch layouts) through an independent plain forward equals the TF.js eval model.
  const params = checkpointToNetworkParams(ck);
  t.equal(params.provenance.epochsDone, 4);
  const src = sources(8, 8).test;
  const imgs = new Float32Array(8 * 64);
  assembleBatch(src, cfg, [0, 1, 2, 3, 4, 5, 6, 7], imgs, new Int32Array(8));
  const tfLogits = evalLogits(ck, imgs, 8);
  let maxErr = 0;
  for (let i = 0; i < 8; i++) {
    // One channel: the NHWC batch slice is also the CHW input the reference takes.
    const ref = referenceForward(params, Float64Array.from(imgs.subarray(i * 64, (i + 1) * 64)));
    for (let k = 0; k < 4; k++) maxErr = Math.max(maxErr, Math.abs(ref[k]! - tfLogits[i * 4 + k]!));
  }
  t.ok(maxErr < 1e-4, `TF.js eval logits match the reference forward (max err ${maxErr})`);
  t.equal(tf.memory().numTensors, tensorsBefore, 'no tensor leak');
});

t.test('resume after an interruption reproduces the uninterrupted run exactly', async (t) => {
  const a = path.join(tmp, 'full'), b = path.join(tmp, 'split');
  const opts = { epochs: 3, ema: 0.9, sources: undefined };
  await train(run(a, { ...opts, sources: sources(96, 32) }));
  await train(run(b, { ...opts, sources: sources(96, 32), stopAfterEpochs: 1 }));
  t.equal(listCheckpointDirs(b).length, 1);
  await t.rejects(train(run(b, { ...opts, sources: sources(96, 32) })), /already holds checkpoints/);
  await t.rejects(train(run(b, { ...opts, lr: 0.5, sources: sources(96, 32), resume: true })), /options differ.*lr/);
  await t.rejects(train(run(b, { ...opts, epochs: 2, sources: sources(96, 32), resume: true })), /options differ.*epochs may only grow/);
  await train(run(b, { ...opts, sources: sources(96, 32), resume: true }));
  const ca = await loadCheckpoint(a), cb = await loadCheckpoint(b);
  for (const [name, v] of ca.model) t.same(Buffer.from(cb.model.get(name)!.buffer), Buffer.from(v.buffer), name);
  for (const [name, v] of ca.ema!) t.same(Buffer.from(cb.ema!.get(name)!.buffer), Buffer.from(v.buffer), `ema ${name}`);
  for (const [name, v] of ca.masks) t.same(cb.masks.get(name), v, name);
  t.same(cb.state.history.map((h) => h.testAccuracy), ca.state.history.map((h) => h.testAccuracy));
});

t.test('resume from a checkpoint taken inside an epoch reproduces the uninterrupted run exactly', async (t) => {
  const a = path.join(tmp, 'full'), c = path.join(tmp, 'mid');
  const opts = { epochs: 3, ema: 0.9 };
  // 3 iterations per epoch: stop after the 2nd iteration of epoch 2, mid-epoch, with augmentation drawing from the
  // epoch's generator.
  const first = await train(run(c, { ...opts, sources: sources(96, 32), stopAfterIterations: 5 }));
  t.match(path.basename(first.checkpoint), /^epoch-0001-it0000002$/);
  const partial = await loadCheckpoint(c);
  t.same(partial.state.partial?.iterations, 2);
  t.equal(partial.state.iteration, 5);
  await train(run(c, { ...opts, sources: sources(96, 32), resume: true }));
  const ca = await loadCheckpoint(a), cc = await loadCheckpoint(c);
  t.equal(path.basename(cc.dir), 'epoch-0003');
  for (const [name, v] of ca.model) t.same(Buffer.from(cc.model.get(name)!.buffer), Buffer.from(v.buffer), name);
  for (const [name, v] of ca.momentum) t.same(Buffer.from(cc.momentum.get(name)!.buffer), Buffer.from(v.buffer), `momentum ${name}`);
  for (const [name, v] of ca.ema!) t.same(Buffer.from(cc.ema!.get(name)!.buffer), Buffer.from(v.buffer), `ema ${name}`);
  t.same(cc.state.history.map((h) => [h.trainLoss, h.trainAccuracy, h.testAccuracy]), ca.state.history.map((h) => [h.trainLoss, h.trainAccuracy, h.testAccuracy]));
  t.same(cc.state.stages, ca.state.stages);
});

t.test('--init-from starts a fresh schedule from a finished run: its weights and final masks, no new mask drops', async (t) => {
  const a = path.join(tmp, 'full'), tune = path.join(tmp, 'tune');
  const base = await loadCheckpoint(a);
  t.ok(masksAreFinal(base), 'the source run ended with final masks');
  const opts = { epochs: 1, lr: 0.01, warmupEpochs: 0, ema: 0.9, initFrom: a };
  const r = await train(run(tune, { ...opts, sources: sources(96, 32) }));
  t.same(r.stages, [], 'no mask stage changes: the masks were final already');
  const c = await loadCheckpoint(tune);
  for (const [name, v] of base.masks) t.same(c.masks.get(name), v, `mask ${name} carried over`);
  t.same(c.state.stage, base.state.stage);
  t.equal(c.state.options.initFrom, a);
  t.equal(c.state.history.length, 1, 'a fresh history');
  t.ok(r.history[0]!.trainLoss < base.state.history[0]!.trainLoss,
    `starts trained: first-epoch loss ${r.history[0]!.trainLoss.toFixed(3)} < ${base.state.history[0]!.trainLoss.toFixed(3)} of the source's first epoch`);
  await t.rejects(train(run(path.join(tmp, 'tune-nosfr'), { ...opts, sfr: false, sources: sources(96, 32) })), /--init-from: .* holds tiny, this run trains tiny without SFR/);
  await t.rejects(train(run(tune, { ...opts, initFrom: undefined, resume: true, sources: sources(96, 32) })), /options differ.*initFrom/);
});

t.test('--crop sets the augmentation shift: recorded, part of the resume check, validated', async (t) => {
  const a = path.join(tmp, 'full');
  const opts = { epochs: 1, lr: 0.01, warmupEpochs: 0, initFrom: a };
  const dflt = await train(run(path.join(tmp, 'crop-default'), { ...opts, sources: sources(96, 32) }));
  const flipOnly = await train(run(path.join(tmp, 'crop-0'), { ...opts, crop: 0, sources: sources(96, 32) }));
  const c = await loadCheckpoint(path.join(tmp, 'crop-0'));
  t.equal(c.state.options.crop, 0, 'stored in the checkpoint');
  t.equal((await loadCheckpoint(path.join(tmp, 'crop-default'))).state.options.crop, undefined, 'absent when not given');
  t.not(flipOnly.history[0]!.trainLoss, dflt.history[0]!.trainLoss, 'other crops, other batches, other losses');
  await t.rejects(train(run(path.join(tmp, 'crop-0'), { ...opts, crop: 1, resume: true, sources: sources(96, 32) })), /options differ.*crop/);
  await t.rejects(train(run(path.join(tmp, 'crop-big'), { ...opts, crop: cfg.input.height, sources: sources(96, 32) })), /crop must be a whole number of pixels from 0 to/);
  await t.rejects(train(run(path.join(tmp, 'crop-neg'), { ...opts, crop: -1, sources: sources(96, 32) })), /crop must be a whole number/);
});

t.test('a corrupt newest checkpoint falls back to the previous one with a warning', async (t) => {
  const dirs = listCheckpointDirs(path.join(tmp, 'full'));
  const newest = dirs.at(-1)!;
  const bin = path.join(newest, 'tensors.bin');
  const buf = readFileSync(bin);
  buf[100] ^= 0xff;
  writeFileSync(bin, buf);
  const warnings: string[] = [];
  const c = await loadCheckpoint(path.join(tmp, 'full'), (m) => warnings.push(m));
  t.equal(c.dir, dirs.at(-2));
  t.match(warnings.join(), /checksum mismatch/);
  await t.rejects(loadCheckpoint(newest), /checksum mismatch/);
});
