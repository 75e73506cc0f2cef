// Export of a `.cnv2` model as a standard ONNX graph (opset 16, NCHW, batch 1), so the same condensed network runs in
// other runtimes (onnxruntime, ...). Each op of docs/format.md maps to standard ONNX ops:
//   CONV2D          inIndex -> Gather(axis 1) | Slice; inScale/inShift -> Mul/Add; inAct -> Relu/HardSwish;
//                   Conv with `group`; outIndex (accumulate 0) -> Gather with the inverse permutation;
//                   outIndex + accumulate 1 (the SFR index-sum) -> one of INDEX_SUM_VARIANTS, then a new tensor.
//   SE              GlobalAveragePool, Flatten, Gemm, Relu, Gemm, Sigmoid, Reshape, Mul
//   AVGPOOL         AveragePool;  MAXPOOL  MaxPool (pads);  GLOBAL_AVGPOOL  (scale/shift/act) + GlobalAveragePool;  FC  Flatten + Gemm (+act)
//   CHANNEL_SHUFFLE Reshape, Transpose, Reshape
// A .cnv2 buffer is mutable (appends, in-place adds); in ONNX every value is immutable, so each buffer is tracked as
// a list of channel segments, each an ONNX value: an append adds a segment, an in-place add replaces a segment by
// a new value, and a read of several segments concatenates them (once; the result replaces them).
import onnxPkg from 'onnx-proto';

import { ACT, tensorFloats, getMeta, type Conv2dOp, type Model, type Op, type TensorRef } from '../base/cnv2/model.js';
import { toolVersion } from '../base/version.js';
import { DEFAULT_INDEX_SUM, INDEX_SUM_VARIANTS, type IndexSumVariant } from './onnx-variants.js';

const { onnx } = onnxPkg;
type NodeProto = InstanceType<typeof onnx.NodeProto>;
type TensorProto = InstanceType<typeof onnx.TensorProto>;
type AttributeProto = InstanceType<typeof onnx.AttributeProto>;

export { DEFAULT_INDEX_SUM, INDEX_SUM_VARIANTS, type IndexSumVariant } from './onnx-variants.js';

export interface OnnxExportOptions {
  indexSum?: IndexSumVariant;
  /** 13..17; HardSwish needs 14, ScatterElements with reduction needs 16. Default 16. */
  opset?: number;
}

export class OnnxExportError extends Error {
  override name = 'OnnxExportError';
}

export const ONNX_INPUT = 'input';
export const ONNX_OUTPUT = 'logits';

interface Segment { start: number; count: number; value: string }

