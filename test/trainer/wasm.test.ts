// The 'cdnv2-wasm' training backend against the TF.js CPU backend: every kernel it overrides (OWN_KERNELS), forward
// and gradients (tf.grads on the same inputs under each backend), on awkward shapes; the fused custom kernels against
// the model's CPU op compositions (batchNormTrain + activate, groupConv3x3); TrainKernels with 1 vs 2 threads and
// SIMD vs relaxed SIMD; whole models' gradients; and a few steps of the real train() loop on both backends. Every
// case also checks whether the wasm backend took its fast path (no call of a CPU kernel of an overridden name) or,
// for the shapes outside it, fell back. Tensors live in wasm memory on this backend, so one case checks that
// CPU-kernel views of such tensors survive the block being freed and reused.
//
// Relative error: relErr(a, b) = max_i |a_i - b_i| / max(1e-6, max_i |b_i|), with b the CPU backend's result.
// Both sides compute in f32 in different summation orders; with at most a few thousand terms per sum the rounding
// error is ~1e-6 of the output scale, while an indexing, broadcasting, tail or padding bug is O(1) of it.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import t, { type Test } from 'tap';

import type { Activation as ModelActivation } from '../../base/arch/configs.js';
import { selectBackend } from '../../trainer/backend.js';
import { loadCheckpoint } from '../../trainer/checkpoint.js';
import { openSynthetic } from '../../base/data/synthetic.js';
import { activate, batchNormTrain, BN_EPS, CdnModel, groupConv3x3, initialValues, type BnBatchStat } from '../../trainer/model.js';
import { Rng } from '../../base/rng.js';
import { isShuffleNetConfig, type NetworkConfig } from '../../base/arch/networks.js';
import { createTrainModel, networkInitialValues } from '../../trainer/net.js';
import { tinyConfig, tinyShuffleConfig } from '../../trainer/tiny.js';
import { train, type TrainRun } from '../../trainer/train.js';
import { OWN_KERNELS, registerWasmTrainBackend, WASM_BACKEND } from '../../trainer/wasm/backend.js';
import { TrainKernels, type Activation } from '../../trainer/wasm/kernels.js';
import { HelperThread } from '../../trainer/wasm/threads.js';
import { affineAct, fusedBatchNormAct, fusedGroupConv3x3 } from '../../trainer/wasm/ops.js';
import { TINY_A } from '../../testkit/tiny-configs.js';

const TOL = 1e-4;

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / Math.max(1e-6, scale);
}

/** Deterministic test data: normal * scale + offset. */
function data(seed: number, n: number, scale = 1, offset = 0): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.normal() * scale + offset);
}
const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);

// ---- fallback accounting: the CPU kernel of an overridden name runs under the wasm backend only as a fallback ----
let fallbacks = 0;
let worst = 0; // largest relative error over all comparisons, reported at the end
const ran = new Set<string>(); // kernels the wasm backend executed (tf.profile)

interface Result { outputs: Float32Array[]; shapes: number[][] }

/** Runs fn under `backend` on fresh tensors, returns every output's values; counts CPU fallbacks under wasm. */
async function runOn(backend: string, fn: () => tf.Tensor[]): Promise<Result & { fallbacks: number }> {
  await tf.setBackend(backend);
  const before = fallbacks;
  const prof = await tf.profile(() => tf.tidy(fn));
  if (backend === WASM_BACKEND) for (const k of prof.kernelNames) ran.add(k);
  const ts = prof.result as tf.Tensor[];
  const outputs = ts.map((x) => Float32Array.from(x.dataSync()));
  const shapes = ts.map((x) => x.shape);
  tf.dispose(ts);
  return { outputs, shapes, fallbacks: fallbacks - before };
}

/**
 * fn on both backends: every output (forward values and gradients) within TOL of the CPU backend's, same shapes.
 * `fast`: the wasm backend must not fall back to a CPU kernel for any of its overridden kernels.
 */
async function compare(t: Test, name: string, fn: () => tf.Tensor[], fast = true): Promise<number> {
  const cpu = await runOn('cpu', fn);
  const wasm = await runOn(WASM_BACKEND, fn);
  t.same(wasm.shapes, cpu.shapes, `${name}: shapes`);
  let err = 0;
  cpu.outputs.forEach((ref, i) => { err = Math.max(err, relErr(wasm.outputs[i]!, ref)); });
  worst = Math.max(worst, err);
  t.ok(err < TOL, `${name}: rel err ${err.toExponential(2)} (${cpu.outputs.length} outputs)`);
  if (fast) t.equal(wasm.fallbacks, 0, `${name}: no CPU fallback`);
  else t.ok(wasm.fallbacks > 0, `${name}: falls back to the CPU kernel`);
  return err;
}

/** Forward value of f(...inputs) and the gradients of sum(f * dy) with respect to every input. */
function withGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: { shape: number[]; seed: number; scale?: number; offset?: number }[], dySeed = 99): () => tf.Tensor[] {
  return () => {
    const xs = inputs.map((s) => tf.tensor(data(s.seed, size(s.shape), s.scale ?? 1, s.offset ?? 0), s.shape));
    const y = f(...xs);
    const dy = tf.tensor(data(dySeed, y.size), y.shape);
    const grads = tf.grads((...a: tf.Tensor[]) => f(...a))(xs, dy);
    return [y, ...grads];
  };
}

t.before(async () => {
  await selectBackend('cpu');
  if (!registerWasmTrainBackend({ threads: 2 })) throw new Error('the cdnv2-wasm backend did not register (build/cdnv2-train.wasm missing?)');
  for (const name of OWN_KERNELS) {
    const k = tf.getKernel(name, 'cpu');
    if (!k) continue;
    tf.unregisterKernel(name, 'cpu');
    tf.registerKernel({
      ...k,
      kernelFunc: (args) => {
        if (tf.getBackend() === WASM_BACKEND) fallbacks++;
        return k.kernelFunc(args);
      },
    });
  }
});

