import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';

import { buildProgram } from '../../cli/cdnv2.js';
import { UsageError } from '../../cli/errors.js';
import { selectBackend } from '../../trainer/backend.js';
import { loadCheckpoint } from '../../trainer/checkpoint.js';
import { register } from '../../cli/trainer-cli.js';
import { openSynthetic } from '../../base/data/synthetic.js';
import { evaluateSource, modelFromCheckpoint } from '../../trainer/evaluate.js';
import { train } from '../../trainer/train.js';
import { tinyConfig } from '../../trainer/tiny.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-cli-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

async function cli(args: string[]): Promise<{ out: string; err: string }> {
  const program = buildProgram();
  register(program);
  let out = '', err = '';
  const ow = process.stdout.write.bind(process.stdout), ew = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => { out += s; return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => { err += s; return true; }) as typeof process.stderr.write;
  try {
    await program.parseAsync(['node', 'cdnv2', ...args]);
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
  return { out, err };
}

t.test('bad arguments are usage errors', async (t) => {
  await t.rejects(cli(['train', '--arch', 'cdnv2-fmnist', '--dataset', 'synthetic', '--epochs', '0']), UsageError);
  await t.rejects(cli(['train', '--arch', 'nope', '--dataset', 'synthetic']), /unknown configuration 'nope'/);
  await t.rejects(cli(['train', '--arch', 'cdnv2-fmnist', '--dataset', 'imagenet']), /Allowed choices/i);
  await t.rejects(cli(['train', '--arch', 'cdnv2-fmnist', '--dataset', 'synthetic', '--ema', '1.5']), /--ema decay must be in/);
  await t.rejects(cli(['train', '--arch', 'cdnv2-fmnist', '--dataset', 'synthetic', '--threads', '3']), /--threads must be 1 or 2/);
  await t.rejects(cli(['train', '--arch', 'cdnv2-fmnist', '--dataset', 'synthetic', '--workers', '3']), /--workers must be 1 or 2/);
  await t.rejects(cli(['train', '--arch', 'cdnv2-fmnist', '--dataset', 'synthetic', '--crop', '-1']), /--crop must be an integer >= 0/);
  await t.rejects(cli(['train', '--arch', 'cdnv2-fmnist', '--dataset', 'synthetic', '--backend', 'gpu']), /Allowed choices/i);
  await t.rejects(cli(['train', '--arch', 'cdnv2-fmnist', '--dataset', 'synthetic', '--checkpoint-minutes', '-1']), /--checkpoint-minutes must be a number >= 0/);
  await t.rejects(cli(['eval', path.join(tmp, 'missing'), '--dataset', 'synthetic']), /no such directory/);
});

t.test('eval --json --limit --logits on a trained checkpoint', async (t) => {
  await selectBackend('cpu');
  const cfg = tinyConfig();
  const shape = { height: 8, width: 8, channels: 1, classes: 4 };
  const out = path.join(tmp, 'run');
  await train({
    arch: 'tiny', dataset: 'synthetic', epochs: 1, batch: 16, lr: 0.3, warmupEpochs: 0, warmupLr: 0.3, weightDecay: 0, momentum: 0.9,
    labelSmoothing: 0.1, ema: 0.5, groupLasso: 1e-4, sfr: true, seed: 3, augment: true, out, resume: false, backend: 'cpu', config: cfg,
    chart: true, log: () => {}, sources: { train: openSynthetic({ split: 'train', count: 32, ...shape }), test: openSynthetic({ split: 'test', count: 16, ...shape }) },
  });
  t.ok(readFileSync(path.join(out, 'training-curve.svg'), 'utf8').startsWith('<svg'), 'SVG chart');
  t.same(readFileSync(path.join(out, 'training-curve.png')).subarray(1, 4).toString(), 'PNG', 'PNG chart');
  const logitsFile = path.join(tmp, 'logits.json');
  const r = await cli(['eval', out, '--dataset', 'synthetic', '--limit', '5', '--json', '--logits', logitsFile, '--backend', 'cpu']);
  const j = JSON.parse(r.out);
  t.equal(j.count, 5);
  t.match(r.err, /backend: cpu/);
  const logits = JSON.parse(readFileSync(logitsFile, 'utf8')).logits as number[][];
  t.equal(logits.length, 5);
  // Same numbers as evaluating the EMA model directly on the first 5 synthetic test images.
  const ck = await loadCheckpoint(out);
  t.ok(ck.ema, 'checkpoint has EMA weights');
  const model = modelFromCheckpoint(ck);
  const ref = await evaluateSource(model, openSynthetic({ split: 'test', count: 5, ...shape }), { keepLogits: true });
  model.dispose();
  t.equal(j.accuracy, ref.accuracy);
  for (let i = 0; i < 5; i++) for (let k = 0; k < 4; k++) t.ok(Math.abs(logits[i]![k]! - ref.logits![i * 4 + k]!) < 1e-6);
});
