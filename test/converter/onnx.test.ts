// ONNX export: every index-sum variant, run in onnxruntime-node, gives the logits of our wasm runtime (1e-4 relative)
// on tiny awkward networks, hand-built graphs covering the other ops, and a full configuration; plus the CLI.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import onnxPkg from 'onnx-proto';

import { getConfig, type ArchConfig } from '../../base/arch/configs.js';
import { condense } from '../../converter/condense.js';
import { writeModel } from '../../base/cnv2/format.js';
import { ACT, type BufferShape, type Model, type Op } from '../../base/cnv2/model.js';
import { exportOnnx, INDEX_SUM_VARIANTS, OnnxExportError } from '../../converter/onnx.js';
import { randomNetworkParams } from '../../converter/random.js';
import { tinyConfig } from '../../trainer/tiny.js';
import { loadModel } from '../../runtime/index.js';
import { buildModel, convModel, randomFloats, relError, rng, TensorTable } from '../../testkit/models.js';
import { TINY_A, TINY_B } from '../../testkit/tiny-configs.js';
import { readModel } from '../../base/cnv2/format.js';

const { onnx } = onnxPkg;
const TOL = 1e-4;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-onnx-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function input(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * 4 - 2);
}

/** Logits of our runtime and of onnxruntime-node on the export, for a few inputs. */
async function compare(t: Tap.Test, bytes: Uint8Array, what: string, variants: readonly string[] = INDEX_SUM_VARIANTS): Promise<void> {
  const model = readModel(bytes);
  const ours = await loadModel(bytes);
  const { channels: c, height: h, width: w } = model.buffers[model.inputBuffer]!;
  try {
    for (const v of variants) {
      const onnxBytes = exportOnnx(model, { indexSum: v as (typeof INDEX_SUM_VARIANTS)[number] });
      const session = await ort.InferenceSession.create(onnxBytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
      let worst = 0;
      for (const seed of [1, 2]) {
        const x = input(c * h * w, seed);
        const ref = ours.run(x);
        const out = await session.run({ input: new ort.Tensor('float32', x, [1, c, h, w]) });
        const y = out.logits!;
        t.same(y.dims, [1, ref.length], `${what} ${v}: logits shape`);
        worst = Math.max(worst, relError(y.data as Float32Array, ref));
      }
      t.ok(worst <= TOL, `${what}, index-sum ${v}: rel error ${worst.toExponential(2)} <= ${TOL}`);
      await session.release();
    }
  } finally {
    ours.dispose();
  }
}

const cnv2 = (cfg: ArchConfig, seed: number, opts: { sfr?: boolean; f16?: boolean } = {}): Uint8Array =>
  writeModel(condense(randomNetworkParams(cfg, seed, { sfr: opts.sfr ?? true }), { weights: opts.f16 ? 'f16' : 'f32' }));

t.test('tiny networks, every index-sum variant', async (t) => {
  await compare(t, cnv2(TINY_A, 3), 'tiny-a');
  await compare(t, cnv2(TINY_B, 4), 'tiny-b (G > C: LGC groups share inputs)');
  await compare(t, cnv2(tinyConfig(), 5, { f16: true }), 'tiny (f16 weights)');
  await compare(t, cnv2(TINY_A, 6, { sfr: false }), 'tiny-a without SFR', ['conv']);
});

t.test('single accumulating and scattering convs (repeated targets, gathered inputs with repeats, 3x3)', async (t) => {
  const base = { h: 7, w: 6, stride: 1, inAct: ACT.hardswish, outAct: ACT.none, bias: true, affine: true };
  await compare(t, convModel({ ...base, cin: 6, cout: 8, kernel: 1, pad: 0, groups: 2, gather: true, scatter: true, accumulate: true, seed: 11 }), '1x1 acc, gather with repeats');
  await compare(t, convModel({ ...base, cin: 4, cout: 6, kernel: 3, pad: 1, groups: 2, gather: false, scatter: true, accumulate: true, seed: 12 }), '3x3 acc');
  await compare(t, convModel({ ...base, cin: 5, cout: 5, kernel: 1, pad: 0, groups: 1, gather: false, scatter: false, accumulate: true, seed: 13 }), '1x1 acc, no outIndex');
  await compare(t, convModel({ ...base, cin: 6, cout: 4, kernel: 3, pad: 1, groups: 2, gather: true, scatter: true, accumulate: false, outAct: ACT.relu, seed: 14 }), 'permuted output');
});

t.test('shuffle, pooling, SE and FC with biases at channel offsets', async (t) => {
  const r = rng(21);
  const tt = new TensorTable();
  const buffers: BufferShape[] = [
    { channels: 3, height: 8, width: 8 },   // 0 input
    { channels: 12, height: 8, width: 8 },  // 1
    { channels: 12, height: 4, width: 4 },  // 2 pooled, at offset 2
    { channels: 12, height: 1, width: 1 },  // 3
    { channels: 7, height: 1, width: 1 },   // 4 logits
  ];
  const ops: Op[] = [
    { kind: 'conv2d', inBuffer: 0, inChannel: 0, cin: 3, outBuffer: 1, outChannel: 0, cout: 6, kernel: 3, stride: 1, pad: 1, groups: 1,
      inAct: ACT.none, outAct: ACT.relu, accumulate: 0, weight: tt.f32([6, 3, 3, 3], randomFloats(162, r)), bias: null, inIndex: null, inScale: null, inShift: null, outIndex: null },
    { kind: 'channel_shuffle', inBuffer: 1, inChannel: 0, channels: 6, outBuffer: 1, outChannel: 6, groups: 3 } as Op,
    { kind: 'avgpool', inBuffer: 1, inChannel: 2, channels: 8, outBuffer: 2, outChannel: 2, kernel: 2, stride: 2 },
    { kind: 'conv2d', inBuffer: 1, inChannel: 0, cin: 2, outBuffer: 2, outChannel: 0, cout: 2, kernel: 3, stride: 2, pad: 1, groups: 2,
      inAct: ACT.hardswish, outAct: ACT.none, accumulate: 0, weight: tt.f32([2, 1, 3, 3], randomFloats(18, r)), bias: tt.f32([2], randomFloats(2, r)),
      inIndex: null, inScale: tt.f32([2], randomFloats(2, r)), inShift: tt.f32([2], randomFloats(2, r)), outIndex: null },
    { kind: 'se', buffer: 2, channel: 1, channels: 8, hidden: 3, w1: tt.f32([3, 8], randomFloats(24, r)), b1: tt.f32([3], randomFloats(3, r)),
      w2: tt.f32([8, 3], randomFloats(24, r)), b2: tt.f32([8], randomFloats(8, r)), gate: 0 },
    { kind: 'conv2d', inBuffer: 2, inChannel: 0, cin: 2, outBuffer: 2, outChannel: 10, cout: 2, kernel: 1, stride: 1, pad: 0, groups: 1,
      inAct: ACT.relu, outAct: ACT.none, accumulate: 0, weight: tt.f32([2, 2, 1, 1], randomFloats(4, r)), bias: null, inIndex: null, inScale: null, inShift: null, outIndex: null },
    { kind: 'global_avgpool', inBuffer: 2, inChannel: 0, channels: 12, outBuffer: 3, outChannel: 0, inAct: ACT.hardswish,
      inScale: tt.f32([12], randomFloats(12, r)), inShift: tt.f32([12], randomFloats(12, r)) },
    { kind: 'se', buffer: 3, channel: 0, channels: 12, hidden: 4, w1: tt.f32([4, 12], randomFloats(48, r)), b1: null, w2: tt.f32([12, 4], randomFloats(48, r)), b2: null, gate: 0 },
    { kind: 'fc', inBuffer: 3, inChannel: 2, cin: 9, outBuffer: 4, outChannel: 0, cout: 7, outAct: ACT.hardswish, weight: tt.f32([7, 9], randomFloats(63, r)), bias: tt.f32([7], randomFloats(7, r)) },
  ];
  const model: Model = buildModel(buffers, ops, tt.tensors, 4);
  await compare(t, writeModel(model), 'hand-built graph');
});

t.test('a full configuration (CondenseNetV2-A), every index-sum variant', async (t) => {
  await compare(t, cnv2(getConfig('cdnv2-a'), 1), 'cdnv2-a');
});

t.test('the export is standard ONNX: opsets, op types, metadata; bad options are refused', async (t) => {
  const model = condense(randomNetworkParams(TINY_A, 1), { weights: 'f32' });
  const mp = onnx.ModelProto.decode(exportOnnx(model));
  t.equal(mp.opsetImport![0]!.domain, '', 'default ONNX domain');
  t.equal(Number(mp.opsetImport![0]!.version), 16);
  const types = new Set(mp.graph!.node!.map((n) => n.opType));
  for (const op of ['Conv', 'Gather', 'HardSwish', 'GlobalAveragePool', 'Gemm', 'Concat', 'AveragePool']) t.ok(types.has(op), `uses ${op}`);
  t.ok(mp.graph!.node!.some((n) => n.opType === 'Conv' && n.attribute!.some((a) => a.name === 'group' && Number(a.i) > 1)), 'grouped Conv');
  const scat = onnx.ModelProto.decode(exportOnnx(model, { indexSum: 'scatter' }));
  t.ok(scat.graph!.node!.some((n) => n.opType === 'ScatterElements'), 'scatter variant uses ScatterElements');
  const mm = onnx.ModelProto.decode(exportOnnx(model, { indexSum: 'matmul' }));
  t.ok(mm.graph!.node!.some((n) => n.opType === 'MatMul'), 'matmul variant uses MatMul');
  t.throws(() => exportOnnx(model, { opset: 13 }), OnnxExportError, 'HardSwish needs opset 14');
  t.throws(() => exportOnnx(model, { indexSum: 'scatter', opset: 15 }), OnnxExportError, 'reduction needs opset 16');
  t.throws(() => exportOnnx(model, { indexSum: 'nope' as never }), OnnxExportError);
  const relu = condense(randomNetworkParams(TINY_B, 1), { weights: 'f32' });
  t.ok(exportOnnx(relu, { opset: 13, indexSum: 'gather' }).length > 0, 'a ReLU-only network exports at opset 13');
});

function cdnv2(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'cli/cdnv2.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

t.test('cdnv2 export-onnx', async (t) => {
  const m = path.join(dir, 'tiny.cnv2');
  writeFileSync(m, cnv2(TINY_A, 2));
  const out = path.join(dir, 'tiny.onnx');
  const r = cdnv2('export-onnx', m, '-o', out, '--index-sum', 'gather');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /wrote .*tiny\.onnx: ONNX opset 16, index-sum 'gather', \d+ bytes/);
  t.ok(existsSync(out));
  t.same(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left');
  const session = await ort.InferenceSession.create(readFileSync(out));
  t.same(session.inputNames, ['input']);
  t.same(session.outputNames, ['logits']);
  t.equal(cdnv2('export-onnx', m, '-o', out, '--index-sum', 'bogus').code, 2, 'bad variant: usage error');
  t.equal(cdnv2('export-onnx', m, '-o', out, '--opset', '12').code, 2, 'bad opset: usage error');
  const missing = cdnv2('export-onnx', path.join(dir, 'none.cnv2'), '-o', out);
  t.equal(missing.code, 1, 'missing model: failure');
  t.match(missing.stderr, /no such file/);
  writeFileSync(path.join(dir, 'bad.cnv2'), 'not a model');
  t.equal(cdnv2('export-onnx', path.join(dir, 'bad.cnv2'), '-o', out).code, 1, 'invalid model: failure');
});
