// Training throughput: full training steps (forward, label-smoothed cross-entropy, variableGrads, Nesterov SGD with
// weight decay and the BN running-statistics update, as trainer/train.ts does) of one configuration at one batch size
// on the TF.js CPU backend, on the 'cdnv2-wasm' backend with 2 and with 1 kernel threads, and data-parallel on two
// 'cdnv2-wasm' replicas of 1 thread each (trainer/data-parallel.ts: `cdnv2 train --workers 2`).
//   npx tsx bench/train-speed.ts [--arch cdnv2-fmnist|sfr-shufflenetv2-fmnist|...] [--batch 64] [--steps 5] [--cpu-steps 2] [--warmup 1]
//                                [--backends cpu,wasm-2,wasm-1,wasm-dp] [--out bench/results]
// Each backend runs in its own child process (registerWasmTrainBackend is per process, and so are the memory and
// the JIT state), from the same initial weights (seed 1) and the same batch. Warm-up steps are not timed. Prints the
// Markdown table; with --out, also writes train-speed.json, .md, .svg and .png there (bench/results/ is tracked).
import cliProgress from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { fork } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as vl from 'vega-lite';

import { renderChart } from '../base/chart.js';
import { writeFileAtomicSync } from '../base/io.js';

const BACKENDS = ['cpu', 'wasm-2', 'wasm-1', 'wasm-dp'] as const;
type BackendName = (typeof BACKENDS)[number];

interface Job { backend: BackendName; arch: string; batch: number; warmup: number; steps: number }
type WorkerMessage =
  | { type: 'ready'; backend: string; threads: number | null }
  | { type: 'step'; index: number; warmup: boolean; ms: number; cpuMs: number; loss: number }
  | { type: 'error'; message: string };

export interface BackendResult {
  backend: BackendName;
  tfBackend: string;
  threads: number | null;
  warmupSteps: number;
  steps: number;
  stepMs: number[];
  medianStepMs: number;
  imagesPerSecond: number;        // images of the timed steps over their total wall time
  cpuMsPerStep: number;           // process CPU time (user + system, all threads) per timed step
  losses: number[];               // every step's loss, warm-up included
  speedupVsCpu: number | null;
  /**
   * Largest |loss - CPU loss| / |CPU loss| over the steps both ran (same weights, inputs and updates); null for the
   * data-parallel run, whose batch norm normalises each half of the batch on its own (a different loss).
   */
  lossRelDiffVsCpu: number | null;
}

export interface TrainSpeedReport {
  date: string;
  host: { cpu: string; cores: number; platform: string; arch: string; node: string; loadavgStart: number[]; loadavgEnd: number[] };
  options: { arch: string; batch: number; steps: number; cpuSteps: number; warmup: number; backends: BackendName[] };
  results: BackendResult[];
  failed: { backend: BackendName; reason: string }[];
}

// ---------------------------------------------------------------- worker: one backend, in its own process

