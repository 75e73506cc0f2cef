// Child process of `cdnv2 bench`: loads one engine and one model, warms up, times N runs, reports over IPC.
//   node [--import tsx] bench/worker.(ts|js) <job.json>
import { readFileSync } from 'node:fs';

import { createRunner, preloadEngine, type Job } from './engines.js';
import type { OpProfile } from '../runtime/index.js';

export interface WorkerResult {
  type: 'result';
  times: number[];            // ms per timed run (wall clock), in run order
  cpuTimes: number[];         // ms of process CPU time (user + system) per timed run: robust on a loaded machine
  logits: number[];
  note: string;
  engineBytes?: number;
  rssBeforeLoad: number;      // bytes, after the engine's libraries are imported, before it is set up and the model loaded
  maxRss: number;             // bytes, the process's high-water mark (getrusage), start-up included
  peakRssSampled: number;     // bytes, the largest RSS sampled after set-up and after every run
  loadMs: number;
  profile?: OpProfile[];
}

export type WorkerMessage = { type: 'progress' } | WorkerResult | { type: 'error'; message: string };

function send(m: WorkerMessage): Promise<void> {
  return new Promise((resolve) => { process.send ? process.send(m, () => resolve()) : resolve(); });
}

async function main(): Promise<void> {
  const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Job;
  await preloadEngine(job.engine);
  const rssBeforeLoad = process.memoryUsage().rss;
  const t0 = performance.now();
  const runner = await createRunner(job);
  const loadMs = performance.now() - t0;
  // Sampled outside the timed sections; the getrusage high-water mark would include start-up peaks (tsx, GC).
  let peakRssSampled = process.memoryUsage().rss;
  const sample = (): void => { peakRssSampled = Math.max(peakRssSampled, process.memoryUsage().rss); };
  let logits: Float32Array = new Float32Array(0);
  // Warm-up: the requested runs, then more until ~1.5 s have passed (at most 50), so wasm engines (ours, ort-web,
  // tfjs-wasm) are measured after V8 has tiered their code up from the baseline compiler, not before.
  const warmStart = performance.now();
  for (let i = 0; i < job.warmup || (job.warmup > 0 && i < 50 && performance.now() - warmStart < 1500); i++) {
    logits = await runner.run();
    sample();
    if (i < job.warmup) await send({ type: 'progress' });
  }
  const times: number[] = [];
  const cpuTimes: number[] = [];
  const start = performance.now();
  for (let i = 0; i < job.runs; i++) {
    if (job.maxSeconds > 0 && i >= 3 && performance.now() - start > job.maxSeconds * 1000) {
      for (let j = i; j < job.runs; j++) await send({ type: 'progress' }); // keep the bar honest
      break;
    }
    const c = process.cpuUsage();
    const s = performance.now();
    logits = await runner.run();
    times.push(performance.now() - s);
    const dc = process.cpuUsage(c);
    cpuTimes.push((dc.user + dc.system) / 1000);
    sample();
    await send({ type: 'progress' });
  }
  const maxRss = process.resourceUsage().maxRSS * 1024;
  // After the timed runs, so profiling cannot disturb them.
  const profile = job.profileRuns && runner.profile ? runner.profile(job.profileRuns) : undefined;
  await runner.dispose();
  await send({
    type: 'result', times, cpuTimes, logits: Array.from(logits), note: runner.note, engineBytes: runner.engineBytes,
    rssBeforeLoad, maxRss, peakRssSampled, loadMs, profile,
  });
}

main().then(() => process.exit(0), async (err: Error) => {
  await send({ type: 'error', message: err.message });
  process.exit(1);
});
