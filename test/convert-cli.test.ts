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
import { saveCheckpoint, type CheckpointState } from '../trainer/checkpoint.js';
import type { BatchNormParams } from '../arch/params.js';
import { maskInventory, tensorInventory } from '../trainer/model.js';
import { tinyConfig } from '../trainer/tiny.js';
import { interpretLogits } from './reference/interpreter.js';
import { referenceForward } from './reference/network.js';

const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-convert-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const cfg = tinyConfig();
// Final masks from the converter's own generator, transposed into the trainer's [in, out] layout.
const reference = randomNetworkParams(cfg, 5);

/** [rows, cols] row-major -> [cols, rows] (written here, not taken from the trainer). */
function transposed(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
  return out;
}
/** PyTorch OIHW [o, i, kh, kw] -> TF.js HWIO [kh, kw, i, o]. */
function hwio(a: Float32Array, o: number, i: number, k: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let co = 0; co < o; co++) for (let ci = 0; ci < i; ci++) for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) {
    out[((y * k + x) * i + ci) * o + co] = a[((co * i + ci) * k + y) * k + x]!;
  }
  return out;
}

/** The reference network's weights in the trainer's TF.js layouts (docs/checkpoint.md, "Tensor names"). */
function trainingFormWeights(): Map<string, Float32Array> {
  const model = new Map<string, Float32Array>();
  const bn = (p: string, b: BatchNormParams): void => {
    model.set(`${p}.gamma`, b.gamma); model.set(`${p}.beta`, b.beta); model.set(`${p}.mean`, b.mean); model.set(`${p}.variance`, b.variance);
  };
  model.set('stem.weight', hwio(reference.stem.weight, cfg.stemChannels, cfg.input.channels, 3));
  reference.blocks.forEach((block, i) => block.forEach((l, j) => {
    const p = `b${i}.l${j}`, mid = cfg.bottleneck * l.growth;
    bn(`${p}.lgc.bn`, l.lgc.bn);
    model.set(`${p}.lgc.weight`, transposed(l.lgc.weight, mid, l.inChannels));
    bn(`${p}.conv.bn`, l.conv.bn);
    model.set(`${p}.conv.weight`, hwio(l.conv.weight, l.growth, mid / cfg.group3x3, 3));
    if (l.se) { model.set(`${p}.se.w1`, transposed(l.se.w1, l.se.hidden, l.growth)); model.set(`${p}.se.w2`, transposed(l.se.w2, l.growth, l.se.hidden)); }
    if (l.sfr) { bn(`${p}.sfr.bn`, l.sfr.bn); model.set(`${p}.sfr.weight`, transposed(l.sfr.weight, l.inChannels, l.growth)); }
  }));
  const h = reference.head;
  bn('head.bn', h.bn);
  const C = h.bn.gamma.length;
  if (h.se) { model.set('head.se.w1', transposed(h.se.w1, h.se.hidden, C)); model.set('head.se.w2', transposed(h.se.w2, C, h.se.hidden)); }
  if (h.fc) { model.set('head.fc.weight', transposed(h.fc.weight, cfg.fcChannels, C)); model.set('head.fc.bias', h.fc.bias); }
  model.set('head.classifier.weight', transposed(h.classifier.weight, cfg.classes, cfg.fcChannels > 0 ? cfg.fcChannels : C));
  model.set('head.classifier.bias', h.classifier.bias);
  for (const info of tensorInventory(cfg, true)) {
    const v = model.get(info.name);
    if (!v || v.length !== info.shape.reduce((x, y) => x * y, 1)) throw new Error(`test setup: tensor ${info.name} missing or mis-sized`);
  }
  return model;
}

function makeCheckpoint(runDir: string, stageLgc: number): string {
  const model = trainingFormWeights();
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
  // The kept LGC inputs are the ones the masks chose (checks the [in, out] -> [out, in] layout contract): group g
  // holds outputs o = g mod G (G = group1x1), and keeps, in ascending order, the inputs its mask rows have set.
  const lgc = model.ops[1] as Conv2dOp;
  const l0 = reference.blocks[0]![0]!;
  const mid = cfg.bottleneck * l0.growth;
  const kept: number[] = [];
  for (let g = 0; g < cfg.group1x1; g++) {
    for (let i = 0; i < l0.inChannels; i++) if (l0.lgc.mask[g * l0.inChannels + i]) kept.push(i);
  }
  t.equal(kept.length, (l0.inChannels / cfg.condenseFactor) * cfg.group1x1, 'test setup: in/C inputs per group');
  t.same(Array.from(model.tensors[lgc.inIndex!]!.data), kept, 'first LGC keeps the masked-in channels');
  t.ok(mid > cfg.group1x1, 'several outputs per group');
  // Expected logits: the float64 reference network (test/reference) run on the parameters the checkpoint was made from.
  const rng = new Rng(2);
  const x = Float64Array.from({ length: cfg.input.channels * cfg.input.height * cfg.input.width }, () => rng.normal());
  const want = referenceForward(reference, x);
  const got = interpretLogits(model, x);
  t.equal(got.length, want.length, `${want.length} logits`);
  let err = 0, scale = 1;
  want.forEach((v, i) => { err = Math.max(err, Math.abs(v - got[i]!)); scale = Math.max(scale, Math.abs(v)); });
  t.ok(err / scale < 1e-5, `converted model equals the reference network (relative error ${(err / scale).toExponential(2)})`);
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
