// The 'cdnv2-wasm' TensorFlow.js backend: the CPU backend with the kernels training spends its time in replaced
// by AssemblyScript SIMD kernels (build/cdnv2-train.wasm) that use both cores. Every CPU kernel is registered for
// it too, so any op works; the replaced ones fall back to the CPU implementation outside their fast path.
import * as tf from '@tensorflow/tfjs';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

import { JS_KERNELS, type KernelHost } from './js-kernels.js';
import { TrainKernels, type Activation, type DepthwiseShape, type PoolShape, type TrainKernelOptions } from './kernels.js';

export const WASM_BACKEND = 'cdnv2-wasm';

/** Custom kernels (not in TF.js): the model calls them by name when this backend is active. */
export const GROUP_CONV3X3 = 'Cdnv2GroupConv3x3';
export const GROUP_CONV3X3_INPUT_GRAD = 'Cdnv2GroupConv3x3InputGrad';
export const GROUP_CONV3X3_FILTER_GRAD = 'Cdnv2GroupConv3x3FilterGrad';
export const BATCH_NORM_ACT = 'Cdnv2BatchNormAct';
export const BATCH_NORM_ACT_GRAD = 'Cdnv2BatchNormActGrad';
export const AFFINE_ACT = 'Cdnv2AffineAct';

/**
 * Tensors made by this backend's own kernels live in the kernels' shared wasm memory ("resident"), so the next
 * kernel reads them in place; tensors from CPU kernels or from the user stay JS arrays and are copied in when a
 * wasm kernel needs them. CPU kernels read resident tensors through views, as any other values.
 */
export class WasmTrainBackend extends MathBackendCPU implements KernelHost {
  readonly kernels: TrainKernels;
  private readonly resident = new Map<tf.DataId, number>();
  constructor(opts: TrainKernelOptions) {
    super();
    this.kernels = new TrainKernels(opts);
  }
  override dispose(): void {
    super.dispose();
    this.kernels.dispose();
  }
  override disposeData(dataId: tf.DataId, force?: boolean): boolean {
    const gone = super.disposeData(dataId, force);
    const ptr = this.resident.get(dataId);
    if (gone && ptr !== undefined) {
      this.resident.delete(dataId);
      this.kernels.free(ptr);
    }
    return gone;
  }
  /** Reads hand out copies of resident data: the block is reused once the tensor is disposed. */
  override readSync(dataId: tf.DataId): ReturnType<MathBackendCPU['readSync']> {
    const v = super.readSync(dataId);
    return this.resident.has(dataId) ? (v as Float32Array).slice() : v;
  }
  f32(t: tf.TensorInfo): Float32Array {
    return this.data.get(t.dataId).values as Float32Array;
  }
  /** A float32 output in wasm memory; its contents are undefined until the kernel writes them. */
  output(shape: number[]): { ptr: number; values: Float32Array; info: tf.TensorInfo } {
    const n = shape.reduce((a, b) => a * b, 1);
    const ptr = this.kernels.alloc(n);
    const values = this.kernels.view(ptr, n);
    const info = this.makeTensorInfo(shape, 'float32', values);
    this.resident.set(info.dataId, ptr);
    return { ptr, values, info };
  }
  /**
   * Runs fn with the pointers of `inputs` in wasm memory: resident data in place, other data copied into blocks
   * that are freed afterwards.
   */
  withPointers<T>(inputs: tf.TensorInfo[], fn: (...ptrs: number[]) => T): T {
    const temps: number[] = [];
    try {
      return fn(...inputs.map((t) => {
        const p = this.resident.get(t.dataId);
        if (p !== undefined) return p;
        const v = this.f32(t);
        const q = this.kernels.alloc(v.length);
        temps.push(q);
        this.kernels.view(q, v.length).set(v);
        return q;
      }));
    } finally {
      for (const p of temps) this.kernels.free(p);
    }
  }
  /**
   * CPU kernels may return a view of their input's values (a contiguous slice, split or unstack is a subarray). For a
   * resident input that view would outlive its block once the input is disposed, so such an output gets a copy.
   */
  ownValues(t: tf.TensorInfo): void {
    if (this.resident.has(t.dataId)) return;
    const d = this.data.get(t.dataId);
    if (d && ArrayBuffer.isView(d.values) && d.values.buffer instanceof SharedArrayBuffer) d.values = (d.values as Float32Array).slice();
  }
  out(shape: number[], values: Float32Array): tf.TensorInfo {
    return this.makeTensorInfo(shape, 'float32', values);
  }
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: WasmTrainBackend; attrs?: tf.NamedAttrMap };
type Kernel = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

