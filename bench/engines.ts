// The engines `cdnv2 bench` compares. Each runs in its own child process (bench/worker.ts), so one engine's
// memory, threads and global state (TF.js backends, ORT environments) cannot affect another's numbers.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';

import { getConfig } from '../base/arch/configs.js';
import { randomNetworkParams } from '../converter/random.js';
import { readModel } from '../base/cnv2/format.js';
import type { OpProfile } from '../runtime/index.js';

export const ENGINE_NAMES = ['cdnv2', 'cdnv2-relaxed', 'cdnv2-scalar', 'wasmtime', 'wasmtime-relaxed', 'tfjs-wasm', 'tfjs-wasm-condensed',
  'tfjs-cpu', 'ort-web', 'ort-node'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];
/** Run by default (tfjs-wasm-condensed only on request: it is slower than the training graph in TF.js). */
export const DEFAULT_ENGINES: EngineName[] = ['cdnv2', 'cdnv2-relaxed', 'cdnv2-scalar', 'wasmtime', 'wasmtime-relaxed', 'tfjs-wasm', 'tfjs-cpu', 'ort-web', 'ort-node'];

export const ENGINE_DESCRIPTIONS: Record<EngineName, string> = {
  'cdnv2': 'ours, build/cdnv2-lib.wasm (SIMD128) in Node/V8',
  'cdnv2-relaxed': 'ours, relaxed-SIMD build (FMA) in Node/V8',
  'cdnv2-scalar': 'ours, scalar build in Node/V8',
  'wasmtime': 'ours, WASI command build/cdnv2.wasm (SIMD128) under real wasmtime, precompiled (its own `bench`)',
  'wasmtime-relaxed': 'ours, WASI command build/cdnv2-relaxed.wasm (relaxed SIMD) under real wasmtime, precompiled',
  'tfjs-wasm': '@tensorflow/tfjs-backend-wasm (XNNPACK, SIMD, 1 thread), training-form graph (condensed graph for .cnv2 files)',
  'tfjs-wasm-condensed': '@tensorflow/tfjs-backend-wasm, condensed graph (gather + grouped conv + dense index-sum conv)',
  'tfjs-cpu': '@tensorflow/tfjs CPU backend (plain JS), training-form graph',
  'ort-web': 'onnxruntime-web (wasm, SIMD, 1 thread), ONNX export',
  'ort-node': 'onnxruntime-node (native CPU, 1 intra-op and 1 inter-op thread), ONNX export',
};

/** What a worker needs to run one engine on one model. */
export interface Job {
  engine: EngineName;
  modelName: string;
  cnv2File: string;
  onnxFile: string;
  /** Set when the model comes from `cdnv2 arch <config> --seed`: the training-form graph can be rebuilt. */
  arch?: { config: string; seed: number };
  runs: number;
  warmup: number;
  /** Stop timing after this many seconds once 3 runs are done (slow engines on big models); 0 = no limit. */
  maxSeconds: number;
  /** After timing, a per-op profile of as many runs (our engines only); 0 = none. */
  profileRuns?: number;
}

export interface Runner {
  /** One inference on the fixed input; returns the logits. */
  run(): Promise<Float32Array> | Float32Array;
  note: string;
  /** Bytes the engine reports for its own state (wasm memory, arena), when it can say. */
  engineBytes?: number;
  /** Per-op profile (our engines). */
  profile?(runs: number): OpProfile[];
  dispose(): void | Promise<void>;
}

/** The fixed benchmark input (CHW), the same for every engine: deterministic, non-trivial values. */
export function benchInput(n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.sin(i * 0.37);
  return x;
}

function chwToHwc(x: Float32Array, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let ch = 0; ch < c; ch++) for (let i = 0; i < h * w; i++) out[i * c + ch] = x[ch * h * w + i]!;
  return out;
}

const require = createRequire(import.meta.url);

/** Imports an engine's libraries ahead of time, so the memory baseline taken after it excludes their code. */
export async function preloadEngine(engine: EngineName): Promise<void> {
  if (engine.startsWith('cdnv2')) await import('../runtime/index.js');
  else if (engine.startsWith('tfjs')) await Promise.all([import('@tensorflow/tfjs'), import('@tensorflow/tfjs-backend-wasm'), import('./tfjs-graph.js')]);
  else if (engine === 'ort-web') await import('onnxruntime-web');
  else if (engine === 'ort-node') await import('onnxruntime-node');
}

