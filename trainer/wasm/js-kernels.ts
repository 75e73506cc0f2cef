// Elementwise, reduction and data-movement kernels of the wasm training backend. Large float32 tensors of the
// shapes the model makes (broadcasts along one run of axes, last-axis concat and slices, tiled pools) go to the wasm
// kernels on both threads, since their operands are usually in wasm memory already; the rest runs here in JS loops
// that walk the innermost axis with fixed strides (the CPU backend does generic index arithmetic per element).
// Outside float32 they defer to the CPU kernels.
import * as tf from '@tensorflow/tfjs';

import type { TrainKernels } from './kernels.js';

/**
 * What these kernels use of the backend that runs them (WasmTrainBackend in backend.ts, which imports this file:
 * declared here so the two do not import each other).
 */
export interface KernelHost {
  readonly kernels: TrainKernels;
  f32(t: tf.TensorInfo): Float32Array;
  output(shape: number[]): { ptr: number; values: Float32Array; info: tf.TensorInfo };
  withPointers<T>(inputs: tf.TensorInfo[], fn: (...ptrs: number[]) => T): T;
  ownValues(t: tf.TensorInfo): void;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: KernelHost; attrs?: tf.NamedAttrMap };
export type Kernel = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

function cpu(name: string, args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const k = tf.getKernel(name, 'cpu');
  if (!k) throw new Error(`the CPU backend has no ${name} kernel`);
  const out = k.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo | tf.TensorInfo[];
  for (const t of Array.isArray(out) ? out : [out]) args.backend.ownValues(t); // a CPU slice may be a view of x
  return out;
}

