// A training run in its own process, so a test can SIGKILL it mid-epoch:
//   node --import tsx test/helpers/train-child.ts <outDir> [--resume]
// Tiny configuration, synthetic data, fixed seed; prints progress lines to stderr. With CDNV2_KILL_AT set, the
// process SIGKILLs itself right after the trainer logs a line starting with it (a deterministic kill point).
// CDNV2_CHILD_NET=shufflenet trains the tiny SFR-ShuffleNetV2 instead of the tiny CondenseNetV2.
// With CDNV2_CHILD_FOLDER=DIR it trains on that image folder with the official folder augmentation instead.
// CDNV2_CHILD_IMAGES=N: N synthetic training images instead of 320 (epochs of N/16 iterations).
import { selectBackend } from '../../trainer/backend.js';
import { OFFICIAL_FOLDER_AUGMENT } from '../../base/data/augment.js';
import { openFolder } from '../../base/data/folder.js';
import { openSynthetic } from '../../base/data/synthetic.js';
import { train } from '../../trainer/train.js';
import { tinyConfig, tinyShuffleConfig } from '../../trainer/tiny.js';

const [out, flag] = process.argv.slice(2);
if (!out) throw new Error('usage: train-child.ts <outDir> [--resume]');
const killAt = process.env.CDNV2_KILL_AT;
const config = process.env.CDNV2_CHILD_NET === 'shufflenet' ? tinyShuffleConfig() : tinyConfig();
await selectBackend('cpu');
const shape = { height: 8, width: 8, channels: 1, classes: 4 };
const folder = process.env.CDNV2_CHILD_FOLDER;
const sources = folder
  ? { train: openFolder(folder, 'train', shape), test: openFolder(folder, 'test', shape) }
  : { train: openSynthetic({ split: 'train', count: Number(process.env.CDNV2_CHILD_IMAGES ?? 320), ...shape }), test: openSynthetic({ split: 'test', count: 64, ...shape }) };
await train({
  ...(folder ? { folderAugment: OFFICIAL_FOLDER_AUGMENT } : {}),
  arch: config.name, dataset: folder ? 'folder' : 'synthetic', epochs: 3, batch: 16, lr: 0.2, warmupEpochs: 0.5, warmupLr: 0.02, weightDecay: 5e-5,
  momentum: 0.9, labelSmoothing: 0.1, ema: 0.9, groupLasso: 0, sfr: true, seed: 5, augment: true,
  out, resume: flag === '--resume', backend: 'cpu', config, chart: false, progress: true,
  log: (m) => {
    process.stderr.write(`${m}\n`);
    if (killAt && m.startsWith(killAt)) process.kill(process.pid, 'SIGKILL');
  },
  sources,
});
process.stderr.write('finished\n');