async function runJob(job: Job, send: (m: WorkerMessage) => void): Promise<void> {
  const tf = await import('@tensorflow/tfjs');
  const { selectBackend } = await import('../trainer/backend.js');
  const { registerWasmTrainBackend, WASM_BACKEND } = await import('../trainer/wasm/backend.js');
  const { getNetworkConfig } = await import('../base/arch/networks.js');
  const { createTrainModel, networkInitialValues } = await import('../trainer/net.js');
  const { Rng } = await import('../base/rng.js');
  const { applyStep, disposeSlice, sliceGradients } = await import('../trainer/step.js');
  const { DataParallel } = await import('../trainer/data-parallel.js');

  await selectBackend('cpu');
  let threads: number | null = null;
  let isa = '';
  if (job.backend !== 'cpu') {
    threads = job.backend === 'wasm-2' ? 2 : 1; // per replica for wasm-dp
    const reg = registerWasmTrainBackend({ threads });
    if (!reg) throw new Error('the cdnv2-wasm backend is unavailable (no wasm SIMD, or build/cdnv2-train.wasm missing: run `npm run build:wasm`)');
    if (!(await tf.setBackend(WASM_BACKEND))) throw new Error('could not switch to the cdnv2-wasm backend');
    isa = ` (${reg.isa === 'relaxed' ? 'relaxed SIMD' : 'SIMD'})`;
  }
  send({ type: 'ready', backend: tf.getBackend() + isa, threads });

  const cfg = getNetworkConfig(job.arch);
  const hp = cfg.train;
  const model = createTrainModel(cfg, true, networkInitialValues(cfg, true, 1));
  const params = model.trainable();
  const momentum = new Map(params.map((p) => [p.name, tf.variable(tf.zerosLike(p.variable), false)]));
  const { height: H, width: W, channels: C } = cfg.input;
  // One fixed batch of normalised-looking inputs and labels, the same in every process.
  const rng = new Rng(7);
  const x = Float32Array.from({ length: job.batch * H * W * C }, () => rng.normal());
  const y = Int32Array.from({ length: job.batch }, (_, i) => i % cfg.classes);
  const lr = hp.lr;
  const dp = job.backend === 'wasm-dp' ? await DataParallel.start(model, { backend: 'wasm', threads: 1, maxSlice: Math.floor(job.batch / 2) }) : undefined;
  const lossOpts = { labelSmoothing: hp.labelSmoothing, groupLasso: 0 };

  const step = async (): Promise<number> => {
    // The same step as trainer/train.ts (trainer/step.ts, or its data-parallel split).
    const r = dp ? await dp.step(model, x, y, job.batch, lossOpts) : sliceGradients(model, x, y, job.batch, lossOpts);
    applyStep(model, r, momentum, { lr, momentum: hp.momentum, weightDecay: hp.weightDecay });
    // The updated weights must exist before the clock stops (the CPU backend computes eagerly; this reads one).
    params[0]!.variable.dataSync();
    disposeSlice(r);
    return r.loss;
  };

  for (let i = 0; i < job.warmup + job.steps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const loss = await step();
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    if (!Number.isFinite(loss)) throw new Error(`loss is ${loss} at step ${i}`);
    send({ type: 'step', index: i, warmup: i < job.warmup, ms, cpuMs: (c.user + c.system) / 1000, loss });
  }
  await dp?.close();
}

// ---------------------------------------------------------------- parent: options, processes, progress, report

function intOption(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) throw new InvalidArgumentError(`--${name} must be an integer from ${min} to ${max}, not '${v}'`);
    return n;
  };
}

