// Child process of `cdnv2 bench`: loads one engine and one model, warms up, times N runs, reports over IPC.
//   node [--import tsx] bench/worker.(ts|js) <job.json>
import { readFileSync } from 'node:fs';

import { createRunner, type Job } from './engines.js';

export interface WorkerResult {
  type: 'result';
  times: number[];            // ms per timed run (wall clock), in run order
  cpuTimes: number[];         // ms of process CPU time (user + system) per timed run: robust on a loaded machine
  logits: number[];
  note: string;
  engineBytes?: number;
  rssBeforeLoad: number;      // bytes, after imports common to every engine, before the engine is loaded
  maxRss: number;             // bytes, the process's high-water mark (getrusage)
  loadMs: number;
}

export type WorkerMessage = { type: 'progress' } | WorkerResult | { type: 'error'; message: string };

function send(m: WorkerMessage): Promise<void> {
  return new Promise((resolve) => { process.send ? process.send(m, () => resolve()) : resolve(); });
}

async function main(): Promise<void> {
  const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Job;
  const rssBeforeLoad = process.memoryUsage().rss;
  const t0 = performance.now();
  const runner = await createRunner(job);
  const loadMs = performance.now() - t0;
  let logits: Float32Array = new Float32Array(0);
  for (let i = 0; i < job.warmup; i++) {
    logits = await runner.run();
    await send({ type: 'progress' });
  }
  const times: number[] = [];
  const cpuTimes: number[] = [];
  for (let i = 0; i < job.runs; i++) {
    const c = process.cpuUsage();
    const s = performance.now();
    logits = await runner.run();
    times.push(performance.now() - s);
    const dc = process.cpuUsage(c);
    cpuTimes.push((dc.user + dc.system) / 1000);
    await send({ type: 'progress' });
  }
  const maxRss = process.resourceUsage().maxRSS * 1024;
  await runner.dispose();
  await send({
    type: 'result', times, cpuTimes, logits: Array.from(logits), note: runner.note, engineBytes: runner.engineBytes,
    rssBeforeLoad, maxRss, loadMs,
  });
}

main().then(() => process.exit(0), async (err: Error) => {
  await send({ type: 'error', message: err.message });
  process.exit(1);
});
