// Plain reference implementations of the runtime's numeric kernels (assembly/kernels/*) and of the whole-op semantics
// of docs/format.md opcodes 1-7. Written for obviousness, not speed: float64 accumulation, one output at a time, no
// tiling. Feature maps are channel-planar (CHW) Float32Arrays; channel c of an h x w map starts at c*h*w.

export const ACT_NONE = 0;
export const ACT_RELU = 1;
export const ACT_HARDSWISH = 2;

/** Activation by code: 0 none, 1 ReLU, 2 hardswish x*min(max(x+3,0),6)/6. */
export function act(x: number, code: number): number {
  if (code === ACT_RELU) return Math.max(x, 0);
  if (code === ACT_HARDSWISH) return (x * Math.min(Math.max(x + 3, 0), 6)) / 6;
  return x;
}

export type IndexArray = ArrayLike<number>;

/** activate_inplace: returns act applied to every element (the input is not modified). */
export function activateRef(x: Float32Array, code: number): Float32Array {
  return Float32Array.from(x, (v) => act(v, code));
}

export interface PrepareParams {
  src: Float32Array; hw: number; n: number; act: number;
  index?: IndexArray | null; scale?: Float32Array | null; shift?: Float32Array | null;
}
/** prepare_channels: dst[i] = act(src[index ? index[i] : i] * scale[i] + shift[i]) plane-wise, n planes out. */
export function prepareChannelsRef(p: PrepareParams): Float32Array {
  const dst = new Float32Array(p.n * p.hw);
  for (let i = 0; i < p.n; i++) {
    const c = p.index ? p.index[i] : i;
    const a = p.scale ? p.scale[i] : 1, b = p.shift ? p.shift[i] : 0;
    for (let q = 0; q < p.hw; q++) dst[i * p.hw + q] = act(p.src[c * p.hw + q] * a + b, p.act);
  }
  return dst;
}

export interface ConvParams {
  /** cin planes of h x w */
  input: Float32Array; cin: number; h: number; w: number;
  /** [cout][cin/groups][kernel][kernel] */
  weight: Float32Array; bias?: Float32Array | null;
  cout: number; groups: number; kernel: number; stride: number; pad: number;
  outAct: number;
  /** output plane of output o (default o); values may repeat when accumulate is set */
  outIndex?: IndexArray | null;
  accumulate: boolean;
  /** initial output contents (outPlanes x outH x outW), default zeros; not modified */
  out?: Float32Array | null;
  /** planes in the output map (default cout) */
  outPlanes?: number;
}

/** Output size of a convolution or pooling window: floor((n + 2*pad - kernel)/stride) + 1. */
export function outSize(n: number, kernel: number, stride: number, pad: number): number {
  return Math.floor((n + 2 * pad - kernel) / stride) + 1;
}

/**
 * conv2d_group / conv1x1_group (kernel 1): y_o = outAct(bias[o] + sum w * x) with zero padding, output o in group
 * floor(o / (cout/groups)) reading that group's inputs, written to (or added to) plane outIndex[o]. Returns a new
 * array of outPlanes x outH x outW.
 */
export function convGroupRef(p: ConvParams): Float32Array {
  const oh = outSize(p.h, p.kernel, p.stride, p.pad), ow = outSize(p.w, p.kernel, p.stride, p.pad);
  const planes = p.outPlanes ?? p.cout;
  const out = p.out ? Float32Array.from(p.out) : new Float32Array(planes * oh * ow);
  const cinG = p.cin / p.groups, coutG = p.cout / p.groups, k = p.kernel;
  for (let o = 0; o < p.cout; o++) {
    const g = Math.floor(o / coutG);
    const target = p.outIndex ? p.outIndex[o] : o;
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let s = p.bias ? p.bias[o] : 0;
        for (let i = 0; i < cinG; i++) {
          const plane = (g * cinG + i) * p.h * p.w;
          for (let ky = 0; ky < k; ky++) {
            const y = oy * p.stride + ky - p.pad;
            if (y < 0 || y >= p.h) continue;
            for (let kx = 0; kx < k; kx++) {
              const x = ox * p.stride + kx - p.pad;
              if (x < 0 || x >= p.w) continue;
              s += p.weight[((o * cinG + i) * k + ky) * k + kx] * p.input[plane + y * p.w + x];
            }
          }
        }
        const v = act(s, p.outAct);
        const at = (target * oh + oy) * ow + ox;
        out[at] = p.accumulate ? out[at] + v : v;
      }
    }
  }
  return out;
}