function cpuKernel(name: string): tf.KernelFunc {
  const k = tf.getKernel(name, 'cpu');
  if (!k) throw new Error(`the CPU backend has no ${name} kernel`);
  return withOwnValues(k.kernelFunc);
}

/** A CPU kernel whose outputs never alias wasm memory they do not own (see WasmTrainBackend.ownValues). */
function withOwnValues(fn: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const out = fn(args);
    const backend = args.backend as WasmTrainBackend;
    for (const t of Array.isArray(out) ? out : [out]) backend.ownValues(t);
    return out;
  };
}

const pair = (v: number | number[] | undefined): number[] => (Array.isArray(v) ? v : [v ?? 1, v ?? 1]);

/** A 3x3, stride 1, 'same' (or padding 1) NHWC convolution without dilation: the fast path. */
function isSame3x3(filterShape: number[], attrs: tf.NamedAttrMap): boolean {
  const strides = pair(attrs.strides as number | number[]);
  const dil = pair(attrs.dilations as number | number[] | undefined);
  const pad = attrs.pad;
  return filterShape[0] === 3 && filterShape[1] === 3 && strides[0] === 1 && strides[1] === 1 && dil[0] === 1 && dil[1] === 1 &&
    (pad === 'same' || pad === 1) && (attrs.dataFormat ?? 'NHWC') === 'NHWC';
}

const batchMatMul: Kernel = ({ inputs, backend, attrs }) => {
  const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
  const ra = a.shape.length, rb = b.shape.length;
  const batchA = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  const batchB = b.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || ra !== rb || batchA !== batchB) {
    return cpuKernel('BatchMatMul')({ inputs, backend, attrs });
  }
  const M = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const K = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const N = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  const out = backend.output([...a.shape.slice(0, -2), M, N]);
  backend.withPointers([a, b], (pa, pb) => {
    for (let i = 0; i < batchA; i++) {
      backend.kernels.matmulP(pa! + i * M * K * 4, pb! + i * K * N * 4, out.ptr + i * M * N * 4, M, K, N, transposeA, transposeB);
    }
  });
  return out.info;
};

function conv(backend: WasmTrainBackend, x: tf.TensorInfo, filter: tf.TensorInfo, groups: number): tf.TensorInfo {
  const [n, h, w, cin] = x.shape as [number, number, number, number];
  const cout = filter.shape[3]!;
  const out = backend.output([n, h, w, cout]);
  backend.withPointers([x], (px) => backend.kernels.conv3x3P(px!, backend.f32(filter), out.ptr, n, h, w, cin, cout, groups));
  return out.info;
}

function convInputGrad(backend: WasmTrainBackend, dy: tf.TensorInfo, filter: tf.TensorInfo, groups: number): tf.TensorInfo {
  const [n, h, w, cout] = dy.shape as [number, number, number, number];
  const cin = filter.shape[2]! * groups;
  const out = backend.output([n, h, w, cin]);
  backend.withPointers([dy], (pdy) => backend.kernels.conv3x3BackpropInputP(pdy!, backend.f32(filter), out.ptr, n, h, w, cin, cout, groups));
  return out.info;
}

function convFilterGrad(backend: WasmTrainBackend, x: tf.TensorInfo, dy: tf.TensorInfo, groups: number): tf.TensorInfo {
  const [n, h, w, cin] = x.shape as [number, number, number, number];
  const cout = dy.shape[3]!;
  const dw = backend.withPointers([x, dy], (px, pdy) => backend.kernels.conv3x3BackpropFilterP(px!, pdy!, n, h, w, cin, cout, groups));
  return backend.out([3, 3, cin / groups, cout], dw);
}

