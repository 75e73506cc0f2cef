// Issue 4's exact-equivalence claim end to end: a checkpoint trained by the trainer, converted by the converter,
// gives the same eval-mode logits in the wasm runtime (every build) as in TensorFlow.js, and the same top-1.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import ort from 'onnxruntime-node';
import os from 'node:os';
import path from 'node:path';

import { selectBackend } from '../../trainer/backend.js';
import { checkpointToNetworkParams, loadCheckpoint } from '../../trainer/checkpoint.js';
import { openSynthetic } from '../../base/data/synthetic.js';
import { evalLogits } from '../../trainer/evaluate.js';
import { train } from '../../trainer/train.js';
import { tinyConfig } from '../../trainer/tiny.js';
import { condense } from '../../converter/condense.js';
import { writeModel } from '../../base/cnv2/format.js';
import { loadModel, type Isa } from '../../runtime/index.js';
import { cdnv2 } from '../helpers/cli.js';
import { relError } from '../../testkit/models.js';

const cfg = tinyConfig();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-equiv-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const runDir = path.join(tmp, 'run');
const N = 64;

function argmax(v: ArrayLike<number>, off: number, k: number): number {
  let b = 0;
  for (let c = 1; c < k; c++) if (v[off + c]! > v[off + b]!) b = c;
  return b;
}

t.before(async () => {
  await selectBackend('cpu');
  const shape = { height: 8, width: 8, channels: 1, classes: 4 };
  // Short, but through the whole mask schedule: the masks are final after half of the 4 epochs.
  await train({
    arch: 'tiny', dataset: 'synthetic', epochs: 4, batch: 32, lr: 0.2, warmupEpochs: 0.5, warmupLr: 0.02, weightDecay: 5e-5,
    momentum: 0.9, labelSmoothing: 0.1, ema: 0.9, groupLasso: 0, sfr: true, seed: 3, augment: true,
    out: runDir, resume: false, backend: 'cpu', config: cfg, chart: false, log: () => {},
    sources: { train: openSynthetic({ split: 'train', count: 256, ...shape }), test: openSynthetic({ split: 'test', count: 128, ...shape }) },
  });
});

t.test('wasm runtime (every build) = TensorFlow.js eval mode on the same inputs', async (t) => {
  const ckpt = await loadCheckpoint(runDir);
  const src = openSynthetic({ split: 'test', count: N, height: 8, width: 8, channels: 1, classes: 4 });
  const px = new Uint8Array(64);
  const nhwc = new Float32Array(N * 64);
  for (let i = 0; i < N; i++) {
    src.read(i, px);
    for (let p = 0; p < 64; p++) nhwc[i * 64 + p] = (px[p]! / 255 - cfg.mean[0]!) / cfg.std[0]!;
  }
  const tfLogits = evalLogits(ckpt, nhwc, N); // EMA weights, as the converter uses by default
  const bytes = writeModel(condense(checkpointToNetworkParams(ckpt), { weights: 'f32' }));
  for (const isa of ['simd', 'scalar', 'relaxed'] as Isa[]) {
    const m = await loadModel(bytes, { isa });
    const ours = new Float32Array(N * 4);
    for (let i = 0; i < N; i++) ours.set(m.run(nhwc.subarray(i * 64, (i + 1) * 64)), i * 4); // 1 channel: NHWC = CHW
    const err = relError(ours, tfLogits);
    t.ok(err < 1e-4, `${isa}: logits within 1e-4 relative (${err.toExponential(2)})`);
    let agree = 0;
    for (let i = 0; i < N; i++) if (argmax(ours, i * 4, 4) === argmax(tfLogits, i * 4, 4)) agree++;
    t.equal(agree, N, `${isa}: top-1 agrees on every image`);
    m.dispose();
  }
});

t.test('`cdnv2 convert` then `cdnv2 eval` of both forms print the same accuracy and logits', async (t) => {
  const model = path.join(tmp, 'tiny.cnv2');
  const onnx = path.join(tmp, 'tiny.onnx');
  const conv = cdnv2('convert', runDir, '-o', model, '--onnx', onnx);
  t.equal(conv.code, 0, conv.stderr);
  const a = path.join(tmp, 'tf.json'), b = path.join(tmp, 'wasm.json');
  const tfRun = cdnv2('eval', runDir, '--dataset', 'synthetic', '--limit', String(N), '--json', '--logits', a, '--backend', 'cpu');
  const wasmRun = cdnv2('eval', model, '--dataset', 'synthetic', '--limit', String(N), '--json', '--logits', b);
  t.equal(tfRun.code, 0, tfRun.stderr);
  t.equal(wasmRun.code, 0, wasmRun.stderr);
  const ta = JSON.parse(tfRun.stdout), wa = JSON.parse(wasmRun.stdout);
  t.equal(wa.count, N);
  t.equal(wa.accuracy, ta.accuracy, 'same accuracy');
  const la = (JSON.parse(readFileSync(a, 'utf8')).logits as number[][]).flat();
  const lb = (JSON.parse(readFileSync(b, 'utf8')).logits as number[][]).flat();
  t.equal(lb.length, N * 4);
  t.ok(relError(lb, la) < 1e-4, `logits files agree (${relError(lb, la).toExponential(2)})`);
});

t.test('`convert --onnx` writes the same network as standard ONNX (onnxruntime agrees with the runtime)', async (t) => {
  const model = path.join(tmp, 'tiny.cnv2');
  const ours = await loadModel(readFileSync(model));
  const session = await ort.InferenceSession.create(readFileSync(path.join(tmp, 'tiny.onnx')), { intraOpNumThreads: 1 });
  const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i * 0.7) * 2);
  const out = await session.run({ input: new ort.Tensor('float32', x, [1, 1, 8, 8]) });
  const err = relError(out.logits!.data as Float32Array, ours.run(x));
  t.ok(err < 1e-4, `onnxruntime logits within 1e-4 relative (${err.toExponential(2)})`);
});
