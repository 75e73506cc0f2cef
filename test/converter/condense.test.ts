// Condensation equivalence: the condensed graph (run by a plain interpreter of docs/format.md) computes exactly
// what the training-form network (dense masked convs, BN, SE, SFR add, concat) computes in eval mode.
import t from 'tap';

import { condense, CondenseError } from '../../converter/condense.js';
import { readModel, writeModel, type Conv2dOp } from '../../base/cnv2/format.js';
import { randomNetworkParams, Rng } from '../../converter/random.js';
import { CONFIGS, blockChannels } from '../../base/arch/configs.js';
import { TINY_A, TINY_B, TINY_C } from '../../testkit/tiny-configs.js';
import { interpret, interpretLogits } from '../reference/interpreter.js';
import { referenceForward } from '../reference/network.js';

function randomInput(n: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  return Float64Array.from({ length: n }, () => rng.normal());
}

/** max |a - b| / max(1, max |b|) */
function relError(a: Float64Array, b: Float64Array): number {
  let err = 0, scale = 1;
  for (let i = 0; i < b.length; i++) { err = Math.max(err, Math.abs(a[i]! - b[i]!)); scale = Math.max(scale, Math.abs(b[i]!)); }
  return err / scale;
}

t.test('condensed graph equals the training-form network (f32)', async (t) => {
  for (const cfg of [TINY_A, TINY_B, TINY_C]) {
    for (const sfr of [true, false]) {
      for (const seed of [1, 2]) {
        const params = randomNetworkParams(cfg, seed, { sfr });
        const model = readModel(writeModel(condense(params, { weights: 'f32' }))); // through the file format
        const x = randomInput(cfg.input.channels * cfg.input.height * cfg.input.width, 100 + seed);
        const want = referenceForward(params, x);
        const got = interpretLogits(model, x);
        t.equal(got.length, cfg.classes, 'logit count');
        t.ok(got.every(Number.isFinite), `${cfg.name} sfr=${sfr} seed=${seed}: no channel read before it was written`);
        const err = relError(got, want);
        t.ok(err < 1e-5, `${cfg.name} sfr=${sfr} seed=${seed}: relative error ${err.toExponential(2)} < 1e-5`);
        // The comparison is sensitive: a different input gives clearly different logits.
        const other = referenceForward(params, randomInput(x.length, 999));
        t.ok(relError(other, want) > 1e-3, 'logits depend on the input');
      }
    }
  }
});

t.test('f16 weights stay close to f32', async (t) => {
  const params = randomNetworkParams(TINY_A, 3);
  const x = randomInput(3 * 11 * 11, 5);
  const want = referenceForward(params, x);
  const got = interpretLogits(readModel(writeModel(condense(params, { weights: 'f16' }))), x);
  const err = relError(got, want);
  t.ok(err < 1e-2 && err > 0, `f16 relative error ${err.toExponential(2)} (half precision, non-zero)`);
});

t.test('cdnv2-fmnist: full-size equivalence and O(1) activations', async (t) => {
  const cfg = CONFIGS['cdnv2-fmnist']!;
  const params = randomNetworkParams(cfg, 21);
  const model = condense(params, { weights: 'f32' });
  const x = randomInput(28 * 28, 8);
  const bufs = interpret(model, x);
  const err = relError(bufs[model.outputBuffer]!, referenceForward(params, x));
  t.ok(err < 1e-5, `relative error ${err.toExponential(2)}`);
  for (let b = 1; b <= blockChannels(cfg).length; b++) {
    let ss = 0;
    for (const v of bufs[b]!) ss += v * v;
    const rms = Math.sqrt(ss / bufs[b]!.length);
    t.ok(rms > 0.05 && rms < 10, `block ${b - 1} activations RMS ${rms.toFixed(2)} is O(1)`);
  }
});

