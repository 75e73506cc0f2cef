// `cdnv2 train` and `cdnv2 eval` on the SFR-ShuffleNetV2 Fashion-MNIST variant through the real entry point, on
// the cdnv2-wasm backend: a short run on real images ends with a checkpoint of final masks that evaluates.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';

import { loadCheckpoint, masksAreFinal } from '../../trainer/checkpoint.js';
import { cdnv2 } from '../helpers/cli.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-shuffle-cli-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const data = '/usr/share/datasets/fashion-mnist';

t.test('train --arch sfr-shufflenetv2-fmnist --dataset fashion-mnist, then eval the run', async (t) => {
  if (!existsSync(data)) return t.skip('dataset-fashion-mnist is not installed (.ci/run installs it)', () => {});
  const out = path.join(tmp, 'run');
  const r = cdnv2('train', '--arch', 'sfr-shufflenetv2-fmnist', '--dataset', 'fashion-mnist', '--limit-train', '32', '--limit-test', '16',
    '--epochs', '2', '--batch', '16', '--backend', 'wasm', '--workers', '1', '--threads', '1', '--out', out, '--no-progress');
  t.equal(r.code, 0, r.code === 0 ? 'trained' : r.stderr.slice(-1000));
  t.match(r.stderr, /backend: cdnv2-wasm/);
  t.match(r.stderr, /training sfr-shufflenetv2-fmnist on fashion-mnist\/train \(32 images, test 16\)/);
  t.match(r.stderr, /sfr stage 0 -> \d+ at iteration 1/);
  const ck = await loadCheckpoint(out);
  t.equal(ck.state.config.name, 'sfr-shufflenetv2-fmnist');
  t.equal(ck.state.options.sfr, true);
  t.ok(masksAreFinal(ck), 'masks final after the first half of the run');
  const e = cdnv2('eval', out, '--dataset', 'fashion-mnist', '--limit', '16', '--json', '--backend', 'wasm');
  t.equal(e.code, 0, e.stderr.slice(-500));
  const j = JSON.parse(e.stdout) as { accuracy: number; count: number };
  t.equal(j.count, 16);
  t.ok(j.accuracy >= 0 && j.accuracy <= 1);
});

t.test('--no-sfr on an SFR-ShuffleNet configuration is a usage error', async (t) => {
  const r = cdnv2('train', '--arch', 'sfr-shufflenetv2-fmnist', '--dataset', 'synthetic', '--no-sfr', '--out', path.join(tmp, 'x'));
  t.equal(r.code, 2);
  t.match(r.stderr, /has SFR by definition \(train shufflenetv2-fmnist/);
});
