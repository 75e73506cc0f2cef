// build/cdnv2.wasm as a WASI preview1 command under node:wasi (test/wasmtime.test.ts runs it under real wasmtime).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomNetworkParams } from '../../../converter/random.js';
import { condense } from '../../../converter/condense.js';
import { writeModel } from '../../../base/cnv2/format.js';
import { loadModel, wasmPath, type Isa } from '../../../runtime/index.js';
import { TINY_A } from '../../../testkit/tiny-configs.js';
import { rng } from '../../../testkit/models.js';

const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-wasi-'));
const modelBytes = writeModel(condense(randomNetworkParams(TINY_A, 21), { weights: 'f32' }));
writeFileSync(path.join(dir, 'model.cnv2'), modelBytes);
// A 16x13 binary PPM (RGB, 8-bit) and a 16-bit PGM, both resized to the model's 11x11 input.
const r = rng(5);
const ppmPixels = Uint8Array.from({ length: 16 * 13 * 3 }, () => Math.floor(r() * 256));
writeFileSync(path.join(dir, 'image.ppm'), Buffer.concat([Buffer.from('P6\n# test image\n16 13\n255\n'), ppmPixels]));
const pgm16 = Buffer.alloc(7 * 9 * 2);
for (let i = 0; i < 7 * 9; i++) pgm16.writeUInt16BE(Math.floor(r() * 65536), i * 2);
writeFileSync(path.join(dir, 'gray16.pgm'), Buffer.concat([Buffer.from('P5 7 9 65535\n'), pgm16]));
writeFileSync(path.join(dir, 'truncated.ppm'), Buffer.concat([Buffer.from('P6\n16 13\n255\n'), ppmPixels.subarray(0, 100)]));
writeFileSync(path.join(dir, 'empty.ppm'), Buffer.alloc(0));
writeFileSync(path.join(dir, 'bad.cnv2'), modelBytes.subarray(0, 100));

function wasiRun(isa: Isa, args: string[]) {
  return spawnSync(process.execPath, ['scripts/wasi-run.mjs', `--dir=${dir}::/data`, wasmPath('command', isa), ...args], {
    encoding: 'utf8',
  });
}

function parseTop(stdout: string) {
  return stdout.trim().split('\n').map((line) => {
    const [score, index, ...label] = line.split(' ');
    return { score: Number(score), index: Number(index), label: label.join(' ') };
  });
}

t.test('imports nothing but wasi_snapshot_preview1', async (t) => {
  for (const isa of ['simd', 'scalar', 'relaxed'] as Isa[]) {
    if (isa === 'relaxed') (await import('../../../runtime/index.js')).enableRelaxedSimd();
    const mod = await WebAssembly.compile(readFileSync(wasmPath('command', isa)));
    const modules = new Set(WebAssembly.Module.imports(mod).map((i) => i.module));
    t.same([...modules], ['wasi_snapshot_preview1'], isa);
    t.ok(WebAssembly.Module.exports(mod).some((e) => e.name === '_start'), `${isa} exports _start`);
  }
});

t.test('classify prints the same top-5 as the JS API, for every build', async (t) => {
  const m = await loadModel(modelBytes);
  const ppm = readFileSync(path.join(dir, 'image.ppm'));
  const expected = m.top(m.runPnm(ppm), 5);
  for (const isa of ['simd', 'scalar', 'relaxed'] as Isa[]) {
    const res = wasiRun(isa, ['classify', '/data/model.cnv2', '/data/image.ppm']);
    t.equal(res.status, 0, `${isa} exit 0 (${res.stderr})`);
    const top = parseTop(res.stdout);
    t.equal(top.length, 5);
    t.same(top.map((p) => p.index), expected.map((p) => p.index), `${isa} same classes, best first`);
    t.same(top.map((p) => p.label), expected.map((p) => p.label));
    for (let i = 0; i < 5; i++) t.ok(Math.abs(top[i]!.score - expected[i]!.score) < 2e-6, `${isa} score ${i}`);
  }
  // 16-bit PGM, gray -> 3 channels, and a raw float32 tensor.
  const gray = wasiRun('simd', ['classify', '/data/model.cnv2', '/data/gray16.pgm', '--top', '3']);
  t.equal(gray.status, 0, gray.stderr);
  t.same(parseTop(gray.stdout).map((p) => p.index), m.top(m.runPnm(readFileSync(path.join(dir, 'gray16.pgm'))), 3).map((p) => p.index));
  const x = Float32Array.from({ length: m.inputLength }, () => r() * 2 - 1);
  writeFileSync(path.join(dir, 'input.f32'), Buffer.from(x.buffer));
  const raw = wasiRun('simd', ['classify', '/data/model.cnv2', '/data/input.f32']);
  t.equal(raw.status, 0, raw.stderr);
  t.same(parseTop(raw.stdout).map((p) => p.index), m.top(m.run(x), 5).map((p) => p.index));
});