export interface AvgPoolParams { input: Float32Array; channels: number; h: number; w: number; kernel: number; stride: number }
/** avgpool: mean of each kernel x kernel window, no padding. Returns channels x outH x outW. */
export function avgpoolRef(p: AvgPoolParams): Float32Array {
  const oh = outSize(p.h, p.kernel, p.stride, 0), ow = outSize(p.w, p.kernel, p.stride, 0);
  const out = new Float32Array(p.channels * oh * ow);
  for (let c = 0; c < p.channels; c++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let s = 0;
        for (let ky = 0; ky < p.kernel; ky++) {
          for (let kx = 0; kx < p.kernel; kx++) s += p.input[(c * p.h + oy * p.stride + ky) * p.w + ox * p.stride + kx];
        }
        out[(c * oh + oy) * ow + ox] = s / (p.kernel * p.kernel);
      }
    }
  }
  return out;
}

export interface MaxPoolParams { input: Float32Array; channels: number; h: number; w: number; kernel: number; stride: number; pad: number }
/** maxpool: max over the in-bounds pixels of each window (padding never wins, as PyTorch's MaxPool2d). */
export function maxpoolRef(p: MaxPoolParams): Float32Array {
  const oh = outSize(p.h, p.kernel, p.stride, p.pad), ow = outSize(p.w, p.kernel, p.stride, p.pad);
  const out = new Float32Array(p.channels * oh * ow);
  for (let c = 0; c < p.channels; c++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let m = -Infinity;
        for (let ky = 0; ky < p.kernel; ky++) {
          const y = oy * p.stride + ky - p.pad;
          if (y < 0 || y >= p.h) continue;
          for (let kx = 0; kx < p.kernel; kx++) {
            const x = ox * p.stride + kx - p.pad;
            if (x >= 0 && x < p.w) m = Math.max(m, p.input[(c * p.h + y) * p.w + x]);
          }
        }
        out[(c * oh + oy) * ow + ox] = m;
      }
    }
  }
  return out;
}

export interface GlobalAvgPoolParams {
  input: Float32Array; channels: number; hw: number; act: number;
  scale?: Float32Array | null; shift?: Float32Array | null;
}
/** global_avgpool: out[c] = mean over the plane of act(x * scale[c] + shift[c]). */
export function globalAvgpoolRef(p: GlobalAvgPoolParams): Float32Array {
  const out = new Float32Array(p.channels);
  for (let c = 0; c < p.channels; c++) {
    const a = p.scale ? p.scale[c] : 1, b = p.shift ? p.shift[c] : 0;
    let s = 0;
    for (let q = 0; q < p.hw; q++) s += act(p.input[c * p.hw + q] * a + b, p.act);
    out[c] = s / p.hw;
  }
  return out;
}

export interface FcParams { input: Float32Array; cin: number; weight: Float32Array; bias?: Float32Array | null; cout: number; outAct: number }
/** fully_connected: y_o = outAct(bias[o] + sum_i weight[o][i] * x_i). */
export function fullyConnectedRef(p: FcParams): Float32Array {
  const out = new Float32Array(p.cout);
  for (let o = 0; o < p.cout; o++) {
    let s = p.bias ? p.bias[o] : 0;
    for (let i = 0; i < p.cin; i++) s += p.weight[o * p.cin + i] * p.input[i];
    out[o] = act(s, p.outAct);
  }
  return out;
}

export function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

export interface SeParams {
  x: Float32Array; channels: number; hw: number; hidden: number;
  /** [hidden][channels] */ w1: Float32Array; b1?: Float32Array | null;
  /** [channels][hidden] */ w2: Float32Array; b2?: Float32Array | null;
}
/** squeeze_excite: x_c * sigmoid(w2 relu(w1 mean(x) + b1) + b2)_c. Returns a new array. */
export function squeezeExciteRef(p: SeParams): Float32Array {
  const s = globalAvgpoolRef({ input: p.x, channels: p.channels, hw: p.hw, act: ACT_NONE });
  const h = fullyConnectedRef({ input: s, cin: p.channels, weight: p.w1, bias: p.b1, cout: p.hidden, outAct: ACT_RELU });
  const z = fullyConnectedRef({ input: h, cin: p.hidden, weight: p.w2, bias: p.b2, cout: p.channels, outAct: ACT_NONE });
  const out = new Float32Array(p.x.length);
  for (let c = 0; c < p.channels; c++) {
    const g = sigmoid(z[c]);
    for (let q = 0; q < p.hw; q++) out[c * p.hw + q] = p.x[c * p.hw + q] * g;
  }
  return out;
}

/** channel_shuffle: out[j*groups + g] = in[g*(channels/groups) + j], whole planes. */
export function channelShuffleRef(input: Float32Array, channels: number, hw: number, groups: number): Float32Array {
  const out = new Float32Array(channels * hw);
  const cpg = channels / groups;
  for (let g = 0; g < groups; g++) {
    for (let j = 0; j < cpg; j++) out.set(input.subarray((g * cpg + j) * hw, (g * cpg + j + 1) * hw), (j * groups + g) * hw);
  }
  return out;
}

