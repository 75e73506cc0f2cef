// Hostile model files (issue 6): a fixed-seed fuzz pass over the wasm loader in all three builds, the same files
// through the WASI command, and the regression files of test/fixtures/fuzz/. Contract (testkit/fuzz-model.ts):
// a typed rejection or a load whose runs give finite logits (or report 'numeric'), never a trap, each case
// within a second, and the TypeScript reader agreeing on accept/reject. Longer runs: `npm run fuzz`.
import t from 'tap';
import { runWasmtimeBatch, wasmtimeOrSkip } from '../../helpers/wasmtime.js';
const tap = t;
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelFormatError, readModel } from '../../../base/cnv2/format.js';
import { Cdnv2Error, isaSupported, loadModel, wasmPath, type Isa } from '../../../runtime/index.js';
import { baseModels, checkCase, fuzz, mutate, Rng, TIME_LIMIT_MS, type Field, type Base } from '../../../testkit/fuzz-model.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const ISAS: Isa[] = ['simd', 'scalar', 'relaxed'];
const SEED = 20240606;
const bases = baseModels();

t.before(async () => {
  for (const isa of ISAS) if (!(await isaSupported(isa))) throw new Error(`this Node cannot compile the ${isa} build`);
});

t.test('3000 mutated model files through the wasm loader (all builds, fixed seed)', async (t) => {
  const t0 = performance.now();
  const stats = await fuzz({ cases: 3000, seed: SEED, isas: [['simd', 2], ['scalar', 1], ['relaxed', 1]], bases });
  const secs = (performance.now() - t0) / 1000;
  t.comment(`${stats.cases} cases (${JSON.stringify(stats.byIsa)}) in ${secs.toFixed(1)} s: ${stats.rejected} rejected, ` +
    `${stats.accepted} accepted (${stats.numeric} report non-finite logits), slowest ${stats.maxMs.toFixed(1)} ms`);
  t.comment(`verdicts: ${JSON.stringify(stats.codes)}`);
  for (const f of stats.failures.slice(0, 20)) t.fail(`[${f.isa}] ${f.desc}: ${f.problem}`);
  t.equal(stats.failures.length, 0, 'no trap, crash, slow case or disagreement');
  t.equal(stats.cases, 3000);
  t.ok(stats.maxMs < TIME_LIMIT_MS, `every case within ${TIME_LIMIT_MS} ms`);
  // The mutations must reach past the checksums into every layer of validation, and leave some files valid.
  for (const code of ['truncated', 'checksum', 'section', 'meta', 'graph', 'range', 'shape', 'index', 'header']) {
    t.ok((stats.codes[code] ?? 0) > 0, `some cases rejected as '${code}'`);
  }
  t.ok(stats.accepted > 100, `${stats.accepted} mutated files still valid (and run)`);
  t.ok(stats.codes.checksum! < stats.cases / 5, 'most cases get past the CRCs');
});

interface Fixture { file: string; expect: string; ts: string; why: string }

t.test('regression files of test/fixtures/fuzz load or fail as recorded, in every build', async (t) => {
  const dir = path.join(root, 'test/fixtures/fuzz');
  const list = JSON.parse(readFileSync(path.join(dir, 'fixtures.json'), 'utf8')) as Fixture[];
  t.ok(list.length >= 8);
  for (const fx of list) {
    const bytes = new Uint8Array(readFileSync(path.join(dir, fx.file)));
    let ts = 'accept';
    try { readModel(bytes); } catch (err) { ts = err instanceof ModelFormatError ? err.code : `crash ${(err as Error).message}`; }
    t.equal(ts, fx.ts, `${fx.file}: TypeScript reader (${fx.why})`);
    for (const isa of ISAS) {
      let got = 'accept';
      try {
        const m = await loadModel(bytes, { isa });
        try { m.run(new Float32Array(m.inputLength).fill(0.5)); } finally { m.dispose(); }
      } catch (err) {
        got = err instanceof Cdnv2Error ? err.code : `crash ${(err as Error).message}`;
      }
      t.equal(got, fx.expect, `${fx.file}: ${isa} (${fx.why})`);
    }
    const o = await checkCase(bytes, 'simd');
    t.notOk(o.problem, `${fx.file}: fuzz contract holds (${o.problem ?? 'ok'})`);
  }
});

type RunResult = { status: number; stdout: string; stderr: string };
/** Runs the command once per argument list (with `dir` preopened as /data); results in order. */
type CommandRuns = (dir: string, argLists: string[][]) => Promise<RunResult[]>;

/** Spawns one run asynchronously (two at a time keeps both CI cores busy). */
function spawnRun(command: string, argv: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(command, argv, { cwd: root });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}

/**
 * scripts/wasi-run.mjs --batch: the command under node:wasi (a trap exits 70), each run in a fresh instance, in two
 * batches at a time (two cores), each one Node process compiling the module once: a process per run made this
 * pass most of the file's time. (wasi-run.mjs repeats a run in a process of its own if its memory grows large.)
 */