const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** Broadcast output shape of a and b (NumPy rules), or undefined if they do not broadcast. */
function broadcastShape(a: number[], b: number[]): number[] | undefined {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1, db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return undefined;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Element strides of `shape` read as `out` (0 along broadcast axes). */
function broadcastStrides(shape: number[], out: number[]): number[] {
  const r = out.length;
  const strides = new Array<number>(r).fill(0);
  let s = 1;
  for (let i = r - 1; i >= 0; i--) {
    const d = shape[shape.length - r + i] ?? 1;
    strides[i] = d === 1 ? 0 : s;
    s *= d;
  }
  return strides;
}

type BinOp = 0 | 1 | 2 | 3; // add, sub, mul, div

function binaryLoop(op: BinOp, av: Float32Array, bv: Float32Array, out: Float32Array, shape: number[], sa: number[], sb: number[]): void {
  const r = shape.length;
  if (r === 0 || (av.length === out.length && bv.length === out.length)) {
    const n = out.length;
    if (op === 0) for (let i = 0; i < n; i++) out[i] = av[i]! + bv[i]!;
    else if (op === 1) for (let i = 0; i < n; i++) out[i] = av[i]! - bv[i]!;
    else if (op === 2) for (let i = 0; i < n; i++) out[i] = av[i]! * bv[i]!;
    else for (let i = 0; i < n; i++) out[i] = av[i]! / bv[i]!;
    return;
  }
  const inner = shape[r - 1]!, ia = sa[r - 1]!, ib = sb[r - 1]!;
  const outer = out.length / inner;
  const idx = new Array<number>(r - 1).fill(0);
  let offA = 0, offB = 0;
  for (let row = 0; row < outer; row++) {
    const o = row * inner;
    if (op === 0) for (let j = 0; j < inner; j++) out[o + j] = av[offA + j * ia]! + bv[offB + j * ib]!;
    else if (op === 1) for (let j = 0; j < inner; j++) out[o + j] = av[offA + j * ia]! - bv[offB + j * ib]!;
    else if (op === 2) for (let j = 0; j < inner; j++) out[o + j] = av[offA + j * ia]! * bv[offB + j * ib]!;
    else for (let j = 0; j < inner; j++) out[o + j] = av[offA + j * ia]! / bv[offB + j * ib]!;
    // Odometer over the outer axes.
    for (let d = r - 2; d >= 0; d--) {
      idx[d]!++;
      offA += sa[d]!; offB += sb[d]!;
      if (idx[d]! < shape[d]!) break;
      offA -= sa[d]! * shape[d]!; offB -= sb[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
}

/**
 * [outer, mid, inner] view of `out` in which b (padded to out's rank) repeats along one contiguous run of axes,
 * or undefined if b broadcasts some other way.
 */
function midBroadcast(out: number[], b: number[]): [number, number, number] | undefined {
  const r = out.length;
  const bp = [...new Array<number>(r - b.length).fill(1), ...b];
  const bcast = out.map((d, i) => d !== 1 && bp[i] === 1);
  const first = bcast.indexOf(true), last = bcast.lastIndexOf(true);
  if (first < 0) return [1, 1, size(out)];
  for (let i = first; i <= last; i++) if (!bcast[i] && out[i] !== 1) return undefined;
  return [size(out.slice(0, first)), size(out.slice(first, last + 1)), size(out.slice(last + 1))];
}

/** Large float32 operands: the wasm kernel on both threads (operands in wasm memory already, or copied in). */
const WASM_MIN_ELEMENTS = 1 << 14;

function binary(name: string, op: BinOp): Kernel {
  return (args) => {
    let { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const shape = a.dtype === 'float32' && b.dtype === 'float32' ? broadcastShape(a.shape, b.shape) : undefined;
    if (!shape) return cpu(name, args);
    const n = size(shape);
    if (n >= WASM_MIN_ELEMENTS) {
      // a must have the full shape; add and mul commute, so a broadcast a can trade places with b.
      if (size(a.shape) !== n && (op === 0 || op === 2)) [a, b] = [b, a];
      const view = size(a.shape) === n ? midBroadcast(shape, b.shape) : undefined;
      if (view) {
        const out = args.backend.output(shape);
        args.backend.withPointers([a, b], (pa, pb) => args.backend.kernels.binaryP(op, pa!, pb!, out.ptr, view[0], view[1], view[2]));
        return out.info;
      }
      ({ a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo });
    }
    const out = args.backend.output(shape);
    binaryLoop(op, args.backend.f32(a), args.backend.f32(b), out.values, shape, broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape));
    return out.info;
  };
}

/** Copies runs along the innermost axis; used by slice and concat. */
const slice: Kernel = (args) => {
  const x = args.inputs.x as tf.TensorInfo;
  if (x.dtype !== 'float32' || x.shape.length === 0) return cpu('Slice', args);
  const r = x.shape.length;
  const beginA = args.attrs!.begin as number | number[], sizeA = args.attrs!.size as number | number[];
  const begin = Array.isArray(beginA) ? beginA.slice() : [beginA];
  const sz = Array.isArray(sizeA) ? sizeA.slice() : [sizeA];
  if (begin.length !== r || sz.length !== r) return cpu('Slice', args);
  for (let i = 0; i < r; i++) {
    if (sz[i] === -1) sz[i] = x.shape[i]! - begin[i]!;
    if (begin[i]! < 0 || sz[i]! < 0 || begin[i]! + sz[i]! > x.shape[i]!) return cpu('Slice', args);
  }
  const res = args.backend.output(sz);
  const outer = size(sz.slice(0, -1));
  if (outer * sz[r - 1]! >= WASM_MIN_ELEMENTS && begin.slice(0, -1).every((b) => b === 0) && sz.slice(0, -1).every((d, i) => d === x.shape[i])) {
    // A slice of the last axis only (the concat gradient): row copies in wasm.
    args.backend.withPointers([x], (px) => args.backend.kernels.copyColumnsP(px!, x.shape[r - 1]!, begin[r - 1]!, res.ptr, sz[r - 1]!, 0, sz[r - 1]!, outer));
    return res.info;
  }
  const xv = args.backend.f32(x);
  const out = res.values;
  const strides = broadcastStrides(x.shape, x.shape);
  const inner = sz[r - 1]!;
  const rows = inner === 0 ? 0 : out.length / inner;
  const idx = new Array<number>(r - 1).fill(0);
  let off = begin.reduce((s, b, i) => s + b * strides[i]!, 0);
  for (let row = 0; row < rows; row++) {
    if (inner < 64) for (let j = 0, o = row * inner; j < inner; j++) out[o + j] = xv[off + j]!;
    else out.set(xv.subarray(off, off + inner), row * inner);
    for (let d = r - 2; d >= 0; d--) {
      idx[d]!++;
      off += strides[d]!;
      if (idx[d]! < sz[d]!) break;
      off -= strides[d]! * sz[d]!;
      idx[d] = 0;
    }
  }
  return res.info;
};

const concat: Kernel = (args) => {
  const xs = Object.values(args.inputs) as tf.TensorInfo[];
  if (xs.length === 0 || xs.some((t) => t.dtype !== 'float32')) return cpu('Concat', args);
  const r = xs[0]!.shape.length;
  let axis = args.attrs!.axis as number;
  if (axis < 0) axis += r;
  if (r === 0 || axis < 0 || axis >= r) return cpu('Concat', args);
  const outer = size(xs[0]!.shape.slice(0, axis));
  for (const t of xs) if (t.shape.length !== r || size(t.shape.slice(0, axis)) !== outer) return cpu('Concat', args);
  const inners = xs.map((t) => size(t.shape.slice(axis)));
  const rowLen = inners.reduce((a, b) => a + b, 0);
  const shape = xs[0]!.shape.slice();
  shape[axis] = xs.reduce((s, t) => s + t.shape[axis]!, 0);
  const res = args.backend.output(shape);
  if (outer * rowLen >= WASM_MIN_ELEMENTS) {
    args.backend.withPointers(xs, (...ptrs) => {
      let at = 0;
      ptrs.forEach((p, k) => {
        args.backend.kernels.copyColumnsP(p, inners[k]!, 0, res.ptr, inners[k]!, at, rowLen, outer);
        at += inners[k]!;
      });
    });
    return res.info;
  }
  const out = res.values;
  let col = 0;
  xs.forEach((t, k) => {
    const v = args.backend.f32(t), n = inners[k]!;
    if (n < 64) {
      for (let row = 0; row < outer; row++) for (let j = 0, i = row * n, o = row * rowLen + col; j < n; j++) out[o + j] = v[i + j]!;
    } else {
      for (let row = 0; row < outer; row++) out.set(v.subarray(row * n, row * n + n), row * rowLen + col);
    }
    col += n;
  });
  return res.info;
};

/**
 * Copies of whole column ranges between row-major matrices, in wasm on both threads when large (copy_columns):
 * each copy takes columns [c0, c0+n) of source `src` (rows of `cols`) into columns [d0, d0+n) of output `out` (rows
 * of `dcols`), for every one of `rows` rows. Split, stack and unstack along any axis are such copies.
 */
function copyColumnRanges(backend: KernelHost, srcs: tf.TensorInfo[], outs: ReturnType<KernelHost['output']>[], rows: number,
  copies: { src: number; cols: number; c0: number; out: number; n: number; d0: number; dcols: number }[]): void {
  const total = copies.reduce((s, c) => s + c.n, 0) * rows;
  if (total >= WASM_MIN_ELEMENTS) {
    backend.withPointers(srcs, (...ptrs) => {
      for (const c of copies) backend.kernels.copyColumnsP(ptrs[c.src]!, c.cols, c.c0, outs[c.out]!.ptr, c.n, c.d0, c.dcols, rows);
    });
    return;
  }
  for (const c of copies) {
    const v = backend.f32(srcs[c.src]!), o = outs[c.out]!.values;
    for (let row = 0; row < rows; row++) {
      const i = row * c.cols + c.c0, d = row * c.dcols + c.d0;
      for (let j = 0; j < c.n; j++) o[d + j] = v[i + j]!;
    }
  }
}

/** tf.split along any axis (the channel split of ShuffleNet units): column ranges of x seen as [outer, size*inner]. */
const splitV: Kernel = (args) => {
  const x = args.inputs.x as tf.TensorInfo;
  if (x.dtype !== 'float32' || x.shape.length === 0 || size(x.shape) === 0) return cpu('SplitV', args);
  const axis = tf.util.parseAxisParam(args.attrs!.axis as number, x.shape)[0]!;
  const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, args.attrs!.numOrSizeSplits as number | number[], axis);
  const outer = size(x.shape.slice(0, axis)), inner = size(x.shape.slice(axis + 1)), cols = x.shape[axis]! * inner;
  const outs = sizes.map((sz) => { const shape = x.shape.slice(); shape[axis] = sz; return args.backend.output(shape); });
  let at = 0;
  const copies = sizes.map((sz, k) => { const c = { src: 0, cols, c0: at, out: k, n: sz * inner, d0: 0, dcols: sz * inner }; at += sz * inner; return c; });
  copyColumnRanges(args.backend, [x], outs, outer, copies);
  return outs.map((o) => o.info);
};

/** tf.stack: input k becomes columns [k*inner, (k+1)*inner) of the output seen as [outer, N*inner]. */
const pack: Kernel = (args) => {
  const xs = Object.values(args.inputs) as tf.TensorInfo[];
  const first = xs[0];
  if (!first || xs.some((t) => t.dtype !== 'float32' || !tf.util.arraysEqual(t.shape, first.shape)) || size(first.shape) === 0) return cpu('Pack', args);
  const r = first.shape.length;
  let axis = args.attrs!.axis as number;
  if (axis < 0) axis += r + 1;
  if (axis < 0 || axis > r) return cpu('Pack', args);
  const outer = size(first.shape.slice(0, axis)), inner = size(first.shape.slice(axis)), N = xs.length;
  const out = args.backend.output([...first.shape.slice(0, axis), N, ...first.shape.slice(axis)]);
  copyColumnRanges(args.backend, xs, [out], outer, xs.map((_, k) => ({ src: k, cols: inner, c0: 0, out: 0, n: inner, d0: k * inner, dcols: N * inner })));
  return out.info;
};

/** tf.unstack (the gradient of stack): output k is columns [k*inner, (k+1)*inner) of the input seen as [outer, N*inner]. */
const unpack: Kernel = (args) => {
  const x = args.inputs.value as tf.TensorInfo;
  if (x.dtype !== 'float32' || x.shape.length === 0 || size(x.shape) === 0) return cpu('Unpack', args);
  const axis = tf.util.parseAxisParam(args.attrs!.axis as number, x.shape)[0]!;
  const N = x.shape[axis]!;
  const outer = size(x.shape.slice(0, axis)), inner = size(x.shape.slice(axis + 1));
  const shape = [...x.shape.slice(0, axis), ...x.shape.slice(axis + 1)];
  const outs = Array.from({ length: N }, () => args.backend.output(shape));
  copyColumnRanges(args.backend, [x], outs, outer, outs.map((_, k) => ({ src: 0, cols: N * inner, c0: k * inner, out: k, n: inner, d0: 0, dcols: inner })));
  return outs.map((o) => o.info);
};

const pair = (v: unknown): [number, number] => (Array.isArray(v) ? [v[0] as number, v[1] as number] : [v as number, v as number]);

/**
 * Windows that tile the input exactly ('valid', filter == stride, or one window over the whole map, whatever the
 * stride): the 2x2 transition pools and the global pools of SE and the head.
 */
function tiledPool(xShape: number[], attrs: tf.NamedAttrMap): [number, number] | undefined {
  const [fh, fw] = pair(attrs.filterSize), [sh, sw] = pair(attrs.strides);
  if (xShape.length !== 4 || attrs.pad !== 'valid') return undefined;
  const tiles = (size: number, f: number, s: number): boolean => f === size || (f === s && size % f === 0);
  return tiles(xShape[1]!, fh, sh) && tiles(xShape[2]!, fw, sw) ? [fh, fw] : undefined;
}

const avgPool: Kernel = (args) => {
  const x = args.inputs.x as tf.TensorInfo;
  const win = x.dtype === 'float32' ? tiledPool(x.shape, args.attrs!) : undefined;
  if (!win) return cpu('AvgPool', args);
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const res = args.backend.output([n, h / win[0], w / win[1], c]);
  args.backend.withPointers([x], (px) => args.backend.kernels.avgPoolP(px!, n, h, w, c, win[0], win[1], res.ptr));
  return res.info;
};

const avgPoolGrad: Kernel = (args) => {
  const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const win = dy.dtype === 'float32' ? tiledPool(input.shape, args.attrs!) : undefined;
  if (!win) return cpu('AvgPoolGrad', args);
  const [n, h, w, c] = input.shape as [number, number, number, number];
  const res = args.backend.output([n, h, w, c]);
  args.backend.withPointers([dy], (pdy) => args.backend.kernels.avgPoolGradP(pdy!, n, h, w, c, win[0], win[1], res.ptr));
  return res.info;
};

const transpose: Kernel = (args) => {
  const x = args.inputs.x as tf.TensorInfo;
  const perm = args.attrs!.perm as number[];
  // Rank-2 (and reshaped-to-2 cases such as [1, M, N]) in cache-sized tiles; the rest on the CPU kernel.
  if (x.dtype !== 'float32' || x.shape.length !== 2 || perm[0] !== 1) return cpu('Transpose', args);
  const [rows, cols] = x.shape as [number, number];
  const xv = args.backend.f32(x);
  const res = args.backend.output([cols, rows]);
  const out = res.values;
  const T = 32;
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(rows, r0 + T);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(cols, c0 + T);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * rows + r] = xv[r * cols + c]!;
    }
  }
  return res.info;
};

