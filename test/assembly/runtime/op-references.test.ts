// Whole ops against their plain references (test/reference/ops.ts: seOpRef, avgpoolOpRef, maxpoolOpRef, globalAvgpoolOpRef,
// fcOpRef, channelShuffleOpRef, and runOpsRef over whole op lists), in the wasm engine's three builds, on awkward
// shapes: odd sizes, channel offsets into wider buffers, f16 and f32 tensors, optional tensors present and absent.
import t from 'tap';
import { halfToFloat } from '../../../base/cnv2/f16.js';
import { readModel, writeModel } from '../../../base/cnv2/format.js';
import { ACT, type BufferShape, type Model, type Op, type Tensor } from '../../../base/cnv2/model.js';
import { isaSupported, loadModel, type Isa } from '../../../runtime/index.js';
import {
  avgpoolOpRef, channelShuffleOpRef, fcOpRef, globalAvgpoolOpRef, makeBuffer, maxpoolOpRef, runOpsRef, seOpRef, type FeatureBuffer, type RefOp,
} from '../../reference/ops.js';
import { baseModels } from '../../../testkit/fuzz-model.js';
import { buildModel, relError, rng } from '../../../testkit/models.js';

const ISAS: Isa[] = ['simd', 'scalar', 'relaxed'];
const TOL = 2e-6;

t.before(async () => {
  for (const isa of ISAS) if (!(await isaSupported(isa))) throw new Error(`this Node cannot compile the ${isa} build`);
});

/** Float values of a tensor reference (f16 widened), or null for NONE. */
function floats(m: Model, ref: number | null): Float32Array | null {
  if (ref === null) return null;
  const x = m.tensors[ref]!;
  return x.dtype === 'f16' ? Float32Array.from(x.data as Uint16Array, halfToFloat) : x.data as Float32Array;
}
const ints = (m: Model, ref: number | null): number[] | null => (ref === null ? null : Array.from(m.tensors[ref]!.data));

/** The model's ops in the references' form (docs/format.md opcodes), tensors decoded. */
function refOps(m: Model): RefOp[] {
  return m.ops.map((op): RefOp => {
    switch (op.kind) {
      case 'conv2d': return { opcode: 1, ...op, accumulate: op.accumulate === 1, weight: floats(m, op.weight)!, bias: floats(m, op.bias),
        inIndex: ints(m, op.inIndex), inScale: floats(m, op.inScale), inShift: floats(m, op.inShift), outIndex: ints(m, op.outIndex) };
      case 'se': return { opcode: 2, ...op, w1: floats(m, op.w1)!, b1: floats(m, op.b1), w2: floats(m, op.w2)!, b2: floats(m, op.b2) };
      case 'avgpool': return { opcode: 3, ...op };
      case 'global_avgpool': return { opcode: 4, ...op, inScale: floats(m, op.inScale), inShift: floats(m, op.inShift) };
      case 'fc': return { opcode: 5, ...op, weight: floats(m, op.weight)!, bias: floats(m, op.bias) };
      case 'channel_shuffle': return { opcode: 6, ...op };
      case 'maxpool': return { opcode: 7, ...op };
    }
  });
}

/** Fresh zeroed reference buffers with the input written into the model's input buffer. */
function refBuffers(m: Model, input: Float32Array): FeatureBuffer[] {
  const bufs = m.buffers.map((b) => makeBuffer(b.channels, b.height, b.width));
  bufs[m.inputBuffer]!.data.set(input);
  return bufs;
}

interface OpCase { what: string; model: Model; check: number; apply: (bufs: FeatureBuffer[], m: Model) => void }

const f32 = (r: () => number, n: number, s = 1): Float32Array => Float32Array.from({ length: n }, () => (r() * 2 - 1) * s);
const f16 = (r: () => number, n: number): Uint16Array => Uint16Array.from({ length: n }, () => 0x3000 + Math.floor(r() * 0x0c00) + (r() < 0.5 ? 0x8000 : 0));

