// Training kernels of one depthwise layer alone: forward and backward (tf.grads: input and filter gradients) of
// tf.depthwiseConv2d, 3x3, channel multiplier 1, on the TF.js CPU backend and on 'cdnv2-wasm' (1 and 2 kernel
// threads), for stride 1 'same' and stride 2 'same'. The whole-network figure is bench/train-speed.ts.
//   npx tsx bench/depthwise-train.ts [--batch 64] [--channels 58] [--size 28] [--reps 5] [--cpu-reps 2]
import { Command, InvalidArgumentError } from 'commander';
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';

import { Rng } from '../base/rng.js';
import { selectBackend } from '../trainer/backend.js';
import { registerWasmTrainBackend, WASM_BACKEND, WasmTrainBackend } from '../trainer/wasm/backend.js';

function intOption(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) throw new InvalidArgumentError(`--${name} must be an integer from ${min} to ${max}, not '${v}'`);
    return n;
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const o = new Command('depthwise-train')
    .option('--batch <n>', 'images', intOption('batch', 1, 1024), 64)
    .option('--channels <n>', 'channels', intOption('channels', 1, 4096), 58)
    .option('--size <n>', 'input height and width', intOption('size', 1, 1024), 28)
    .option('--reps <n>', 'timed runs on cdnv2-wasm', intOption('reps', 1, 1000), 5)
    .option('--cpu-reps <n>', 'timed runs on the CPU backend', intOption('cpu-reps', 1, 1000), 2)
    .exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : 2))
    .parse()
    .opts<{ batch: number; channels: number; size: number; reps: number; cpuReps: number }>();
  await selectBackend('cpu');
  const rng = new Rng(3);
  const xShape: [number, number, number, number] = [o.batch, o.size, o.size, o.channels];
  const xv = Float32Array.from({ length: o.batch * o.size * o.size * o.channels }, () => rng.normal());
  const wv = Float32Array.from({ length: 9 * o.channels }, () => rng.normal() * 0.3);
  const load0 = os.loadavg();
  const rows: string[] = [];
  for (const stride of [1, 2] as const) {
    const results: { name: string; ms: number; cpuMs: number }[] = [];
    for (const [name, backend, threads, reps] of [['TF.js CPU', 'cpu', 0, o.cpuReps], ['cdnv2-wasm, 2 threads', WASM_BACKEND, 2, o.reps], ['cdnv2-wasm, 1 thread', WASM_BACKEND, 1, o.reps]] as const) {
      if (backend === WASM_BACKEND) {
        if (!registerWasmTrainBackend({ threads })) throw new Error('the cdnv2-wasm backend is unavailable (run `npm run build:wasm`)');
        // The kernels register once per process; the backend (and its thread count) can be replaced.
        tf.removeBackend(WASM_BACKEND);
        tf.registerBackend(WASM_BACKEND, () => new WasmTrainBackend({ threads }), 0);
      }
      await tf.setBackend(backend);
      // Inputs made once, by a kernel of the backend (an add), as in training, where x and dy are the outputs of the
      // previous kernels (on cdnv2-wasm they then live in wasm memory). Both backends compute synchronously, so
      // the outputs need not be read; the filter gradient is, as the optimiser would.
      const made = (v: Float32Array, shape: number[]): tf.Tensor => tf.tidy(() => { const a = tf.tensor(v, shape); return tf.add(a, tf.zerosLike(a)); });
      const x = made(xv, xShape), w = tf.tensor4d(wv, [3, 3, o.channels, 1]);
      const f = (a: tf.Tensor, b: tf.Tensor): tf.Tensor => tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, 'same');
      const dy = made(Float32Array.from({ length: o.batch * Math.ceil(o.size / stride) ** 2 * o.channels }, () => rng.normal()), f(x, w).shape);
      const step = (): void => {
        tf.tidy(() => {
          f(x, w);
          const [, dw] = tf.grads(f)([x, w], dy);
          dw!.dataSync();
        });
      };
      step(); // warm-up: JIT, wasm blocks
      const ms: number[] = [], cpuMs: number[] = [];
      for (let i = 0; i < reps; i++) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        step();
        ms.push(performance.now() - t0);
        const c = process.cpuUsage(c0);
        cpuMs.push((c.user + c.system) / 1000);
      }
      tf.dispose([x, w, dy]);
      results.push({ name, ms: median(ms), cpuMs: median(cpuMs) });
    }
    const cpu = results[0]!.ms;
    for (const r of results) {
      rows.push(`| ${stride} | ${r.name} | ${r.ms.toFixed(1)} | ${r.cpuMs.toFixed(1)} | ${(o.batch / (r.ms / 1000)).toFixed(0)} | ${(cpu / r.ms).toFixed(1)}x |`);
    }
  }
  const load1 = os.loadavg();
  console.log(`depthwise 3x3, x [${xShape}], 'same', forward + input and filter gradients (tf.grads), median of ${o.reps} runs `
    + `(${o.cpuReps} on the CPU backend) after 1 warm-up; ${os.cpus()[0]?.model.trim()} x ${os.cpus().length}, Node ${process.version}; `
    + `load average ${load0.map((v) => v.toFixed(1)).join('/')} at the start, ${load1.map((v) => v.toFixed(1)).join('/')} at the end.\n`);
  console.log('| stride | backend | wall ms (fwd+bwd) | CPU ms | images/s | vs CPU |');
  console.log('|---:|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(r);
  console.log('\nimages/s and vs CPU: from the wall time. CPU ms: user + system of the process (both threads), less disturbed by '
    + 'other load on a shared machine.');
}

main().catch((e: Error) => { process.stderr.write(`error: ${e.message}\n`); process.exit(1); });
