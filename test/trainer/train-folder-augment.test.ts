// Training on an image folder with the official augmentation: a run stopped inside an epoch (a checkpoint holding
// the epoch's partial state) and resumed equals the uninterrupted run bit for bit, since every image's draws come
// from (seed, epoch, image index); the options are recorded and part of the resume check; the folder augmentation
// needs a source with original images. (The SIGKILL variant is in train-kill.test.ts.)
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import t from 'tap';

import { OFFICIAL_FOLDER_AUGMENT } from '../../base/data/augment.js';
import { openFolder } from '../../base/data/folder.js';
import { Rng } from '../../base/rng.js';
import { selectBackend } from '../../trainer/backend.js';
import { loadCheckpoint } from '../../trainer/checkpoint.js';
import { train } from '../../trainer/train.js';
import { TINY, tinyRun, tinySources } from '../helpers/tiny-run.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-folder-aug-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
t.before(async () => { await selectBackend('cpu'); });

// 4 classes x 20 PNG images of assorted sizes, every 10th held out: 72 training images.
const folder = path.join(tmp, 'images');
const rng = new Rng(8);
for (let k = 0; k < 4; k++) {
  mkdirSync(path.join(folder, `c${k}`), { recursive: true });
  for (let i = 0; i < 20; i++) {
    const png = new PNG({ width: 10 + (i % 5) * 3, height: 9 + (i % 4) * 4 });
    for (let p = 0; p < png.width * png.height; p++) {
      const x = p % png.width;
      png.data[p * 4] = png.data[p * 4 + 1] = png.data[p * 4 + 2] = ((x * 37 * (k + 1)) + rng.int(30)) & 255;
      png.data[p * 4 + 3] = 255;
    }
    writeFileSync(path.join(folder, `c${k}`, `${i}.png`), PNG.sync.write(png));
  }
}
const shape = { height: TINY.input.height, width: TINY.input.width, channels: TINY.input.channels };
const folderSources = () => ({ train: openFolder(folder, 'train', shape), test: openFolder(folder, 'test', shape) });
const opts = { dataset: 'folder', epochs: 2, batch: 16, ema: 0.9, folderAugment: OFFICIAL_FOLDER_AUGMENT };

t.test('stopped inside an epoch and resumed: bit-identical to the uninterrupted run', async (t) => {
  const a = path.join(tmp, 'full'), b = path.join(tmp, 'stopped');
  await train(tinyRun(a, { ...opts, sources: folderSources() }));
  // 4 iterations an epoch: stop after iteration 2 of epoch 2.
  const first = await train(tinyRun(b, { ...opts, sources: folderSources(), stopAfterIterations: 6 }));
  t.match(path.basename(first.checkpoint), /^epoch-0001-it0000002$/, 'a checkpoint inside epoch 2');
  await t.rejects(train(tinyRun(b, { ...opts, folderAugment: { ...OFFICIAL_FOLDER_AUGMENT, randomErasing: 0.5 }, sources: folderSources(), resume: true })),
    /options differ.*folderAugment/, 'another augmentation is refused on resume');
  await train(tinyRun(b, { ...opts, sources: folderSources(), resume: true }));
  const ca = await loadCheckpoint(a), cb = await loadCheckpoint(b);
  t.same(ca.state.options.folderAugment, OFFICIAL_FOLDER_AUGMENT, 'recorded in the checkpoint');
  t.equal(path.basename(cb.dir), 'epoch-0002');
  for (const [name, v] of ca.model) t.same(Buffer.from(cb.model.get(name)!.buffer), Buffer.from(v.buffer), name);
  for (const [name, v] of ca.ema!) t.same(Buffer.from(cb.ema!.get(name)!.buffer), Buffer.from(v.buffer), `ema ${name}`);
  t.same(cb.state.history.map((h) => [h.trainLoss, h.trainAccuracy, h.testAccuracy]), ca.state.history.map((h) => [h.trainLoss, h.trainAccuracy, h.testAccuracy]));
  // The augmentation draws: another seed trains differently.
  const c = path.join(tmp, 'seed-2');
  await train(tinyRun(c, { ...opts, seed: 12, sources: folderSources() }));
  t.notSame((await loadCheckpoint(c)).state.history[0]!.trainLoss, ca.state.history[0]!.trainLoss, 'another seed, another run');
});

t.test('the folder augmentation on a source without original images is a clear error', async (t) => {
  await t.rejects(train(tinyRun(path.join(tmp, 'synthetic'), { folderAugment: OFFICIAL_FOLDER_AUGMENT, sources: tinySources(64, 16) })),
    /the folder augmentation needs an image folder/);
});
