// The tiny network's training runs in tests: synthetic data of its input shape and the options of a short run.
import { openSynthetic } from '../../base/data/synthetic.js';
import { tinyConfig } from '../../trainer/tiny.js';
import type { TrainRun } from '../../trainer/train.js';

export const TINY = tinyConfig();

/** Fresh synthetic train and test sources shaped for TINY (8x8 gray, 4 classes). */
export function tinySources(nTrain: number, nTest: number): NonNullable<TrainRun['sources']> {
  const shape = { height: TINY.input.height, width: TINY.input.width, channels: TINY.input.channels, classes: TINY.classes };
  return { train: openSynthetic({ split: 'train', count: nTrain, ...shape }), test: openSynthetic({ split: 'test', count: nTest, ...shape }) };
}

/** A 4-epoch run of TINY on the CPU backend into `out` (quiet, no chart), with `over` applied. */
export function tinyRun(out: string, over: Partial<TrainRun> = {}): TrainRun {
  return {
    arch: 'tiny', dataset: 'synthetic', epochs: 4, batch: 32, lr: 0.1, warmupEpochs: 0.5, warmupLr: 0.02, weightDecay: 5e-5,
    momentum: 0.9, labelSmoothing: 0.1, ema: 0, groupLasso: 0, sfr: true, seed: 11, augment: true,
    out, resume: false, backend: 'cpu', config: TINY, chart: false, log: () => {}, sources: tinySources(256, 128), ...over,
  };
}
