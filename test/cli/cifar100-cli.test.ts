// CIFAR-100 end to end, as a user runs it: `cdnv2 train --arch cdnv2-cifar100-110 --dataset cifar100` on files in
// the CIFAR-100 binary layout written here (per record: the coarse label byte, the fine label byte, then 1024 red,
// 1024 green and 1024 blue bytes), then `convert`, `info` and `eval` of both the checkpoint and the model; and
// `--classes N` sizing another configuration's head.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';

import { CIFAR100_LABELS } from '../../base/arch/configs.js';
import { Rng } from '../../base/rng.js';
import { cdnv2 } from '../helpers/cli.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-c100-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

/** n records with fine labels spread over 0..99 (99 included) and the coarse label fine/5 (any byte: skipped). */
function records(n: number, offset: number, rng: Rng): { bytes: Buffer; labels: number[] } {
  const bytes = Buffer.alloc(n * 3074);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const fine = i === 0 ? 99 : (i * 37 + offset) % 100;
    labels.push(fine);
    bytes[i * 3074] = Math.floor(fine / 5);
    bytes[i * 3074 + 1] = fine;
    for (let k = 0; k < 3072; k++) bytes[i * 3074 + 2 + k] = rng.int(256);
  }
  return { bytes, labels };
}

const data = path.join(tmp, 'cifar-100-binary');
const rng = new Rng(100);
const { mkdirSync } = await import('node:fs');
mkdirSync(data);
writeFileSync(path.join(data, 'train.bin'), records(16, 0, rng).bytes);
writeFileSync(path.join(data, 'test.bin'), records(8, 3, rng).bytes);
const common = ['--dataset', 'cifar100', '--data', data, '--epochs', '1', '--batch', '4', '--workers', '1', '--threads', '1', '--no-progress'];

t.test('the CIFAR-100 labels: 100 distinct fine label names in the standard (alphabetical) order', async (t) => {
  t.equal(CIFAR100_LABELS.length, 100);
  t.equal(new Set(CIFAR100_LABELS).size, 100, 'distinct');
  t.same([...CIFAR100_LABELS].sort(), CIFAR100_LABELS, 'sorted, as fine_label_names.txt');
  t.same([0, 1, 19, 41, 58, 99].map((i) => CIFAR100_LABELS[i]), ['apple', 'aquarium_fish', 'cattle', 'lawn_mower', 'pickup_truck', 'worm']);
});

t.test('train cdnv2-cifar100-110 on CIFAR-100 files, convert, info, eval the checkpoint and the model', async (t) => {
  const run = path.join(tmp, 'run');
  const r = cdnv2('train', '--arch', 'cdnv2-cifar100-110', ...common, '--out', run);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /training cdnv2-cifar100-110 on cifar100\/train \(16 images, test 8\), 1 epochs x 4 iterations of 4/);
  t.match(r.stderr, /lgc stage \d -> 3 at iteration 2/, 'the masks reach their final stage');
  const model = path.join(tmp, 'c100.cnv2');
  const c = cdnv2('convert', run, '-o', model);
  t.equal(c.code, 0, c.stderr);
  const info = cdnv2('info', model, '--json');
  t.equal(info.code, 0, info.stderr);
  const meta = JSON.parse(info.stdout);
  t.equal(meta.arch, 'cdnv2-cifar100-110');
  t.equal(meta.classes, 100, '100 outputs');
  t.same(meta.labels, CIFAR100_LABELS, 'the CIFAR-100 names travel in the model');
  t.same(meta.inputShape, [3, 32, 32]);
  const fromModel = cdnv2('eval', model, '--dataset', 'cifar100', '--data', data, '--json', '--no-progress');
  t.equal(fromModel.code, 0, fromModel.stderr);
  const fromCheckpoint = cdnv2('eval', run, '--dataset', 'cifar100', '--data', data, '--json', '--no-progress', '--backend', 'wasm');
  t.equal(fromCheckpoint.code, 0, fromCheckpoint.stderr);
  const a = JSON.parse(fromModel.stdout), b = JSON.parse(fromCheckpoint.stdout);
  t.equal(a.count, 8, 'the model is evaluated on the 8 test records');
  t.equal(b.count, 8, 'the checkpoint too');
  t.equal(a.accuracy, b.accuracy, 'the same predictions from the wasm runtime and TF.js');
});

t.test('--classes sizes the head of any configuration; too few outputs for the data set is an error', async (t) => {
  const run = path.join(tmp, 'tiny-100');
  const r = cdnv2('train', '--arch', 'cdnv2-tiny', '--classes', '100', ...common, '--out', run);
  t.equal(r.code, 0, r.stderr);
  const model = path.join(tmp, 'tiny-100.cnv2');
  t.equal(cdnv2('convert', run, '-o', model).code, 0);
  const meta = JSON.parse(cdnv2('info', model, '--json').stdout);
  t.equal(meta.classes, 100, 'cdnv2-tiny (10 classes) with a 100-way head');
  t.same(meta.labels, [], 'no class names: the configuration has none for 100 classes');
  const resumed = cdnv2('train', '--out', run, '--resume', '--classes', '50', '--epochs', '2', '--no-progress');
  t.equal(resumed.code, 1, 'resuming with another class count is refused');
  t.match(resumed.stderr, /options differ from the checkpoint's \(classes: 50 vs 100\)/);
  const few = cdnv2('train', '--arch', 'cdnv2-cifar-110', ...common, '--out', path.join(tmp, 'c10-on-c100'));
  t.equal(few.code, 1, 'a 10-class configuration on CIFAR-100');
  t.match(few.stderr, /cifar100\/train has 100 classes but cdnv2-cifar-110 has 10 outputs/);
  const bad = cdnv2('train', '--arch', 'cdnv2-tiny', '--classes', '1', ...common, '--out', path.join(tmp, 'one'));
  t.equal(bad.code, 2, '--classes 1 is a usage error');
  t.match(bad.stderr, /--classes must be an integer >= 2/);
});