t.test('binary ops with broadcasting: Add, Sub, Multiply, RealDiv', async (t) => {
  const pairs: [number[], number[]][] = [
    [[2, 5, 7, 3], [2, 1, 1, 3]], // SE scaling [N,H,W,C] * [N,1,1,C]
    [[2, 1, 1, 3], [2, 5, 7, 3]],
    [[13, 5], [5]], // [P,C] + [C]
    [[5], [13, 5]],
    [[3, 4], []], // scalars
    [[], [3, 4]],
    [[], []],
    [[1, 7], [3, 1]],
    [[2, 3, 1, 5], [1, 1, 4, 1]],
    [[2, 3, 4], [2, 3, 4]],
    [[1, 6], [6]],
    [[9], [1]],
    [[3, 1, 7, 7], [3, 5, 7, 7]],
  ];
  const ops: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
    ['add', tf.add], ['sub', tf.sub], ['mul', tf.mul], ['div', tf.div],
  ];
  for (const [op, f] of ops) {
    for (const [sa, sb] of pairs) {
      // Denominators away from zero: the gradient of a/b is -a/b^2.
      await compare(t, `${op} [${sa}] [${sb}]`, withGrads(f, [{ shape: sa, seed: 1 }, { shape: sb, seed: 2, scale: op === 'div' ? 0.2 : 1, offset: op === 'div' ? 1.5 : 0 }]));
    }
  }
  // int32 is not a fast path: the CPU kernel computes it.
  await compare(t, 'add int32 falls back', () => [tf.cast(tf.add(tf.tensor([1, 2, 3], [3], 'int32'), tf.tensor([[4], [5]], [2, 1], 'int32')), 'float32')], false);
});

t.test('Sum over any axes', async (t) => {
  const cases: { shape: number[]; axis?: number | number[]; keepDims?: boolean; fast?: boolean }[] = [
    { shape: [2, 3, 4] }, // every axis (tf.sum passes axis null)
    { shape: [2, 3, 4], keepDims: true },
    { shape: [2, 3, 4], axis: 0 },
    { shape: [2, 3, 4], axis: 1 },
    { shape: [2, 3, 4], axis: -1 },
    { shape: [2, 3, 4], axis: [0, 2] },
    { shape: [2, 3, 4], axis: [0, 1], keepDims: true },
    { shape: [3, 5, 5, 7], axis: [0, 1, 2] }, // per-channel (bias / BN-style gradients)
    { shape: [37, 13], axis: 0 },
    { shape: [13], axis: 0 },
    { shape: [5, 1, 3], axis: 1 },
    { shape: [2, 0, 3], axis: 1 },
    { shape: [], fast: false },
  ];
  for (const c of cases) {
    await compare(t, `sum [${c.shape}] axis ${JSON.stringify(c.axis ?? null)}${c.keepDims ? ' keepDims' : ''}`,
      withGrads((x) => tf.sum(x, c.axis, c.keepDims), [{ shape: c.shape, seed: 12 }]), c.fast ?? true);
  }
});

t.test('Slice, rank 1-4', async (t) => {
  const cases: { shape: number[]; begin: number[] | number; size: number[] | number }[] = [
    { shape: [13], begin: [3], size: [7] },
    { shape: [13], begin: 4, size: -1 },
    { shape: [7, 9], begin: [1, 2], size: [5, -1] },
    { shape: [3, 100], begin: [1, 10], size: [2, 70] }, // inner run >= 64: bulk copy
    { shape: [3, 5, 7], begin: [1, 0, 2], size: [2, 5, 3] },
    { shape: [2, 7, 7, 5], begin: [0, 1, 1, 1], size: [2, 5, 6, 3] },
    { shape: [3, 4, 4, 12], begin: [0, 0, 0, 5], size: [3, 4, 4, 7] }, // channel slice (concat gradient)
    { shape: [2, 1, 1, 9], begin: [1, 0, 0, 0], size: [1, 1, 1, 9] },
    { shape: [4, 6], begin: [2, 3], size: [0, 2] }, // empty
  ];
  for (const c of cases) {
    await compare(t, `slice [${c.shape}] begin ${JSON.stringify(c.begin)} size ${JSON.stringify(c.size)}`,
      withGrads((x) => tf.slice(x, c.begin, c.size), [{ shape: c.shape, seed: 3 }]));
  }
});

t.test('Concat on several axes', async (t) => {
  const cases: { shapes: number[][]; axis: number }[] = [
    { shapes: [[5], [3], [1]], axis: 0 },
    { shapes: [[2, 3], [2, 5], [2, 1]], axis: 1 },
    { shapes: [[2, 3], [4, 3]], axis: 0 },
    { shapes: [[2, 5, 5, 3], [2, 5, 5, 4]], axis: 3 },
    { shapes: [[2, 5, 5, 3], [2, 5, 5, 4]], axis: -1 },
    { shapes: [[2, 3, 5, 3], [2, 1, 5, 3], [2, 2, 5, 3]], axis: 1 },
    { shapes: [[2, 3, 5, 3], [2, 3, 2, 3]], axis: 2 },
    { shapes: [[1, 3, 4, 3], [3, 3, 4, 3]], axis: 0 },
    { shapes: [[3, 70], [3, 9]], axis: 1 }, // a run >= 64: bulk copy
    { shapes: [[3, 0, 2], [3, 4, 2]], axis: 1 }, // an empty input
  ];
  for (const c of cases) {
    await compare(t, `concat ${JSON.stringify(c.shapes)} axis ${c.axis}`,
      withGrads((...xs) => tf.concat(xs, c.axis), c.shapes.map((shape, i) => ({ shape, seed: 10 + i }))));
  }
});

t.test('MaxPool and MaxPoolGrad: 3x3 stride 2 pad 1 (the ImageNet stem), other windows, ties after ReLU', async (t) => {
  // The gradient sends each dy to the first maximum of its window (row-major), as the CPU kernel: the ReLU cases
  // (many all-zero windows) and the rounded inputs (ties between equal values) check that choice; a wrong one moves
  // a whole dy value (O(1) error). Values are copies or sums of at most 9 dy values.
  type Pad = 'same' | 'valid' | number;
  const cases: { x: number[]; f: number; s: number; pad: Pad }[] = [
    { x: [2, 7, 7, 5], f: 3, s: 2, pad: 1 },
    { x: [1, 8, 8, 24], f: 3, s: 2, pad: 1 },
    { x: [3, 1, 1, 4], f: 3, s: 2, pad: 1 }, // 1x1 map
    { x: [2, 2, 2, 6], f: 3, s: 2, pad: 1 }, // 2x2 map
    { x: [1, 5, 6, 3], f: 3, s: 2, pad: 'same' }, // scalar channels
    { x: [2, 6, 6, 9], f: 2, s: 2, pad: 'valid' },
    { x: [3, 9, 7, 7], f: 3, s: 1, pad: 'same' },
  ];
  for (const c of cases) {
    const pool = (x: tf.Tensor): tf.Tensor => tf.maxPool(x as tf.Tensor4D, c.f, c.s, c.pad);
    await compare(t, `maxPool x[${c.x}] ${c.f}x${c.f} stride ${c.s} pad ${c.pad}`, withGrads(pool, [{ shape: c.x, seed: 90 }]));
    // Inputs with ties fed directly (a ReLU or round in the graph would zero the gradient where the ties are).
    for (const [what, f] of [['ReLU-like (mostly zeros)', (v: number) => Math.max(0, v - 0.8)], ['rounded', (v: number) => Math.round(v * 0.7)]] as const) {
      await compare(t, `maxPool of ${what} values x[${c.x}] ${c.f}x${c.f} stride ${c.s} pad ${c.pad}`, () => {
        const x = tf.tensor(data(91, size(c.x)).map(f), c.x);
        const y = pool(x);
        const dy = tf.tensor(data(99, y.size), y.shape);
        return [y, tf.grad((a: tf.Tensor) => pool(a))(x, dy)];
      });
    }
  }
});

