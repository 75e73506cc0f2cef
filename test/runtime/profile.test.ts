// The per-op profile, in the JS API (`Cdnv2Model.profile`) and in the WASI command (`bench --profile`, here under
// node:wasi; test/wasmtime.test.ts runs it under wasmtime): one row per op whose index, kind, shapes, groups and
// multiply-adds equal the converter's independent per-layer count (converter/flops.ts), shares summing to 100%,
// rates equal to multiply-adds over the median, and `run` giving the same logits before and after profiling.
import t from 'tap';
const tap = t;
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { condense } from '../../converter/condense.js';
import { analyze, type LayerRow } from '../../converter/flops.js';
import { readModel, writeModel } from '../../base/cnv2/format.js';
import { randomNetworkParams } from '../../converter/random.js';
import { formatProfile, loadModel, parseProfile, wasmPath, type Isa, type OpProfile } from '../../runtime/index.js';
import { root } from '../helpers/cli.js';
import { TINY_A } from '../../testkit/tiny-configs.js';

const HEADER = '  op kind             input      output groups       madds median_ms  share Gmadd/s';
const bytes = writeModel(condense(randomNetworkParams(TINY_A, 31), { weights: 'f16' }));
const layers = analyze(readModel(bytes)).layers;
const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-profile-'));
writeFileSync(path.join(dir, 'model.cnv2'), bytes);
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** The profile's description of each op must be the converter's, row by row. */
function checkRows(t: Pick<typeof tap, 'equal' | 'ok' | 'match' | 'same'>, rows: OpProfile[], expected: LayerRow[], what: string): void {
  t.equal(rows.length, expected.length, `${what}: one row per op`);
  t.ok(expected.some((l) => l.op === 'conv2d') && expected.some((l) => l.op === 'se') && expected.some((l) => l.op === 'fc'), 'the model has conv, SE and FC ops');
  rows.forEach((r, i) => {
    const l = expected[i]!;
    const kind = l.op === 'conv2d' ? /^conv\d+x\d+(\/s\d+)?$/ : new RegExp(`^${l.op}$`);
    t.match(r.kind, kind, `${what} op ${i}: kind ${r.kind} for ${l.op}`);
    t.same([r.index, r.input, r.output, r.groups, r.madds], [i, l.input, l.output, l.groups, l.macs], `${what} op ${i} (${l.op}) shapes, groups, madds`);
    t.ok(r.medianMs >= 0 && Number.isFinite(r.medianMs), `${what} op ${i}: median ${r.medianMs}`);
  });
  const total = rows.reduce((a, r) => a + r.medianMs, 0);
  t.ok(total > 0, `${what}: the ops took time`);
  t.ok(Math.abs(rows.reduce((a, r) => a + r.share, 0) - 1) < 0.01, `${what}: shares sum to 100%`);
}

t.test('JS API: profile rows describe the ops as the converter counts them, every build', async (t) => {
  for (const isa of ['simd', 'relaxed', 'scalar'] as Isa[]) {
    const m = await loadModel(bytes, { isa });
    const x = Float32Array.from({ length: m.inputLength }, (_, i) => Math.cos(i));
    const before = m.run(x);
    const rows = m.profile({ runs: 5, warmup: 1, input: x });
    checkRows(t, rows, layers, isa);
    const total = rows.reduce((a, r) => a + r.medianMs, 0);
    for (const r of rows) {
      t.ok(Math.abs(r.share - r.medianMs / total) < 1e-12, `${isa} op ${r.index}: share is its median over the sum`);
      t.equal(r.maddsPerSecond, r.medianMs > 0 ? r.madds / (r.medianMs / 1000) : 0, `${isa} op ${r.index}: rate`);
    }
    t.same(m.run(x), before, `${isa}: run gives the same logits after profiling`);
    t.throws(() => m.profile({ runs: 0 }), { code: 'input' });
    m.dispose();
  }
});

t.test('formatProfile and parseProfile round-trip (the command prints the same layout)', async (t) => {
  const m = await loadModel(bytes);
  const rows = m.profile({ runs: 3 });
  m.dispose();
  const text = formatProfile(rows);
  t.equal(text.split('\n')[0], HEADER, 'the header the WASI command prints');
  const back = parseProfile(`runs: 3\n${text}`);
  t.same(back.map((r) => [r.index, r.kind, r.input, r.output, r.groups, r.madds]), rows.map((r) => [r.index, r.kind, r.input, r.output, r.groups, r.madds]));
  back.forEach((r, i) => t.ok(Math.abs(r.medianMs - rows[i]!.medianMs) <= 5e-5, `op ${i} median to 4 decimals`));
});

t.test('WASI command: bench --profile prints the per-op table (node:wasi)', async (t) => {
  for (const isa of ['simd', 'scalar'] as Isa[]) {
    const r = spawnSync(process.execPath, [path.join(root, 'scripts/wasi-run.mjs'), `--dir=${dir}::/d`, wasmPath('command', isa), 'bench', '/d/model.cnv2', '--runs', '3', '--profile'], { encoding: 'utf8' });
    t.equal(r.status, 0, r.stderr);
    t.match(r.stdout, /^median ms: /m, 'the whole-run figures come first');
    t.ok(r.stdout.split('\n').includes(HEADER), 'the profile header');
    const rows = parseProfile(r.stdout);
    checkRows(t, rows, layers, `command ${isa}`);
    const sum = Number(/^profile sum ms: ([\d.]+)$/m.exec(r.stdout)?.[1]);
    t.ok(Math.abs(sum - rows.reduce((a, x) => a + x.medianMs, 0)) <= 5e-4 * (rows.length + 1), `sum line ${sum} is the sum of the medians`);
    for (const x of rows) {
      const rate = /\s(\S+)$/.exec(r.stdout.split('\n').find((l) => new RegExp(`^\\s*${x.index} `).test(l))!)![1]!;
      // The median is printed to 4 decimals, the rate (from the unrounded median) to 2.
      const [lo, hi] = [x.madds / (x.medianMs + 5e-5) / 1e6 - 0.005, x.medianMs > 5e-5 ? x.madds / (x.medianMs - 5e-5) / 1e6 + 0.005 : Infinity];
      if (x.madds > 0 && x.medianMs > 0) t.ok(Number(rate) >= lo && Number(rate) <= hi, `op ${x.index}: Gmadd/s ${rate} in [${lo}, ${hi}]`);
      else if (x.madds === 0) t.equal(rate, '-', `op ${x.index}: no rate without multiply-adds`);
    }
  }
  const plain = spawnSync(process.execPath, [path.join(root, 'scripts/wasi-run.mjs'), `--dir=${dir}::/d`, wasmPath('command', 'simd'), 'bench', '/d/model.cnv2', '--runs', '2'], { encoding: 'utf8' });
  t.equal(plain.status, 0);
  t.notMatch(plain.stdout, /op kind/, 'no profile unless asked');
  const misplaced = spawnSync(process.execPath, [path.join(root, 'scripts/wasi-run.mjs'), `--dir=${dir}::/d`, wasmPath('command', 'simd'), 'info', '/d/model.cnv2', '--profile'], { encoding: 'utf8' });
  t.equal(misplaced.status, 2, '--profile belongs to bench');
});
