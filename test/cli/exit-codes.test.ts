// Exit codes through the real CLI (issue 26): every subcommand, spawned as a user runs it, exits 0 on success,
// 1 when the work fails (a bad or missing file, a diverging training run) and 2 on a usage error (README).
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { root } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-exit-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const f = (name: string): string => path.join(dir, name);

interface Result { code: number | null; stdout: string; stderr: string }

/** Spawns `cdnv2 ...args` (tsx, from the sources) without blocking, so two commands share the two cores. */
function cdnv2(args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'cli/cdnv2.ts'), ...args], { cwd: root });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

interface Case { what: string; args: string[]; code: 0 | 1 | 2; stderr?: RegExp }

/** Runs the cases two at a time and checks each exit code (and message). */
async function check(t: Test, cases: Case[]): Promise<void> {
  const results = new Array<Result>(cases.length);
  let next = 0;
  const worker = async (): Promise<void> => { while (next < cases.length) { const i = next++; results[i] = await cdnv2(cases[i]!.args); } };
  await Promise.all([worker(), worker()]);
  cases.forEach((c, i) => {
    const r = results[i]!;
    t.equal(r.code, c.code, `${c.what}: exit ${c.code}${r.code === c.code ? '' : `\n${r.stderr.slice(-600)}`}`);
    if (c.stderr) t.match(r.stderr, c.stderr, `${c.what}: says why`);
    if (c.code !== 0) t.notMatch(r.stderr, /^\s+at .+:\d+:\d+\)?$/m, `${c.what}: no stack trace`);
  });
}

const TRAIN = ['train', '--arch', 'cdnv2-fmnist', '--dataset', 'synthetic', '--epochs', '1', '--batch', '16', '--limit-train', '32',
  '--limit-test', '16', '--warmup-epochs', '0', '--no-progress', '--threads', '1', '--workers', '1'];

t.test('every subcommand: 0 success, 1 work failed, 2 usage error', async (t) => {
  writeFileSync(f('image.pgm'), Buffer.concat([Buffer.from('P5\n28 28\n255\n'), Buffer.alloc(28 * 28, 128)]));
  writeFileSync(f('broken.cnv2'), Buffer.from('CNV2 but nothing else'));
  writeFileSync(f('not-an-image.png'), Buffer.from('not a PNG'));
  // First what the others need: a model file and a finished training run.
  await check(t, [
    { what: 'arch', args: ['arch', 'cdnv2-fmnist', '-o', f('m.cnv2')], code: 0 },
    { what: 'train', args: [...TRAIN, '--lr', '0.05', '--out', f('run')], code: 0 },
  ]);
  await check(t, [
    { what: 'arch into a missing directory', args: ['arch', 'cdnv2-fmnist', '-o', f('no/such/dir/m.cnv2')], code: 1, stderr: /no\/such\/dir/ },
    { what: 'arch with an unknown configuration', args: ['arch', 'cdnv2-nope', '-o', f('x.cnv2')], code: 2, stderr: /cdnv2-nope/ },
    { what: 'arch with an unknown option', args: ['arch', 'cdnv2-fmnist', '-o', f('z.cnv2'), '--bogus'], code: 2, stderr: /unknown option '--bogus'/ },

    { what: 'info', args: ['info', f('m.cnv2')], code: 0 },
    { what: 'info of a broken model', args: ['info', f('broken.cnv2')], code: 1, stderr: /invalid model \(truncated\)/ },
    { what: 'info without its argument', args: ['info'], code: 2 },

    { what: 'classify', args: ['classify', f('m.cnv2'), f('image.pgm'), '--top', '2', '--warmup', '0'], code: 0 },
    { what: 'classify an unreadable image', args: ['classify', f('m.cnv2'), f('not-an-image.png'), '--warmup', '0'], code: 1, stderr: /not-an-image\.png/ },
    { what: 'classify with --top 0', args: ['classify', f('m.cnv2'), f('image.pgm'), '--top', '0'], code: 2, stderr: /expected a positive integer, got '0'/ },

    { what: 'export-onnx', args: ['export-onnx', f('m.cnv2'), '-o', f('m.onnx')], code: 0 },
    { what: 'export-onnx of a broken model', args: ['export-onnx', f('broken.cnv2'), '-o', f('b.onnx')], code: 1, stderr: /invalid model \(truncated\)/ },
    { what: 'export-onnx with opset 12', args: ['export-onnx', f('m.cnv2'), '-o', f('m12.onnx'), '--opset', '12'], code: 2, stderr: /opset/ },

    { what: 'convert', args: ['convert', f('run'), '-o', f('run.cnv2')], code: 0 },
    { what: 'convert a missing run', args: ['convert', f('no-run'), '-o', f('x.cnv2')], code: 1, stderr: /no-run/ },
    { what: 'convert with --weights f8', args: ['convert', f('run'), '-o', f('y.cnv2'), '--weights', 'f8'], code: 2, stderr: /f8|weights/ },

    { what: 'eval of a checkpoint', args: ['eval', f('run'), '--dataset', 'synthetic', '--limit', '16', '--backend', 'cpu'], code: 0 },
    { what: 'eval of a model file', args: ['eval', f('m.cnv2'), '--dataset', 'synthetic', '--limit', '16'], code: 0 },
    { what: 'eval of a missing run', args: ['eval', f('no-run'), '--dataset', 'synthetic'], code: 1, stderr: /no-run/ },
    { what: 'eval with an unknown data set', args: ['eval', f('run'), '--dataset', 'imagenet-9k'], code: 2, stderr: /imagenet-9k/ },

    { what: 'train that diverges (learning rate 1e30)', args: [...TRAIN, '--lr', '1e30', '--out', f('diverge')], code: 1, stderr: /training diverged at iteration \d+/ },
    { what: 'train with a negative learning rate', args: [...TRAIN, '--lr', '-1', '--out', f('neg')], code: 2, stderr: /lr/ },

    { what: 'bench', args: ['bench', '--models', f('m.cnv2'), '--engines', 'cdnv2', '--runs', '1', '--warmup', '0', '--no-progress'], code: 0 },
    { what: 'bench of a broken model', args: ['bench', '--models', f('broken.cnv2'), '--engines', 'cdnv2', '--runs', '1', '--warmup', '0', '--no-progress'], code: 1, stderr: /invalid model \(truncated\)/ },
    { what: 'bench with an unknown engine', args: ['bench', '--engines', 'warp-drive', '--no-progress'], code: 2, stderr: /warp-drive/ },

    { what: 'an unknown subcommand', args: ['frobnicate'], code: 2 },
  ]);
});
