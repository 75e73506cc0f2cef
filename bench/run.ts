// `cdnv2 bench`: prepares the models (.cnv2 + ONNX export), measures the wasm SIMD peak, then runs each engine on
// each model in a fresh child process (warm-up, N timed runs) and collects latency, throughput and memory.
import { fork, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { CONFIGS } from '../base/arch/configs.js';
import { condense } from '../converter/condense.js';
import { analyze } from '../converter/flops.js';
import { readModel, writeModel } from '../base/cnv2/format.js';
import { getMeta } from '../base/cnv2/model.js';
import { DEFAULT_INDEX_SUM, exportOnnx, type IndexSumVariant } from '../converter/onnx.js';
import { randomNetworkParams } from '../converter/random.js';
import { ENGINE_DESCRIPTIONS, benchInput, type EngineName, type Job } from './engines.js';
import type { WorkerMessage, WorkerResult } from './worker.js';
import { parseProfile, type OpProfile } from '../runtime/index.js';
import { findWasmtime, type Wasmtime } from '../runtime/wasmtime.js';

export interface BenchResult {
  engine: EngineName;
  model: string;
  runs: number;
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  meanMs: number;
  /** Median process CPU time per run (user + system, all threads), ms; null where not measured (wasmtime). */
  cpuMedianMs: number | null;
  /** Paper convention: one multiply-add = one FLOP (docs/flops.md), divided by the median latency. */
  gflops: number;
  /** Multiply-adds per second (over the median wall time) / the wasm SIMD128 peak_madd rate of this run, percent. */
  peakPct: number;
  /** The same with the median CPU time per run, which preemption by other processes does not inflate. */
  peakPctCpu: number | null;
  /** Our engines: the wasm instance's linear memory (model, weights, arena), MiB. */
  wasmMemoryMiB: number | null;
  /** Largest RSS sampled after set-up and after each run, minus RSS after importing the engine's libraries, MiB. */
  memDeltaMiB: number;
  /** Process high-water RSS (getrusage maxRSS), MiB; includes Node itself. */
  peakRssMiB: number;
  /** max |logits - cdnv2 logits| / max |cdnv2 logits| (the SIMD build's, same input). */
  maxRelDiff: number | null;
  loadMs: number;
  /** wasmtime rows: compiling the module ahead of time (Cranelift), ms, apart from the run times; else null. */
  compileMs?: number | null;
  note: string;
}

export interface BenchModel {
  name: string;
  file: string;
  flops: number;
  macs: number;
  params: number;
  input: string;
  arch?: { config: string; seed: number };
}

export interface BenchReport {
  date: string;
  host: { node: string; cpu: string; cores: number; arch: string; platform: string; loadavgStart: number[]; loadavgEnd: number[] };
  options: { runs: number; rounds?: number; warmup: number; maxSeconds: number; indexSum: Record<string, IndexSumVariant>; seed: number };
  peakMaddsPerSecond: { simd: number; relaxed?: number };
  models: BenchModel[];
  engines: Record<string, string>;
  results: BenchResult[];
  skipped: { engine: string; model: string; reason: string }[];
  /** With `--profile`: the per-op profile of each of our engines on each model. */
  profiles?: { engine: EngineName; model: string; runs: number; ops: OpProfile[] }[];
}

export interface BenchOptions {
  models: string[];
  engines: EngineName[];
  runs: number;
  warmup: number;
  /** Per engine and model: stop timing after this many seconds once 3 runs are done (0: never). */
  maxSeconds?: number;
  seed: number;
  /** ONNX index-sum variant for the ort engines; 'auto': the fastest measured per engine (BEST_INDEX_SUM). */
  indexSum?: IndexSumVariant | 'auto';
  /** Round-robin: time each pair in this many processes, the engines taking turns (default 1); figures = median over rounds. */
  rounds?: number;
  /** Per-op profile of our engines (cdnv2*, wasmtime*), this many runs per op after the timed runs; 0 = none. */
  profileRuns?: number;
  onProgress?: (done: number, total: number, label: string) => void;
}

/**
 * Fastest index-sum variant per ONNX engine, measured on CondenseNetV2-A and the Fashion-MNIST model (CPU time per
 * run, bench/README.md): native onnxruntime runs the dense 1x1 conv and Gather + Add equally fast within noise
 * (conv won the cleaner run); onnxruntime-web runs Gather + Add fastest.
 */
export const BEST_INDEX_SUM: Record<'ort-node' | 'ort-web', IndexSumVariant> = { 'ort-node': 'conv', 'ort-web': 'gather' };

const here = path.dirname(fileURLToPath(import.meta.url));

function workerEntry(): { file: string; execArgv: string[] } {
  const ts = path.join(here, 'worker.ts');
  if (existsSync(ts) && import.meta.url.endsWith('.ts')) return { file: ts, execArgv: ['--import', 'tsx'] };
  return { file: path.join(here, 'worker.js'), execArgv: [] };
}

function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function summarize(times: number[]): { medianMs: number; p10Ms: number; p90Ms: number; meanMs: number } {
  const s = [...times].sort((a, b) => a - b);
  return { medianMs: quantile(s, 0.5), p10Ms: quantile(s, 0.1), p90Ms: quantile(s, 0.9), meanMs: s.reduce((a, b) => a + b, 0) / s.length };
}

function relDiff(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (a.length !== ref.length) return Infinity;
  let d = 0, m = 1e-12;
  for (let i = 0; i < ref.length; i++) { d = Math.max(d, Math.abs(a[i]! - ref[i]!)); m = Math.max(m, Math.abs(ref[i]!)); }
  return d / m;
}

/** Model names: configurations (`cdnv2-a`) or paths to .cnv2 files. */
function prepareModel(spec: string, dir: string, seed: number): BenchModel {
  let bytes: Uint8Array;
  let arch: BenchModel['arch'];
  let name = spec;
  if (CONFIGS[spec]) {
    bytes = writeModel(condense(randomNetworkParams(CONFIGS[spec]!, seed), { weights: 'f32' }));
    arch = { config: spec, seed };
  } else {
    if (!existsSync(spec)) throw new Error(`model '${spec}' is neither a configuration (${Object.keys(CONFIGS).join(', ')}) nor an existing .cnv2 file`);
    bytes = new Uint8Array(readFileSync(spec));
    name = path.basename(spec);
  }
  const model = readModel(bytes);
  const a = analyze(model, bytes.length);
  const file = path.join(dir, `${name.replace(/[^\w.-]/g, '_')}.cnv2`);
  writeFileSync(file, bytes);
  const shape = Array.from(getMeta(model, 'input.shape') as Uint32Array).join('x');
  return { name, file, flops: a.totals.flops, macs: a.totals.macs, params: a.totals.params, input: shape, arch };
}

/** Compiles a WASI command build ahead of time (as on a board: `wasmtime compile`), timing the compilation. */
function precompile(w: Wasmtime, isa: 'simd' | 'relaxed', dir: string): { cwasm: string; compileMs: number } {
  const wasm = requireRuntimePaths().wasmPath('command', isa);
  const cwasm = path.join(dir, `${path.basename(wasm, '.wasm')}.cwasm`);
  const { command, args } = w.compileCommand(wasm, cwasm, { relaxedSimd: isa === 'relaxed', timings: true });
  const t0 = performance.now();
  const r = spawnSync(command, args, { encoding: 'utf8' });
  const wallMs = performance.now() - t0;
  if (r.status !== 0) throw new Error(`wasmtime compile failed (${r.status}): ${r.stderr.trim() || r.error?.message}`);
  // The runner reports the compilation alone; the CLI's process time includes its start-up.
  const reported = /compile_ms=([\d.]+)/.exec(r.stderr);
  return { cwasm, compileMs: reported ? Number(reported[1]) : wallMs };
}

/**
 * wasmtime runs the precompiled WASI command: `classify --logits` on the bench input (checked against the SIMD
 * build like every engine), then its own `bench` (same warm-up, sorted times), with `--profile` when asked.
 */
function runWasmtime(w: Wasmtime, cwasm: string, relaxed: boolean, m: BenchModel, runs: number, warmup: number, profileRuns: number):
{ stats: ReturnType<typeof summarize>; arena: number; logits: number[]; profile: OpProfile[] | null } {
  const dir = path.dirname(m.file);
  const opts = { dirs: [`${dir}::/m`], relaxedSimd: relaxed, precompiled: true };
  const exec = (args: string[]): string => {
    const { command, args: argv } = w.runCommand(cwasm, args, opts);
    const r = spawnSync(command, argv, { encoding: 'utf8', maxBuffer: 16 << 20 });
    if (r.status !== 0) throw new Error(`wasmtime ${args[0]} failed (${r.status}): ${r.stderr.trim() || r.error?.message}`);
    return r.stdout;
  };
  const [c, h, wd] = m.input.split('x').map(Number) as [number, number, number];
  const inputFile = m.file.replace(/\.cnv2$/, '.input.f32');
  const x = benchInput(c * h * wd);
  writeFileSync(inputFile, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  const logits = exec(['classify', `/m/${path.basename(m.file)}`, `/m/${path.basename(inputFile)}`, '--logits']).trim().split(/\s+/).map(Number);
  const out = exec(['bench', `/m/${path.basename(m.file)}`, '--runs', String(runs), '--warmup', String(warmup)]);
  const num = (text: string, key: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${key}:`));
    if (!line) throw new Error(`wasmtime bench output has no '${key}' line`);
    return Number(line.slice(key.length + 1));
  };
  // The profile in a run of its own, so its per-op clock reads cannot touch the whole-run times above.
  const profile = profileRuns > 0
    ? parseProfile(exec(['bench', `/m/${path.basename(m.file)}`, '--runs', String(profileRuns), '--warmup', String(warmup), '--profile']))
    : null;
  return {
    stats: { medianMs: num(out, 'median ms'), p10Ms: num(out, 'p10 ms'), p90Ms: num(out, 'p90 ms'), meanMs: num(out, 'mean ms') },
    arena: num(out, 'arena bytes'), logits, profile,
  };
}

let runtimePaths: typeof import('../runtime/index.js') | null = null;
function requireRuntimePaths(): typeof import('../runtime/index.js') {
  if (!runtimePaths) throw new Error('runtime not loaded');
  return runtimePaths;
}

function runWorker(job: Job, dir: string, onTick: () => void): Promise<WorkerResult> {
  const jobFile = path.join(dir, `job-${job.engine}-${path.basename(job.cnv2File)}.json`);
  writeFileSync(jobFile, JSON.stringify(job));
  const { file, execArgv } = workerEntry();
  return new Promise((resolve, reject) => {
    const child = fork(file, [jobFile], { execArgv, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    let result: WorkerResult | null = null;
    let error: string | null = null;
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('message', (m: WorkerMessage) => {
      if (m.type === 'progress') onTick();
      else if (m.type === 'result') result = m;
      else error = m.message;
    });
    child.on('exit', (code) => {
      if (result) resolve(result);
      else reject(new Error(error ?? `worker exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

/** One engine on one model in one process (one round of a round-robin run). */
export interface RoundResult {
  runs: number;
  stats: ReturnType<typeof summarize>;
  cpuMedianMs: number | null;
  logits: number[];
  wasmMemoryMiB: number | null;
  memDeltaMiB: number;
  peakRssMiB: number;
  loadMs: number;
  compileMs?: number;
  profile: OpProfile[] | null;
  note: string;
}

function medianOf(values: number[]): number {
  return summarize(values).medianMs;
}

/** A pair's figures over its rounds: each statistic's median over the rounds; runs summed; memory at its largest. */
export function combineRounds(engine: EngineName, m: BenchModel, rs: RoundResult[], reference: number[] | null, peakSimd: number): BenchResult {
  const stat = (k: keyof RoundResult['stats']): number => medianOf(rs.map((r) => r.stats[k]));
  const medianMs = stat('medianMs');
  const cpus = rs.map((r) => r.cpuMedianMs).filter((v): v is number => v !== null);
  const cpuMedianMs = cpus.length === rs.length ? medianOf(cpus) : null;
  const pct = (ms: number): number => (100 * m.macs / (ms / 1000)) / peakSimd;
  const first = rs[0]!;
  return {
    engine, model: m.name, runs: rs.reduce((a, r) => a + r.runs, 0),
    medianMs, p10Ms: stat('p10Ms'), p90Ms: stat('p90Ms'), meanMs: stat('meanMs'), cpuMedianMs,
    gflops: m.flops / (medianMs / 1000) / 1e9, peakPct: pct(medianMs), peakPctCpu: cpuMedianMs === null ? null : pct(cpuMedianMs),
    wasmMemoryMiB: first.wasmMemoryMiB, memDeltaMiB: Math.max(...rs.map((r) => r.memDeltaMiB)),
    peakRssMiB: Math.max(...rs.map((r) => r.peakRssMiB)), maxRelDiff: reference ? relDiff(first.logits, reference) : null,
    loadMs: medianOf(rs.map((r) => r.loadMs)), ...(first.compileMs !== undefined ? { compileMs: first.compileMs } : {}),
    note: first.note,
  };
}

export async function runBench(opts: BenchOptions): Promise<BenchReport> {
  runtimePaths = await import('../runtime/index.js');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-bench-'));
  const choice = opts.indexSum ?? 'auto';
  const variantOf = (e: EngineName): IndexSumVariant =>
    choice !== 'auto' ? choice : e === 'ort-node' || e === 'ort-web' ? BEST_INDEX_SUM[e] : DEFAULT_INDEX_SUM;
  const ortEngines = opts.engines.filter((e) => e.startsWith('ort-'));
  const indexSum = Object.fromEntries(ortEngines.map((e) => [e, variantOf(e)]));
  const loadavgStart = os.loadavg();
  try {
    const models = opts.models.map((s) => prepareModel(s, dir, opts.seed));
    const onnxFiles = new Map<string, string>(); // `${model}:${variant}` -> file
    for (const m of models) {
      for (const v of new Set(ortEngines.map(variantOf))) {
        const f = m.file.replace(/\.cnv2$/, `.${v}.onnx`);
        writeFileSync(f, exportOnnx(readModel(new Uint8Array(readFileSync(m.file))), { indexSum: v }));
        onnxFiles.set(`${m.name}:${v}`, f);
      }
    }
    // The best of several short bursts: on a shared machine a single burst is often preempted.
    const peakOf = async (isa: 'simd' | 'relaxed'): Promise<number> => {
      let best = 0;
      for (let i = 0; i < 5; i++) best = Math.max(best, await runtimePaths!.peakMaddsPerSecond(isa, 0.15));
      return best;
    };
    const peak = { simd: await peakOf('simd'), relaxed: undefined as number | undefined };
    if (await runtimePaths.isaSupported('relaxed')) peak.relaxed = await peakOf('relaxed');

    const results: BenchResult[] = [];
    const skipped: BenchReport['skipped'] = [];
    const rounds = Math.max(1, Math.min(opts.rounds ?? 1, opts.runs));
    const total = models.length * opts.engines.length * (opts.runs + rounds * opts.warmup);
    let done = 0;
    const profiles: NonNullable<BenchReport['profiles']> = [];
    const profileRuns = opts.profileRuns ?? 0;
    // Real wasmtime (CLI, or the Python embedding through scripts/wasmtime-run.py), each build compiled once.
    const wantsWasmtime = opts.engines.some((e) => e.startsWith('wasmtime'));
    const wasmtime = wantsWasmtime ? findWasmtime() : null;
    const compiled = new Map<string, { cwasm: string; compileMs: number } | Error>();
    /** One process of one engine on one model: `runs` timed runs after the warm-up. */
    const timeOnce = async (engine: EngineName, m: BenchModel, runs: number, profileNow: number, onTick: () => void): Promise<RoundResult> => {
      if (engine === 'wasmtime' || engine === 'wasmtime-relaxed') {
        if (!wasmtime || 'unavailable' in wasmtime) throw new Error(wasmtime && 'unavailable' in wasmtime ? wasmtime.unavailable : 'wasmtime not found');
        const relaxed = engine === 'wasmtime-relaxed';
        if (!compiled.has(engine)) {
          try { compiled.set(engine, precompile(wasmtime, relaxed ? 'relaxed' : 'simd', dir)); } catch (err) { compiled.set(engine, err as Error); }
        }
        const pre = compiled.get(engine)!;
        if (pre instanceof Error) throw pre;
        const w = runWasmtime(wasmtime, pre.cwasm, relaxed, m, runs, opts.warmup, profileNow);
        return { runs, stats: w.stats, cpuMedianMs: null, logits: w.logits, wasmMemoryMiB: null, memDeltaMiB: w.arena / 2 ** 20, peakRssMiB: NaN,
          loadMs: NaN, compileMs: pre.compileMs, profile: w.profile,
          note: `${wasmtime.version}; WASI command bench on the precompiled module; memory column = activation arena` };
      }
      const job: Job = { engine, modelName: m.name, cnv2File: m.file, onnxFile: onnxFiles.get(`${m.name}:${variantOf(engine)}`) ?? '', arch: m.arch, runs, warmup: opts.warmup,
        maxSeconds: (opts.maxSeconds ?? 0) / rounds, profileRuns: engine.startsWith('cdnv2') ? profileNow : 0 };
      const r = await runWorker(job, dir, onTick);
      return { runs: r.times.length, stats: summarize(r.times), cpuMedianMs: summarize(r.cpuTimes).medianMs, logits: r.logits,
        wasmMemoryMiB: engine.startsWith('cdnv2') && r.engineBytes !== undefined ? r.engineBytes / 2 ** 20 : null,
        memDeltaMiB: (r.peakRssSampled - r.rssBeforeLoad) / 2 ** 20, peakRssMiB: r.maxRss / 2 ** 20, loadMs: r.loadMs, profile: r.profile ?? null,
        note: engine.startsWith('ort-') ? `${r.note}, index-sum ${variantOf(engine)}` : r.note };
    };
    // Round-robin: each (model, engine) pair is timed in `rounds` separate processes, the engines of a model taking
    // turns, so a slow spell of a shared machine (or a process placed badly) touches every engine alike. Each round
    // gives its statistics; a pair's figures are the median over its rounds.
    const runsIn = (r: number): number => Math.floor(opts.runs / rounds) + (r < opts.runs % rounds ? 1 : 0);
    for (const m of models) {
      let reference: number[] | null = null;
      // The SIMD build first: its logits are the reference for every other engine's.
      const order = [...opts.engines].sort((a, b) => (a === 'cdnv2' ? -1 : b === 'cdnv2' ? 1 : 0));
      const perRound = new Map<EngineName, RoundResult[]>();
      const failed = new Map<EngineName, string>();
      for (let round = 0; round < rounds; round++) {
        const runs = runsIn(round);
        // The profile once, in the last round.
        const profileNow = round === rounds - 1 ? profileRuns : 0;
        for (const engine of order) {
          const label = rounds > 1 ? `${m.name} ${engine} (round ${round + 1}/${rounds})` : `${m.name} ${engine}`;
          const share = runs + opts.warmup;
          const startDone = done;
          opts.onProgress?.(done, total, label);
          if (failed.has(engine)) { done = startDone + share; continue; }
          try {
            const rr = await timeOnce(engine, m, runs, profileNow, () => { done++; opts.onProgress?.(done, total, label); });
            if (engine === 'cdnv2' && !reference) reference = rr.logits;
            if (rr.profile) profiles.push({ engine, model: m.name, runs: profileNow, ops: rr.profile });
            perRound.set(engine, [...(perRound.get(engine) ?? []), rr]);
          } catch (err) {
            failed.set(engine, (err as Error).message);
          }
          done = startDone + share; // a failed run still completes its share of the bar
        }
      }
      for (const engine of order) {
        const why = failed.get(engine);
        if (why !== undefined) { skipped.push({ engine, model: m.name, reason: why }); continue; }
        const rs = perRound.get(engine);
        if (rs) results.push(combineRounds(engine, m, rs, reference, peak.simd));
      }
    }
    opts.onProgress?.(total, total, 'done');
    return {
      date: new Date().toISOString(),
      host: { node: process.version, cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, arch: process.arch, platform: process.platform, loadavgStart, loadavgEnd: os.loadavg() },
      options: { runs: opts.runs, rounds: rounds, warmup: opts.warmup, maxSeconds: opts.maxSeconds ?? 0, indexSum, seed: opts.seed },
      peakMaddsPerSecond: peak.relaxed === undefined ? { simd: peak.simd } : { simd: peak.simd, relaxed: peak.relaxed },
      models: models.map(({ file: _f, ...rest }) => ({ ...rest, file: rest.arch ? `cdnv2 arch ${rest.arch.config} --seed ${rest.arch.seed}` : rest.name })),
      engines: Object.fromEntries(opts.engines.map((e) => [e, ENGINE_DESCRIPTIONS[e]
        + (e.startsWith('wasmtime') && wasmtime && !('unavailable' in wasmtime) ? `: ${wasmtime.version}` : '')])),
      results, skipped, ...(profileRuns > 0 ? { profiles } : {}),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
