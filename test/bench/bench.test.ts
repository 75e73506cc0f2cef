// `cdnv2 bench` smoke test: JSON structure, every engine runs and agrees with our logits, report files written.
// No timing is asserted (the machine is shared); only that the numbers are there and consistent.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { condense } from '../../converter/condense.js';
import { readModel, writeModel } from '../../base/cnv2/format.js';
import { randomNetworkParams } from '../../converter/random.js';
import { combineRounds, summarize, type RoundResult } from '../../bench/run.js';
import { TINY_A } from '../../testkit/tiny-configs.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-bench-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function cdnv2(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'cli/cdnv2.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

interface Row { engine: string; model: string; runs: number; medianMs: number; p10Ms: number; p90Ms: number; gflops: number; peakPct: number; maxRelDiff: number | null; memDeltaMiB: number; cpuMedianMs: number | null }

t.test('quantiles', async (t) => {
  t.same(summarize([5, 1, 3]), { medianMs: 3, p10Ms: 1.4, p90Ms: 4.6, meanMs: 3 });
  t.same(summarize([2]), { medianMs: 2, p10Ms: 2, p90Ms: 2, meanMs: 2 });
});

t.test('every engine on a tiny .cnv2 file', async (t) => {
  const model = path.join(dir, 'tiny.cnv2');
  writeFileSync(model, writeModel(condense(randomNetworkParams(TINY_A, 1), { weights: 'f32' })));
  const out = path.join(dir, 'report');
  const json = path.join(dir, 'r.json');
  const r = cdnv2('bench', '--models', model, '--runs', '1', '--warmup', '0', '--json', json, '--out', out, '--index-sum', 'gather');
  t.equal(r.code, 0, r.stderr);
  const report = JSON.parse(readFileSync(json, 'utf8')) as { results: Row[]; skipped: { engine: string; reason: string }[]; peakMaddsPerSecond: { simd: number }; models: { name: string; flops: number }[] };
  t.ok(report.peakMaddsPerSecond.simd > 0, 'SIMD peak measured');
  t.same(report.models.map((m) => m.name), ['tiny.cnv2']);
  const engines = ['cdnv2', 'cdnv2-relaxed', 'cdnv2-scalar', 'wasmtime', 'wasmtime-relaxed', 'tfjs-wasm', 'tfjs-cpu', 'ort-web', 'ort-node'];
  const measured = report.results.map((x) => x.engine);
  const skipped = report.skipped.map((x) => x.engine);
  t.same([...measured, ...skipped].sort(), [...engines].sort(), 'every engine measured or skipped with a reason');
  // wasmtime (CLI or the Python embedding) may be missing outside CI only (test/wasmtime.test.ts says why).
  for (const s of report.skipped) {
    t.ok(!process.env.CI && s.engine.startsWith('wasmtime'), `only wasmtime may be skipped, and not in CI (${s.engine}: ${s.reason})`);
    t.match(s.reason, /wasmtime/);
  }
  for (const x of report.results) {
    t.equal(x.runs, 1);
    for (const k of ['medianMs', 'p10Ms', 'p90Ms', 'gflops', 'peakPct'] as const) t.ok(Number.isFinite(x[k]) && x[k] > 0, `${x.engine} ${k} = ${x[k]}`);
    t.ok(x.p10Ms <= x.medianMs && x.medianMs <= x.p90Ms, `${x.engine}: p10 <= median <= p90`);
    const expectGflops = report.models[0]!.flops / (x.medianMs / 1000) / 1e9;
    t.ok(Math.abs(x.gflops - expectGflops) <= 1e-9 * expectGflops, `${x.engine}: GFLOP/s is FLOPs over the median`);
    t.ok(x.maxRelDiff !== null && x.maxRelDiff <= 1e-4, `${x.engine}: logits agree with cdnv2 (${x.maxRelDiff})`);
  }
  for (const f of ['latest.json', 'latest.md', 'latest.svg', 'latest.png']) t.ok(existsSync(path.join(out, f)), `${f} written`);
  t.same([...readFileSync(path.join(out, 'latest.png')).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], 'PNG signature');
  t.match(readFileSync(path.join(out, 'latest.svg'), 'utf8'), /<svg/);
  t.match(r.stdout, /\| model \| FLOPs \| engine \| runs \| median ms/, 'Markdown table on stdout');
  const again = path.join(dir, 'again');
  const rr = cdnv2('bench', '--render', json, '--out', again);
  t.equal(rr.code, 0, rr.stderr);
  t.equal(readFileSync(path.join(again, 'latest.md'), 'utf8'), rr.stdout, '--render re-renders the same Markdown it prints');
  t.match(rr.stdout, /Median latency in ms/);
  t.equal(cdnv2('bench', '--render', path.join(dir, 'none.json')).code, 1, '--render of a missing file fails');
});

t.test('training-form and condensed TF.js graphs agree with cdnv2 on a configuration', async (t) => {
  const json = path.join(dir, 'f.json');
  const r = cdnv2('bench', '--models', 'cdnv2-fmnist', '--engines', 'cdnv2,tfjs-wasm,tfjs-wasm-condensed', '--runs', '1', '--warmup', '0', '--json', json, '--no-progress');
  t.equal(r.code, 0, r.stderr);
  const rows = (JSON.parse(readFileSync(json, 'utf8')) as { results: (Row & { note: string })[] }).results;
  t.same(rows.map((x) => x.engine), ['cdnv2', 'tfjs-wasm', 'tfjs-wasm-condensed']);
  t.match(rows[1]!.note, /training-form graph/);
  t.match(rows[2]!.note, /condensed graph/);
  for (const x of rows.slice(1)) t.ok(x.maxRelDiff !== null && x.maxRelDiff <= 1e-4, `${x.engine} logits agree (${x.maxRelDiff})`);
});