t.test('SplitV, Pack and Unpack (split, stack, unstack) on several axes, with gradients', async (t) => {
  // Small cases run the JS loops, the >= 2^14-element ones copy_columns in wasm (one float per row for a last-axis
  // stack or unstack: the ShuffleNet channel shuffle). Each output and gradient is a copy: errors are exact zeros.
  const splits: { shape: number[]; sizes: number | number[]; axis: number }[] = [
    { shape: [2, 3, 5], sizes: [1, 2], axis: 1 },
    { shape: [2, 3, 6], sizes: 2, axis: -1 },
    { shape: [4, 3], sizes: [3, -1], axis: 0 },
    { shape: [3, 7, 7, 10], sizes: [3, 7], axis: 3 },
    { shape: [16, 14, 14, 48], sizes: 2, axis: 3 }, // a basic unit's channel split (wasm)
    { shape: [9, 15, 13, 12], sizes: [5, 10], axis: 1 },
  ];
  for (const c of splits) {
    const n = size(c.shape);
    await compare(t, `split ${JSON.stringify(c.shape)} ${JSON.stringify(c.sizes)} axis ${c.axis}`, () => {
      const x = tf.tensor(data(70, n), c.shape);
      const parts = tf.split(x, c.sizes, c.axis);
      const dys = parts.map((p, k) => tf.tensor(data(71 + k, p.size), p.shape));
      const g = tf.grad((a: tf.Tensor) => tf.addN(tf.split(a, c.sizes, c.axis).map((p, k) => tf.sum(tf.mul(p, dys[k]!)))))(x);
      return [...parts, g];
    });
  }
  const stacks: { shape: number[]; n: number; axis: number }[] = [
    { shape: [3, 2], n: 2, axis: 2 },
    { shape: [3, 2], n: 3, axis: 0 },
    { shape: [2, 3, 3, 5], n: 2, axis: 4 },
    { shape: [2, 3, 3, 5], n: 2, axis: 1 },
    { shape: [16, 14, 14, 24], n: 2, axis: 4 }, // concat + channel shuffle (wasm)
    { shape: [7, 9, 9, 35], n: 3, axis: -1 },
    { shape: [5, 11, 13, 23], n: 2, axis: 2 },
  ];
  for (const c of stacks) {
    await compare(t, `stack ${c.n} x ${JSON.stringify(c.shape)} axis ${c.axis}`,
      withGrads((...xs) => tf.stack(xs, c.axis), Array.from({ length: c.n }, (_, k) => ({ shape: c.shape, seed: 75 + k }))));
    const full = c.shape.slice();
    const ax = c.axis < 0 ? c.axis + full.length + 1 : c.axis;
    full.splice(ax, 0, c.n);
    await compare(t, `unstack ${JSON.stringify(full)} axis ${ax}`, () => {
      const x = tf.tensor(data(80, size(full)), full);
      const parts = tf.unstack(x, ax);
      const dys = parts.map((p, k) => tf.tensor(data(81 + k, p.size), p.shape));
      const g = tf.grad((a: tf.Tensor) => tf.addN(tf.unstack(a, ax).map((p, k) => tf.sum(tf.mul(p, dys[k]!)))))(x);
      return [...parts, g];
    });
  }
});

t.test('AvgPool and AvgPoolGrad: 2x2 transitions and global pools', async (t) => {
  const cases: { shape: number[]; filter: [number, number]; stride: number; fast: boolean }[] = [
    { shape: [2, 6, 8, 5], filter: [2, 2], stride: 2, fast: true },
    { shape: [1, 14, 14, 3], filter: [2, 2], stride: 2, fast: true },
    { shape: [3, 7, 7, 5], filter: [7, 7], stride: 1, fast: true }, // global (SE, head)
    { shape: [2, 1, 1, 4], filter: [1, 1], stride: 1, fast: true }, // 1x1 map
    { shape: [2, 5, 3, 6], filter: [5, 3], stride: 1, fast: true },
    // Large enough for the wasm kernels' SIMD rows and the two-thread split; channels not a multiple of 4.
    { shape: [64, 28, 28, 13], filter: [2, 2], stride: 2, fast: true },
    { shape: [96, 7, 7, 66], filter: [7, 7], stride: 1, fast: true },
    { shape: [1, 7, 7, 3], filter: [2, 2], stride: 2, fast: false }, // odd map: windows do not tile
    { shape: [1, 6, 6, 2], filter: [3, 3], stride: 1, fast: false },
  ];
  for (const c of cases) {
    await compare(t, `avgPool [${c.shape}] ${c.filter} stride ${c.stride}`,
      withGrads((x) => tf.avgPool(x as tf.Tensor4D, c.filter, c.stride, 'valid'), [{ shape: c.shape, seed: 4 }]), c.fast);
  }
});

t.test('Transpose rank 2', async (t) => {
  for (const shape of [[17, 33], [1, 40], [70, 3], [33, 1], [64, 65]]) {
    await compare(t, `transpose [${shape}]`, withGrads((x) => tf.transpose(x), [{ shape, seed: 5 }]));
  }
  await compare(t, 'transpose rank 3 falls back', withGrads((x) => tf.transpose(x, [2, 0, 1]), [{ shape: [3, 4, 5], seed: 5 }]), false);
});

t.test('BatchMatMul: transposes, batches, thin shapes', async (t) => {
  // [9, 150, 20]: K spans several gemm K panels (64 for Aᵀ·B) with a partial last one; 20 columns = 8+8+4.
  const dims: [number, number, number][] = [[7, 13, 5], [1, 9, 6], [6, 1, 11], [5, 8, 1], [37, 64, 29], [130, 3, 17], [9, 150, 20]];
  for (const [M, K, N] of dims) {
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        await compare(t, `matMul ${M}x${K}x${N} tA=${ta} tB=${tb}`, withGrads((a, b) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, ta, tb),
          [{ shape: ta ? [K, M] : [M, K], seed: 6 }, { shape: tb ? [N, K] : [K, N], seed: 7 }]));
      }
    }
  }
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    await compare(t, `batched matMul [3,5,6]x[3,6,7] tA=${ta} tB=${tb}`, withGrads((a, b) => tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D, ta, tb),
      [{ shape: ta ? [3, 6, 5] : [3, 5, 6], seed: 8 }, { shape: tb ? [3, 7, 6] : [3, 6, 7], seed: 9 }]));
  }
  await compare(t, 'batched matMul rank 4', withGrads((a, b) => tf.matMul(a, b), [{ shape: [2, 2, 3, 4], seed: 8 }, { shape: [2, 2, 4, 5], seed: 9 }]));
  // Broadcast batch: not a fast path (forward only: TF.js has no gradient for it on any backend).
  await compare(t, 'matMul with a broadcast batch falls back', () => [tf.matMul(tf.tensor(data(8, 30), [1, 5, 6]), tf.tensor(data(9, 126), [3, 6, 7]))], false);
});