/** Op under test reading `src` of buffer 0 and writing buffer 1 (wider, at an offset), then a pool to the 1x1 output. */
function around(op: Op, buffers: BufferShape[], tensors: Tensor[], readFrom: number, readChannel: number, channels: number): Model {
  const out = buffers.length;
  const all = [...buffers, { channels, height: 1, width: 1 }];
  const ops: Op[] = [op, { kind: 'global_avgpool', inBuffer: readFrom, inChannel: readChannel, channels, outBuffer: out, outChannel: 0, inAct: ACT.none, inScale: null, inShift: null }];
  return readModel(writeModel(buildModel(all, ops, tensors, out)));
}

function cases(): OpCase[] {
  const r = rng(2026);
  const list: OpCase[] = [];
  for (const [C, H, W, hidden, bias] of [[5, 3, 7, 3, true], [17, 1, 1, 1, false], [33, 5, 2, 9, true], [8, 9, 9, 16, false]] as const) {
    const tensors: Tensor[] = [
      { dtype: 'f32', shape: [hidden, C], data: f32(r, hidden * C) },
      { dtype: 'f16', shape: [C, hidden], data: f16(r, C * hidden) },
      { dtype: 'f32', shape: [hidden], data: f32(r, hidden) },
      { dtype: 'f16', shape: [C], data: f16(r, C) },
    ];
    const op: Op = { kind: 'se', buffer: 0, channel: 2, channels: C, hidden, w1: 0, b1: bias ? 2 : null, w2: 1, b2: bias ? 3 : null, gate: 0 };
    list.push({ what: `SE ${C}x${H}x${W} hidden ${hidden} at channel 2${bias ? ', biases' : ''}`, check: 0,
      model: around(op, [{ channels: C + 3, height: H, width: W }], tensors, 0, 2, C),
      apply: (b, m) => seOpRef(b, refOps(m)[0] as Extract<RefOp, { opcode: 2 }>) });
  }
  for (const [C, H, W, k, s] of [[3, 7, 5, 2, 2], [6, 9, 11, 3, 2], [1, 4, 4, 4, 1], [5, 13, 6, 3, 3], [2, 16, 16, 16, 16]] as const) {
    const oh = Math.floor((H - k) / s) + 1, ow = Math.floor((W - k) / s) + 1;
    const op: Op = { kind: 'avgpool', inBuffer: 0, inChannel: 1, channels: C, outBuffer: 1, outChannel: 2, kernel: k, stride: s };
    list.push({ what: `avgpool ${C}x${H}x${W} k${k} s${s} (channels 1.. into 2..)`, check: 1,
      model: around(op, [{ channels: C + 2, height: H, width: W }, { channels: C + 3, height: oh, width: ow }], [], 1, 2, C),
      apply: (b, m) => avgpoolOpRef(b, refOps(m)[0] as Extract<RefOp, { opcode: 3 }>) });
  }
  for (const [C, H, W, act, affine] of [[7, 5, 3, ACT.relu, true], [16, 1, 1, ACT.none, false], [3, 11, 13, ACT.hardswish, true], [33, 2, 2, ACT.relu, false]] as const) {
    const tensors: Tensor[] = affine ? [{ dtype: 'f16', shape: [C], data: f16(r, C) }, { dtype: 'f32', shape: [C], data: f32(r, C) }] : [];
    const buffers = [{ channels: C + 1, height: H, width: W }, { channels: C, height: 1, width: 1 }];
    const ops: Op[] = [{ kind: 'global_avgpool', inBuffer: 0, inChannel: 1, channels: C, outBuffer: 1, outChannel: 0, inAct: act, inScale: affine ? 0 : null, inShift: affine ? 1 : null }];
    // The pool writes the whole output buffer itself (every run must write all of it): its logits are the check.
    list.push({ what: `global avgpool ${C}x${H}x${W} act ${act}${affine ? ', scale and shift' : ''}`, check: 1,
      model: readModel(writeModel(buildModel(buffers, ops, tensors, 1), { validate: false })),
      apply: (b, m) => globalAvgpoolOpRef(b, refOps(m)[0] as Extract<RefOp, { opcode: 4 }>) });
  }
  for (const [cin, cout, act, bias] of [[1, 1, ACT.none, false], [13, 7, ACT.relu, true], [40, 33, ACT.hardswish, true], [9, 10, ACT.none, true]] as const) {
    const tensors: Tensor[] = [{ dtype: 'f32', shape: [cout, cin], data: f32(r, cout * cin) }, ...(bias ? [{ dtype: 'f16' as const, shape: [cout], data: f16(r, cout) }] : [])];
    const buffers = [{ channels: cin + 2, height: 1, width: 1 }, { channels: cout, height: 1, width: 1 }];
    const ops: Op[] = [{ kind: 'fc', inBuffer: 0, inChannel: 2, cin, outBuffer: 1, outChannel: 0, cout, outAct: act, weight: 0, bias: bias ? 1 : null }];
    list.push({ what: `fc ${cin} -> ${cout} act ${act}${bias ? ', bias' : ''}`, check: 1,
      model: readModel(writeModel(buildModel(buffers, ops, tensors, 1), { validate: false })),
      apply: (b, m) => fcOpRef(b, refOps(m)[0] as Extract<RefOp, { opcode: 5 }>) });
  }
  for (const [C, H, W, g] of [[6, 3, 5, 2], [6, 3, 5, 3], [12, 1, 1, 4], [15, 7, 2, 5], [8, 2, 9, 8], [5, 4, 4, 1]] as const) {
    const op: Op = { kind: 'channel_shuffle', inBuffer: 0, inChannel: 1, channels: C, outBuffer: 1, outChannel: 3, groups: g };
    list.push({ what: `channel shuffle ${C}x${H}x${W} groups ${g}`, check: 1,
      model: around(op, [{ channels: C + 1, height: H, width: W }, { channels: C + 3, height: H, width: W }], [], 1, 3, C),
      apply: (b, m) => channelShuffleOpRef(b, refOps(m)[0] as Extract<RefOp, { opcode: 6 }>) });
  }
  for (const [C, H, W, k, s, p] of [[24, 15, 15, 3, 2, 1], [5, 14, 9, 3, 2, 1], [3, 2, 2, 3, 1, 1], [6, 7, 7, 2, 2, 0], [2, 9, 5, 5, 3, 2]] as const) {
    const oh = Math.floor((H + 2 * p - k) / s) + 1, ow = Math.floor((W + 2 * p - k) / s) + 1;
    const op: Op = { kind: 'maxpool', inBuffer: 0, inChannel: 1, channels: C, outBuffer: 1, outChannel: 2, kernel: k, stride: s, pad: p };
    list.push({ what: `maxpool ${C}x${H}x${W} k${k} s${s} p${p} (channels 1.. into 2..)`, check: 1,
      model: around(op, [{ channels: C + 2, height: H, width: W }, { channels: C + 3, height: oh, width: ow }], [], 1, 2, C),
      apply: (b, m) => maxpoolOpRef(b, refOps(m)[0] as Extract<RefOp, { opcode: 7 }>) });
  }
  // Depthwise 3x3 CONV2D (the operator's depthwise kernel): a first conv with the reader's BN and activation, a
  // gathered input and a permuted output, then a second one accumulating onto its output through a repeated outIndex.
  for (const [C, H, W, s] of [[58, 28, 28, 1], [6, 7, 7, 2], [5, 2, 2, 1], [7, 9, 13, 2], [9, 5, 6, 1]] as const) {
    const oh = Math.floor((H - 1) / s) + 1, ow = Math.floor((W - 1) / s) + 1;
    const outPerm = Array.from({ length: C }, (_, i) => C - 1 - i);
    const tensors: Tensor[] = [
      { dtype: 'f32', shape: [C, 1, 3, 3], data: f32(r, C * 9) },
      { dtype: 'f16', shape: [C, 1, 3, 3], data: f16(r, C * 9) },
      { dtype: 'f32', shape: [C], data: f32(r, C) },
      { dtype: 'u16', shape: [C], data: Uint16Array.from({ length: C }, () => Math.floor(r() * (C + 1))) },
      { dtype: 'f32', shape: [C], data: f32(r, C) },
      { dtype: 'f32', shape: [C], data: f32(r, C) },
      { dtype: 'u16', shape: [C], data: Uint16Array.from(outPerm) },
      { dtype: 'u16', shape: [C], data: Uint16Array.from({ length: C }, (_, i) => (i * 5) % C) },
    ];
    const first: Op = { kind: 'conv2d', inBuffer: 0, inChannel: 0, cin: C, outBuffer: 1, outChannel: 1, cout: C, kernel: 3, stride: s, pad: 1,
      groups: C, inAct: ACT.relu, outAct: s === 1 ? ACT.none : ACT.hardswish, accumulate: 0, weight: 0, bias: 2, inIndex: 3, inScale: 4, inShift: 5, outIndex: 6 };
    const second: Op = { kind: 'conv2d', inBuffer: 0, inChannel: 1, cin: C, outBuffer: 1, outChannel: 1, cout: C, kernel: 3, stride: s, pad: 1,
      groups: C, inAct: ACT.none, outAct: s === 1 ? ACT.none : ACT.relu, accumulate: 1, weight: 1, bias: null, inIndex: null, inScale: null, inShift: null, outIndex: 7 };
    const buffers = [{ channels: C + 1, height: H, width: W }, { channels: C + 1, height: oh, width: ow }, { channels: C, height: 1, width: 1 }];
    const ops: Op[] = [first, second, { kind: 'global_avgpool', inBuffer: 1, inChannel: 1, channels: C, outBuffer: 2, outChannel: 0, inAct: ACT.none, inScale: null, inShift: null }];
    list.push({ what: `depthwise 3x3 ${C}x${H}x${W} s${s}: BN-act input, gathered, permuted, then accumulated`, check: 1,
      model: readModel(writeModel(buildModel(buffers, ops, tensors, 2))),
      apply: (b, m) => runOpsRef(b, refOps(m).slice(0, 2)) });
  }
  return list;
}