const conv2d: Kernel = ({ inputs, backend, attrs }) => {
  const { x, filter } = inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
  if (x.dtype !== 'float32' || !isSame3x3(filter.shape, attrs!)) return cpuKernel('Conv2D')({ inputs, backend, attrs });
  return conv(backend, x, filter, 1);
};

const conv2dBackpropInput: Kernel = ({ inputs, backend, attrs }) => {
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  if (dy.dtype !== 'float32' || !isSame3x3(filter.shape, attrs!)) return cpuKernel('Conv2DBackpropInput')({ inputs, backend, attrs });
  return convInputGrad(backend, dy, filter, 1);
};

const conv2dBackpropFilter: Kernel = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (x.dtype !== 'float32' || !isSame3x3(a.filterShape, attrs!)) return cpuKernel('Conv2DBackpropFilter')({ inputs, backend, attrs });
  return convFilterGrad(backend, x, dy, 1);
};

const groupConv: Kernel = ({ inputs, backend, attrs }) =>
  conv(backend, inputs.x as tf.TensorInfo, inputs.filter as tf.TensorInfo, attrs!.groups as number);
const groupConvInputGrad: Kernel = ({ inputs, backend, attrs }) =>
  convInputGrad(backend, inputs.dy as tf.TensorInfo, inputs.filter as tf.TensorInfo, attrs!.groups as number);
const groupConvFilterGrad: Kernel = ({ inputs, backend, attrs }) =>
  convFilterGrad(backend, inputs.x as tf.TensorInfo, inputs.dy as tf.TensorInfo, attrs!.groups as number);

const batchNormAct: Kernel = ({ inputs, backend, attrs }) => {
  const { x, gamma, beta } = inputs as { x: tf.TensorInfo; gamma: tf.TensorInfo; beta: tf.TensorInfo };
  const [P, C] = x.shape as [number, number];
  const y = backend.output([P, C]);
  const r = backend.withPointers([x], (px) =>
    backend.kernels.batchNormActP(px!, y.ptr, P, C, backend.f32(gamma), backend.f32(beta), attrs!.epsilon as number, attrs!.activation as Activation));
  return [y.info, backend.out([C], r.mean), backend.out([C], r.variance), backend.out([C], r.rstd)];
};

const batchNormActGrad: Kernel = ({ inputs, backend, attrs }) => {
  const { x, dy, gamma, beta, mean, rstd } = inputs as Record<string, tf.TensorInfo>;
  const [P, C] = x!.shape as [number, number];
  const dx = backend.output([P, C]);
  const r = backend.withPointers([x!, dy!], (px, pdy) => backend.kernels.batchNormActGradP(px!, pdy!, dx.ptr, P, C,
    backend.f32(gamma!), backend.f32(beta!), backend.f32(mean!), backend.f32(rstd!), attrs!.activation as Activation));
  return [dx.info, backend.out([C], r.dgamma), backend.out([C], r.dbeta)];
};

const affineAct: Kernel = ({ inputs, backend, attrs }) => {
  const { x, scale, shift } = inputs as { x: tf.TensorInfo; scale: tf.TensorInfo; shift: tf.TensorInfo };
  const [P, C] = x.shape as [number, number];
  const y = backend.output([P, C]);
  backend.withPointers([x], (px) => backend.kernels.affineActP(px!, y.ptr, P, C, backend.f32(scale), backend.f32(shift), attrs!.activation as Activation));
  return y.info;
};

/**
 * The shape of a depthwise convolution the wasm kernels run: NHWC float32, 3x3, channel multiplier 1, no dilation,
 * the same stride (1 or 2) both ways, pads of at most 2 ('same', 'valid' or explicit); undefined otherwise.
 */