t.test('Conv2D and both gradients: 3x3 stride 1 same / pad 1; other convolutions fall back', async (t) => {
  const cases: { x: number[]; f: number[]; pad: 'same' | 1 }[] = [
    { x: [1, 7, 7, 3], f: [3, 3, 3, 5], pad: 'same' },
    { x: [2, 1, 1, 6], f: [3, 3, 6, 4], pad: 'same' },
    { x: [3, 5, 9, 4], f: [3, 3, 4, 7], pad: 1 },
    { x: [2, 8, 8, 1], f: [3, 3, 1, 8], pad: 1 }, // the stem of the tiny network
    { x: [1, 2, 13, 9], f: [3, 3, 9, 1], pad: 'same' },
  ];
  for (const c of cases) {
    await compare(t, `conv2d x[${c.x}] f[${c.f}] pad ${c.pad}`,
      withGrads((x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, c.pad), [{ shape: c.x, seed: 20 }, { shape: c.f, seed: 21, scale: 0.3 }]));
  }
  await compare(t, 'conv2d stride 2 falls back', withGrads((x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 2, 1),
    [{ shape: [2, 7, 7, 3], seed: 20 }, { shape: [3, 3, 3, 4], seed: 21 }]), false);
  await compare(t, 'conv2d 1x1 falls back', withGrads((x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'same'),
    [{ shape: [2, 5, 5, 3], seed: 20 }, { shape: [1, 1, 3, 4], seed: 21 }]), false);
  await compare(t, 'conv2d 3x3 valid falls back', withGrads((x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'valid'),
    [{ shape: [2, 5, 5, 3], seed: 20 }, { shape: [3, 3, 3, 4], seed: 21 }]), false);
});

t.test('DepthwiseConv2dNative and both gradients: 3x3, multiplier 1, stride 1 and 2, the padding cases; others fall back', async (t) => {
  // Forward sums 9 products per output, the input gradient at most 9, the filter gradient N*OH*OW (< 1000 here):
  // all well inside TOL (header). Channel counts below 4 take the scalar loop, others not a multiple of 4 the
  // overlapping last vector block; 58 is the 1.0x network's first stage.
  type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
  const cases: { x: number[]; stride: 1 | 2; pad: Pad }[] = [
    { x: [1, 7, 7, 3], stride: 1, pad: 'same' },
    { x: [3, 5, 9, 6], stride: 2, pad: 'same' }, // odd sizes: 'same' pads 1 on every side
    { x: [2, 8, 8, 58], stride: 2, pad: 'same' }, // even sizes: 'same' pads 0 top/left, 1 bottom/right
    { x: [2, 9, 10, 58], stride: 1, pad: 1 },
    { x: [3, 7, 6, 9], stride: 2, pad: 1 },
    { x: [1, 1, 1, 5], stride: 1, pad: 'same' }, // 1x1 map: only the centre tap sees data
    { x: [1, 1, 1, 4], stride: 2, pad: 1 },
    { x: [3, 2, 2, 4], stride: 2, pad: 'same' }, // 2x2 maps
    { x: [3, 2, 2, 7], stride: 1, pad: 1 },
    { x: [1, 6, 7, 7], stride: 2, pad: 'valid' },
    { x: [2, 5, 5, 13], stride: 1, pad: 'valid' },
    { x: [1, 6, 5, 2], stride: 2, pad: [[0, 0], [2, 0], [1, 2], [0, 0]] }, // explicit, asymmetric
  ];
  for (const c of cases) {
    await compare(t, `depthwise x[${c.x}] stride ${c.stride} pad ${JSON.stringify(c.pad)}`,
      withGrads((x, f) => tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.stride, c.pad), [{ shape: c.x, seed: 30 }, { shape: [3, 3, c.x[3]!, 1], seed: 31, scale: 0.3 }]));
  }
  const outside: { name: string; x: number[]; f: number[]; stride: number | [number, number]; pad: Pad; dilation?: number }[] = [
    { name: 'channel multiplier 2', x: [2, 5, 5, 3], f: [3, 3, 3, 2], stride: 1, pad: 'same' },
    { name: '5x5 filter', x: [2, 6, 6, 4], f: [5, 5, 4, 1], stride: 1, pad: 'same' },
    { name: 'dilation 2', x: [2, 7, 7, 4], f: [3, 3, 4, 1], stride: 1, pad: 'same', dilation: 2 },
    { name: 'strides [1, 2]', x: [2, 6, 6, 5], f: [3, 3, 5, 1], stride: [1, 2], pad: 'same' },
    { name: 'pad 3', x: [1, 4, 4, 4], f: [3, 3, 4, 1], stride: 1, pad: 3 },
  ];
  for (const c of outside) {
    const f = (x: tf.Tensor, w: tf.Tensor): tf.Tensor => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.stride, c.pad, 'NHWC', c.dilation ?? 1);
    const inputs = [{ shape: c.x, seed: 32 }, { shape: c.f, seed: 33, scale: 0.3 }];
    // TF.js has no gradient for dilated depthwise convolutions: forward only there.
    const run = c.dilation ? () => { const [x, w] = inputs.map((i) => tf.tensor(data(i.seed, size(i.shape), i.scale ?? 1), i.shape)); return [f(x!, w!)]; } : withGrads(f, inputs);
    await compare(t, `depthwise ${c.name} falls back`, run, false);
  }
});

