// The wasm engine (parser, planner, executor, kernels) against the plain reference interpreter, in all builds.
import t from 'tap';
import { getConfig, type ArchConfig } from '../../base/arch/configs.js';
import { randomNetworkParams } from '../../converter/random.js';
import { condense } from '../../converter/condense.js';
import { readModel, writeModel } from '../../base/cnv2/format.js';
import { ACT } from '../../base/cnv2/model.js';
import { interpret } from '../reference/interpreter.js';
import { Cdnv2Error, isaSupported, loadModel, type Isa } from '../../runtime/index.js';
import { TINY_A, TINY_B } from '../../testkit/tiny-configs.js';
import { convModel, relError, rng } from '../../testkit/models.js';
import { malformedRice } from '../helpers/rice-cases.js';

const ISAS: Isa[] = ['simd', 'scalar', 'relaxed'];
const TOL = 1e-5;

function randomInput(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * 4 - 2);
}

t.before(async () => {
  for (const isa of ISAS) {
    if (!(await isaSupported(isa))) throw new Error(`this Node cannot compile the ${isa} build`);
  }
});

t.test('single conv ops on awkward shapes match the reference in every build', async (t) => {
  const cases = [
    { cin: 5, cout: 6, h: 7, w: 7, kernel: 3, stride: 1, pad: 1, groups: 1 },
    { cin: 3, cout: 16, h: 13, w: 9, kernel: 3, stride: 2, pad: 1, groups: 1 },
    { cin: 12, cout: 8, h: 5, w: 11, kernel: 1, stride: 1, pad: 0, groups: 4 },
    { cin: 16, cout: 8, h: 1, w: 1, kernel: 1, stride: 1, pad: 0, groups: 8 },
    { cin: 8, cout: 4, h: 14, w: 14, kernel: 3, stride: 1, pad: 1, groups: 2 },
    { cin: 17, cout: 17, h: 6, w: 3, kernel: 1, stride: 1, pad: 0, groups: 1 },
    { cin: 6, cout: 4, h: 9, w: 9, kernel: 5, stride: 1, pad: 2, groups: 2 },
    { cin: 4, cout: 8, h: 8, w: 8, kernel: 7, stride: 1, pad: 3, groups: 4 },
    { cin: 4, cout: 4, h: 10, w: 7, kernel: 3, stride: 2, pad: 0, groups: 1 },
  ];
  let seed = 1;
  for (const shape of cases) {
    for (const variant of [
      { inAct: ACT.none, outAct: ACT.none, bias: false, gather: false, affine: false, scatter: false, accumulate: false },
      { inAct: ACT.relu, outAct: ACT.hardswish, bias: true, gather: true, affine: true, scatter: true, accumulate: false },
      { inAct: ACT.hardswish, outAct: ACT.relu, bias: true, gather: true, affine: true, scatter: true, accumulate: shape.kernel === 1 || shape.pad === 0 },
    ]) {
      const o = { ...shape, ...variant, seed: seed++ };
      if (o.accumulate && (Math.floor((o.h - 1) / o.stride) + 1 !== Math.floor((o.h + 2 * o.pad - o.kernel) / o.stride) + 1
        || Math.floor((o.w - 1) / o.stride) + 1 !== Math.floor((o.w + 2 * o.pad - o.kernel) / o.stride) + 1)) o.accumulate = false;
      const bytes = convModel(o);
      const model = readModel(bytes);
      const input = randomInput(model.buffers[0]!.channels * o.h * o.w, o.seed);
      const ref = interpret(model, Float64Array.from(input));
      for (const isa of ISAS) {
        const m = await loadModel(bytes, { isa });
        const logits = m.run(input);
        const conv = m.bufferValues(1);
        const label = `${isa} ${JSON.stringify(o)}`;
        t.ok(relError(conv, ref[1]!) < TOL, `conv output: ${label}`);
        t.ok(relError(logits, ref[2]!) < TOL, `pooled output: ${label}`);
        m.dispose();
      }
    }
  }
});

const networks: [string, ArchConfig][] = [
  ['tiny-a (stride-2 stem, SE, hardswish, hidden FC)', TINY_A],
  ['tiny-b (G > C)', TINY_B],
  ['cdnv2-fmnist', getConfig('cdnv2-fmnist')],
  ['cdnv2-cifar-110', getConfig('cdnv2-cifar-110')],
];