t.test('a model without labels: classes are named by their index, like the JS API', async (t) => {
  const model = condense(randomNetworkParams(TINY_A, 22), { weights: 'f16' });
  model.meta = model.meta.filter((e) => e.key !== 'labels');
  const bytes = writeModel(model);
  writeFileSync(path.join(dir, 'unnamed.cnv2'), bytes);
  const m = await loadModel(bytes);
  const expected = m.top(m.runPnm(readFileSync(path.join(dir, 'image.ppm'))), 3);
  const res = wasiRun('simd', ['classify', '/data/unnamed.cnv2', '/data/image.ppm', '--top', '3']);
  t.equal(res.status, 0, res.stderr);
  const top = parseTop(res.stdout);
  t.same(top.map((p) => [p.index, p.label]), expected.map((p) => [p.index, String(p.index)]), 'label column is the index');
  t.match(wasiRun('simd', ['info', '/data/unnamed.cnv2']).stdout, /classes: 5\n/, 'info counts the output channels');
});

t.test('info and bench', async (t) => {
  const info = wasiRun('simd', ['info', '/data/model.cnv2']);
  t.equal(info.status, 0);
  const m = await loadModel(modelBytes);
  t.match(info.stdout, new RegExp(`arena bytes: ${m.arenaBytes}\\n`));
  t.match(info.stdout, /input: 3x11x11/);
  const bench = wasiRun('simd', ['bench', '/data/model.cnv2', '--runs', '5']);
  t.equal(bench.status, 0);
  t.match(bench.stdout, /runs: 5\nmedian ms: \d+\.\d{3}\n/);
});

t.test('exit codes: usage 2, bad files 1, help 0', async (t) => {
  t.equal(wasiRun('simd', []).status, 2);
  t.equal(wasiRun('simd', ['frobnicate']).status, 2);
  t.equal(wasiRun('simd', ['classify', '/data/model.cnv2']).status, 2, 'no image');
  t.equal(wasiRun('simd', ['classify', '/data/model.cnv2', '/data/image.ppm', '--top', 'x']).status, 2);
  t.equal(wasiRun('simd', ['info', '/data/model.cnv2', '--bogus']).status, 2);
  const help = wasiRun('simd', ['help']);
  t.equal(help.status, 0);
  t.match(help.stdout, /exit: 0 ok, 1 failure, 2 usage/);
  const missing = wasiRun('simd', ['info', '/data/nope.cnv2']);
  t.equal(missing.status, 1);
  t.match(missing.stderr, /\/data\/nope\.cnv2: no such file\n/);
  const bad = wasiRun('simd', ['info', '/data/bad.cnv2']);
  t.equal(bad.status, 1);
  t.match(bad.stderr, /invalid model \[truncated\]/);
  for (const img of ['truncated.ppm', 'empty.ppm']) {
    const res = wasiRun('simd', ['classify', '/data/model.cnv2', `/data/${img}`]);
    t.equal(res.status, 1, img);
    t.match(res.stderr, /cdnv2: /, img);
    t.notMatch(res.stderr, /trap/, img);
  }
  const outside = wasiRun('simd', ['info', '/etc/passwd']);
  t.equal(outside.status, 1, 'a path outside the granted directories is refused');
  t.match(outside.stderr, /not inside a directory the host granted/);
});