class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly inits: TensorProto[] = [];
  private n = 0;
  private constCache = new Map<string, string>();

  fresh(prefix: string): string {
    return `${prefix}_${this.n++}`;
  }

  node(op: string, inputs: string[], attrs: AttributeProto[] = [], prefix = op.toLowerCase()): string {
    const out = this.fresh(prefix);
    this.nodes.push(onnx.NodeProto.create({ opType: op, input: inputs, output: [out], name: out, attribute: attrs }));
    return out;
  }

  floatInit(prefix: string, dims: number[], values: ArrayLike<number>): string {
    const name = this.fresh(prefix);
    const f = Float32Array.from(values);
    this.inits.push(onnx.TensorProto.create({
      name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(f.buffer, f.byteOffset, f.byteLength),
    }));
    return name;
  }

  /** int64 constant; identical ones are shared. */
  intInit(prefix: string, dims: number[], values: ArrayLike<number>): string {
    const key = `${dims.join('x')}:${Array.from(values).join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.fresh(prefix);
    const v = BigInt64Array.from(Array.from(values, (x) => BigInt(x)));
    this.inits.push(onnx.TensorProto.create({
      name, dims, dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(v.buffer),
    }));
    this.constCache.set(key, name);
    return name;
  }
}

const attrInt = (name: string, i: number): AttributeProto => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i });
const attrFloat = (name: string, f: number): AttributeProto => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.FLOAT, f });
const attrInts = (name: string, ints: number[]): AttributeProto => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints });
const attrString = (name: string, s: string): AttributeProto =>
  onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(s) });

function intArray(model: Model, ref: number): number[] {
  const t = model.tensors[ref]!;
  if (t.dtype === 'f32' || t.dtype === 'f16') throw new OnnxExportError(`tensor ${ref} is not an index tensor`);
  return Array.from(t.data as ArrayLike<number>);
}

function floats(model: Model, ref: number): Float32Array {
  return tensorFloats(model.tensors[ref]!);
}

class Exporter {
  private readonly g = new GraphBuilder();
  /** Per buffer: written channel segments, sorted, contiguous from channel 0. */
  private readonly state: Segment[][];

  constructor(private readonly model: Model, private readonly indexSum: IndexSumVariant) {
    this.state = model.buffers.map(() => []);
  }

  private hw(buf: number): [number, number] {
    const b = this.model.buffers[buf]!;
    return [b.height, b.width];
  }

  private written(buf: number): number {
    const s = this.state[buf]!;
    return s.length ? s[s.length - 1]!.start + s[s.length - 1]!.count : 0;
  }

  private slice(value: string, from: number, count: number): string {
    const g = this.g;
    return g.node('Slice', [value, g.intInit('starts', [1], [from]), g.intInit('ends', [1], [from + count]), g.intInit('axes', [1], [1])]);
  }

  /** The buffer's channels [0, written) as one value (concatenating its segments once). */
  private materialize(buf: number): Segment {
    const segs = this.state[buf]!;
    if (segs.length === 0) throw new OnnxExportError(`buffer ${buf} is read before any op writes it`);
    if (segs.length === 1) return segs[0]!;
    const value = this.g.node('Concat', segs.map((s) => s.value), [attrInt('axis', 1)]);
    const seg = { start: 0, count: this.written(buf), value };
    this.state[buf] = [seg];
    return seg;
  }

  /** The segment holding channels [lo, hi), materializing the buffer when they span several. */
  private segmentFor(buf: number, lo: number, hi: number): Segment {
    if (hi > this.written(buf)) throw new OnnxExportError(`buffer ${buf}: channels ${lo}..${hi - 1} read before they are written`);
    const inside = this.state[buf]!.find((s) => s.start <= lo && hi <= s.start + s.count);
    return inside ?? this.materialize(buf);
  }

  /** Channels `offset + (index ? index[i] : i)` of a buffer, as one value. */
  private read(buf: number, offset: number, count: number, index: TensorRef): string {
    if (index !== null) {
      const idx = intArray(this.model, index).map((i) => i + offset);
      const lo = Math.min(...idx);
      const hi = Math.max(...idx) + 1;
      const seg = this.segmentFor(buf, lo, hi);
      const local = idx.map((i) => i - seg.start);
      if (local.length === seg.count && local.every((v, i) => v === i)) return seg.value;
      return this.g.node('Gather', [seg.value, this.g.intInit('idx', [local.length], local)], [attrInt('axis', 1)]);
    }
    const seg = this.segmentFor(buf, offset, offset + count);
    if (seg.start === offset && seg.count === count) return seg.value;
    return this.slice(seg.value, offset - seg.start, count);
  }

  /** Stores `value` (count channels) at channels [offset, offset+count) of the buffer. */
  private write(buf: number, offset: number, count: number, value: string): void {
    const segs = this.state[buf]!;
    const end = offset + count;
    const next: Segment[] = [];
    const w = this.written(buf);
    for (const s of segs) {
      const sEnd = s.start + s.count;
      if (sEnd <= offset || s.start >= end) { next.push(s); continue; }
      // Keep the parts of an overlapped segment outside [offset, end).
      if (s.start < offset) next.push({ start: s.start, count: offset - s.start, value: this.slice(s.value, 0, offset - s.start) });
      if (sEnd > end) next.push({ start: end, count: sEnd - end, value: this.slice(s.value, end - s.start, sEnd - end) });
    }
    if (offset > w) {
      // Channels never written (the format leaves them undefined): zeros keep the value well-formed.
      const [h, wd] = this.hw(buf);
      next.push({ start: w, count: offset - w, value: this.g.floatInit('zeros', [1, offset - w, h, wd], new Float32Array((offset - w) * h * wd)) });
    }
    next.push({ start: offset, count, value });
    next.sort((a, b) => a.start - b.start);
    this.state[buf] = next;
  }

  private act(x: string, code: number): string {
    if (code === ACT.none) return x;
    if (code === ACT.relu) return this.g.node('Relu', [x]);
    if (code === ACT.hardswish) return this.g.node('HardSwish', [x]);
    throw new OnnxExportError(`unknown activation code ${code}`);
  }

  /** x * scale + shift per channel, then the activation. */
  private prepare(x: string, scale: Float32Array | null, shift: Float32Array | null, act: number): string {
    let y = x;
    if (scale && shift) {
      const c = scale.length;
      y = this.g.node('Mul', [y, this.g.floatInit('scale', [1, c, 1, 1], scale)]);
      y = this.g.node('Add', [y, this.g.floatInit('shift', [1, c, 1, 1], shift)]);
    }
    return this.act(y, act);
  }

  private conv(x: string, op: Conv2dOp, weight: Float32Array, cout: number, cinPerGroup: number, groups: number, bias: Float32Array | null): string {
    const g = this.g;
    const inputs = [x, g.floatInit('w', [cout, cinPerGroup, op.kernel, op.kernel], weight)];
    if (bias) inputs.push(g.floatInit('b', [cout], bias));
    return g.node('Conv', inputs, [
      attrInts('kernel_shape', [op.kernel, op.kernel]), attrInts('strides', [op.stride, op.stride]),
      attrInts('pads', [op.pad, op.pad, op.pad, op.pad]), attrInt('group', groups), attrInts('dilations', [1, 1]),
    ]);
  }

  private conv2d(op: Conv2dOp): void {
    const m = this.model;
    let weight = floats(m, op.weight);
    const bias = op.bias === null ? null : floats(m, op.bias);
    let scale = op.inScale === null ? null : floats(m, op.inScale);
    let shift = op.inShift === null ? null : floats(m, op.inShift);
    const cpg = op.cin / op.groups;
    const idx = op.inIndex === null ? null : intArray(m, op.inIndex);

    // The index-sum folded into one dense conv: read the inputs in buffer order when the index is a permutation.
    if (op.accumulate === 1 && this.indexSum === 'conv' && op.kernel === 1) {
      this.denseAccumulate(op, weight, bias, idx, scale, shift);
      return;
    }
    const x = this.prepare(this.read(op.inBuffer, op.inChannel, op.cin, op.inIndex), scale, shift, op.inAct);
    scale = shift = null;
    let y = this.act(this.conv(x, op, weight, op.cout, cpg, op.groups, bias), op.outAct);
    weight = new Float32Array(0);
    const outIdx = op.outIndex === null ? null : intArray(m, op.outIndex);
    if (op.accumulate === 0) {
      if (outIdx === null) { this.write(op.outBuffer, op.outChannel, op.cout, y); return; }
      // A permutation of 0..n-1 (the format forbids repeats here): gather with its inverse, then store contiguously.
      const n = Math.max(...outIdx) + 1;
      if (n !== op.cout) throw new OnnxExportError('an accumulate=0 outIndex that is not a permutation of its channels is not supported');
      const inv = new Array<number>(n);
      outIdx.forEach((t, o) => { inv[t] = o; });
      if (!inv.every((v, i) => v === i)) y = this.g.node('Gather', [y, this.g.intInit('idx', [n], inv)], [attrInt('axis', 1)]);
      this.write(op.outBuffer, op.outChannel, n, y);
      return;
    }
    const targets = (outIdx ?? Array.from({ length: op.cout }, (_, i) => i)).map((t) => t + op.outChannel);
    this.indexSumInto(op.outBuffer, targets, y, op.cout);
  }

  /** old + sum of y[o] into channel targets[o], in the chosen variant (not 'conv'). */
  private indexSumInto(buf: number, targets: number[], y: string, cout: number): void {
    const g = this.g;
    const lo = Math.min(...targets);
    const seg = this.segmentFor(buf, lo, Math.max(...targets) + 1);
    const local = targets.map((t) => t - seg.start);
    const W = seg.count;
    const [h, w] = this.hw(buf);
    let next: string;
    if (this.indexSum === 'scatter') {
      const idx = g.node('Expand', [g.intInit('tidx', [1, cout, 1, 1], local), g.intInit('shape', [4], [1, cout, h, w])]);
      next = g.node('ScatterElements', [seg.value, idx, y], [attrInt('axis', 1), attrString('reduction', 'add')]);
    } else if (this.indexSum === 'matmul' || this.indexSum === 'conv') {
      // 'conv' reaches here only for kernels > 1 (not produced by condense): a 0/1 matmul is then equivalent.
      const sel = new Float32Array(W * cout);
      local.forEach((t, o) => { sel[t * cout + o] = 1; });
      const y2 = g.node('Reshape', [y, g.intInit('shape', [2], [cout, h * w])]);
      const u2 = g.node('MatMul', [g.floatInit('sel', [W, cout], sel), y2]);
      next = g.node('Add', [seg.value, g.node('Reshape', [u2, g.intInit('shape', [4], [1, W, h, w])])]);
    } else {
      // Gather + Add: round r picks, for each target channel, its r-th contributing output or a zero channel.
      const contrib: number[][] = Array.from({ length: W }, () => []);
      local.forEach((t, o) => contrib[t]!.push(o));
      const rounds = Math.max(...contrib.map((c) => c.length));
      const zero = g.floatInit('zeros', [1, 1, h, w], new Float32Array(h * w));
      const padded = g.node('Concat', [y, zero], [attrInt('axis', 1)]);
      let u: string | null = null;
      for (let r = 0; r < rounds; r++) {
        const pick = contrib.map((c) => c[r] ?? cout);
        const part = g.node('Gather', [padded, g.intInit('idx', [W], pick)], [attrInt('axis', 1)]);
        u = u === null ? part : g.node('Add', [u, part]);
      }
      next = g.node('Add', [seg.value, u!]);
    }
    this.replace(buf, seg, next);
  }

  private replace(buf: number, seg: Segment, value: string): void {
    this.state[buf] = this.state[buf]!.map((s) => (s === seg ? { ...s, value } : s));
  }

  /** Accumulating 1x1 conv as one dense Conv onto the target channels: weight[t, input] += w[o, i]. */
  private denseAccumulate(op: Conv2dOp, weight: Float32Array, bias: Float32Array | null, idx: number[] | null,
    scale: Float32Array | null, shift: Float32Array | null): void {
    const m = this.model;
    const cpg = op.cin / op.groups;
    const opg = op.cout / op.groups;
    const outIdx = op.outIndex === null ? Array.from({ length: op.cout }, (_, i) => i) : intArray(m, op.outIndex);
    const targets = outIdx.map((t) => t + op.outChannel);
    const seg = this.segmentFor(op.outBuffer, Math.min(...targets), Math.max(...targets) + 1);
    const W = seg.count;
    // Inputs in buffer order when the index list is a permutation of a contiguous range (the SFR's regrouping);
    // otherwise the gathered order.
    let inputs: string;
    let column: (i: number) => number;
    let nIn = op.cin;
    const perm = idx !== null && new Set(idx).size === idx.length && Math.max(...idx) - Math.min(...idx) + 1 === idx.length;
    if (perm) {
      const base = Math.min(...idx!);
      const pos = idx!.map((v) => v - base);
      let s2: Float32Array | null = null;
      let h2: Float32Array | null = null;
      if (scale && shift) {
        s2 = new Float32Array(op.cin); h2 = new Float32Array(op.cin);
        pos.forEach((p, i) => { s2![p] = scale[i]!; h2![p] = shift[i]!; });
      }
      inputs = this.prepare(this.read(op.inBuffer, op.inChannel + base, op.cin, null), s2, h2, op.inAct);
      column = (i) => pos[i]!;
    } else {
      inputs = this.prepare(this.read(op.inBuffer, op.inChannel, op.cin, op.inIndex), scale, shift, op.inAct);
      column = (i) => i;
      nIn = op.cin;
    }
    const dense = new Float32Array(W * nIn);
    const denseBias = bias ? new Float32Array(W) : null;
    for (let o = 0; o < op.cout; o++) {
      const t = targets[o]! - seg.start;
      const gi = Math.floor(o / opg);
      for (let i = 0; i < cpg; i++) dense[t * nIn + column(gi * cpg + i)] += weight[o * cpg + i]!;
      if (denseBias) denseBias[t] += bias![o]!;
    }
    if (op.outAct !== ACT.none) throw new OnnxExportError('an accumulating conv with an output activation cannot be folded');
    const y = this.conv(inputs, op, dense, W, nIn, 1, denseBias);
    this.replace(op.outBuffer, seg, this.g.node('Add', [seg.value, y]));
  }

  private se(op: Extract<Op, { kind: 'se' }>): void {
    const g = this.g;
    const m = this.model;
    const x = this.read(op.buffer, op.channel, op.channels, null);
    const pooled = g.node('Flatten', [g.node('GlobalAveragePool', [x])], [attrInt('axis', 1)]);
    const gemm = (a: string, w: number, b: TensorRef, rows: number, cols: number): string => {
      const ins = [a, g.floatInit('w', [rows, cols], floats(m, w))];
      if (b !== null) ins.push(g.floatInit('b', [rows], floats(m, b)));
      return g.node('Gemm', ins, [attrInt('transB', 1)]);
    };
    const hdn = g.node('Relu', [gemm(pooled, op.w1, op.b1, op.hidden, op.channels)]);
    if (op.gate !== 0) throw new OnnxExportError(`unknown SE gate ${op.gate}`);
    const gate = g.node('Sigmoid', [gemm(hdn, op.w2, op.b2, op.channels, op.hidden)]);
    const g4 = g.node('Reshape', [gate, g.intInit('shape', [4], [1, op.channels, 1, 1])]);
    this.write(op.buffer, op.channel, op.channels, g.node('Mul', [x, g4]));
  }

  private fc(op: Extract<Op, { kind: 'fc' }>): void {
    const g = this.g;
    const m = this.model;
    const x = g.node('Flatten', [this.read(op.inBuffer, op.inChannel, op.cin, null)], [attrInt('axis', 1)]);
    const ins = [x, g.floatInit('w', [op.cout, op.cin], floats(m, op.weight))];
    if (op.bias !== null) ins.push(g.floatInit('b', [op.cout], floats(m, op.bias)));
    const y = this.act(g.node('Gemm', ins, [attrInt('transB', 1)]), op.outAct);
    this.write(op.outBuffer, op.outChannel, op.cout, g.node('Reshape', [y, g.intInit('shape', [4], [1, op.cout, 1, 1])]));
  }

  run(): { nodes: NodeProto[]; inits: TensorProto[] } {
    const m = this.model;
    const inShape = m.buffers[m.inputBuffer]!;
    this.state[m.inputBuffer] = [{ start: 0, count: inShape.channels, value: ONNX_INPUT }];
    const g = this.g;
    for (const op of m.ops) {
      switch (op.kind) {
        case 'conv2d': this.conv2d(op); break;
        case 'se': this.se(op); break;
        case 'avgpool': {
          const x = this.read(op.inBuffer, op.inChannel, op.channels, null);
          this.write(op.outBuffer, op.outChannel, op.channels, g.node('AveragePool', [x],
            [attrInts('kernel_shape', [op.kernel, op.kernel]), attrInts('strides', [op.stride, op.stride])]));
          break;
        }
        case 'maxpool': {
          // ONNX MaxPool pads with -infinity: padding never wins, as the format says.
          const x = this.read(op.inBuffer, op.inChannel, op.channels, null);
          this.write(op.outBuffer, op.outChannel, op.channels, g.node('MaxPool', [x],
            [attrInts('kernel_shape', [op.kernel, op.kernel]), attrInts('strides', [op.stride, op.stride]),
              attrInts('pads', [op.pad, op.pad, op.pad, op.pad])]));
          break;
        }
        case 'global_avgpool': {
          const x = this.read(op.inBuffer, op.inChannel, op.channels, null);
          const p = this.prepare(x, op.inScale === null ? null : floats(m, op.inScale), op.inShift === null ? null : floats(m, op.inShift), op.inAct);
          this.write(op.outBuffer, op.outChannel, op.channels, g.node('GlobalAveragePool', [p]));
          break;
        }
        case 'fc': this.fc(op); break;
        case 'channel_shuffle': {
          const x = this.read(op.inBuffer, op.inChannel, op.channels, null);
          const [h, w] = this.hw(op.inBuffer);
          const cpg = op.channels / op.groups;
          const r = g.node('Reshape', [x, g.intInit('shape', [5], [1, op.groups, cpg, h, w])]);
          const t = g.node('Transpose', [r], [attrInts('perm', [0, 2, 1, 3, 4])]);
          this.write(op.outBuffer, op.outChannel, op.channels, g.node('Reshape', [t, g.intInit('shape', [4], [1, op.channels, h, w])]));
          break;
        }
        default: throw new OnnxExportError(`op ${(op as Op).kind} has no ONNX mapping`);
      }
    }
    const out = m.buffers[m.outputBuffer]!;
    const v = this.read(m.outputBuffer, 0, out.channels, null);
    this.g.nodes.push(onnx.NodeProto.create({ opType: 'Flatten', input: [v], output: [ONNX_OUTPUT], name: ONNX_OUTPUT, attribute: [attrInt('axis', 1)] }));
    return { nodes: this.g.nodes, inits: this.g.inits };
  }
}

function valueInfo(name: string, dims: number[]): InstanceType<typeof onnx.ValueInfoProto> {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: onnx.TensorShapeProto.create({ dim: dims.map((d) => onnx.TensorShapeProto.Dimension.create({ dimValue: d })) }),
      }),
    }),
  });
}

/** The ONNX bytes of a model. Input `input` [1, C, H, W] (normalised, NCHW), output `logits` [1, classes]. */
export function exportOnnx(model: Model, opts: OnnxExportOptions = {}): Uint8Array {
  const indexSum = opts.indexSum ?? DEFAULT_INDEX_SUM;
  if (!INDEX_SUM_VARIANTS.includes(indexSum)) throw new OnnxExportError(`unknown index-sum variant '${indexSum}' (known: ${INDEX_SUM_VARIANTS.join(', ')})`);
  const opset = opts.opset ?? 16;
  if (!Number.isInteger(opset) || opset < 13 || opset > 17) throw new OnnxExportError(`opset must be 13..17, not ${opset}`);
  if (opset < 14 && model.ops.some((o) => ('inAct' in o && o.inAct === ACT.hardswish) || ('outAct' in o && o.outAct === ACT.hardswish))) {
    throw new OnnxExportError('HardSwish needs opset 14 or later');
  }
  if (opset < 16 && indexSum === 'scatter') throw new OnnxExportError('ScatterElements with reduction needs opset 16 or later');
  const { nodes, inits } = new Exporter(model, indexSum).run();
  const inB = model.buffers[model.inputBuffer]!;
  const outB = model.buffers[model.outputBuffer]!;
  const name = (getMeta(model, 'name') as string | undefined) ?? 'cdnv2';
  const graph = onnx.GraphProto.create({
    name, node: nodes, initializer: inits,
    input: [valueInfo(ONNX_INPUT, [1, inB.channels, inB.height, inB.width])],
    output: [valueInfo(ONNX_OUTPUT, [1, outB.channels])],
  });
  const labels = getMeta(model, 'labels') as string[] | undefined;
  const mp = onnx.ModelProto.create({
    irVersion: 8, producerName: 'cdnv2', producerVersion: toolVersion(), graph,
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: opset })],
    metadataProps: [
      onnx.StringStringEntryProto.create({ key: 'cdnv2.indexSum', value: indexSum }),
      ...(labels ? [onnx.StringStringEntryProto.create({ key: 'labels', value: JSON.stringify(labels) })] : []),
    ],
  });
  return onnx.ModelProto.encode(mp).finish();
}
