// The WASI command under real wasmtime (the CLI, or the official Python embedding via scripts/wasmtime-run.py; in
// CI a missing wasmtime fails): `classify` top-5 and `--logits` equal the JS API's for all three builds; the
// per-op profile describes the ops as the converter counts them; the sandbox holds (read-only preopen, nothing
// written, `..`, absolute and relative paths outside the grant refused); `cdnv2 bench --engines wasmtime,...`
// runs it precompiled, checks its logits against the SIMD build and reports compile time apart.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { condense } from '../../../converter/condense.js';
import { analyze } from '../../../converter/flops.js';
import { readModel, writeModel } from '../../../base/cnv2/format.js';
import { randomNetworkParams } from '../../../converter/random.js';
import { loadModel, parseProfile, wasmPath, type Isa } from '../../../runtime/index.js';
import { cdnv2 } from '../../helpers/cli.js';
import { rng } from '../../../testkit/models.js';
import { TINY_A, TINY_B } from '../../../testkit/tiny-configs.js';
import { runWasmtime, wasmtimeOrSkip } from '../../helpers/wasmtime.js';

const ISAS: Isa[] = ['simd', 'relaxed', 'scalar'];
const TOL = 1e-5; // logits, relative to the largest |logit| (as the ARM64 test)

function parseTop(stdout: string): { score: number; index: number; label: string }[] {
  return stdout.trim().split('\n').map((line) => {
    const [score, index, ...label] = line.split(' ');
    return { score: Number(score), index: Number(index), label: label.join(' ') };
  });
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0, m = 1e-30;
  for (let i = 0; i < b.length; i++) { d = Math.max(d, Math.abs(a[i]! - b[i]!)); m = Math.max(m, Math.abs(b[i]!)); }
  return d / m;
}

