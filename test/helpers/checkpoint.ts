// Trainer checkpoints written without training, for the tests of `cdnv2 convert`.
import type { ArchConfig } from '../../base/arch/configs.js';
import type { NetworkParams } from '../../base/arch/params.js';
import { Rng } from '../../converter/random.js';
import { saveCheckpoint, type CheckpointState } from '../../trainer/checkpoint.js';
import { initialValues, maskInventory, tensorInventory } from '../../trainer/model.js';

/**
 * A trainer checkpoint of `cfg` at LGC stage `stageLgc` (the last stage: final masks) whose masks are those of
 * `reference` (the converter's own generator) in the trainer's [in, out] layout; BN statistics drawn at random.
 */
export function writeTinyCheckpoint(runDir: string, cfg: ArchConfig, reference: NetworkParams, stageLgc: number): string {
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