t.test('SE, pools, FC and shuffle against their references, every build', async (t) => {
  const r = rng(7);
  for (const c of cases()) {
    const inB = c.model.buffers[c.model.inputBuffer]!;
    const input = f32(r, inB.channels * inB.height * inB.width, 3);
    const bufs = refBuffers(c.model, input);
    c.apply(bufs, c.model);
    const want = bufs[c.check]!.data;
    t.ok(want.some((v) => v !== 0), `${c.what}: the reference produced values`);
    const bytes = writeModel(c.model);
    for (const isa of ISAS) {
      const m = await loadModel(bytes, { isa });
      const logits = m.run(input);
      const got = c.check === c.model.outputBuffer ? logits : m.bufferValues(c.check);
      m.dispose();
      const e = relError(got, want);
      t.ok(e < TOL, `${c.what} [${isa}]: relative error ${e.toExponential(2)}`);
    }
  }
});

t.test('whole op lists (runOpsRef) against the engine: every op kind, condensed networks', async (t) => {
  const r = rng(8);
  for (const base of baseModels()) {
    const model = readModel(base.bytes);
    const ops = refOps(model);
    t.ok(new Set(ops.map((o) => o.opcode)).size >= 4, `${base.name}: ${ops.length} ops of ${new Set(ops.map((o) => o.opcode)).size} kinds`);
    const inB = model.buffers[model.inputBuffer]!;
    for (let k = 0; k < 2; k++) {
      const input = f32(r, inB.channels * inB.height * inB.width, 2);
      const bufs = refBuffers(model, input);
      runOpsRef(bufs, ops);
      const want = bufs[model.outputBuffer]!.data;
      for (const isa of ISAS) {
        const m = await loadModel(base.bytes, { isa });
        const got = m.run(input);
        m.dispose();
        const e = relError(got, want);
        t.ok(e < 1e-4, `${base.name} input ${k} [${isa}]: logits relative error ${e.toExponential(2)}`);
      }
    }
  }
});
