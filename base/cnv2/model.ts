// In-memory form of a `.cnv2` model (docs/format.md, version 1): metadata, buffers, typed ops and tensors.
// Tensor data is kept exactly as stored: f16 tensors hold their raw half bits, so read/write round trips are exact;
// `rice` index tensors hold their decoded values and the parameters of their encoding.
import { OP_LAYOUT, type OpName } from './constants.js';
import { halvesToFloats } from './f16.js';

export { ACT, OP_LAYOUT, TENSOR_FIELDS } from './constants.js';

export type DType = 'f32' | 'f16' | 'u8' | 'u16' | 'u32' | 'rice';
export type TensorData = Float32Array | Uint16Array | Uint8Array | Uint32Array;

/**
 * `data` is Float32Array for f32, Uint16Array of half bits for f16, Uint32Array of the decoded values for rice,
 * and the matching integer array otherwise.
 */
export interface Tensor {
  dtype: DType;
  shape: number[]; // 1..4 dimensions, each >= 1
  data: TensorData;
  /** rice only: the encoding's run length and parameter. The writer uses them when they fit `data`, else it picks its own. */
  rice?: { runLength: number; k: number };
}

export type MetaEntry =
  | { key: string; type: 'u32[]'; value: Uint32Array }
  | { key: string; type: 'f32[]'; value: Float32Array }
  | { key: string; type: 'string'; value: string }
  | { key: string; type: 'string[]'; value: string[] };

export interface BufferShape {
  channels: number;
  height: number;
  width: number;
}

export type ActCode = number;

/** Tensor references are indices into Model.tensors; null is the format's NONE. */
export type TensorRef = number | null;

export interface Conv2dOp {
  kind: 'conv2d';
  inBuffer: number; inChannel: number; cin: number;
  outBuffer: number; outChannel: number; cout: number;
  kernel: number; stride: number; pad: number; groups: number;
  inAct: ActCode; outAct: ActCode;
  accumulate: number; // 0 or 1
  weight: number; bias: TensorRef; inIndex: TensorRef; inScale: TensorRef; inShift: TensorRef; outIndex: TensorRef;
}

export interface SeOp {
  kind: 'se';
  buffer: number; channel: number; channels: number; hidden: number;
  w1: number; b1: TensorRef; w2: number; b2: TensorRef;
  gate: number; // 0: sigmoid
}

export interface AvgPoolOp {
  kind: 'avgpool';
  inBuffer: number; inChannel: number; channels: number;
  outBuffer: number; outChannel: number; kernel: number; stride: number;
}

export interface GlobalAvgPoolOp {
  kind: 'global_avgpool';
  inBuffer: number; inChannel: number; channels: number;
  outBuffer: number; outChannel: number;
  inAct: ActCode; inScale: TensorRef; inShift: TensorRef;
}

export interface FcOp {
  kind: 'fc';
  inBuffer: number; inChannel: number; cin: number;
  outBuffer: number; outChannel: number; cout: number;
  outAct: ActCode; weight: number; bias: TensorRef;
}

export interface ChannelShuffleOp {
  kind: 'channel_shuffle';
  inBuffer: number; inChannel: number; channels: number;
  outBuffer: number; outChannel: number; groups: number;
}

/** Max over the in-bounds pixels of each window (padding never wins); since format 1.2. */
export interface MaxPoolOp {
  kind: 'maxpool';
  inBuffer: number; inChannel: number; channels: number;
  outBuffer: number; outChannel: number; kernel: number; stride: number; pad: number;
}

export type Op = Conv2dOp | SeOp | AvgPoolOp | GlobalAvgPoolOp | FcOp | ChannelShuffleOp | MaxPoolOp;
export type OpKind = Op['kind'];
// Every op kind has a layout in the format table and every layout an op kind.
const layoutOfEveryKind: Record<OpKind, unknown> = OP_LAYOUT;
const kindOfEveryLayout: Record<OpName, OpKind> = { conv2d: 'conv2d', se: 'se', avgpool: 'avgpool', global_avgpool: 'global_avgpool', fc: 'fc', channel_shuffle: 'channel_shuffle', maxpool: 'maxpool' };
void layoutOfEveryKind; void kindOfEveryLayout;

export interface Model {
  meta: MetaEntry[];          // in file order
  buffers: BufferShape[];
  inputBuffer: number;
  outputBuffer: number;
  ops: Op[];
  tensors: Tensor[];
}

/** Bytes per element as stored (rice: 4, the size of its in-memory values; its stored size is variable). */
export function dtypeSize(d: DType): number {
  return d === 'f32' || d === 'u32' || d === 'rice' ? 4 : d === 'f16' || d === 'u16' ? 2 : 1;
}

export function isIndexDtype(d: DType): boolean {
  return d === 'u8' || d === 'u16' || d === 'u32' || d === 'rice';
}

export function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Float values of a weight-like tensor (f16 expanded). */
export function tensorFloats(t: Tensor): Float32Array {
  if (t.dtype === 'f32') return t.data as Float32Array;
  if (t.dtype === 'f16') return halvesToFloats(t.data as Uint16Array);
  throw new Error(`tensor of dtype ${t.dtype} is not a float tensor`);
}

export function getMeta(model: Model, key: string): MetaEntry['value'] | undefined {
  return model.meta.find((e) => e.key === key)?.value;
}