/** softmax with the maximum subtracted. */
export function softmaxRef(x: Float32Array): Float32Array {
  let m = -Infinity;
  for (const v of x) m = Math.max(m, v);
  let sum = 0;
  for (const v of x) sum += Math.exp(v - m);
  return Float32Array.from(x, (v) => Math.exp(v - m) / sum);
}

/** top_k: indices of the k largest values, best first; ties by lower index; NaN after every number. */
export function topKRef(values: Float32Array, k: number): number[] {
  const idx = Array.from(values, (_, i) => i);
  const key = (v: number) => (Number.isNaN(v) ? -Infinity : v);
  idx.sort((a, b) => {
    const va = values[a], vb = values[b];
    if (Number.isNaN(va) !== Number.isNaN(vb)) return Number.isNaN(va) ? 1 : -1;
    return key(vb) - key(va) || a - b;
  });
  return idx.slice(0, k);
}

// ---------------------------------------------------------------------------------------------------------------
// Whole-op references (docs/format.md opcodes 1-6). They operate on a list of feature buffers, addressed like the
// graph does (buffer index + channel offset), and modify the output buffer in place. Tensors are given decoded
// (f16 already widened to f32, index tensors as plain numbers).

/** A channel-planar feature buffer of the graph. data.length == channels * height * width. */
export interface FeatureBuffer { channels: number; height: number; width: number; data: Float32Array }

export function makeBuffer(channels: number, height: number, width: number, data?: Float32Array): FeatureBuffer {
  const n = channels * height * width;
  if (data && data.length !== n) throw new Error(`buffer data has ${data.length} floats, expected ${n}`);
  return { channels, height, width, data: data ?? new Float32Array(n) };
}

function planes(b: FeatureBuffer, first: number, count: number): Float32Array {
  const hw = b.height * b.width;
  if (first < 0 || first + count > b.channels) throw new Error(`channel range ${first}+${count} outside buffer of ${b.channels}`);
  return b.data.subarray(first * hw, (first + count) * hw);
}

/** opcode 1 CONV2D. inIndex/inScale/inShift/bias/outIndex: null when NONE. */
export interface Conv2dOp {
  inBuffer: number; inChannel: number; cin: number;
  outBuffer: number; outChannel: number; cout: number;
  kernel: number; stride: number; pad: number; groups: number;
  inAct: number; outAct: number; accumulate: boolean;
  /** [cout][cin/groups][kernel][kernel] */ weight: Float32Array;
  bias: Float32Array | null;
  inIndex: IndexArray | null;
  inScale: Float32Array | null; inShift: Float32Array | null;
  outIndex: IndexArray | null;
}
/**
 * x_i = inAct(in[inChannel + (inIndex ? inIndex[i] : i)] * inScale[i] + inShift[i]) (scale/shift only when given),
 * then zero padding, then the group convolution; output o goes to out[outChannel + (outIndex ? outIndex[o] : o)],
 * added to the existing plane when accumulate is set.
 */
export function conv2dOpRef(buffers: FeatureBuffer[], op: Conv2dOp): void {
  const src = buffers[op.inBuffer], dst = buffers[op.outBuffer];
  const hw = src.height * src.width;
  const inAll = planes(src, op.inChannel, src.channels - op.inChannel);
  const x = prepareChannelsRef({ src: inAll, hw, n: op.cin, act: op.inAct, index: op.inIndex, scale: op.inScale, shift: op.inShift });
  const oh = outSize(src.height, op.kernel, op.stride, op.pad), ow = outSize(src.width, op.kernel, op.stride, op.pad);
  if (oh !== dst.height || ow !== dst.width) throw new Error(`conv output ${oh}x${ow} does not match buffer ${dst.height}x${dst.width}`);
  const region = planes(dst, op.outChannel, dst.channels - op.outChannel);
  const y = convGroupRef({
    input: x, cin: op.cin, h: src.height, w: src.width, weight: op.weight, bias: op.bias, cout: op.cout,
    groups: op.groups, kernel: op.kernel, stride: op.stride, pad: op.pad, outAct: op.outAct, outIndex: op.outIndex,
    accumulate: op.accumulate, out: region, outPlanes: dst.channels - op.outChannel,
  });
  region.set(y);
}

/** opcode 2 SE, in place on channels [channel, channel + channels) of one buffer. b1/b2 null when NONE. */
export interface SeOp { buffer: number; channel: number; channels: number; hidden: number; w1: Float32Array; b1: Float32Array | null; w2: Float32Array; b2: Float32Array | null }
export function seOpRef(buffers: FeatureBuffer[], op: SeOp): void {
  const b = buffers[op.buffer];
  const region = planes(b, op.channel, op.channels);
  region.set(squeezeExciteRef({ x: region, channels: op.channels, hw: b.height * b.width, hidden: op.hidden, w1: op.w1, b1: op.b1, w2: op.w2, b2: op.b2 }));
}

