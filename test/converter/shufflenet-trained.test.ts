// Issue 25's trained-then-converted equivalence, as test/cli/equivalence.test.ts checks it for CondenseNetV2: a
// small SFR-ShuffleNetV2 (ImageNet stem: stride 2 + max pool, so every op kind appears) trained by the real train()
// on the cdnv2-wasm backend through the whole SFR mask schedule, converted as `cdnv2 convert` does (EMA weights,
// converter/shufflenet.ts), gives logits within 1e-4 (relative to the largest |logit|) of TF.js's eval forward
// (networkEvalLogits on the pure-JS CPU backend, independent of our kernels) and the same top-1 on every image, in
// every runtime build and in the WASI command under wasmtime (`classify --logits`).
import * as tf from '@tensorflow/tfjs';
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { isShuffleNetConfig } from '../../base/arch/shufflenet.js';
import { openSynthetic } from '../../base/data/synthetic.js';
import { assembleBatch } from '../../base/data/index.js';
import { writeModel } from '../../base/cnv2/format.js';
import { condenseShuffleNet } from '../../converter/shufflenet.js';
import { loadModel, wasmPath, type Isa } from '../../runtime/index.js';
import { selectBackend } from '../../trainer/backend.js';
import { loadCheckpoint, maskReport, masksAreFinal } from '../../trainer/checkpoint.js';
import { networkEvalLogits } from '../../trainer/evaluate.js';
import { tinyShuffleConfig } from '../../trainer/tiny.js';
import { train } from '../../trainer/train.js';
import { WASM_BACKEND } from '../../trainer/wasm/backend.js';
import { relError } from '../../testkit/models.js';
import { tinyRun } from '../helpers/tiny-run.js';
import { runWasmtimeBatch, wasmtimeOrSkip } from '../helpers/wasmtime.js';

const H = 16, W = 16, K = 4, N = 32, PER = H * W;
// 16x16 gray: stem stride 2 -> 8, max pool -> 4, stages at 2 and 1.
const cfg = tinyShuffleConfig({ input: { channels: 1, height: H, width: W }, stemStride: 2, maxPool: true });
const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-shufflenet-trained-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const runDir = path.join(tmp, 'run');

function argmax(v: ArrayLike<number>, off: number): number {
  let b = 0;
  for (let c = 1; c < K; c++) if (v[off + c]! > v[off + b]!) b = c;
  return b;
}

t.test('trained on cdnv2-wasm, converted: every build and wasmtime = TF.js eval forward', async (t) => {
  const shape = { height: H, width: W, channels: 1, classes: K };
  t.equal(await selectBackend('wasm').then(() => tf.getBackend()), WASM_BACKEND, 'training runs on the cdnv2-wasm backend');
  // 4 epochs: the SFR masks are final after the first half of the schedule.
  const r = await train(tinyRun(runDir, {
    arch: cfg.name, config: cfg, batch: 32, lr: 0.2, ema: 0.9, backend: WASM_BACKEND,
    sources: { train: openSynthetic({ split: 'train', count: 128, ...shape }), test: openSynthetic({ split: 'test', count: 32, ...shape }) },
  }));
  t.equal(r.history.length, 4, 'four epochs trained');
  const ckpt = await loadCheckpoint(runDir);
  t.ok(masksAreFinal(ckpt), 'the SFR masks are final');
  for (const rep of maskReport(ckpt)) t.ok(rep.keptPerGroup.every((k) => k === 1), `${rep.name}: one output per input`);
  t.ok(ckpt.ema, 'the checkpoint has EMA weights');

  // As `cdnv2 convert` (cli/converter-cli.ts): the EMA weights over the raw ones, the checkpoint's masks.
  const saved = ckpt.state.config;
  if (!isShuffleNetConfig(saved)) throw new Error(`the checkpoint holds ${saved.name}, not a ShuffleNet configuration`);
  const tensors = new Map([...ckpt.model, ...ckpt.ema!]);
  const bytes = writeModel(condenseShuffleNet({ config: saved, tensors, masks: ckpt.masks }, { weights: 'f32' }));

  const src = openSynthetic({ split: 'test', count: N, ...shape });
  const imgs = new Float32Array(N * PER);
  assembleBatch(src, cfg, Array.from({ length: N }, (_, i) => i), imgs, new Int32Array(N));
  // The reference: TF.js's own kernels (CPU backend), not the wasm training kernels the weights were trained with.
  await selectBackend('cpu');
  const want = networkEvalLogits(cfg, true, tensors, ckpt.masks as Map<string, Uint8Array>, imgs, N);
  const scale = Math.max(...Array.from(want, Math.abs));
  t.ok(scale > 0.1, `logits are not trivially small (max |logit| ${scale.toFixed(3)})`);
  const tops = new Set(Array.from({ length: N }, (_, i) => argmax(want, i * K)));
  t.ok(tops.size > 1, `the trained model does not predict one class for everything (${tops.size} classes)`);

  const check = (got: Float32Array, what: string): void => {
    const err = relError(got, want);
    t.ok(err < 1e-4, `${what}: logits within 1e-4 relative (${err.toExponential(2)})`);
    let agree = 0;
    for (let i = 0; i < N; i++) if (argmax(got, i * K) === argmax(want, i * K)) agree++;
    t.equal(agree, N, `${what}: top-1 agrees on every image`);
  };
  const ISAS: Isa[] = ['scalar', 'simd', 'relaxed'];
  for (const isa of ISAS) {
    const m = await loadModel(bytes, { isa });
    const got = new Float32Array(N * K);
    for (let i = 0; i < N; i++) got.set(m.run(imgs.subarray(i * PER, (i + 1) * PER)), i * K); // 1 channel: NHWC = CHW
    m.dispose();
    check(got, isa);
  }

  const w = wasmtimeOrSkip(t);
  if (!w) return;
  const data = path.join(tmp, 'data');
  mkdirSync(data);
  writeFileSync(path.join(data, 'm.cnv2'), bytes);
  for (let i = 0; i < N; i++) writeFileSync(path.join(data, `x${i}.f32`), imgs.slice(i * PER, (i + 1) * PER));
  const args = ['classify', '/data/m.cnv2', ...Array.from({ length: N }, (_, i) => `/data/x${i}.f32`), '--logits'];
  for (const isa of ISAS) {
    const [res] = await runWasmtimeBatch(w, wasmPath('command', isa), [args], { dirs: [`${data}::/data`], relaxedSimd: isa === 'relaxed' });
    t.equal(res!.code, 0, `wasmtime ${isa}: exit 0 ${res!.stderr}`);
    const rows = res!.stdout.trim().split('\n').filter((l) => !l.startsWith('#')).map((l) => l.split(' ').map(Number));
    t.equal(rows.length, N, `wasmtime ${isa}: a line of logits per image`);
    check(Float32Array.from(rows.flat()), `wasmtime ${isa}`);
  }
});
