// Builders of small .cnv2 models for runtime tests: single ops on awkward shapes and random tiny networks.
import { ACT, type BufferShape, type Model, type Op, type Tensor } from '../base/cnv2/model.js';
import { writeModel } from '../base/cnv2/format.js';
import { rng } from './kernels.js';

export { rng };

export function randomFloats(n: number, r: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

/** Collects tensors and returns their indices, as the ops reference them. */
export class TensorTable {
  readonly tensors: Tensor[] = [];
  f32(shape: number[], data: Float32Array): number {
    this.tensors.push({ dtype: 'f32', shape, data });
    return this.tensors.length - 1;
  }
  u16(values: number[]): number {
    this.tensors.push({ dtype: 'u16', shape: [values.length], data: Uint16Array.from(values) });
    return this.tensors.length - 1;
  }
}

/** A model around explicit buffers and ops; input is buffer 0, output the given buffer (1x1, `classes` channels). */
export function buildModel(buffers: BufferShape[], ops: Op[], tensors: Tensor[], outputBuffer: number): Model {
  const input = buffers[0]!;
  const classes = buffers[outputBuffer]!.channels;
  return {
    meta: [
      { key: 'name', type: 'string', value: 'test' },
      { key: 'input.shape', type: 'u32[]', value: Uint32Array.from([input.channels, input.height, input.width]) },
      { key: 'input.mean', type: 'f32[]', value: new Float32Array(input.channels).fill(0.5) },
      { key: 'input.std', type: 'f32[]', value: new Float32Array(input.channels).fill(0.25) },
      { key: 'labels', type: 'string[]', value: Array.from({ length: classes }, (_, i) => `class ${i}`) },
    ],
    buffers, inputBuffer: 0, outputBuffer, ops, tensors,
  };
}

/**
 * A conv op under test followed by a global average pool into a 1x1 output (so the model is valid);
 * tests read the conv's output buffer through the interpreter and the runtime's logits through the pool.
 */
export function convModel(o: {
  cin: number; cout: number; h: number; w: number; kernel: number; stride: number; pad: number; groups: number;
  inAct: number; outAct: number; bias: boolean; gather: boolean; affine: boolean; scatter: boolean; accumulate: boolean;
  seed: number;
}): Uint8Array {
  const r = rng(o.seed);
  const t = new TensorTable();
  const oh = Math.floor((o.h + 2 * o.pad - o.kernel) / o.stride) + 1;
  const ow = Math.floor((o.w + 2 * o.pad - o.kernel) / o.stride) + 1;
  const srcChannels = o.gather ? o.cin + 3 : o.cin;
  // With accumulate, the conv adds into a buffer a first conv filled; scatter targets may repeat.
  const outChannels = o.scatter && o.accumulate ? o.cout + 2 : o.cout;
  const buffers: BufferShape[] = [
    { channels: srcChannels, height: o.h, width: o.w },
    { channels: outChannels, height: oh, width: ow },
    { channels: outChannels, height: 1, width: 1 },
  ];
  const ops: Op[] = [];
  if (o.accumulate) {
    // Fill every output channel first (a 1x1 conv from the input, stride matched by a k=1 conv).
    ops.push({
      kind: 'conv2d', inBuffer: 0, inChannel: 0, cin: 1, outBuffer: 1, outChannel: 0, cout: outChannels,
      kernel: 1, stride: o.stride, pad: 0, groups: 1, inAct: ACT.none, outAct: ACT.none, accumulate: 0,
      weight: t.f32([outChannels, 1, 1, 1], randomFloats(outChannels, r)), bias: null, inIndex: null, inScale: null,
      inShift: null, outIndex: null,
    });
    if (Math.floor((o.h - 1) / o.stride) + 1 !== oh || Math.floor((o.w - 1) / o.stride) + 1 !== ow) {
      throw new Error('accumulate tests need a stride/pad for which a 1x1 conv has the same output size');
    }
  }
  const inIndex = o.gather ? Array.from({ length: o.cin }, () => Math.floor(r() * srcChannels)) : null;
  let outIndex: number[] | null = null;
  if (o.scatter) {
    if (o.accumulate) outIndex = Array.from({ length: o.cout }, () => Math.floor(r() * outChannels));
    else {
      // A permutation: every output channel is written exactly once.
      const keyed = Array.from({ length: outChannels }, (_, i) => ({ i, k: r() }));
      outIndex = keyed.sort((a, b) => a.k - b.k).map((e) => e.i);
    }
  }
  ops.push({
    kind: 'conv2d', inBuffer: 0, inChannel: 0, cin: o.cin, outBuffer: 1, outChannel: 0, cout: o.cout,
    kernel: o.kernel, stride: o.stride, pad: o.pad, groups: o.groups, inAct: o.inAct, outAct: o.outAct,
    accumulate: o.accumulate ? 1 : 0,
    weight: t.f32([o.cout, o.cin / o.groups, o.kernel, o.kernel], randomFloats(o.cout * (o.cin / o.groups) * o.kernel * o.kernel, r)),
    bias: o.bias ? t.f32([o.cout], randomFloats(o.cout, r)) : null,
    inIndex: inIndex ? t.u16(inIndex) : null,
    inScale: o.affine ? t.f32([o.cin], Float32Array.from({ length: o.cin }, () => 0.5 + r())) : null,
    inShift: o.affine ? t.f32([o.cin], randomFloats(o.cin, r)) : null,
    outIndex: outIndex ? t.u16(outIndex) : null,
  });
  ops.push({ kind: 'global_avgpool', inBuffer: 1, inChannel: 0, channels: outChannels, outBuffer: 2, outChannel: 0, inAct: 0, inScale: null, inShift: null });
  return writeModel(buildModel(buffers, ops, t.tensors, 2));
}

/** Relative error: max |a - b| / max(max |b|, 1e-6); Infinity when the lengths differ (extra outputs are wrong too). */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0, scale = 1e-6;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}