/** opcode 3 AVGPOOL (no padding). */
export interface AvgPoolOp { inBuffer: number; inChannel: number; channels: number; outBuffer: number; outChannel: number; kernel: number; stride: number }
export function avgpoolOpRef(buffers: FeatureBuffer[], op: AvgPoolOp): void {
  const src = buffers[op.inBuffer], dst = buffers[op.outBuffer];
  const y = avgpoolRef({ input: planes(src, op.inChannel, op.channels), channels: op.channels, h: src.height, w: src.width, kernel: op.kernel, stride: op.stride });
  if (y.length !== op.channels * dst.height * dst.width) throw new Error('avgpool output size does not match buffer');
  planes(dst, op.outChannel, op.channels).set(y);
}

/** opcode 4 GLOBAL_AVGPOOL: out_c = mean inAct(x_c * scale_c + shift_c); outBuffer is 1x1. */
export interface GlobalAvgPoolOp { inBuffer: number; inChannel: number; channels: number; outBuffer: number; outChannel: number; inAct: number; inScale: Float32Array | null; inShift: Float32Array | null }
export function globalAvgpoolOpRef(buffers: FeatureBuffer[], op: GlobalAvgPoolOp): void {
  const src = buffers[op.inBuffer], dst = buffers[op.outBuffer];
  const y = globalAvgpoolRef({ input: planes(src, op.inChannel, op.channels), channels: op.channels, hw: src.height * src.width, act: op.inAct, scale: op.inScale, shift: op.inShift });
  planes(dst, op.outChannel, op.channels).set(y);
}

/** opcode 5 FC on 1x1 buffers. */
export interface FcOp { inBuffer: number; inChannel: number; cin: number; outBuffer: number; outChannel: number; cout: number; outAct: number; weight: Float32Array; bias: Float32Array | null }
export function fcOpRef(buffers: FeatureBuffer[], op: FcOp): void {
  const src = buffers[op.inBuffer], dst = buffers[op.outBuffer];
  const y = fullyConnectedRef({ input: planes(src, op.inChannel, op.cin), cin: op.cin, weight: op.weight, bias: op.bias, cout: op.cout, outAct: op.outAct });
  planes(dst, op.outChannel, op.cout).set(y);
}

/** opcode 6 CHANNEL_SHUFFLE. */
export interface ChannelShuffleOp { inBuffer: number; inChannel: number; channels: number; outBuffer: number; outChannel: number; groups: number }
export function channelShuffleOpRef(buffers: FeatureBuffer[], op: ChannelShuffleOp): void {
  const src = buffers[op.inBuffer], dst = buffers[op.outBuffer];
  const hw = src.height * src.width;
  planes(dst, op.outChannel, op.channels).set(channelShuffleRef(planes(src, op.inChannel, op.channels), op.channels, hw, op.groups));
}

/** opcode 7 MAXPOOL (padding never wins). */
export interface MaxPoolOp extends AvgPoolOp { pad: number }
export function maxpoolOpRef(buffers: FeatureBuffer[], op: MaxPoolOp): void {
  const src = buffers[op.inBuffer], dst = buffers[op.outBuffer];
  const y = maxpoolRef({ input: planes(src, op.inChannel, op.channels), channels: op.channels, h: src.height, w: src.width, kernel: op.kernel, stride: op.stride, pad: op.pad });
  if (y.length !== op.channels * dst.height * dst.width) throw new Error('maxpool output size does not match buffer');
  planes(dst, op.outChannel, op.channels).set(y);
}

/** Any of the seven ops, tagged by opcode, for running a whole graph with runOpsRef. */
export type RefOp =
  | ({ opcode: 1 } & Conv2dOp) | ({ opcode: 2 } & SeOp) | ({ opcode: 3 } & AvgPoolOp)
  | ({ opcode: 4 } & GlobalAvgPoolOp) | ({ opcode: 5 } & FcOp) | ({ opcode: 6 } & ChannelShuffleOp)
  | ({ opcode: 7 } & MaxPoolOp);

/** Runs ops in order over the buffers (modified in place). */
export function runOpsRef(buffers: FeatureBuffer[], ops: RefOp[]): void {
  for (const op of ops) {
    switch (op.opcode) {
      case 1: conv2dOpRef(buffers, op); break;
      case 2: seOpRef(buffers, op); break;
      case 3: avgpoolOpRef(buffers, op); break;
      case 4: globalAvgpoolOpRef(buffers, op); break;
      case 5: fcOpRef(buffers, op); break;
      case 6: channelShuffleOpRef(buffers, op); break;
      case 7: maxpoolOpRef(buffers, op); break;
    }
  }
}