/** Sum over any set of axes: one pass over the input with the output offset advanced by per-axis strides. */
const sum: Kernel = (args) => {
  const x = args.inputs.x as tf.TensorInfo;
  if (x.dtype !== 'float32' || x.shape.length === 0) return cpu('Sum', args);
  const r = x.shape.length;
  const axisA = args.attrs!.axis as number | number[] | null | undefined;
  // tf.sum(x) passes axis null: every axis.
  const axes = axisA === null || axisA === undefined ? x.shape.map((_, i) => i) : (Array.isArray(axisA) ? axisA : [axisA]).map((a) => (a < 0 ? a + r : a));
  if (axes.some((a) => a < 0 || a >= r)) return cpu('Sum', args);
  const reduced = x.shape.map((_, i) => axes.includes(i));
  const outShape = x.shape.filter((_, i) => !reduced[i]);
  // Output strides per input axis (0 along reduced axes).
  const ostr = new Array<number>(r).fill(0);
  for (let i = r - 1, s = 1; i >= 0; i--) if (!reduced[i]) { ostr[i] = s; s *= x.shape[i]!; }
  const res = args.backend.output(args.attrs!.keepDims ? x.shape.map((d, i) => (reduced[i] ? 1 : d)) : outShape);
  const out = res.values.fill(0);
  const xv = args.backend.f32(x);
  const inner = x.shape[r - 1]!, io = ostr[r - 1]!;
  const rows = inner === 0 ? 0 : xv.length / inner;
  const idx = new Array<number>(r - 1).fill(0);
  let off = 0;
  for (let row = 0; row < rows; row++) {
    const base = row * inner;
    if (io === 0) {
      let acc = 0;
      for (let j = 0; j < inner; j++) acc += xv[base + j]!;
      out[off]! += acc;
    } else {
      for (let j = 0; j < inner; j++) out[off + j]! += xv[base + j]!;
    }
    for (let d = r - 2; d >= 0; d--) {
      idx[d]!++;
      off += ostr[d]!;
      if (idx[d]! < x.shape[d]!) break;
      off -= ostr[d]! * x.shape[d]!;
      idx[d] = 0;
    }
  }
  return res.info;
};

export const JS_KERNELS: Record<string, Kernel> = {
  Sum: sum,
  Add: binary('Add', 0),
  Sub: binary('Sub', 1),
  Multiply: binary('Multiply', 2),
  RealDiv: binary('RealDiv', 3),
  Slice: slice,
  Concat: concat,
  SplitV: splitV,
  Pack: pack,
  Unpack: unpack,
  AvgPool: avgPool,
  AvgPoolGrad: avgPoolGrad,
  Transpose: transpose,
};