t.test('whole random networks match the reference interpreter in every build', async (t) => {
  for (const [name, cfg] of networks) {
    for (const sfr of [true, false]) {
      const model = condense(randomNetworkParams(cfg, 7, { sfr }), { weights: 'f32' });
      const bytes = writeModel(model);
      const input = randomInput(cfg.input.channels * cfg.input.height * cfg.input.width, 3);
      const ref = interpret(model, Float64Array.from(input))[model.outputBuffer]!;
      for (const isa of ISAS) {
        const m = await loadModel(bytes, { isa });
        const err = relError(m.run(input), ref);
        t.ok(err < TOL, `${name}${sfr ? '' : ' --no-sfr'} ${isa}: relative error ${err.toExponential(2)}`);
        m.dispose();
      }
    }
  }
});

t.test('f16 weights load (expanded) and match the interpreter of the same file', async (t) => {
  const model = condense(randomNetworkParams(TINY_A, 5), { weights: 'f16' });
  const bytes = writeModel(model);
  const input = randomInput(3 * 11 * 11, 9);
  const ref = interpret(readModel(bytes), Float64Array.from(input))[model.outputBuffer]!;
  const m = await loadModel(bytes);
  t.ok(relError(m.run(input), ref) < TOL);
});

t.test('several models at once keep their own state', async (t) => {
  const a = writeModel(condense(randomNetworkParams(TINY_A, 1), { weights: 'f32' }));
  const b = writeModel(condense(randomNetworkParams(TINY_A, 2), { weights: 'f32' }));
  const ma = await loadModel(a);
  const mb = await loadModel(b);
  const x = randomInput(ma.inputLength, 4);
  const ya = ma.run(x);
  const yb = mb.run(x);
  t.notSame(Array.from(ya), Array.from(yb), 'different weights give different logits');
  t.same(Array.from(ma.run(x)), Array.from(ya), 'running b did not disturb a');
  mb.dispose();
  t.same(Array.from(ma.run(x)), Array.from(ya), 'disposing b did not disturb a');
  t.throws(() => mb.run(x), { code: 'handle' });
});

t.test('arena is planned once, reports its size and honours the caller limit', async (t) => {
  const bytes = writeModel(condense(randomNetworkParams(getConfig('cdnv2-fmnist'), 1), { weights: 'f32' }));
  const m = await loadModel(bytes);
  t.ok(m.arenaBytes > 0);
  // The largest live set bounds the arena from below: the first block buffer must fit.
  t.ok(m.arenaBytes >= 48 * 28 * 28 * 4, `arena ${m.arenaBytes} holds the first block`);
  await t.rejects(loadModel(bytes, { arenaLimitBytes: m.arenaBytes - 1024 }), { code: 'arena' });
  const ok = await loadModel(bytes, { arenaLimitBytes: m.arenaBytes });
  t.equal(ok.arenaBytes, m.arenaBytes);
});

t.test('the loader rejects malformed files with specific errors', async (t) => {
  const good = writeModel(condense(randomNetworkParams(TINY_B, 1), { weights: 'f32' }));
  const expect = async (bytes: Uint8Array, code: string, what: string) => {
    try {
      await loadModel(bytes);
      t.fail(`${what}: loaded`);
    } catch (err) {
      t.ok(err instanceof Cdnv2Error, `${what}: Cdnv2Error`);
      t.equal((err as Cdnv2Error).code, code, `${what}: ${(err as Error).message}`);
    }
  };
  await expect(new Uint8Array(0), 'truncated', 'empty');
  await expect(Uint8Array.from(good).fill(0, 0, 4), 'bad-magic', 'magic');
  const v = Uint8Array.from(good); v[4] = 2;
  await expect(v, 'version', 'version');
  await expect(good.subarray(0, good.length - 16), 'truncated', 'truncated');
  const flip = Uint8Array.from(good); flip[good.length - 20]! ^= 0x40;
  await expect(flip, 'checksum', 'byte flip in DATA');
});