t.test('tf.grad through a small depthwise network (ShuffleNet-style unit) equals the CPU backend', async (t) => {
  // 1x1 conv -> BN-free ReLU -> depthwise s2 -> 1x1 conv, a stride-1 depthwise on the other branch, concat,
  // channel shuffle (reshape + transpose), global mean, squared loss: every gradient of x and the four weights.
  const unit = (x: tf.Tensor, w1: tf.Tensor, d1: tf.Tensor, w2: tf.Tensor, d2: tf.Tensor): tf.Tensor => {
    const a = tf.relu(tf.conv2d(x as tf.Tensor4D, w1 as tf.Tensor4D, 1, 'same'));
    const b = tf.conv2d(tf.depthwiseConv2d(a, d1 as tf.Tensor4D, 2, 'same'), w2 as tf.Tensor4D, 1, 'same');
    const c = tf.depthwiseConv2d(tf.avgPool(x as tf.Tensor4D, 2, 2, 'same'), d2 as tf.Tensor4D, 1, 1);
    const cat = tf.concat([b, c], 3);
    const [n, h, w, ch] = cat.shape as [number, number, number, number];
    const shuffled = tf.reshape(tf.transpose(tf.reshape(cat, [n, h, w, 2, ch / 2]), [0, 1, 2, 4, 3]), [n, h, w, ch]);
    return tf.mean(tf.square(shuffled));
  };
  const shapes = [[3, 9, 9, 6], [1, 1, 6, 10], [3, 3, 10, 1], [1, 1, 10, 6], [3, 3, 6, 1]];
  const run = (): tf.Tensor[] => {
    const xs = shapes.map((s, i) => tf.tensor(data(40 + i, size(s), i === 0 ? 1 : 0.4), s));
    const { value, grads } = tf.valueAndGrads((...a: tf.Tensor[]) => unit(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!) as tf.Scalar)(xs);
    return [value, ...grads];
  };
  await compare(t, 'depthwise unit: loss and 5 gradients', run, false); // the 1x1 convs fall back (not 3x3)
  await tf.setBackend(WASM_BACKEND);
  const prof = await tf.profile(() => tf.tidy(() => { run(); return []; }));
  for (const k of ['DepthwiseConv2dNative', 'DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter']) {
    t.ok(prof.kernelNames.includes(k), `${k} ran on the wasm backend`);
  }
});

/** Group convolution from TF.js ops: a 'same' conv2d per contiguous channel group, concatenated. */
function sliceGroupConv(x: tf.Tensor4D, w: tf.Tensor4D, groups: number): tf.Tensor4D {
  const [n, h, wd, c] = x.shape;
  const cinG = c / groups, coutG = w.shape[3] / groups;
  const outs = Array.from({ length: groups }, (_, g) => tf.conv2d(tf.slice(x, [0, 0, 0, g * cinG], [n, h, wd, cinG]),
    tf.slice(w, [0, 0, 0, g * coutG], [3, 3, cinG, coutG]), 1, 'same'));
  return groups === 1 ? outs[0]! : tf.concat(outs, 3);
}

t.test('Cdnv2GroupConv3x3 (+ input and filter gradients) against CPU compositions', async (t) => {
  // Square maps: against the model's own groupConv3x3 (its CPU path); every map also against per-group conv2d.
  // (groupConv3x3's CPU filter gradient cannot take non-square maps: TF.js sizes a numeric-pad conv2d output with
  // the filter height for both axes.)
  const cases: { x: number[]; cout: number; groups: number }[] = [
    { x: [1, 7, 7, 8], cout: 6, groups: 2 },
    { x: [2, 1, 1, 4], cout: 8, groups: 4 },
    { x: [3, 5, 5, 12], cout: 8, groups: 4 },
    { x: [2, 6, 6, 5], cout: 3, groups: 1 },
    { x: [1, 3, 3, 8], cout: 4, groups: 4 }, // two inputs and one output per group
    { x: [2, 14, 14, 16], cout: 12, groups: 4 }, // large enough to split over two threads
    { x: [3, 5, 3, 12], cout: 8, groups: 4 },
    { x: [1, 4, 9, 6], cout: 10, groups: 2 },
    { x: [2, 1, 7, 3], cout: 5, groups: 1 },
  ];
  for (const c of cases) {
    const w = [3, 3, c.x[3]! / c.groups, c.cout];
    const inputs = [{ shape: c.x, seed: 30 }, { shape: w, seed: 31, scale: 0.3 }];
    const wasm = await runOn(WASM_BACKEND, withGrads((x, f) => fusedGroupConv3x3(x as tf.Tensor4D, f as tf.Tensor4D, c.groups), inputs));
    const name = `group conv x[${c.x}] -> ${c.cout} g${c.groups}`;
    t.equal(wasm.fallbacks, 0, `${name}: no CPU fallback`);
    const refs: [string, (x: tf.Tensor4D, f: tf.Tensor4D, g: number) => tf.Tensor4D][] = [['per-group conv2d', sliceGroupConv]];
    if (c.x[1] === c.x[2]) refs.push(['model groupConv3x3', groupConv3x3]);
    for (const [refName, ref] of refs) {
      const cpu = await runOn('cpu', withGrads((x, f) => ref(x as tf.Tensor4D, f as tf.Tensor4D, c.groups), inputs));
      t.same(wasm.shapes, cpu.shapes, `${name} vs ${refName}: shapes`);
      const errs = cpu.outputs.map((r, i) => relErr(wasm.outputs[i]!, r));
      worst = Math.max(worst, ...errs);
      t.ok(Math.max(...errs) < TOL, `${name} vs ${refName}: rel err y/dx/dw ${errs.map((e) => e.toExponential(1)).join('/')}`);
    }
  }
});

t.test('Cdnv2BatchNormAct (+ gradient) against batchNormTrain + activate on CPU, stats included', async (t) => {
  // (Not 2 rows: there the normalised output does not depend on x, so dx is pure rounding noise.)
  // [6001, 45] is above the two-thread split (rows 0-3007 on the helper, the rest here).
  const shapes: [number, number][] = [[3, 5], [7, 3], [50, 8], [98, 13], [256, 6], [3001, 17], [6001, 45]];
  const acts: Activation[] = ['none', 'relu', 'hardswish'];
  for (const [P, C] of shapes) {
    for (const act of acts) {
      // x spread so that hardswish sees all three pieces (z < -3, |z| <= 3, z > 3).
      const inputs = [{ shape: [P, C], seed: 40, scale: 2, offset: 0.3 }, { shape: [C], seed: 41, scale: 0.5, offset: 1 }, { shape: [C], seed: 42, scale: 0.5 }];
      // fusedBatchNormAct is typed with the model's activations; the kernel also takes 'none' (plain batch norm).
      const body = (fused: boolean) => (): tf.Tensor[] => {
        const stats: tf.Tensor[] = [];
        const keep = (m: tf.Tensor, v: tf.Tensor): void => { stats.push(tf.keep(m.clone()), tf.keep(v.clone())); };
        const f = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor => fused
          ? fusedBatchNormAct(x as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D, act as ModelActivation, BN_EPS, stats.length ? undefined : keep)
          : ((y) => (act === 'none' ? y : activate(y, act)))(batchNormTrain(x as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D, stats.length ? undefined : keep));
        return [...withGrads(f, inputs)(), ...stats];
      };
      const cpu = await runOn('cpu', body(false));
      const wasm = await runOn(WASM_BACKEND, body(true));
      const name = `bn+${act} [${P},${C}]`;
      t.same(wasm.shapes, cpu.shapes, `${name}: shapes (y, dx, dgamma, dbeta, mean, variance)`);
      const errs = cpu.outputs.map((ref, i) => relErr(wasm.outputs[i]!, ref));
      worst = Math.max(worst, ...errs);
      t.ok(Math.max(...errs) < TOL, `${name}: rel err y/dx/dgamma/dbeta/mean/var ${errs.map((e) => e.toExponential(1)).join('/')}`);
    }
  }
});

