// `cdnv2 convert`: a trainer checkpoint (TF.js layouts, [in, out] masks) becomes a model that computes what the
// checkpoint's training-form network computes; unfinished masks and missing checkpoints fail with exit 1.
import t from 'tap';
import { cdnv2 } from './helpers/cli.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { Conv2dOp } from '../converter/format.js';
import { readModel } from '../converter/format.js';
import { randomNetworkParams, Rng } from '../converter/random.js';
import { lgcGroups } from '../converter/condense.js';
import { checkpointToNetworkParams, loadCheckpoint, saveCheckpoint, type CheckpointState } from '../trainer/checkpoint.js';
import { initialValues, maskInventory, tensorInventory } from '../trainer/model.js';
import { tinyConfig } from '../trainer/tiny.js';
import { interpretLogits } from './reference/interpreter.js';
import { referenceForward } from './reference/network.js';

const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-convert-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const cfg = tinyConfig();
// Final masks from the converter's own generator, transposed into the trainer's [in, out] layout.
const reference = randomNetworkParams(cfg, 5);

function makeCheckpoint(runDir: string, stageLgc: number): string {
  const model = initialValues(cfg, true, 3);
  const rng = new Rng(17);
  for (const [name, v] of model) {
    if (name.endsWith('.mean')) for (let i = 0; i < v.length; i++) v[i] = 0.1 * rng.normal();
    if (name.endsWith('.variance')) for (let i = 0; i < v.length; i++) v[i] = rng.uniform(0.5, 1.5);
    if (name.endsWith('.gamma')) for (let i = 0; i < v.length; i++) v[i] = rng.uniform(0.5, 1.5);
  }
  const ours: Uint8Array[] = [];
  const dims: [number, number][] = [];
  for (const layer of reference.blocks.flat()) {
    ours.push(layer.lgc.mask); dims.push([layer.inChannels, cfg.bottleneck * layer.growth]);
    if (layer.sfr) { ours.push(layer.sfr.mask); dims.push([layer.growth, layer.inChannels]); }
  }
  const masks = new Map<string, Uint8Array>();
  maskInventory(cfg, true).forEach((m, k) => {
    const [inCh, outCh] = dims[k]!;
    if (m.inCh !== inCh || m.outCh !== outCh) throw new Error(`mask ${m.name}: ${m.inCh}x${m.outCh} vs ${inCh}x${outCh}`);
    const mine = ours[k]!; // [out, in]
    const theirs = new Uint8Array(inCh * outCh);
    for (let i = 0; i < inCh; i++) for (let o = 0; o < outCh; o++) theirs[i * outCh + o] = mine[o * inCh + i]!;
    masks.set(m.name, theirs);
  });
  const momentum = new Map<string, Float32Array>();
  for (const info of tensorInventory(cfg, true)) if (info.kind === 'param') momentum.set(info.name, new Float32Array(model.get(info.name)!.length));
  const state: CheckpointState = {
    config: cfg,
    options: {
      arch: 'tiny', dataset: 'fmnist', epochs: 4, batch: 8, lr: 0.1, warmupEpochs: 0, warmupLr: 0.1, weightDecay: 0,
      momentum: 0.9, labelSmoothing: 0, ema: 0, groupLasso: 0, sfr: true, seed: 1, augment: false,
    },
    epochsDone: 4, iteration: 40, itersPerEpoch: 10, totalIterations: 40,
    stage: { lgc: stageLgc, sfr: cfg.sfrFactor - 1 }, history: [], stages: [], rng: [], backend: 'cpu',
    date: '2026-01-01T00:00:00Z', trainCount: 80,
  };
  return saveCheckpoint(runDir, { state, model, masks, momentum });
}

t.test('convert a checkpoint with final masks', async (t) => {
  const ckptDir = makeCheckpoint(path.join(dir, 'run'), cfg.condenseFactor - 1);
  const out = path.join(dir, 'tiny.cnv2');
  const r = cdnv2('convert', ckptDir, '-o', out, '--weights', 'f32');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^wrote .*tiny\.cnv2: tiny, /, 'summary');
  const model = readModel(readFileSync(out));
  // The kept LGC inputs are the ones the masks chose (checks the [in, out] -> [out, in] layout contract).
  const lgc = model.ops[1] as Conv2dOp;
  const l0 = reference.blocks[0]![0]!;
  const sets = lgcGroups(l0.lgc.mask, cfg.bottleneck * l0.growth, l0.inChannels, cfg.group1x1, l0.inChannels / cfg.condenseFactor, 'test');
  t.same(Array.from(model.tensors[lgc.inIndex!]!.data), sets.flat(), 'first LGC keeps the masked-in channels');
  const params = checkpointToNetworkParams(await loadCheckpoint(ckptDir, () => {}));
  const rng = new Rng(2);
  const x = Float64Array.from({ length: cfg.input.channels * cfg.input.height * cfg.input.width }, () => rng.normal());
  const want = referenceForward(params, x);
  const got = interpretLogits(model, x);
  let err = 0, scale = 1;
  want.forEach((v, i) => { err = Math.max(err, Math.abs(v - got[i]!)); scale = Math.max(scale, Math.abs(v)); });
  t.ok(err / scale < 1e-5, `converted model equals the checkpoint's network (relative error ${(err / scale).toExponential(2)})`);
  const prov = JSON.parse(model.meta.find((e) => e.key === 'provenance')!.value as string);
  t.match(prov, { checkpoint: ckptDir, epochsDone: 4, weights: 'f32', masksFinal: true }, 'provenance from the checkpoint');
});

t.test('convert refuses unfinished masks and missing checkpoints', async (t) => {
  const early = makeCheckpoint(path.join(dir, 'early'), 0);
  const r = cdnv2('convert', early, '-o', path.join(dir, 'early.cnv2'));
  t.equal(r.code, 1, 'exit 1');
  t.match(r.stderr, /masks are not final yet: condensation stage lgc 0\/3 after 4 of 4 epochs/);
  const missing = cdnv2('convert', path.join(dir, 'nothing-here'), '-o', path.join(dir, 'x.cnv2'));
  t.equal(missing.code, 1, 'missing checkpoint: exit 1');
  t.match(missing.stderr, /nothing-here/, 'names the directory');
});