t.test('rice index tensors: the same logits as plain u16/u32 lists, bit for bit; malformed ones rejected', async (t) => {
  for (const [name, cfg] of [['tiny-b', TINY_B], ['cdnv2-fmnist', getConfig('cdnv2-fmnist')]] as const) {
    const model = condense(randomNetworkParams(cfg, 21), { weights: 'f16' });
    const rice = writeModel(model);
    t.ok(model.tensors.filter((x) => x.dtype === 'rice').length > 3, `${name}: index lists are rice-coded`);
    // The same model with every index list stored plainly (the version 1.0 layout).
    const plain = readModel(rice);
    plain.tensors.forEach((x, i) => {
      if (x.dtype !== 'rice') return;
      plain.tensors[i] = i % 2 ? { dtype: 'u16', shape: x.shape, data: Uint16Array.from(x.data) } : { dtype: 'u32', shape: x.shape, data: Uint32Array.from(x.data) };
    });
    const plainBytes = writeModel(plain);
    t.ok(plainBytes.length > rice.length, `${name}: plain lists take more bytes (${plainBytes.length} vs ${rice.length})`);
    const input = randomInput(cfg.input.channels * cfg.input.height * cfg.input.width, 5);
    for (const isa of ISAS) {
      const a = await loadModel(rice, { isa });
      const b = await loadModel(plainBytes, { isa });
      const ya = a.run(input), yb = b.run(input);
      t.same(Buffer.from(ya.buffer, ya.byteOffset, ya.byteLength), Buffer.from(yb.buffer, yb.byteOffset, yb.byteLength), `${name} ${isa}: identical logits`);
      a.dispose(); b.dispose();
    }
  }
  const good = writeModel(condense(randomNetworkParams(TINY_A, 11), { weights: 'f32' }));
  const cases = malformedRice(good);
  for (const isa of ISAS) {
    for (const c of cases) {
      try {
        (await loadModel(c.bytes, { isa })).dispose();
        t.fail(`${isa} ${c.what}: loaded`);
      } catch (err) {
        t.equal(err instanceof Cdnv2Error ? err.code : String(err), 'index', `${isa} rice: ${c.what}: ${(err as Error).message}`);
      }
    }
  }
});

t.test('models without labels load; classes are named by their index', async (t) => {
  const model = condense(randomNetworkParams(TINY_A, 3), { weights: 'f32' });
  model.meta = model.meta.filter((e) => e.key !== 'labels');
  const m = await loadModel(writeModel(model));
  t.same(m.meta.labels, []);
  const top = m.classify(randomInput(m.inputLength, 2), 3);
  t.same(top.map((p) => p.label), top.map((p) => String(p.index)));
  m.dispose();
});

t.test('runImage resizes, crops and normalises like the plain reference', async (t) => {
  const bytes = writeModel(condense(randomNetworkParams(getConfig('cdnv2-fmnist'), 3), { weights: 'f32' }));
  const m = await loadModel(bytes);
  // Same size gray image: preprocessing is (v/255 - mean)/std exactly.
  const r = rng(11);
  const px = Uint8Array.from({ length: 28 * 28 }, () => Math.floor(r() * 256));
  const same = m.preprocess({ width: 28, height: 28, channels: 1, data: px });
  const expected = Float32Array.from(px, (v) => (v / 255 - 0.286) / 0.353);
  t.ok(relError(same, expected) < 1e-5, 'identity resize');
  t.same(Array.from(m.runImage({ width: 28, height: 28, channels: 1, data: px })), Array.from(m.run(same)), 'runImage = run(preprocess)');
  // RGB 56x84 -> 28x28: shorter side scaled by 1/2, centre crop of the middle 28 columns, luma.
  const w = 84, h = 56;
  const rgb = Uint8Array.from({ length: w * h * 3 }, () => Math.floor(r() * 256));
  const down = m.preprocess({ width: w, height: h, channels: 3, data: rgb });
  const luma = (x: number, y: number) => {
    const i = (y * w + x) * 3;
    return (0.299 * rgb[i]! + 0.587 * rgb[i + 1]! + 0.114 * rgb[i + 2]!) / 255;
  };
  const ref = new Float32Array(28 * 28);
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      // Bilinear at scale 1/2 samples exactly between source pixels 2y, 2y+1 (and 2x+14, 2x+15).
      const sx = 2 * x + 14, sy = 2 * y;
      const v = (luma(sx, sy) + luma(sx + 1, sy) + luma(sx, sy + 1) + luma(sx + 1, sy + 1)) / 4;
      ref[y * 28 + x] = (v - 0.286) / 0.353;
    }
  }
  t.ok(relError(down, ref) < 1e-5, 'downscale + crop + luma');
  t.throws(() => m.runImage({ width: 0, height: 5, channels: 1, data: new Uint8Array(0) }), { code: 'input' });
  t.throws(() => m.runImage({ width: 2, height: 2, channels: 2, data: new Uint8Array(8) }), { code: 'input' });
  t.throws(() => m.run(new Float32Array(5)), { code: 'input' });
});