t.test('Cdnv2AffineAct (evaluation batch norm + activation) against mul, add and activate on CPU', async (t) => {
  // Sizes on both sides of the two-thread split; channel counts not a multiple of 4.
  for (const [P, C] of [[1, 3], [7, 5], [49, 13], [20000, 17], [3136, 32]] as [number, number][]) {
    for (const act of ['relu', 'hardswish'] as ModelActivation[]) {
      const x = data(50, P * C, 3, 0.2), scale = data(51, C, 0.5, 1), shift = data(52, C);
      const body = (fused: boolean) => (): tf.Tensor[] => {
        const xt = tf.tensor2d(x, [P, C]), st = tf.tensor1d(scale), ht = tf.tensor1d(shift);
        return [fused ? affineAct(xt, st, ht, act) : activate(tf.add(tf.mul(xt, st), ht) as tf.Tensor2D, act)];
      };
      const cpu = await runOn('cpu', body(false));
      const wasm = await runOn(WASM_BACKEND, body(true));
      const err = relErr(wasm.outputs[0]!, cpu.outputs[0]!);
      worst = Math.max(worst, err);
      t.ok(err < TOL, `affine+${act} [${P},${C}]: rel err ${err.toExponential(2)}`);
    }
  }
});

t.test('every overridden kernel ran on the wasm backend', async (t) => {
  const custom = ['Cdnv2GroupConv3x3', 'Cdnv2GroupConv3x3InputGrad', 'Cdnv2GroupConv3x3FilterGrad', 'Cdnv2BatchNormAct', 'Cdnv2BatchNormActGrad', 'Cdnv2AffineAct'];
  for (const k of custom) t.ok(OWN_KERNELS.includes(k), `OWN_KERNELS lists ${k}`);
  for (const k of OWN_KERNELS) t.ok(ran.has(k), `${k} was exercised`);
});

t.test('tensors that CPU kernels derive from wasm-resident data survive the source being freed and its block reused', async (t) => {
  await tf.setBackend(WASM_BACKEND);
  const M = 6, K = 5, N = 4;
  const product = (seed: number): tf.Tensor2D => tf.matMul(tf.tensor2d(data(seed, M * K), [M, K]), tf.tensor2d(data(seed + 1, K * N), [K, N]));
  const y = product(70); // a wasm kernel's output
  const first = Float32Array.from(y.dataSync());
  const read = y.dataSync();
  // Contiguous slices: the CPU kernels return subarrays of their input's values.
  const derived: [string, tf.Tensor][] = [
    ...tf.split(y, [2, 4], 0).map((p, i) => [`split part ${i}`, p] as [string, tf.Tensor]),
    ...tf.unstack(y).map((p, i) => [`unstack row ${i}`, p] as [string, tf.Tensor]),
    ['stridedSlice rows 1-4', tf.stridedSlice(y, [1, 0], [5, N], [1, 1])],
    ['slice with a short begin (CPU fallback)', tf.slice(y, [3])],
    ['reshape (shares the data)', tf.reshape(y, [M * N])],
  ];
  const before = derived.map(([, d]) => Float32Array.from(d.dataSync()));
  y.dispose();
  for (let i = 0; i < 3; i++) product(80 + 2 * i).dispose(); // same shapes: the freed blocks are handed out again
  const z = product(90);
  derived.forEach(([name, d], i) => t.same(Array.from(d.dataSync()), Array.from(before[i]!), name));
  t.same(Array.from(read), Array.from(first), 'an array returned by dataSync() before the dispose');
  t.notSame(Array.from(z.dataSync()), Array.from(first), 'the new product differs (the check above can fail)');
  tf.dispose([z, ...derived.map(([, d]) => d)]);
});

