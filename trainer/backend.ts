// TF.js backend selection: tfjs-node when installed (optional dependency), otherwise our wasm SIMD training
// backend ('cdnv2-wasm'), and the pure-JS CPU backend only when asked for or when wasm SIMD is unavailable.
import * as tf from '@tensorflow/tfjs';
import os from 'node:os';

import { registerWasmTrainBackend, WASM_BACKEND } from './wasm/backend.js';

export type BackendChoice = 'auto' | 'node' | 'wasm' | 'cpu';

export interface BackendOptions {
  /** Threads of the wasm backend's kernels, 1 or 2 (default: 2 when the machine has 2 or more CPUs). */
  threads?: number;
}

/** Sets the backend and returns a description of it for logs, e.g. "cdnv2-wasm (wasm SIMD kernels, 2 threads)". */
export async function selectBackend(choice: BackendChoice, log: (m: string) => void = () => {}, opts: BackendOptions = {}): Promise<string> {
  if (choice === 'auto' || choice === 'node') {
    try {
      const mod = '@tensorflow/tfjs-node';
      await import(mod); // registers the 'tensorflow' backend
      if (await tf.setBackend('tensorflow')) { await tf.ready(); return 'tensorflow (tfjs-node, native)'; }
    } catch {
      if (choice === 'node') log('@tensorflow/tfjs-node is not installed; using the wasm SIMD backend');
    }
  }
  if (choice !== 'cpu') {
    const threads = Math.max(1, Math.min(2, opts.threads ?? (os.availableParallelism() >= 2 ? 2 : 1)));
    const reg = registerWasmTrainBackend({ threads });
    if (reg && (await tf.setBackend(WASM_BACKEND))) {
      await tf.ready();
      quietCpuAdvert();
      return `${WASM_BACKEND} (wasm ${reg.isa === 'relaxed' ? 'relaxed-SIMD (FMA)' : 'SIMD'} kernels, ${threads} thread${threads > 1 ? 's' : ''})`;
    }
    log('the wasm training kernels cannot run here (no wasm SIMD, or build/cdnv2-train.wasm missing); using the CPU backend');
  }
  await tf.setBackend('cpu');
  await tf.ready();
  quietCpuAdvert();
  return 'cpu (pure JS, slow)';
}

// The CPU backend (and ours, which extends it) prints an advert for tfjs-node on first use; the caller reports
// the backend in use instead.
function quietCpuAdvert(): void {
  const warn = console.warn;
  console.warn = () => {};
  try { tf.tensor([0]).dispose(); } finally { console.warn = warn; }
}