export async function createRunner(job: Job): Promise<Runner> {
  const bytes = new Uint8Array(await readFile(job.cnv2File));
  const model = readModel(bytes);
  const { channels: c, height: h, width: w } = model.buffers[model.inputBuffer]!;
  const input = benchInput(c * h * w);
  switch (job.engine) {
    case 'cdnv2': case 'cdnv2-relaxed': case 'cdnv2-scalar': {
      const { loadModel } = await import('../runtime/index.js');
      const isa = job.engine === 'cdnv2' ? 'simd' : job.engine === 'cdnv2-relaxed' ? 'relaxed' : 'scalar';
      const m = await loadModel(bytes, { isa });
      // The instance's whole linear memory: model bytes, expanded weights, arena, scratch.
      const memory = (m as unknown as { exports: { memory: WebAssembly.Memory } }).exports.memory;
      return {
        run: () => m.run(input), note: `arena ${m.arenaBytes} B`, engineBytes: memory.buffer.byteLength, dispose: () => m.dispose(),
        profile: (runs) => m.profile({ runs, warmup: 0, input }),
      };
    }
    case 'tfjs-wasm': case 'tfjs-wasm-condensed': case 'tfjs-cpu': {
      const tf = await import('@tensorflow/tfjs');
      if (job.engine === 'tfjs-cpu') {
        await tf.setBackend('cpu');
      } else {
        const wasm = await import('@tensorflow/tfjs-backend-wasm');
        wasm.setWasmPaths(`${path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm'))}/`);
        wasm.setThreadsCount(1);
        if (!(await tf.setBackend('wasm'))) throw new Error('the TF.js wasm backend failed to initialise');
        if (!tf.env().getBool('WASM_HAS_SIMD_SUPPORT')) throw new Error('the TF.js wasm backend runs without SIMD');
      }
      await tf.ready();
      const { trainingGraph, condensedGraph } = await import('./tfjs-graph.js');
      const useTraining = job.engine !== 'tfjs-wasm-condensed' && job.arch !== undefined;
      const graph = useTraining ? trainingGraph(randomNetworkParams(getConfig(job.arch!.config), job.arch!.seed)) : condensedGraph(model);
      const x = tf.tensor4d(chwToHwc(input, c, h, w), [1, h, w, c]);
      return {
        run: async () => {
          const y = graph.run(x);
          const d = (await y.data()) as Float32Array;
          y.dispose();
          return d;
        },
        note: `${useTraining ? 'training-form' : 'condensed'} graph, backend ${tf.getBackend()}`,
        dispose: () => { x.dispose(); graph.dispose(); },
      };
    }
    case 'ort-web': case 'ort-node': {
      const onnxBytes = new Uint8Array(await readFile(job.onnxFile));
      // Both packages expose the onnxruntime-common API; their type declarations differ only in the backends.
      type Ort = typeof import('onnxruntime-node');
      let ort: Ort;
      let opts: Parameters<Ort['InferenceSession']['create']>[1];
      if (job.engine === 'ort-web') {
        const web = (await import('onnxruntime-web')) as unknown as Ort & { env: { wasm: { numThreads: number; simd?: boolean } } };
        web.env.wasm.numThreads = 1;
        web.env.wasm.simd = true;
        ort = web;
        opts = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };
      } else {
        ort = await import('onnxruntime-node');
        opts = { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
      }
      const session = await ort.InferenceSession.create(onnxBytes, opts);
      const tensor = new ort.Tensor('float32', input, [1, c, h, w]);
      const outName = session.outputNames[0]!;
      return {
        run: async () => (await session.run({ [session.inputNames[0]!]: tensor }))[outName]!.data as Float32Array,
        note: `ONNX ${onnxBytes.length} B`,
        dispose: () => session.release(),
      };
    }
    default:
      throw new Error(`engine ${job.engine} does not run in a worker`);
  }
}