t.test('TrainKernels: 1 thread and 2 threads give identical results in both builds; relaxed SIMD within 1e-5 of SIMD', async (t) => {
  const one = new TrainKernels({ threads: 1, isa: 'simd' });
  const two = new TrainKernels({ threads: 2, isa: 'simd' });
  const relaxedOne = new TrainKernels({ threads: 1, isa: 'relaxed' });
  const relaxed = new TrainKernels({ threads: 2, isa: 'relaxed' });
  t.teardown(() => { one.dispose(); two.dispose(); relaxedOne.dispose(); relaxed.dispose(); });
  t.equal(one.threads, 1);
  t.equal(two.threads, 2);
  t.equal(relaxed.isa, 'relaxed');
  const bitSame = (x: Float32Array[], y: Float32Array[]): boolean => x.every((v, i) => Buffer.from(v.buffer).equals(Buffer.from(y[i]!.buffer)));
  const same = (name: string, run: (k: TrainKernels) => Float32Array[]): void => {
    const a = run(one), b = run(two), r1 = run(relaxedOne), r = run(relaxed);
    t.ok(bitSame(a, b), `${name}: 1 and 2 threads bit-identical (SIMD)`);
    t.ok(bitSame(r1, r), `${name}: 1 and 2 threads bit-identical (relaxed SIMD)`);
    const e = Math.max(...a.map((x, i) => relErr(r[i]!, x)));
    t.ok(e < 1e-5, `${name}: relaxed SIMD rel err ${e.toExponential(2)}`);
  };
  // Sizes above the split threshold (2^18 multiply-adds), row and channel counts not multiples of 4.
  for (const [M, K, N] of [[67, 300, 45], [130, 77, 33], [9, 4000, 10]] as const) {
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        same(`matmul ${M}x${K}x${N} tA=${ta} tB=${tb}`, (k) => [k.matmul(data(50, M * K), data(51, K * N), M, K, N, ta, tb)]);
      }
    }
  }
  const convs = [
    { N: 2, H: 14, W: 14, cin: 16, cout: 12, groups: 4 },
    { N: 2, H: 14, W: 14, cin: 16, cout: 10, groups: 2 }, // 5 outputs per group: the split falls inside a group
    { N: 3, H: 9, W: 11, cin: 21, cout: 13, groups: 1 },
    { N: 1, H: 28, W: 28, cin: 6, cout: 18, groups: 2 },
    // Large enough (2^18 elements) to split packing by channels and unpacking by images: 42 and 86 channels (vector
    // tails), W 30 and 7 (row tails), 7 images (uneven halves).
    { N: 7, H: 30, W: 30, cin: 42, cout: 10, groups: 2 },
    { N: 64, H: 7, W: 7, cin: 86, cout: 8, groups: 2 },
  ];
  for (const c of convs) {
    const x = data(52, c.N * c.H * c.W * c.cin), dy = data(53, c.N * c.H * c.W * c.cout), w = data(54, 9 * (c.cin / c.groups) * c.cout, 0.3);
    same(`conv3x3 ${JSON.stringify(c)}`, (k) => [
      k.conv3x3(x, w, c.N, c.H, c.W, c.cin, c.cout, c.groups),
      k.conv3x3BackpropInput(dy, w, c.N, c.H, c.W, c.cin, c.cout, c.groups),
      k.conv3x3BackpropFilter(x, dy, c.N, c.H, c.W, c.cin, c.cout, c.groups),
    ]);
  }
  // Depthwise 3x3: above the split threshold (rows of the output; images for padding and the stride-2 scatter),
  // odd image counts, channel tails; the filter gradient's two partial sums are cut at the same row either way.
  const dws = [
    { N: 7, H: 28, W: 28, C: 58, OH: 28, OW: 28, stride: 1, padTop: 1, padLeft: 1 },
    { N: 9, H: 15, W: 14, C: 30, OH: 8, OW: 7, stride: 2, padTop: 1, padLeft: 0 },
    { N: 3, H: 5, W: 5, C: 2, OH: 3, OW: 3, stride: 2, padTop: 1, padLeft: 1 }, // small: one thread, scalar channels
  ];
  for (const g of dws) {
    const x = data(59, g.N * g.H * g.W * g.C), dy = data(60, g.N * g.OH * g.OW * g.C), w = data(61, 9 * g.C, 0.3);
    same(`depthwise ${JSON.stringify(g)}`, (k) => [k.depthwise(x, w, g), k.depthwiseBackpropInput(dy, w, g), k.depthwiseBackpropFilter(x, dy, g)]);
  }
  // Max pool: forward split by output rows, gradient by images (odd counts), channel tails.
  const pools = [
    { N: 7, H: 56, W: 56, C: 24, OH: 28, OW: 28, fh: 3, fw: 3, sh: 2, sw: 2, padTop: 1, padLeft: 1 },
    { N: 5, H: 33, W: 31, C: 30, OH: 17, OW: 16, fh: 3, fw: 3, sh: 2, sw: 2, padTop: 1, padLeft: 1 },
  ];
  for (const g of pools) {
    const x = data(62, g.N * g.H * g.W * g.C), dy = data(63, g.N * g.OH * g.OW * g.C);
    same(`maxPool ${JSON.stringify(g)}`, (k) => [k.maxPool(x, g), k.maxPoolGrad(x, dy, g)]);
  }
  // Batch norm: small (one thread), and above the split threshold with row counts that are not a multiple of the
  // 64-row block and channel counts with a scalar tail.
  for (const [act, P, C] of [['none', 1000, 19], ['relu', 1000, 19], ['hardswish', 1000, 19], ['relu', 9001, 45], ['hardswish', 4100, 70]] as const) {
    const x = data(55, P * C, 2), g = data(56, C, 0.5, 1), b = data(57, C, 0.5), dy = data(58, P * C);
    same(`batchNormAct ${act} ${P}x${C}`, (k) => {
      const f = k.batchNormAct(x, P, C, g, b, BN_EPS, act);
      const r = k.batchNormActGrad(x, dy, P, C, g, b, f.mean, f.rstd, act);
      return [f.y, f.mean, f.variance, f.rstd, r.dx, r.dgamma, r.dbeta];
    });
  }
});

t.test('helper thread: a stray or late wake-up never runs a job twice nor lets the next one finish unrun', async (t) => {
  // gemm with accumulate = 1 adds A·B to C each time it runs, so a job run twice (or skipped) changes C.
  const file = path.join(path.dirname(fileURLToPath(import.meta.url)), '../..', 'build', 'cdnv2-train.wasm');
  const module = new WebAssembly.Module(readFileSync(file));
  const memory = new WebAssembly.Memory({ initial: 16, maximum: 32768, shared: true });
  const main = new WebAssembly.Instance(module, { env: { memory, abort: () => { throw new Error('abort'); } } });
  const base = (main.exports.heap_base as () => number)();
  const M = 4, K = 3, N = 8;
  const pa = base, pb = pa + M * K * 4, pc = pb + K * N * 4;
  const A = Float32Array.from({ length: M * K }, (_, i) => (i % 5) - 2), B = Float32Array.from({ length: K * N }, (_, i) => (i % 7) - 3);
  new Float32Array(memory.buffer, pa, M * K).set(A);
  new Float32Array(memory.buffer, pb, K * N).set(B);
  const C = new Float32Array(memory.buffer, pc, M * N);
  const AB = new Float32Array(M * N);
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) for (let k = 0; k < K; k++) AB[i * N + j]! += A[i * K + k]! * B[k * N + j]!;
  const times = (n: number): number[] => Array.from(AB, (v) => n * v);
  const helper = new HelperThread(module, memory, ['gemm']);
  t.teardown(() => helper.terminate());
  const control = new Int32Array(helper.control);
  const gemmArgs = [pa, K, 1, pb, pc, K, N, 1, 0, 0, M];
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 100));

  helper.start('gemm', gemmArgs);
  helper.finish();
  t.same(Array.from(C), times(1), 'one job: C = A·B');
  Atomics.notify(control, 0); // as if the caller's notify of that job arrived after the worker had run it
  await settle();
  t.same(Array.from(C), times(1), 'a late notify does not run the finished job again');
  for (let n = 2; n <= 40; n++) {
    helper.start('gemm', gemmArgs);
    if (n % 2) Atomics.notify(control, 0);
    helper.finish();
    if (n % 3 === 0) Atomics.notify(control, 0);
  }
  await settle();
  t.same(Array.from(C), times(40), '39 more jobs with stray notifies in between: each ran exactly once');
});

