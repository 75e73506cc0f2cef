// A checkpoint's content for the tiny configuration with recognisable values (tensor k holds k + i/1000), built
// without training, so checkpoint tests can save, corrupt and reload one in milliseconds.
import type { CheckpointContent, CheckpointState } from '../../trainer/checkpoint.js';
import { maskInventory, tensorInventory } from '../../trainer/model.js';
import { tinyConfig } from '../../trainer/tiny.js';

export function checkpointContent(epochsDone: number): CheckpointContent {
  const config = tinyConfig();
  const inv = tensorInventory(config, true);
  const values = (k: number, n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => k + epochsDone + i / 1000);
  const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
  const model = new Map(inv.map((t, k) => [t.name, values(k, size(t.shape))] as const));
  const momentum = new Map(inv.filter((t) => t.kind === 'param').map((t, k) => [t.name, values(-k, size(t.shape))] as const));
  const masks = new Map(maskInventory(config, true).map((m) => [m.name, Uint8Array.from({ length: m.inCh * m.outCh }, (_, i) => i % 2)] as const));
  const state: CheckpointState = {
    config,
    options: {
      arch: 'tiny', dataset: 'synthetic', epochs: 9, batch: 16, lr: 0.1, warmupEpochs: 0, warmupLr: 0.01, weightDecay: 0, momentum: 0.9,
      labelSmoothing: 0, ema: 0, groupLasso: 0, sfr: true, seed: 1, augment: false,
    },
    epochsDone, iteration: epochsDone * 10, itersPerEpoch: 10, totalIterations: 90, stage: { lgc: 0, sfr: 0 },
    history: [], stages: [], rng: [1, 2, 3, 4], backend: 'cpu', date: '2026-01-01T00:00:00.000Z', trainCount: 160,
  };
  return { state, model, masks, momentum };
}