const wasiRuns: CommandRuns = async (dir, argLists) => {
  const half = Math.ceil(argLists.length / 2);
  const batch = async (lists: string[][], name: string): Promise<RunResult[]> => {
    const jobs = path.join(dir, name);
    writeFileSync(jobs, JSON.stringify(lists));
    const r = await spawnRun(process.execPath, ['scripts/wasi-run.mjs', '--batch', `--dir=${dir}::/data`, wasmPath('command', 'simd'), jobs]);
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    if (r.status !== 0 || lines.length !== lists.length) throw new Error(`wasi-run.mjs --batch: exit ${r.status}, ${lines.length} of ${lists.length} runs reported: ${r.stderr}`);
    return lines.map((l) => { const j = JSON.parse(l) as { code: number; stdout: string; stderr: string }; return { status: j.code, stdout: j.stdout, stderr: j.stderr }; });
  };
  const [a, b] = await Promise.all([batch(argLists.slice(0, half), 'jobs-a.json'), batch(argLists.slice(half), 'jobs-b.json')]);
  return [...a, ...b];
};

t.test('mutated files through the WASI command: exit 1 with a message, never a trap', async (t) => {
  await mutatedThroughCommand(t, wasiRuns);
});

t.test('the same mutated files under real wasmtime (precompiled SIMD build)', async (t) => {
  const w = wasmtimeOrSkip(t);
  if (!w) return;
  const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-fuzz-wasmtime-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cwasm = path.join(dir, 'cdnv2.cwasm');
  const { command, args } = w.compileCommand(wasmPath('command', 'simd'), cwasm);
  const c = spawnSync(command, args, { encoding: 'utf8', timeout: 300_000 });
  t.equal(c.status, 0, `wasmtime compile: ${c.stderr}`);
  // A trap exits 134 (the CLI's and the runner's convention) with 'wasm trap' on stderr. Two batches at a time (two
  // cores), each one process with the Python runner: the module is deserialised once per batch, not once per file.
  await mutatedThroughCommand(t, async (d, argLists) => {
    const half = Math.ceil(argLists.length / 2);
    const opts = { dirs: [`${d}::/data`], precompiled: true };
    const [a, b] = await Promise.all([runWasmtimeBatch(w, cwasm, argLists.slice(0, half), opts),
      runWasmtimeBatch(w, cwasm, argLists.slice(half), opts)]);
    return [...a, ...b].map((r) => ({ status: r.code, stdout: r.stdout, stderr: r.stderr }));
  });
});

async function mutatedThroughCommand(t: Pick<typeof tap, 'fail' | 'comment' | 'equal' | 'ok' | 'teardown'>, runAll: CommandRuns): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-fuzz-wasi-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // A 9x7 PPM: resized and cropped to whichever input the (mutated) model declares.
  const ppm = Buffer.concat([Buffer.from('P6\n9 7\n255\n'), Buffer.from(Array.from({ length: 9 * 7 * 3 }, (_, i) => (i * 37) % 256))]);
  writeFileSync(path.join(dir, 'image.ppm'), ppm);
  const rng = new Rng(SEED + 1);
  const cache = new Map<Base, Field[]>();
  const N = 200;
  const cases = Array.from({ length: N }, () => mutate(rng, rng.pick(bases), cache, bases));
  let exit0 = 0, exit1 = 0;
  const codes: Record<string, number> = {};
  const t0 = performance.now();
  // What the library build says about the same bytes (same loader source).
  const libVerdicts: string[] = [];
  for (let i = 0; i < N; i++) {
    const c = cases[i]!;
    writeFileSync(path.join(dir, `case${i}.cnv2`), c.bytes);
    let lib = 'accept';
    try {
      const m = await loadModel(c.bytes);
      try { m.runPnm(ppm); } catch (err) { lib = `run:${(err as Cdnv2Error).code}`; } finally { m.dispose(); }
    } catch (err) { lib = (err as Cdnv2Error).code; }
    libVerdicts.push(lib);
  }
  const results = await runAll(dir, cases.map((_, i) => ['classify', `/data/case${i}.cnv2`, '/data/image.ppm', '--top', '2']));
  t.equal(results.length, N, 'a result per run');
  for (let i = 0; i < N; i++) {
    const c = cases[i]!, lib = libVerdicts[i]!, res = results[i]!;
    const where = `${c.desc} (library: ${lib})`;
    if (res.status === 70 || res.status === 134 || res.status > 2 || /trap|RuntimeError/i.test(res.stderr)) { t.fail(`trap: ${where}: ${res.stderr}`); continue; }
    if (lib === 'accept') {
      if (res.status !== 0 || res.stdout.trim().split('\n').length !== 2) t.fail(`expected exit 0 and 2 lines: ${where}: ${res.status} ${res.stderr}`);
      exit0++;
    } else {
      const expected = lib.startsWith('run:') ? /cdnv2: \/data\/case\d+\.cnv2: .+|cdnv2: \/data\/image\.ppm: .+/ : new RegExp(`invalid model \\[${lib}\\]: .+`);
      if (res.status !== 1 || !expected.test(res.stderr)) t.fail(`expected exit 1 matching ${expected}: ${where}: got ${res.status} ${res.stderr}`);
      exit1++;
      codes[lib] = (codes[lib] ?? 0) + 1;
    }
  }
  t.comment(`${N} WASI runs in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${exit0} exit 0, ${exit1} exit 1 ${JSON.stringify(codes)}`);
  t.equal(exit0 + exit1, N, 'every run exited 0 or 1 as the library predicts');
  t.ok(exit1 > N / 2, 'most mutated files are rejected');
}