const w = wasmtimeOrSkip(t);
if (w) {
  const root = mkdtempSync(path.join(tmpdir(), 'cdnv2-wasmtime-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const data = path.join(root, 'data');
  const secret = path.join(root, 'secret');
  mkdirSync(data);
  mkdirSync(secret);
  const models = {
    'a.cnv2': writeModel(condense(randomNetworkParams(TINY_A, 41), { weights: 'f32' })),
    'b.cnv2': writeModel(condense(randomNetworkParams(TINY_B, 42), { weights: 'f16' })),
  };
  for (const [name, bytes] of Object.entries(models)) writeFileSync(path.join(data, name), bytes);
  writeFileSync(path.join(secret, 'a.cnv2'), models['a.cnv2']);
  const r = rng(9);
  const ppm = Buffer.concat([Buffer.from('P6\n16 13\n255\n'), Buffer.from(Array.from({ length: 16 * 13 * 3 }, () => Math.floor(r() * 256)))]);
  writeFileSync(path.join(data, 'image.ppm'), ppm);
  // Each build compiled once ahead of time (the board workflow, `wasmtime compile`): most runs below load the
  // precompiled module; the first classify of each build runs the .wasm itself.
  const precompiled = new Map<Isa, string>();
  for (const isa of ISAS) {
    const out = path.join(root, `cdnv2-${isa}.cwasm`);
    const { command, args } = w.compileCommand(wasmPath('command', isa), out, { relaxedSimd: isa === 'relaxed' });
    const c = spawnSync(command, args, { encoding: 'utf8', timeout: 300_000 });
    if (c.status !== 0) throw new Error(`wasmtime compile ${isa}: ${c.stderr}`);
    precompiled.set(isa, out);
  }
  const run = (isa: Isa, args: string[], dirs = [`${data}::/data`]) =>
    runWasmtime(w, precompiled.get(isa)!, args, { dirs, relaxedSimd: isa === 'relaxed', precompiled: true });
  const runWasm = (isa: Isa, args: string[]) =>
    runWasmtime(w, wasmPath('command', isa), args, { dirs: [`${data}::/data`], relaxedSimd: isa === 'relaxed' });

  t.test('classify: top-5 and --logits equal the JS API, for every build', async (t) => {
    for (const [name, bytes] of Object.entries(models)) {
      for (const isa of ISAS) {
        const m = await loadModel(bytes, { isa });
        const logits = m.runPnm(ppm);
        const expected = m.top(logits, 5);
        const top = (name === 'a.cnv2' ? runWasm : run)(isa, ['classify', `/data/${name}`, '/data/image.ppm']);
        t.equal(top.code, 0, `${name} ${isa}: exit 0 (${top.stderr})`);
        const got = parseTop(top.stdout);
        t.same(got.map((p) => [p.index, p.label]), expected.map((p) => [p.index, p.label]), `${name} ${isa}: same classes and labels, best first`);
        t.ok(got.every((p, i) => Math.abs(p.score - expected[i]!.score) <= 2e-6), `${name} ${isa}: same scores`);

        const dump = run(isa, ['classify', `/data/${name}`, '/data/image.ppm', '--logits']);
        t.equal(dump.code, 0, dump.stderr);
        t.match(dump.stdout, /^-?\d\.\d{8}e-?\d+( -?\d\.\d{8}e-?\d+)*\n$/, `${name} ${isa}: one line of logits, 9 significant digits`);
        const values = dump.stdout.trim().split(' ').map(Number);
        t.equal(values.length, m.outputLength);
        t.ok(maxRelDiff(values, logits) <= TOL, `${name} ${isa}: logits within ${TOL} (${maxRelDiff(values, logits).toExponential(1)})`);

        // A raw float32 tensor input, two images in one call.
        const x = Float32Array.from({ length: m.inputLength }, () => r() * 2 - 1);
        writeFileSync(path.join(data, `x-${isa}.f32`), new Uint8Array(x.buffer));
        const two = run(isa, ['classify', `/data/${name}`, `/data/x-${isa}.f32`, '/data/image.ppm', '--logits']);
        t.equal(two.code, 0, two.stderr);
        const lines = two.stdout.trim().split('\n');
        t.same(lines.filter((l) => l.startsWith('#')), [`# /data/x-${isa}.f32`, '# /data/image.ppm']);
        const [lx, lp] = lines.filter((l) => !l.startsWith('#')).map((l) => l.split(' ').map(Number));
        t.ok(maxRelDiff(lx!, m.run(x)) <= TOL && maxRelDiff(lp!, logits) <= TOL, `${name} ${isa}: per-image logits`);
        m.dispose();
      }
    }
  });

  t.test('bench --profile: one row per op, as the converter counts it', async (t) => {
    const layers = analyze(readModel(models['a.cnv2'])).layers;
    for (const isa of ISAS) {
      const res = run(isa, ['bench', '/data/a.cnv2', '--runs', '3', '--warmup', '1', '--profile']);
      t.equal(res.code, 0, res.stderr);
      const rows = parseProfile(res.stdout);
      t.equal(rows.length, layers.length, `${isa}: one row per op`);
      t.same(rows.map((x) => [x.input, x.output, x.groups, x.madds]), layers.map((l) => [l.input, l.output, l.groups, l.macs]), `${isa}: shapes, groups, madds`);
      t.ok(Math.abs(rows.reduce((a, x) => a + x.share, 0) - 1) < 0.01, `${isa}: shares sum to 100%`);
    }
  });

  t.test('sandbox: read-only preopen, nothing written, paths outside the grant refused', async (t) => {
    const snapshot = (dir: string): string => readdirSync(dir).sort()
      .map((f) => { const s = statSync(path.join(dir, f)); return `${f}:${s.size}:${s.mtimeMs}`; }).join('\n');
    const before = snapshot(data);
    const beforeSecret = snapshot(secret);
    for (const [isa, args] of [
      ['simd', ['classify', '/data/a.cnv2', '/data/image.ppm']],
      ['scalar', ['info', '/data/a.cnv2']],
      ['relaxed', ['bench', '/data/a.cnv2', '--runs', '2']],
    ] as [Isa, string[]][]) {
      const res = run(isa, args);
      t.equal(res.code, 0, `${args[0]} (${isa}): exit 0 (${res.stderr})`);
      t.ok(res.stdout.length > 0, `${args[0]}: printed its result`);
    }
    t.equal(snapshot(data), before, 'the granted directory is unchanged');
    const outside = run('simd', ['info', path.join(secret, 'a.cnv2')]);
    t.equal(outside.code, 1, 'an absolute path outside the grant');
    t.match(outside.stderr, /not inside a directory the host granted/);
    const escape = run('simd', ['info', '/data/../secret/a.cnv2']);
    t.equal(escape.code, 1, '.. out of the preopen');
    t.match(escape.stderr, /\/data\/\.\.\/secret\/a\.cnv2: permission denied/);
    const relative = run('simd', ['classify', '/data/a.cnv2', 'image.ppm']);
    t.equal(relative.code, 1, 'a relative path with no "." preopen');
    t.match(relative.stderr, /image\.ppm: not inside a directory the host granted/);
    const noGrant = run('simd', ['info', '/data/a.cnv2'], []);
    t.equal(noGrant.code, 1, 'no --dir at all');
    t.equal(run('simd', ['info', '/data']).code, 1, 'a directory is not a model');
    t.equal(snapshot(secret), beforeSecret, 'nothing outside changed either');
    for (const res of [outside, escape, relative, noGrant]) t.notMatch(res.stderr, /trap/i);
  });

  t.test('cdnv2 classify --engine wasmtime prints what the JS API does', async (t) => {
    const res = cdnv2('classify', path.join(data, 'a.cnv2'), path.join(data, 'image.ppm'), '--engine', 'wasmtime', '--json');
    t.equal(res.code, 0, res.stderr);
    const [got] = JSON.parse(res.stdout) as { top: { index: number; label: string; score: number }[] }[];
    const m = await loadModel(models['a.cnv2']);
    const expected = m.top(m.runPnm(ppm), 5);
    m.dispose();
    t.same(got!.top.map((p) => [p.index, p.label]), expected.map((p) => [p.index, p.label]));
    t.ok(got!.top.every((p, i) => Math.abs(p.score - expected[i]!.score) <= 2e-6), 'same scores');
  });

  t.test('cdnv2 bench --engines wasmtime,wasmtime-relaxed: precompiled, logits checked, compile time apart', async (t) => {
    const json = path.join(root, 'bench.json');
    const res = cdnv2('bench', '--models', path.join(data, 'a.cnv2'), '--engines', 'cdnv2,wasmtime,wasmtime-relaxed', '--runs', '3', '--warmup', '1',
      '--profile', '2', '--json', json, '--no-progress');
    t.equal(res.code, 0, res.stderr);
    const report = JSON.parse(readFileSync(json, 'utf8')) as {
      results: { engine: string; medianMs: number; maxRelDiff: number | null; compileMs?: number | null; note: string }[];
      skipped: unknown[]; engines: Record<string, string>; profiles: { engine: string; ops: unknown[] }[];
    };
    t.same(report.skipped, []);
    t.same(report.results.map((x) => x.engine), ['cdnv2', 'wasmtime', 'wasmtime-relaxed']);
    for (const x of report.results.slice(1)) {
      t.ok(x.maxRelDiff !== null && x.maxRelDiff <= 1e-4, `${x.engine}: logits agree with the SIMD build (${x.maxRelDiff})`);
      t.ok(typeof x.compileMs === 'number' && x.compileMs > 0, `${x.engine}: compile time ${x.compileMs} ms reported`);
      t.ok(x.medianMs > 0);
      t.match(x.note, w.version.split(' (')[0]!, `${x.engine}: names the wasmtime that ran`);
      t.match(report.engines[x.engine]!, /wasmtime/);
    }
    t.same(report.profiles.map((p) => [p.engine, p.ops.length]), ['cdnv2', 'wasmtime', 'wasmtime-relaxed'].map((e) => [e, analyze(readModel(models['a.cnv2'])).layers.length]));
    t.match(res.stdout, /compiling took \d+ ms \(wasmtime\), \d+ ms \(wasmtime-relaxed\), not included in the latencies/);
    t.match(res.stdout, /Per-op profile, a\.cnv2, wasmtime \(median of 2 runs per op/);
  });
}
