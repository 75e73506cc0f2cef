// The trainer's model uses hand-written gradients (batch norm, 3x3 and group convolutions, channel concatenation)
// and, on the wasm backend, fused kernels whose gradients are checked against the CPU backend. Both backends share
// those hand-written gradients, so a mistake in one would agree with itself. Here the whole model's loss gradient is
// checked against TensorFlow.js's own autodiff of the same network written with plain ops only (conv2d over split
// groups, concat, moments), with masks that have dropped connections.
import * as tf from '@tensorflow/tfjs';
import t from 'tap';

import type { ArchConfig } from '../../base/arch/configs.js';
import { selectBackend } from '../../trainer/backend.js';
import { activate, BN_EPS, CdnModel, headSeHidden, initialValues } from '../../trainer/model.js';
import { Rng } from '../../base/rng.js';
import { registerWasmTrainBackend, WASM_BACKEND } from '../../trainer/wasm/backend.js';
import { TINY_A, TINY_B } from '../../testkit/tiny-configs.js';

/** The training-mode forward pass of CdnModel, rebuilt from plain TF.js ops (their built-in gradients). */
function plainForward(model: CdnModel, x: tf.Tensor4D): tf.Tensor2D {
  const cfg: ArchConfig = model.cfg;
  const get = (n: string): tf.Tensor => model.get(n);
  const mask = (name: string): tf.Tensor => {
    const m = model.maskList.find((q) => q.name === name)!;
    return tf.tensor(Float32Array.from(model.masks.get(name)!), [m.inCh, m.outCh]);
  };
  const bnAct = (h: tf.Tensor, name: string, act: 'relu' | 'hardswish'): tf.Tensor => {
    const { mean, variance } = tf.moments(h, [0, 1, 2]);
    const y = tf.add(tf.mul(tf.div(tf.sub(h, mean), tf.sqrt(tf.add(variance, BN_EPS))), get(`${name}.gamma`)), get(`${name}.beta`));
    return activate(y, act);
  };
  const conv3 = (h: tf.Tensor4D, w: tf.Tensor, stride: number): tf.Tensor4D =>
    tf.conv2d(h, w as tf.Tensor4D, stride, [[0, 0], [1, 1], [1, 1], [0, 0]]);
  const conv1 = (h: tf.Tensor4D, w: tf.Tensor, m: tf.Tensor, cin: number, cout: number): tf.Tensor4D =>
    tf.conv2d(h, tf.reshape(tf.mul(w, m), [1, 1, cin, cout]) as tf.Tensor4D, 1, 'valid');
  const se = (v: tf.Tensor2D, prefix: string): tf.Tensor2D =>
    tf.sigmoid(tf.matMul(tf.relu(tf.matMul(v, get(`${prefix}.w1`) as tf.Tensor2D)), get(`${prefix}.w2`) as tf.Tensor2D));

  let feat = conv3(x, get('stem.weight'), cfg.stemStride);
  for (let b = 0; b < model.specs.length; b++) {
    if (b > 0) feat = tf.avgPool(feat, 2, 2, 'valid');
    for (const s of model.specs[b]!) {
      const n = feat.shape[0];
      let h = conv1(bnAct(feat, `${s.prefix}.lgc.bn`, s.activation) as tf.Tensor4D, get(`${s.prefix}.lgc.weight`), mask(`${s.prefix}.lgc.mask`), s.inChannels, s.mid);
      h = bnAct(h, `${s.prefix}.conv.bn`, s.activation) as tf.Tensor4D;
      const ws = tf.split(get(`${s.prefix}.conv.weight`), cfg.group3x3, 3);
      let nf = tf.concat(tf.split(h, cfg.group3x3, 3).map((hg, g) => conv3(hg as tf.Tensor4D, ws[g]!, 1)), 3) as tf.Tensor4D;
      if (s.seHidden > 0) nf = tf.mul(nf, tf.reshape(se(tf.mean(nf, [1, 2]) as tf.Tensor2D, `${s.prefix}.se`), [n, 1, 1, s.growth]));
      const base = s.sfr
        ? tf.add(feat, conv1(bnAct(nf, `${s.prefix}.sfr.bn`, s.activation) as tf.Tensor4D, get(`${s.prefix}.sfr.weight`), mask(`${s.prefix}.sfr.mask`), s.growth, s.inChannels))
        : feat;
      feat = tf.concat([base, nf], 3) as tf.Tensor4D;
    }
  }
  let v = tf.mean(bnAct(feat, 'head.bn', 'relu'), [1, 2]) as tf.Tensor2D;
  if (headSeHidden(cfg) > 0) v = tf.mul(v, se(v, 'head.se'));
  if (cfg.fcChannels > 0) v = activate(tf.add(tf.matMul(v, get('head.fc.weight') as tf.Tensor2D), get('head.fc.bias')), 'hardswish');
  return tf.add(tf.matMul(v, get('head.classifier.weight') as tf.Tensor2D), get('head.classifier.bias')) as tf.Tensor2D;
}