function depthwiseFastPath(xShape: number[], filterShape: number[], attrs: tf.NamedAttrMap): DepthwiseShape | undefined {
  if (xShape.length !== 4 || filterShape.length !== 4 || filterShape[0] !== 3 || filterShape[1] !== 3 || filterShape[3] !== 1) return undefined;
  if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC') return undefined;
  const strides = pair(attrs.strides as number | number[]);
  const dil = pair(attrs.dilations as number | number[] | undefined);
  if (strides[0] !== strides[1] || (strides[0] !== 1 && strides[0] !== 2) || dil[0] !== 1 || dil[1] !== 1) return undefined;
  const info = tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], filterShape as [number, number, number, number],
    strides as [number, number], 1, attrs.pad as 'same' | 'valid' | number | tf.backend_util.ExplicitPadding,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined, true);
  const p = info.padInfo;
  if ([p.top, p.bottom, p.left, p.right].some((v) => v < 0 || v > 2) || info.outHeight < 1 || info.outWidth < 1 || info.batchSize < 1 || info.inChannels < 1) return undefined;
  return { N: info.batchSize, H: info.inHeight, W: info.inWidth, C: info.inChannels, OH: info.outHeight, OW: info.outWidth,
    stride: strides[0]!, padTop: p.top, padLeft: p.left };
}

const depthwiseConv2d: Kernel = ({ inputs, backend, attrs }) => {
  const { x, filter } = inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
  const g = x.dtype === 'float32' && filter.dtype === 'float32' ? depthwiseFastPath(x.shape, filter.shape, attrs!) : undefined;
  if (!g) return cpuKernel('DepthwiseConv2dNative')({ inputs, backend, attrs });
  const out = backend.output([g.N, g.OH, g.OW, g.C]);
  backend.withPointers([x, filter], (px, pw) => backend.kernels.depthwiseP(px!, pw!, out.ptr, g));
  return out.info;
};

const depthwiseConv2dBackpropInput: Kernel = ({ inputs, backend, attrs }) => {
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const inputShape = attrs!.inputShape as number[];
  const g = dy.dtype === 'float32' && filter.dtype === 'float32' ? depthwiseFastPath(inputShape, filter.shape, attrs!) : undefined;
  if (!g || g.OH !== dy.shape[1] || g.OW !== dy.shape[2]) return cpuKernel('DepthwiseConv2dNativeBackpropInput')({ inputs, backend, attrs });
  const out = backend.output([g.N, g.H, g.W, g.C]);
  backend.withPointers([dy], (pdy) => backend.kernels.depthwiseBackpropInputP(pdy!, backend.f32(filter), out.ptr, g));
  return out.info;
};

const depthwiseConv2dBackpropFilter: Kernel = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const filterShape = attrs!.filterShape as number[];
  const g = x.dtype === 'float32' && dy.dtype === 'float32' ? depthwiseFastPath(x.shape, filterShape, attrs!) : undefined;
  if (!g || g.OH !== dy.shape[1] || g.OW !== dy.shape[2]) return cpuKernel('DepthwiseConv2dNativeBackpropFilter')({ inputs, backend, attrs });
  const dw = backend.withPointers([x, dy], (px, pdy) => backend.kernels.depthwiseBackpropFilterP(px!, pdy!, g));
  return backend.out([3, 3, g.C, 1], dw);
};

/** The max pool the wasm kernels run: NHWC float32, any window, stride and padding with outputs; undefined otherwise. */
function maxPoolShape(xShape: number[], attrs: tf.NamedAttrMap): PoolShape | undefined {
  if (xShape.length !== 4) return undefined;
  const info = tf.backend_util.computePool2DInfo(xShape as [number, number, number, number], attrs.filterSize as [number, number] | number,
    attrs.strides as [number, number] | number, 1, attrs.pad as 'same' | 'valid' | number | tf.backend_util.ExplicitPadding,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined);
  if (info.outHeight < 1 || info.outWidth < 1 || info.batchSize < 1 || info.inChannels < 1 || info.inHeight < 1 || info.inWidth < 1) return undefined;
  return { N: info.batchSize, H: info.inHeight, W: info.inWidth, C: info.inChannels, OH: info.outHeight, OW: info.outWidth,
    fh: info.filterHeight, fw: info.filterWidth, sh: info.strideHeight, sw: info.strideWidth, padTop: info.padInfo.top, padLeft: info.padInfo.left };
}