t.test('the condensed TF.js graph runs an accumulating depthwise 3x3 (SFR-ShuffleNetV2) and agrees with cdnv2', async (t) => {
  const file = path.join(dir, 'sfr-shufflenetv2-fmnist.cnv2');
  const a = cdnv2('arch', 'sfr-shufflenetv2-fmnist', '-o', file);
  t.equal(a.code, 0, a.stderr);
  const sfr = readModel(readFileSync(file)).ops.filter((op) => op.kind === 'conv2d' && op.accumulate === 1);
  t.ok(sfr.length > 0 && sfr.every((op) => op.kind === 'conv2d' && op.kernel === 3 && op.groups === op.cin && op.outIndex !== null),
    'the model has accumulating depthwise 3x3 convs with an outIndex (what the test is about)');
  t.ok(sfr.some((op) => op.kind === 'conv2d' && op.outIndex !== null
    && new Set(readModel(readFileSync(file)).tensors[op.outIndex]!.data as ArrayLike<number>).size < op.cout), 'some SFR sums several outputs into one channel');
  const json = path.join(dir, 's.json');
  const r = cdnv2('bench', '--models', file, '--engines', 'cdnv2,tfjs-wasm', '--runs', '1', '--warmup', '0', '--json', json, '--no-progress');
  t.equal(r.code, 0, r.stderr);
  const rows = (JSON.parse(readFileSync(json, 'utf8')) as { results: (Row & { note: string })[] }).results;
  t.same(rows.map((x) => x.engine), ['cdnv2', 'tfjs-wasm']);
  t.match(rows[1]!.note, /condensed graph/);
  t.ok(rows[1]!.maxRelDiff !== null && rows[1]!.maxRelDiff <= 1e-4, `tfjs-wasm logits agree (${rows[1]!.maxRelDiff})`);
});

t.test('--rounds: the engines take turns, each round in fresh processes, runs split over the rounds', async (t) => {
  const json = path.join(dir, 'rounds.json');
  const r = cdnv2('bench', '--models', 'cdnv2-fmnist', '--engines', 'cdnv2-relaxed,cdnv2', '--runs', '5', '--rounds', '2', '--warmup', '0', '--json', json);
  t.equal(r.code, 0, r.stderr);
  // Progress lines (stderr is not a TTY): the SIMD build first, then the order asked for, round after round.
  const order = [...r.stderr.matchAll(/bench: cdnv2-fmnist (\S+) \(round (\d)\/2\)/g)].map((m) => `${m[1]}:${m[2]}`);
  t.same([...new Set(order)], ['cdnv2:1', 'cdnv2-relaxed:1', 'cdnv2:2', 'cdnv2-relaxed:2'], 'round-robin order');
  const report = JSON.parse(readFileSync(json, 'utf8')) as { options: { rounds: number }; results: Row[] };
  t.equal(report.options.rounds, 2);
  t.same(report.results.map((x) => [x.engine, x.runs]), [['cdnv2', 5], ['cdnv2-relaxed', 5]], 'all 5 runs kept (3 + 2)');
  t.match(r.stdout, /round-robin over 2 rounds/);
  const one = cdnv2('bench', '--models', 'cdnv2-fmnist', '--engines', 'cdnv2', '--runs', '2', '--rounds', '9', '--warmup', '0', '--json', json, '--no-progress');
  t.equal(one.code, 0, one.stderr);
  t.equal((JSON.parse(readFileSync(json, 'utf8')) as { options: { rounds: number } }).options.rounds, 2, 'at most one round per run');
});

t.test('combineRounds: each figure is the median over the rounds, runs add up, memory at its largest', async (t) => {
  const round = (median: number, p10: number, cpu: number, mem: number, runs: number): RoundResult => ({
    runs, stats: { medianMs: median, p10Ms: p10, p90Ms: median + 1, meanMs: median }, cpuMedianMs: cpu, logits: [1, 2], wasmMemoryMiB: 3,
    memDeltaMiB: mem, peakRssMiB: mem + 50, loadMs: 7, profile: null, note: 'n' });
  const m = { name: 'x', file: 'x.cnv2', flops: 2e9, macs: 2e9, params: 1, input: '1x2x2' };
  const c = combineRounds('cdnv2', m, [round(10, 9, 8, 1, 4), round(30, 2, 28, 5, 3), round(20, 4, 18, 2, 3)], [1, 2], 1e9);
  t.equal(c.medianMs, 20);
  t.equal(c.p10Ms, 4);
  t.equal(c.cpuMedianMs, 18);
  t.equal(c.runs, 10);
  t.equal(c.memDeltaMiB, 5);
  t.equal(c.gflops, 100, '2 GFLOP in 20 ms');
  t.equal(c.peakPct, 10000, '2e9 madds in 20 ms over a 1e9/s peak');
  t.equal(c.maxRelDiff, 0);
  const noCpu = combineRounds('wasmtime', m, [{ ...round(10, 9, 8, 1, 4), cpuMedianMs: null }], null, 1e9);
  t.equal(noCpu.cpuMedianMs, null);
  t.equal(noCpu.maxRelDiff, null);
});

t.test('bad arguments are usage errors', async (t) => {
  t.equal(cdnv2('bench', '--engines', 'nope').code, 2);
  t.equal(cdnv2('bench', '--runs', '0').code, 2);
  t.equal(cdnv2('bench', '--index-sum', 'x').code, 2);
  const missing = cdnv2('bench', '--models', path.join(dir, 'none.cnv2'), '--engines', 'cdnv2');
  t.equal(missing.code, 2, 'an unknown model is a usage error, as an unknown engine');
  t.match(missing.stderr, /neither a configuration .* nor an existing \.cnv2 file/);
});
