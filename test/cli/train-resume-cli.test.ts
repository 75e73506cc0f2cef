// `cdnv2 train` as issue 21 asked, through the real CLI: `--out DIR --resume` alone continues with the stored
// options, a larger --epochs extends the run, anything else that differs is refused, and a run whose learning-rate
// warm-up covers all of it says so.
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { cdnv2 } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-resume-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('train: warm-up note, --resume with the stored options alone, a larger --epochs extends the run', async (t) => {
  const out = path.join(dir, 'run');
  // The smallest real run: 8 synthetic images, one replica of the wasm backend.
  const base = ['--arch', 'cdnv2-fmnist', '--dataset', 'synthetic', '--limit-train', '8', '--limit-test', '8', '--batch', '4',
    '--backend', 'wasm', '--workers', '1', '--threads', '1', '--no-progress', '--lr', '0.05'];
  const first = cdnv2('train', ...base, '--epochs', '1', '--warmup-epochs', '2', '--out', out);
  t.equal(first.code, 0, first.stderr);
  t.match(first.stderr, /note: the learning-rate warm-up \(2 epochs\) covers the whole run \(1 epochs\)/);

  const differs = cdnv2('train', '--out', out, '--resume', '--lr', '0.5');
  t.equal(differs.code, 1, 'a different --lr on resume is refused');
  t.match(differs.stderr, /options differ.*lr: 0\.5 vs 0\.05/);

  // How to run (backend, workers, progress) is not part of the stored options; everything else is.
  const resumed = cdnv2('train', '--out', out, '--resume', '--epochs', '2', '--backend', 'wasm', '--workers', '1', '--threads', '1', '--no-progress');
  t.equal(resumed.code, 0, resumed.stderr);
  t.match(resumed.stderr, /extending the run from 1 to 2 epochs/);
  t.match(resumed.stderr, /training cdnv2-fmnist on synthetic\/train \(8 images, test 8\), 2 epochs x 2 iterations of 4, .*resuming after epoch 1/, 'stored options');
  t.ok(existsSync(path.join(out, 'checkpoints/epoch-0002')), 'the second epoch was trained');
  const state = JSON.parse(readFileSync(path.join(out, 'checkpoints/epoch-0002/state.json'), 'utf8')) as { options: Record<string, unknown> };
  t.match(state.options, { arch: 'cdnv2-fmnist', dataset: 'synthetic', epochs: 2, batch: 4, lr: 0.05, warmupEpochs: 2, limitTrain: 8 });

  const shrink = cdnv2('train', '--out', out, '--resume', '--epochs', '1');
  t.equal(shrink.code, 1, 'fewer epochs than stored is refused');
  t.match(shrink.stderr, /--epochs may only grow/);

  const noOut = cdnv2('train', '--resume');
  t.equal(noOut.code, 2, '--resume without --out (or --arch and --dataset) is a usage error');
  t.match(noOut.stderr, /--resume needs --out DIR/);
  const noArch = cdnv2('train', '--dataset', 'synthetic');
  t.equal(noArch.code, 2);
  t.match(noArch.stderr, /required option '--arch <name>' not specified/);
  mkdirSync(path.join(dir, 'empty-run'));
  const empty = cdnv2('train', '--out', path.join(dir, 'empty-run'), '--resume');
  t.equal(empty.code, 1);
  t.match(empty.stderr, /no checkpoints/);
});