const maxPool: Kernel = ({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: tf.TensorInfo };
  const g = x.dtype === 'float32' ? maxPoolShape(x.shape, attrs!) : undefined;
  if (!g) return cpuKernel('MaxPool')({ inputs, backend, attrs });
  const out = backend.output([g.N, g.OH, g.OW, g.C]);
  backend.withPointers([x], (px) => backend.kernels.maxPoolP(px!, out.ptr, g));
  return out.info;
};

const maxPoolGrad: Kernel = ({ inputs, backend, attrs }) => {
  const { dy, input } = inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const g = dy.dtype === 'float32' && input.dtype === 'float32' ? maxPoolShape(input.shape, attrs!) : undefined;
  if (!g || g.OH !== dy.shape[1] || g.OW !== dy.shape[2]) return cpuKernel('MaxPoolGrad')({ inputs, backend, attrs });
  const out = backend.output([g.N, g.H, g.W, g.C]);
  backend.withPointers([input, dy], (px, pdy) => backend.kernels.maxPoolGradP(px!, pdy!, out.ptr, g));
  return out.info;
};

const OVERRIDES: Record<string, Kernel> = {
  ...JS_KERNELS,
  BatchMatMul: batchMatMul,
  Conv2D: conv2d,
  Conv2DBackpropInput: conv2dBackpropInput,
  Conv2DBackpropFilter: conv2dBackpropFilter,
  DepthwiseConv2dNative: depthwiseConv2d,
  DepthwiseConv2dNativeBackpropInput: depthwiseConv2dBackpropInput,
  DepthwiseConv2dNativeBackpropFilter: depthwiseConv2dBackpropFilter,
  MaxPool: maxPool,
  MaxPoolGrad: maxPoolGrad,
  [GROUP_CONV3X3]: groupConv,
  [GROUP_CONV3X3_INPUT_GRAD]: groupConvInputGrad,
  [GROUP_CONV3X3_FILTER_GRAD]: groupConvFilterGrad,
  [BATCH_NORM_ACT]: batchNormAct,
  [BATCH_NORM_ACT_GRAD]: batchNormActGrad,
  [AFFINE_ACT]: affineAct,
};

/** Kernel names this backend implements itself (wasm or plain JS), for tests and reports. */
export const OWN_KERNELS = Object.keys(OVERRIDES);

let registered: false | { isa: 'simd' | 'relaxed' } = false;

/** Registers the backend (once); returns false when this engine cannot run it (no wasm SIMD or no build). */
export function registerWasmTrainBackend(opts: TrainKernelOptions = {}): false | { isa: 'simd' | 'relaxed' } {
  if (registered) return registered;
  let isa: 'simd' | 'relaxed';
  try {
    const probe = new TrainKernels({ ...opts, threads: 1 }); // compiles the module: fails early without SIMD or build
    isa = probe.isa;
    probe.dispose();
  } catch {
    return false;
  }
  tf.registerBackend(WASM_BACKEND, () => new WasmTrainBackend(opts), 0);
  for (const k of tf.getKernelsForBackend('cpu')) {
    if (!(k.kernelName in OVERRIDES)) tf.registerKernel({ ...k, backendName: WASM_BACKEND, kernelFunc: withOwnValues(k.kernelFunc) });
  }
  for (const [kernelName, fn] of Object.entries(OVERRIDES)) {
    tf.registerKernel({ kernelName, backendName: WASM_BACKEND, kernelFunc: fn as unknown as tf.KernelFunc });
  }
  registered = { isa };
  return registered;
}

/** Whether the active backend runs the fused training kernels. */
export function fusedKernelsActive(): boolean {
  return tf.getBackend() === WASM_BACKEND;
}