t.test('graph structure follows the mapping', async (t) => {
  const cfg = TINY_A;
  const m = condense(randomNetworkParams(cfg, 4), { weights: 'f32' });
  const blocks = blockChannels(cfg);
  t.same(m.buffers[0], { channels: 3, height: 11, width: 11 }, 'input buffer');
  t.same(m.buffers.slice(1, 4).map((b) => [b.channels, b.height]), blocks.map((b) => [b.out, b.size]), 'one buffer per block');
  t.same(m.buffers[m.outputBuffer], { channels: 5, height: 1, width: 1 }, 'output buffer');
  const kinds = m.ops.map((o) => o.kind);
  t.equal(kinds.filter((k) => k === 'avgpool').length, 2, 'one transition between blocks');
  t.equal(kinds.filter((k) => k === 'se').length, 3 + 1, 'SE in blocks >= 1 (3 layers) and in the head');
  t.same(kinds.slice(-3), ['se', 'fc', 'fc'], 'head ends SE, FC, classifier');
  const lgc = m.ops[1] as Conv2dOp;
  t.same([lgc.kernel, lgc.groups, lgc.cin, lgc.cout, lgc.inAct, lgc.outAct], [1, 4, 8, 16, 1, 1], 'first LGC');
  const idx = Array.from(m.tensors[lgc.outIndex!]!.data);
  t.same(idx.slice(0, 5), [0, 4, 8, 12, 1], 'outIndex undoes the group shuffle (j*G + g)');
  const sfr = m.ops[3] as Conv2dOp;
  t.same([sfr.accumulate, sfr.inChannel, sfr.cin, sfr.cout, sfr.outAct], [1, 8, 4, 8, 0], 'first SFR');
});

t.test('masks that are not final are refused', async (t) => {
  const p = randomNetworkParams(TINY_A, 5);
  const layer = p.blocks[0]![1]!;
  const inC = layer.inChannels;
  // An extra kept input in one LGC output: group rows disagree.
  const m1 = layer.lgc.mask.indexOf(0);
  layer.lgc.mask[m1] = 1;
  t.throws(() => condense(p, { weights: 'f32' }), /masks not final: block 0 layer 1 LGC/, 'LGC rows of one group differ');
  layer.lgc.mask[m1] = 0;
  // A whole group keeping too many inputs (sparsification not finished).
  for (let o = 0; o < layer.lgc.mask.length / inC; o += TINY_A.group1x1) layer.lgc.mask[o * inC + layer.lgc.mask.subarray(0, inC).indexOf(0)] = 1;
  t.throws(() => condense(p, { weights: 'f32' }), CondenseError, 'LGC group keeps too many inputs');
  const p2 = randomNetworkParams(TINY_A, 6);
  p2.blocks[1]![0]!.sfr!.mask.fill(1);
  t.throws(() => condense(p2, { weights: 'f32' }), /masks not final: block 1 layer 0 SFR input group 0 keeps 16 outputs/, 'dense SFR mask');
  const p3 = randomNetworkParams(TINY_A, 7);
  p3.blocks[0]![0]!.lgc.weight = new Float32Array(3);
  t.throws(() => condense(p3, { weights: 'f32' }), /LGC weight: 3 values/, 'wrong weight size');
});

t.test('random parameters are deterministic and have final masks', async (t) => {
  const a = randomNetworkParams(TINY_B, 9);
  const b = randomNetworkParams(TINY_B, 9);
  const c = randomNetworkParams(TINY_B, 10);
  t.same(Buffer.from(writeModel(condense(a, { weights: 'f32' }))), Buffer.from(writeModel(condense(b, { weights: 'f32' }))), 'same seed, same file');
  t.notSame(a.blocks[0]![0]!.lgc.mask, c.blocks[0]![0]!.lgc.mask, 'another seed picks other channels');
  const l = a.blocks[1]![1]!;
  let kept = 0;
  for (const v of l.lgc.mask) kept += v;
  t.equal(kept, (TINY_B.bottleneck * l.growth) * (l.inChannels / TINY_B.condenseFactor), 'LGC keeps in/C inputs per output');
  for (const bn of [l.lgc.bn, l.conv.bn]) {
    t.ok(bn.gamma.every((v) => v >= 0.5 && v < 1.5) && bn.variance.every((v) => v >= 0.5 && v < 1.5), 'BN gamma/var in [0.5, 1.5)');
    t.equal(bn.eps, 1e-5, 'eps');
  }
});