function runChild(job: Job, onMessage: (m: WorkerMessage) => void): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const execArgv = self.endsWith('.ts') ? ['--import', 'tsx'] : [];
  return new Promise((resolve, reject) => {
    const child = fork(self, ['--worker', JSON.stringify(job)], { execArgv, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    let error: string | null = null;
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('message', (m: WorkerMessage) => { if (m.type === 'error') error = m.message; else onMessage(m); });
    child.on('exit', (code, signal) => {
      if (code === 0 && !error) resolve();
      else reject(new Error(error ?? `worker exited with ${signal ?? code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};


const LABEL: Record<BackendName, string> = {
  cpu: 'TF.js CPU', 'wasm-2': 'cdnv2-wasm, 2 threads', 'wasm-1': 'cdnv2-wasm, 1 thread', 'wasm-dp': 'cdnv2-wasm, 2 data-parallel replicas x 1 thread',
};

export function markdown(r: TrainSpeedReport): string {
  const h = r.host;
  const o = r.options;
  const lines = [
    `Measured ${r.date} on ${h.cpu} (${h.cores} cores, ${h.platform}/${h.arch}), Node ${h.node}: \`${o.arch}\`, batch ${o.batch}, `
    + `full training steps (forward, loss, variableGrads, SGD update, BN statistics), ${o.warmup} untimed warm-up step(s), then ${o.steps} `
    + `timed steps per wasm backend and ${o.cpuSteps} on the CPU backend, each backend in its own process. Load average `
    + `${h.loadavgStart.map((v) => v.toFixed(1)).join('/')} at the start, ${h.loadavgEnd.map((v) => v.toFixed(1)).join('/')} at the end.`,
    '',
    '| backend | timed steps | median step (s) | images/s | vs CPU | CPU time per step (s) | vs CPU (CPU time) | first loss | last loss | loss diff vs CPU |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const cpu = r.results.find((x) => x.backend === 'cpu');
  for (const x of r.results) {
    const cpuTimeRatio = cpu ? `${(cpu.cpuMsPerStep / x.cpuMsPerStep).toFixed(1)}x` : '–';
    lines.push(`| ${LABEL[x.backend]}${x.tfBackend.includes('(') ? ` ${x.tfBackend.slice(x.tfBackend.indexOf('('))}` : ''} | ${x.steps} | ${(x.medianStepMs / 1000).toFixed(2)} | ${x.imagesPerSecond.toFixed(1)} | `
      + `${x.speedupVsCpu === null ? '–' : `${x.speedupVsCpu.toFixed(1)}x`} | ${(x.cpuMsPerStep / 1000).toFixed(2)} | ${cpuTimeRatio} | `
      + `${x.losses[0]!.toFixed(5)} | ${x.losses.at(-1)!.toFixed(5)} | ${x.lossRelDiffVsCpu === null ? '–' : x.lossRelDiffVsCpu.toExponential(1)} |`);
  }
  lines.push('', 'images/s: batch x timed steps over their total wall time. vs CPU: images/s over the CPU backend\'s. CPU time: '
    + 'user + system of the whole process (both threads); on a loaded machine it is disturbed less than wall time, but it '
    + 'counts both threads, so it does not show what a second thread gains. first loss: the warm-up step\'s. loss diff vs CPU: the '
    + 'largest relative difference of the per-step losses from the CPU backend\'s over the steps both ran: every backend starts '
    + 'from the same weights and batch and applies the same updates, so this checks that the fast backend computes the same training. '
    + 'The data-parallel run (`cdnv2 train --workers 2`) normalises each half of the batch with its own batch-norm statistics, a '
    + 'different loss, so it has no loss difference; test/trainer/data-parallel.test.ts checks its gradients against the two halves '
    + 'computed in one thread.');
  for (const f of r.failed) lines.push('', `Not measured: ${LABEL[f.backend]}: ${f.reason}`);
  return `${lines.join('\n')}\n`;
}

export async function chart(r: TrainSpeedReport): Promise<{ svg: string; png: Uint8Array }> {
  const spec: vl.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: `${r.options.arch} training throughput, batch ${r.options.batch}`, subtitle: `${r.host.cpu}, ${r.date.slice(0, 10)}` },
    width: 420, height: 200,
    data: { values: r.results.map((x) => ({ backend: LABEL[x.backend], ips: Number(x.imagesPerSecond.toFixed(2)) })) },
    layer: [
      { mark: { type: 'bar' }, encoding: { y: { field: 'backend', type: 'nominal', title: null, sort: null }, x: { field: 'ips', type: 'quantitative', title: 'images per second (training)' } } },
      { mark: { type: 'text', align: 'left', dx: 4 }, encoding: { y: { field: 'backend', type: 'nominal', sort: null }, x: { field: 'ips', type: 'quantitative' }, text: { field: 'ips', type: 'quantitative', format: '.1f' } } },
    ],
    background: 'white',
  };
  return renderChart(spec);
}

/** train-speed.md/.svg/.png (and .json when `json`) in `dir`; the Markdown also goes to stdout. */
async function writeReport(report: TrainSpeedReport, dir: string, json: boolean): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const md = markdown(report);
  if (json) writeFileAtomicSync(path.join(dir, 'train-speed.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileAtomicSync(path.join(dir, 'train-speed.md'), md);
  if (report.results.length) {
    try {
      const { svg, png } = await chart(report);
      writeFileAtomicSync(path.join(dir, 'train-speed.svg'), svg);
      writeFileAtomicSync(path.join(dir, 'train-speed.png'), png);
    } catch (e) {
      process.stderr.write(`warning: could not render the chart: ${(e as Error).message}\n`);
    }
  }
  process.stdout.write(md);
  process.stdout.write(`\nwrote ${path.join(dir, `train-speed.{${json ? 'json,' : ''}md${report.results.length ? ',svg,png' : ''}}`)}\n`);
}

async function main(): Promise<void> {
  const program = new Command('train-speed')
    .description('training throughput of the TF.js CPU backend and the cdnv2-wasm backend')
    .option('--arch <name>', 'configuration (base/arch/configs.ts or shufflenet.ts)', 'cdnv2-fmnist')
    .option('--batch <n>', 'batch size', intOption('batch', 1, 4096), 64)
    .option('--steps <n>', 'timed steps per wasm backend', intOption('steps', 1, 100000), 5)
    .option('--cpu-steps <n>', 'timed steps on the CPU backend (at most --steps; ~60 s each at batch 64)', intOption('cpu-steps', 1, 100000), 2)
    .option('--warmup <n>', 'untimed steps before the timed ones', intOption('warmup', 0, 1000), 1)
    .option('--backends <list>', `comma-separated subset of ${BACKENDS.join(',')}`, BACKENDS.join(','))
    .option('--out <dir>', 'also write train-speed.json/.md/.svg/.png into this directory (e.g. bench/results)')
    .option('--from-json <file>', 'measure nothing: rewrite the .md/.svg/.png of an existing train-speed.json into --out')
    .exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : 2));
  program.parse();
  const o = program.opts<{ arch: string; batch: number; steps: number; cpuSteps: number; warmup: number; backends: string; out?: string; fromJson?: string }>();
  if (o.fromJson) {
    let report: TrainSpeedReport;
    try {
      report = JSON.parse(readFileSync(o.fromJson, 'utf8')) as TrainSpeedReport;
      if (!Array.isArray(report.results) || !report.options) throw new Error('not a train-speed report');
    } catch (e) {
      console.error(`error: --from-json ${o.fromJson}: ${(e as Error).message}`);
      process.exit(2);
    }
    if (!o.out) { console.error('error: --from-json rewrites files: it needs --out'); process.exit(2); }
    await writeReport(report, o.out, false);
    return;
  }
  const { findNetworkConfig, networkConfigNames } = await import('../base/arch/networks.js');
  if (!findNetworkConfig(o.arch)) { console.error(`error: --arch '${o.arch}' is not a configuration (${networkConfigNames().join(', ')})`); process.exit(2); }
  const backends = o.backends.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = backends.filter((b) => !(BACKENDS as readonly string[]).includes(b));
  if (!backends.length || bad.length) { console.error(`error: --backends takes a subset of ${BACKENDS.join(',')}, not '${o.backends}'`); process.exit(2); }
  const cpuSteps = Math.min(o.cpuSteps, o.steps);

  const loadavgStart = os.loadavg();
  const jobs: Job[] = (backends as BackendName[]).map((b) => ({ backend: b, arch: o.arch, batch: o.batch, warmup: o.warmup, steps: b === 'cpu' ? cpuSteps : o.steps }));
  const totalSteps = jobs.reduce((s, j) => s + j.warmup + j.steps, 0);
  const tty = Boolean(process.stderr.isTTY);
  const bar = tty ? new cliProgress.SingleBar({ format: 'train-speed [{bar}] {value}/{total} steps | {label}', stream: process.stderr, etaBuffer: 4 }, cliProgress.Presets.shades_classic) : undefined;
  bar?.start(totalSteps, 0, { label: 'starting' });
  const log = (m: string): void => { if (bar) bar.update({ label: m }); else process.stderr.write(`${m}\n`); };
  const results: BackendResult[] = [];
  const failed: TrainSpeedReport['failed'] = [];
  let done = 0;
  for (const job of jobs) {
    const steps: Extract<WorkerMessage, { type: 'step' }>[] = [];
    let tfBackend = '', threads: number | null = null;
    log(`${LABEL[job.backend]}: starting (batch ${job.batch})`);
    try {
      await runChild(job, (m) => {
        if (m.type === 'ready') { tfBackend = m.backend; threads = m.threads; return; }
        if (m.type !== 'step') return;
        steps.push(m);
        bar?.update(++done);
        log(`${LABEL[job.backend]}: ${m.warmup ? 'warm-up' : 'timed'} step ${m.index + 1}/${job.warmup + job.steps} ${(m.ms / 1000).toFixed(2)} s `
          + `(${(job.batch / (m.ms / 1000)).toFixed(1)} images/s), loss ${m.loss.toFixed(5)}`);
      });
    } catch (e) {
      failed.push({ backend: job.backend, reason: (e as Error).message });
      log(`${LABEL[job.backend]}: failed: ${(e as Error).message}`);
      done += job.warmup + job.steps - steps.length;
      bar?.update(done);
      continue;
    }
    const timed = steps.filter((s) => !s.warmup);
    const totalMs = timed.reduce((a, s) => a + s.ms, 0);
    results.push({
      backend: job.backend, tfBackend, threads, warmupSteps: job.warmup, steps: timed.length, stepMs: timed.map((s) => s.ms),
      medianStepMs: median(timed.map((s) => s.ms)), imagesPerSecond: (job.batch * timed.length) / (totalMs / 1000),
      cpuMsPerStep: timed.reduce((a, s) => a + s.cpuMs, 0) / timed.length, losses: steps.map((s) => s.loss), speedupVsCpu: null, lossRelDiffVsCpu: null,
    });
  }
  bar?.stop();
  const cpu = results.find((r) => r.backend === 'cpu');
  for (const r of results) {
    if (!cpu) continue;
    r.speedupVsCpu = r.imagesPerSecond / cpu.imagesPerSecond;
    if (r.backend === 'wasm-dp') continue;
    const n = Math.min(r.losses.length, cpu.losses.length);
    r.lossRelDiffVsCpu = Math.max(...r.losses.slice(0, n).map((l, i) => Math.abs(l - cpu.losses[i]!) / Math.abs(cpu.losses[i]!)));
  }
  const report: TrainSpeedReport = {
    date: new Date().toISOString(),
    host: { cpu: os.cpus()[0]?.model.trim() ?? 'unknown', cores: os.cpus().length, platform: process.platform, arch: process.arch, node: process.version, loadavgStart, loadavgEnd: os.loadavg() },
    options: { arch: o.arch, batch: o.batch, steps: o.steps, cpuSteps, warmup: o.warmup, backends: backends as BackendName[] },
    results, failed,
  };
  if (o.out) await writeReport(report, o.out, true);
  else process.stdout.write(markdown(report));
  if (!results.length) process.exit(1);
}

const workerAt = process.argv.indexOf('--worker');
if (workerAt >= 0) {
  // Each message waits for its delivery, so none is lost when the process exits.
  let pending: Promise<void> = Promise.resolve();
  const send = (m: WorkerMessage): void => { pending = pending.then(() => new Promise((r) => { process.send!(m, () => r()); })); };
  runJob(JSON.parse(process.argv[workerAt + 1]!) as Job, send)
    .then(() => pending, async (e: Error) => { send({ type: 'error', message: e.message }); await pending; process.exit(1); })
    .then(() => process.exit(0));
} else if (path.resolve(process.argv[1] ?? '') === fileURLToPath(import.meta.url)) {
  main().catch((e: Error) => { process.stderr.write(`error: ${e.message}\n`); process.exit(1); });
}