t.test('whole models: logits, loss, every parameter gradient and the batch statistics on both backends', async (t) => {
  // tiny: stride-1 stem, 8x8 -> 4x4: every kernel on its fast path. tiny-a: stride-2 stem, 11x11 -> 6x6 -> 3x3 -> 1x1
  // (the stem's convolutions and the pool of the odd 3x3 map run on the CPU kernels). On the 1x1 map batch norm
  // sees only B rows, which amplifies rounding differences (about 1e-4 at B = 3, 2e-5 at B = 5).
  // tiny-shufflenet (SFR-ShuffleNetV2 units: split, depthwise stride 1 and 2, concat-shuffle, SFR) at 8x8 -> 4x4 ->
  // 2x2 and at 9x9 -> 5x5 -> 3x3 (odd maps for the stride-2 depthwise): every kernel on its fast path.
  const cases: [NetworkConfig, number, boolean][] = [[tinyConfig(), 2, true], [TINY_A, 5, false], [tinyShuffleConfig(), 3, true],
    [tinyShuffleConfig({ input: { channels: 1, height: 9, width: 9 } }), 2, true]];
  // At initialisation (beta 0) several of its quantities are zero in exact arithmetic, so their computed values are
  // rounding noise and a relative error means nothing: the BN means after a 1x1 convolution of a depthwise BN's output
  // and the gradients of the BN gammas before a ReLU and a depthwise convolution (a BN removes any scaling). Random
  // BN parameters make them non-zero. The depthwise BN's beta gradient stays zero whatever the values (the BN after
  // the next 1x1 convolution removes any per-channel shift): it is held to TOL of the largest gradient instead.
  const shuffleValues = (cfg: NetworkConfig): Map<string, Float32Array> => {
    const v = networkInitialValues(cfg, true, 3);
    for (const [name, a] of v) {
      if (name.endsWith('.beta')) v.set(name, data(name.length, a.length, 0.3));
      if (name.endsWith('.gamma')) v.set(name, data(name.length + 1, a.length, 0.3, 1));
    }
    return v;
  };
  const structurallyZero = (label: string): boolean => /^d .*\.dw\.bn\.beta$/.test(label);
  for (const [cfg, B, fast] of cases) {
    const values = isShuffleNetConfig(cfg) ? shuffleValues(cfg) : networkInitialValues(cfg, true, 3);
    const { height: H, width: W, channels: C } = cfg.input;
    const xs = data(60, B * H * W * C);
    const labels: string[] = [];
    const step = (): tf.Tensor[] => {
      const model = createTrainModel(cfg, true, values);
      try {
        const stats: BnBatchStat[] = [];
        const x = tf.tensor4d(xs, [B, H, W, C]);
        let logits!: tf.Tensor;
        const params = model.trainable();
        const { value, grads } = tf.variableGrads(() => {
          logits = tf.keep(model.forward(x, true, stats));
          return tf.mean(tf.square(tf.sub(logits, 0.5))) as tf.Scalar;
        }, params.map((p) => p.variable));
        labels.length = 0;
        labels.push('logits', 'loss', ...params.map((p) => `d ${p.name}`), ...stats.flatMap((s) => [`${s.name} mean`, `${s.name} variance`]));
        return [logits, value, ...params.map((p) => grads[p.variable.name]!), ...stats.flatMap((s) => [s.mean, s.variance])];
      } finally {
        model.dispose();
      }
    };
    const cpu = await runOn('cpu', step);
    const wasm = await runOn(WASM_BACKEND, step);
    t.same(wasm.shapes, cpu.shapes, `${cfg.name}: shapes`);
    const maxAbs = (a: Float32Array): number => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const gradScale = Math.max(...cpu.outputs.filter((_, i) => labels[i]!.startsWith('d ')).map(maxAbs));
    const errs = cpu.outputs.map((ref, i) => ({
      label: labels[i]!,
      err: structurallyZero(labels[i]!) ? maxAbs(wasm.outputs[i]!.map((v, j) => v - ref[j]!)) / gradScale : relErr(wasm.outputs[i]!, ref),
    })).sort((a, b) => b.err - a.err);
    worst = Math.max(worst, errs[0]!.err);
    t.ok(errs[0]!.err < TOL, `${cfg.name}: ${errs.length} tensors, largest rel err ${errs[0]!.err.toExponential(2)} (${errs[0]!.label})`);
    if (fast) t.equal(wasm.fallbacks, 0, `${cfg.name}: no CPU fallback`);
  }
});

t.test('train(): a few steps of the real loop give the same losses and weights on both backends', async (t) => {
  const cfg = tinyConfig();
  const shape = { height: 8, width: 8, channels: 1, classes: 4 };
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const tensors = tf.memory().numTensors;
    const out = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-wasm-train-'));
    try {
      const r: TrainRun = {
        arch: 'tiny', dataset: 'synthetic', epochs: 2, batch: 16, lr: 0.1, warmupEpochs: 0.5, warmupLr: 0.02, weightDecay: 5e-5,
        momentum: 0.9, labelSmoothing: 0.1, ema: 0.5, groupLasso: 1e-4, sfr: true, seed: 5, augment: true,
        out, resume: false, backend, config: cfg, chart: false, log: () => {},
        sources: { train: openSynthetic({ split: 'train', count: 32, ...shape }), test: openSynthetic({ split: 'test', count: 24, ...shape }) },
      };
      // Under the wasm backend: the loop must run the fused kernels and never fall back to a CPU kernel.
      const before = fallbacks;
      let res!: Awaited<ReturnType<typeof train>>;
      const prof = await tf.profile(async () => { res = await train(r); return []; });
      if (backend === WASM_BACKEND) {
        for (const k of ['Cdnv2BatchNormAct', 'Cdnv2BatchNormActGrad', 'Cdnv2GroupConv3x3', 'Cdnv2GroupConv3x3InputGrad', 'Cdnv2GroupConv3x3FilterGrad', 'BatchMatMul']) {
          t.ok(prof.kernelNames.includes(k), `train() on wasm ran ${k}`);
        }
        t.equal(fallbacks - before, 0, 'train() on wasm: no CPU fallback');
      }
      const ck = await loadCheckpoint(res.checkpoint);
      t.equal(tf.memory().numTensors, tensors, `${backend}: no tensor leak`);
      return { history: res.history, ck };
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  };
  const cpu = await run('cpu');
  const wasm = await run(WASM_BACKEND);
  t.equal(cpu.history.length, 2);
  t.equal(wasm.history.length, 2);
  for (let e = 0; e < 2; e++) {
    const a = wasm.history[e]!, b = cpu.history[e]!;
    for (const key of ['trainLoss', 'testLoss'] as const) {
      const err = Math.abs(a[key] - b[key]) / Math.abs(b[key]);
      t.ok(err < 1e-3, `epoch ${e + 1} ${key}: wasm ${a[key].toFixed(6)} cpu ${b[key].toFixed(6)} (rel ${err.toExponential(2)})`);
    }
    t.equal(a.testAccuracy, b.testAccuracy, `epoch ${e + 1}: same test accuracy`);
  }
  let werr = 0;
  for (const [name, v] of cpu.ck.model) werr = Math.max(werr, relErr(wasm.ck.model.get(name)!, v));
  t.ok(werr < 1e-3, `final weights and running statistics within 1e-3 (max rel err per tensor ${werr.toExponential(2)})`);
  for (const [name, m] of cpu.ck.masks) t.same(wasm.ck.masks.get(name), m, `mask ${name}`);
});

t.teardown(() => {
  // eslint-disable-next-line no-console
  console.log(`# largest relative error over all wasm-vs-CPU comparisons: ${worst.toExponential(2)}`);
});
