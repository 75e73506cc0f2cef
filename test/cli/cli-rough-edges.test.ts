// What a new user ran into (issue 21), through the real CLI: plain errors naming the path, eval progress,
// classify --json reporting failures, info --json metadata, one exit code for unknown bench models and engines,
// benchmarks that write only when asked. (train --resume and the warm-up note: train-resume-cli.test.ts.)
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { cdnv2, root } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-edges-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const shipped = path.join(root, 'models/cdnv2-fmnist.cnv2');
const sample = path.join(root, 'models/samples/00-ankle-boot.png');
const RAW_CODE = /\b(EISDIR|ENOENT|ENOTDIR|EACCES|errno)\b/;

t.test('file errors are sentences that name the path, not error codes', async (t) => {
  const info = cdnv2('info', dir);
  t.equal(info.code, 1, 'info on a directory fails');
  t.equal(info.stderr, `cdnv2: cannot read '${dir}': it is a directory, not a file\n`);

  const arch = cdnv2('arch', 'cdnv2-fmnist', '-o', '/nonexistent/x.cnv2');
  t.equal(arch.code, 1, 'arch into a missing directory fails');
  t.equal(arch.stderr, "cdnv2: cannot write '/nonexistent/x.cnv2': the directory '/nonexistent' does not exist\n");

  const missing = cdnv2('classify', path.join(dir, 'nope.cnv2'), sample);
  t.equal(missing.code, 1);
  t.equal(missing.stderr, `cdnv2: ${path.join(dir, 'nope.cnv2')}: no such file\n`);

  const notDir = cdnv2('info', `${shipped}/x`);
  t.equal(notDir.code, 1);
  t.match(notDir.stderr, /a part of the path is not a directory/);
  for (const r of [info, arch, missing, notDir]) t.notMatch(r.stderr, RAW_CODE, 'no raw error code');
});

t.test('the WASI command names a missing file in words', async (t) => {
  writeFileSync(path.join(dir, 'm.cnv2'), readFileSync(shipped));
  const r = spawnSync(process.execPath, [path.join(root, 'scripts/wasi-run.mjs'), `--dir=${dir}::/data`,
    path.join(root, 'build/cdnv2.wasm'), 'classify', '/data/m.cnv2', '/data/missing.pgm'], { encoding: 'utf8' });
  t.equal(r.status, 1);
  t.match(r.stderr, /\/data\/missing\.pgm: no such file\n/);
  t.notMatch(r.stderr, RAW_CODE);
});

t.test('classify --json reports every file, failed ones with their error, in order', async (t) => {
  const notImage = path.join(dir, 'notes.txt');
  writeFileSync(notImage, 'not an image');
  const r = cdnv2('classify', shipped, sample, path.join(dir, 'gone.png'), notImage, '--json', '--top', '1', '--warmup', '0');
  t.equal(r.code, 1, 'a failed file fails the command');
  const out = JSON.parse(r.stdout) as { file: string; top?: { label: string }[]; error?: { code: string; message: string } }[];
  t.same(out.map((x) => x.file), [sample, path.join(dir, 'gone.png'), notImage], 'one entry per file, in order');
  t.equal(out[0]!.top![0]!.label, 'Ankle boot');
  t.same(out[1]!.error, { code: 'io', message: `${path.join(dir, 'gone.png')}: no such file` });
  t.equal(out[2]!.error!.code, 'input');
  t.match(out[2]!.error!.message, /notes\.txt: not a PNG, JPEG/);
  t.notOk('top' in out[1]!, 'a failed file has no predictions');
});

t.test('info --json gives the model\'s name, input, classes, labels and preprocessing', async (t) => {
  const r = cdnv2('info', shipped, '--json');
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as Record<string, unknown>;
  // The shipped model's card (models/README.md): Fashion-MNIST, 28x28 gray, mean 0.286 and std 0.353.
  t.match(j, {
    name: 'cdnv2-fmnist-w', arch: 'cdnv2-fmnist-w', inputShape: [1, 28, 28], classes: 10,
    preprocessing: { resize: 'bilinear', fit: 'shorter-side-then-center-crop', mean: [0.286], std: [0.353] },
    macs: 24394048, flops: 25176492,
  });
  t.same(j.labels, ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']);
});

t.test('bench: an unknown model and an unknown engine are both usage errors', async (t) => {
  const model = cdnv2('bench', '--models', 'nope', '--runs', '1');
  const engine = cdnv2('bench', '--engines', 'nope', '--runs', '1');
  t.equal(model.code, 2, model.stderr);
  t.equal(engine.code, 2, engine.stderr);
  t.match(model.stderr, /unknown model 'nope'/);
  t.match(engine.stderr, /unknown engine 'nope'/);
});

t.test('benchmarks write report files only with --out', async (t) => {
  // Every file under bench/results (results of one benchmark may sit in a sub-directory) with its size.
  const results = (): [string, number][] => readdirSync(path.join(root, 'bench/results'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile()).map((e) => path.join(e.parentPath ?? e.path, e.name))
    .sort().map((f) => [path.relative(root, f), readFileSync(f).length]);
  const before = results();
  const cwd = mkdtempSync(path.join(dir, 'cwd-'));
  const plain = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'bench/runtime-targets.ts'), '--runs', '1'],
    { cwd: root, encoding: 'utf8', timeout: 300_000 });
  t.equal(plain.status, 0, plain.stderr);
  t.match(plain.stdout, /load \+ plan, median of 1/);
  t.same(results(), before,
    'bench/results untouched without --out');
  const out = path.join(cwd, 'results');
  const asked = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'bench/runtime-targets.ts'), '--runs', '1', '--out', out],
    { cwd: root, encoding: 'utf8', timeout: 300_000 });
  t.equal(asked.status, 0, asked.stderr);
  t.same(readdirSync(out), ['runtime-targets.json'], '--out DIR gets the report');
  t.same(readdirSync(cwd), ['results'], 'nothing else written');
});

t.test('eval shows progress on a terminal, and stays quiet on short runs into a pipe', async (t) => {
  const data = '/usr/share/datasets/fashion-mnist';
  if (!existsSync(data)) return t.skip('dataset-fashion-mnist is not installed (.ci/run installs it)', () => {});
  const args = ['eval', shipped, '--dataset', 'fashion-mnist', '--limit', '200'];
  const piped = cdnv2(...args);
  t.equal(piped.code, 0, piped.stderr);
  t.equal(piped.stderr, '', 'no progress lines on a short run into a pipe');
  // script(1) gives the command a terminal, as a user's shell does.
  const cmd = [process.execPath, '--import', 'tsx', path.join(root, 'cli/cdnv2.ts'), ...args].map((a) => `'${a}'`).join(' ');
  const tty = spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd: root, encoding: 'utf8', timeout: 300_000 });
  t.equal(tty.status, 0, tty.stdout);
  t.match(tty.stdout, /eval \|[^|]*\| \d+\/200 images/, 'a progress bar with the image count');
  t.match(tty.stdout, /accuracy \d+\.\d\d% on 200 images/);
  const quiet = spawnSync('script', ['-qec', `${cmd} --no-progress`, '/dev/null'], { cwd: root, encoding: 'utf8', timeout: 300_000 });
  t.notMatch(quiet.stdout, /eval \|/, '--no-progress');
});