/** Root-mean-square error relative to the reference's RMS (0 for identical tensors). */
function relRms(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) { num += (a[i]! - ref[i]!) ** 2; den += ref[i]! ** 2; }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

await selectBackend('cpu');
registerWasmTrainBackend({ threads: 1 });

// tiny-a: stride-2 stem, hardswish, SE in blocks and head, hidden FC, a 1x1 last map; tiny-b: G > C = S, ReLU only.
for (const backend of ['cpu', WASM_BACKEND]) {
  for (const [cfg, B, progress] of [[TINY_A, 4, 0.4], [TINY_B, 3, 0.5]] as const) {
    t.test(`${cfg.name} on ${backend}: every parameter gradient equals autodiff of the plain-ops network`, async (t) => {
      await tf.setBackend(backend);
      const model = new CdnModel(cfg, true, initialValues(cfg, true, 5));
      t.teardown(() => model.dispose());
      const events = model.updateMasks(progress); // tiny-a: stage 2 of 3; tiny-b (C = S = 2): its one drop
      t.ok(events.length > 0 && [...model.masks.values()].some((m) => m.includes(0)), 'masks are partly dropped');
      const rng = new Rng(11);
      const { height: H, width: W, channels: C } = cfg.input;
      const x = tf.tensor4d(Float32Array.from({ length: B * H * W * C }, () => rng.normal()), [B, H, W, C]);
      const onehot = tf.oneHot(tf.tensor1d(Int32Array.from({ length: B }, (_, i) => i % cfg.classes), 'int32'), cfg.classes);
      const lossOf = (f: () => tf.Tensor2D) => (): tf.Scalar => tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(f())), 1))) as tf.Scalar;
      const params = model.trainable();
      const vars = params.map((p) => p.variable);
      const ours = tf.variableGrads(lossOf(() => model.forward(x, true, [])), vars);
      const plain = tf.variableGrads(lossOf(() => plainForward(model, x)), vars);
      t.ok(Math.abs(ours.value.dataSync()[0]! - plain.value.dataSync()[0]!) < 1e-5, 'same loss');
      let worst = 0, worstName = '';
      for (const p of params) {
        const ref = plain.grads[p.variable.name]!.dataSync();
        t.ok(ref.some((v) => v !== 0), `${p.name}: the reference gradient is not all zero`);
        const e = relRms(ours.grads[p.variable.name]!.dataSync(), ref);
        if (e > worst) { worst = e; worstName = p.name; }
      }
      // f32 in different summation orders: ~1e-6; a wrong or missing gradient term is O(1e-1) or more.
      t.ok(worst < 1e-4, `${vars.length} gradients, largest relative RMS error ${worst.toExponential(2)} (${worstName})`);
      tf.dispose([x, onehot, ours.value, plain.value, ...Object.values(ours.grads), ...Object.values(plain.grads)]);
    });
  }
}
