// `cdnv2 train --dataset folder` through the real CLI: the official augmentation by default, each option recorded
// in the checkpoint, `--crop` selecting the padded-crop pipeline, `--no-augment` none; bad values are usage errors
// (exit 2), folder options on another data set too.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import t from 'tap';

import { OFFICIAL_FOLDER_AUGMENT } from '../../base/data/augment.js';
import { loadCheckpoint } from '../../trainer/checkpoint.js';
import { buildProgram } from '../../cli/cdnv2.js';
import { register } from '../../cli/trainer-cli.js';
import { cdnv2 } from '../helpers/cli.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-folder-cli-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

const data = path.join(tmp, 'photos');
for (const [k, cls] of ['cat', 'dog'].entries()) {
  mkdirSync(path.join(data, cls), { recursive: true });
  for (let i = 0; i < 10; i++) {
    const png = new PNG({ width: 40 + 3 * i, height: 36 + 2 * i });
    for (let p = 0; p < png.width * png.height; p++) {
      png.data[p * 4] = (p * (k + 3)) & 255; png.data[p * 4 + 1] = (p >> 3) & 255; png.data[p * 4 + 2] = k * 200; png.data[p * 4 + 3] = 255;
    }
    writeFileSync(path.join(data, cls, `${i}.png`), PNG.sync.write(png));
  }
}
const base = ['train', '--arch', 'cdnv2-tiny', '--classes', '2', '--dataset', 'folder', '--data', data, '--epochs', '1', '--batch', '6',
  '--workers', '1', '--threads', '1', '--no-progress'];

t.test('defaults: the official augmentation, recorded; options change it; --crop selects the padded crop', async (t) => {
  const runs: [string, string[], unknown][] = [
    ['official', [], OFFICIAL_FOLDER_AUGMENT],
    ['custom', ['--resized-crop-scale', '0.5,1', '--resized-crop-ratio', '0.9,1.1', '--train-interpolation', 'bicubic', '--hflip', '0',
      '--no-rand-augment', '--color-jitter', '0.2', '--random-erasing', '0.5', '--erasing-mode', 'const'],
    { resizedCrop: { scale: [0.5, 1], ratio: [0.9, 1.1] }, interpolation: 'bicubic', hflip: 0, colorJitter: 0.2, randAugment: null, randomErasing: 0.5, erasingMode: 'const' }],
    ['padded', ['--crop', '2'], undefined],
  ];
  for (const [name, extra, want] of runs) {
    const out = path.join(tmp, name);
    const r = cdnv2(...base, ...extra, '--out', out);
    t.equal(r.code, 0, `${name}: ${r.code === 0 ? 'trained' : r.stderr.slice(-400)}`);
    const o = (await loadCheckpoint(out)).state.options;
    t.same(o.folderAugment, want, `${name}: folderAugment recorded as ${JSON.stringify(want)}`);
  }
});

/** Runs the CLI in this process (argument checks throw before any training). */
async function cli(args: string[]): Promise<void> {
  const program = buildProgram();
  register(program);
  program.exitOverride();
  await program.parseAsync(['node', 'cdnv2', ...args]);
}

t.test('bad values and misplaced options are usage errors', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--hflip', '1.5'], /--hflip must be a probability from 0 to 1/],
    [['--random-erasing', '-0.1'], /--random-erasing must be a probability/],
    [['--resized-crop-scale', '0.5'], /--resized-crop-scale must be MIN,MAX with 0 < MIN <= MAX <= 1/],
    [['--resized-crop-scale', '0.9,0.2'], /--resized-crop-scale must be MIN,MAX/],
    [['--resized-crop-ratio', '0,2'], /--resized-crop-ratio must be MIN,MAX/],
    [['--rand-augment', 'rand-m9-x1'], /--rand-augment: .*'x1' is not/],
    [['--crop', '2', '--hflip', '0.3'], /apply to --dataset folder without --crop or --no-augment/],
    [['--no-augment', '--no-rand-augment'], /apply to --dataset folder without --crop or --no-augment/],
  ];
  for (const [extra, message] of cases) {
    await t.rejects(cli([...base, ...extra, '--out', path.join(tmp, 'bad')]), message, `${extra.join(' ')}: says why`);
  }
  await t.rejects(cli([...base, '--erasing-mode', 'zero']), /Allowed choices/i);
  await t.rejects(cli(['train', '--arch', 'cdnv2-tiny', '--dataset', 'synthetic', '--random-erasing', '0.3']), /apply to --dataset folder/, 'a folder option on another data set');
  // Through the real CLI: a usage error exits with 2.
  const r = cdnv2(...base, '--hflip', '2', '--out', path.join(tmp, 'bad'));
  t.equal(r.code, 2, 'exit 2');
  t.match(r.stderr, /--hflip must be a probability/);
});
