// The same network in TensorFlow.js (NHWC, batch 1, eval mode), for the tfjs-wasm and tfjs-cpu engines:
// - trainingGraph: the training form from NetworkParams (BN-act pre-activation, LGC and SFR as dense 1x1 convs
//   with the final masks applied, 3x3 group conv as split + conv2d + concat), i.e. what the trainer evaluates,
//   with BN and masks folded into constants once instead of per call;
// - condensedGraph: the condensed .cnv2 op list (Gather of the kept channels, grouped convs, index-sum), so any
//   .cnv2 file runs, including ones without training parameters. The SFR index-sum is one dense 1x1 conv per
//   layer (TF.js has no scatter-add on the channel axis), like the ONNX export's default; an accumulating conv of any
//   other kind (SFR-ShuffleNetV2's depthwise 3x3) runs whole and is scattered-added by a 0/1 matMul; depthwise convs run
//   as one depthwiseConv2d.
// Weights become tf tensors at build time; run() executes eagerly inside tf.tidy.
import * as tf from '@tensorflow/tfjs';

import type { BatchNormParams, NetworkParams, SeParams } from '../base/arch/params.js';
import { bnAffine } from '../converter/condense.js';
import { ACT, tensorFloats, type Conv2dOp, type Model, type TensorRef } from '../base/cnv2/model.js';

export interface TfGraph {
  /** Logits of one NHWC input [1, H, W, C]. */
  run(x: tf.Tensor4D): tf.Tensor;
  dispose(): void;
}

function hardswish(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.div(tf.relu6(tf.add(x, 3)), 6));
}

function activate(x: tf.Tensor, code: number): tf.Tensor {
  return code === ACT.relu ? tf.relu(x) : code === ACT.hardswish ? hardswish(x) : x;
}

/** OIHW [o, i, k, k] (rows o0..o0+n) -> HWIO [k, k, i, n]. */
function oihwToHwio(w: ArrayLike<number>, o0: number, n: number, cin: number, k: number): Float32Array {
  const out = new Float32Array(k * k * cin * n);
  for (let o = 0; o < n; o++) for (let i = 0; i < cin; i++) for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) {
    out[((y * k + x) * cin + i) * n + o] = w[(((o0 + o) * cin + i) * k + y) * k + x]!;
  }
  return out;
}

/** [rows, cols] row-major -> [cols, rows]. */
function transpose(a: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
  return out;
}

class Keeper {
  readonly all: tf.Tensor[] = [];
  keep<T extends tf.Tensor>(t: T): T {
    this.all.push(t);
    return tf.keep(t); // index tensors made lazily inside run()'s tidy must outlive it
  }
  f(values: ArrayLike<number>, shape: number[]): tf.Tensor {
    return this.keep(tf.tensor(Float32Array.from(values), shape, 'float32'));
  }
  i(values: number[]): tf.Tensor1D {
    return this.keep(tf.tensor1d(Int32Array.from(values), 'int32'));
  }
  dispose(): void {
    for (const t of this.all) t.dispose();
  }
}

export function trainingGraph(p: NetworkParams): TfGraph {
  const k = new Keeper();
  const cfg = p.config;
  const G = cfg.group3x3; // the only grouped conv here: LGC and SFR run dense with their masks applied
  const bn = (b: BatchNormParams): [tf.Tensor, tf.Tensor] => {
    const a = bnAffine(b);
    return [k.f(a.scale, [a.scale.length]), k.f(a.shift, [a.shift.length])];
  };
  const se = (s: SeParams, c: number): [tf.Tensor2D, tf.Tensor2D] =>
    [k.f(transpose(s.w1, s.hidden, c), [c, s.hidden]) as tf.Tensor2D, k.f(transpose(s.w2, c, s.hidden), [s.hidden, c]) as tf.Tensor2D];
  const ci = cfg.input.channels;
  const stem = k.f(oihwToHwio(p.stem.weight, 0, cfg.stemChannels, ci, 3), [3, 3, ci, cfg.stemChannels]) as tf.Tensor4D;
  const blocks = p.blocks.map((layers) => layers.map((l) => {
    const inC = l.inChannels;
    const mid = l.lgc.weight.length / inC;
    const lgcW = new Float32Array(inC * mid);
    for (let o = 0; o < mid; o++) for (let i = 0; i < inC; i++) lgcW[i * mid + o] = l.lgc.mask[o * inC + i] ? l.lgc.weight[o * inC + i]! : 0;
    const kk = l.growth;
    const opg = kk / G;
    const ipg = mid / G;
    const conv = Array.from({ length: G }, (_, g) => k.f(oihwToHwio(l.conv.weight, g * opg, opg, ipg, 3), [3, 3, ipg, opg]) as tf.Tensor4D);
    let sfr: { bn: [tf.Tensor, tf.Tensor]; w: tf.Tensor4D } | null = null;
    if (l.sfr) {
      const w = new Float32Array(kk * inC);
      for (let o = 0; o < inC; o++) for (let j = 0; j < kk; j++) w[j * inC + o] = l.sfr.mask[o * kk + j] ? l.sfr.weight[o * kk + j]! : 0;
      sfr = { bn: bn(l.sfr.bn), w: k.f(w, [1, 1, kk, inC]) as tf.Tensor4D };
    }
    return {
      act: l.activation === 'relu' ? ACT.relu : ACT.hardswish,
      lgcBn: bn(l.lgc.bn), lgcW: k.f(lgcW, [1, 1, inC, mid]) as tf.Tensor4D, convBn: bn(l.conv.bn), conv,
      se: l.se ? se(l.se, kk) : null, sfr,
    };
  }));
  const cFinal = p.head.bn.gamma.length;
  const headBn = bn(p.head.bn);
  const headSe = p.head.se ? se(p.head.se, cFinal) : null;
  const lin = (l: { weight: Float32Array; bias: Float32Array }): [tf.Tensor2D, tf.Tensor] => {
    const out = l.bias.length;
    const inn = l.weight.length / out;
    return [k.f(transpose(l.weight, out, inn), [inn, out]) as tf.Tensor2D, k.f(l.bias, [out])];
  };
  const fc = p.head.fc ? lin(p.head.fc) : null;
  const cls = lin(p.head.classifier);
  const seApply = (x: tf.Tensor4D, w: [tf.Tensor2D, tf.Tensor2D]): tf.Tensor4D => {
    const c = x.shape[3];
    const s = tf.sigmoid(tf.matMul(tf.relu(tf.matMul(tf.reshape(tf.mean(x, [1, 2]), [1, c]) as tf.Tensor2D, w[0])), w[1]));
    return tf.mul(x, tf.reshape(s, [1, 1, 1, c]));
  };
  const bnAct = <T extends tf.Tensor>(x: T, b: [tf.Tensor, tf.Tensor], act: number): T => activate(tf.add(tf.mul(x, b[0]), b[1]), act) as T;
  return {
    run: (x) => tf.tidy(() => {
      let feat: tf.Tensor4D = tf.conv2d(x, stem, cfg.stemStride, 1);
      blocks.forEach((layers, b) => {
        if (b > 0) feat = tf.avgPool(feat, 2, 2, 'valid');
        for (const l of layers) {
          const h = bnAct(tf.conv2d(bnAct(feat, l.lgcBn, l.act), l.lgcW, 1, 'valid'), l.convBn, l.act);
          const parts = tf.split(h as tf.Tensor4D, G, 3) as tf.Tensor4D[];
          let nf: tf.Tensor4D = tf.concat(parts.map((part, g) => tf.conv2d(part, l.conv[g]!, 1, 1)), 3);
          if (l.se) nf = seApply(nf, l.se);
          const base = l.sfr ? tf.add(feat, tf.conv2d(bnAct(nf, l.sfr.bn, l.act), l.sfr.w, 1, 'valid')) as tf.Tensor4D : feat;
          feat = tf.concat([base, nf], 3);
        }
      });
      let y: tf.Tensor = tf.reshape(tf.mean(bnAct(feat, headBn, ACT.relu), [1, 2]), [1, cFinal]);
      if (headSe) y = tf.mul(y, tf.sigmoid(tf.matMul(tf.relu(tf.matMul(y as tf.Tensor2D, headSe[0])), headSe[1])));
      if (fc) y = hardswish(tf.add(tf.matMul(y as tf.Tensor2D, fc[0]), fc[1]));
      return tf.add(tf.matMul(y as tf.Tensor2D, cls[0]), cls[1]);
    }),
    dispose: () => k.dispose(),
  };
}

interface Segment { start: number; count: number; value: tf.Tensor4D }
type Step = (bufs: Segment[][]) => void;

/** The condensed .cnv2 graph as TF.js ops. */
export function condensedGraph(model: Model): TfGraph {
  const k = new Keeper();
  const f32 = (ref: number): Float32Array => tensorFloats(model.tensors[ref]!);
  const ints = (ref: TensorRef): number[] | null => (ref === null ? null : Array.from(model.tensors[ref]!.data as ArrayLike<number>));
  const steps: Step[] = [];

  const written = (segs: Segment[]): number => (segs.length ? segs[segs.length - 1]!.start + segs[segs.length - 1]!.count : 0);
  const segmentFor = (bufs: Segment[][], buf: number, lo: number, hi: number): Segment => {
    const segs = bufs[buf]!;
    const inside = segs.find((s) => s.start <= lo && hi <= s.start + s.count);
    if (inside) return inside;
    const seg = { start: 0, count: written(segs), value: tf.concat(segs.map((s) => s.value), 3) };
    bufs[buf] = [seg];
    return seg;
  };
  /** Gathered (or contiguous) channels of a buffer; `idx` is absolute channel numbers. */
  const read = (bufs: Segment[][], buf: number, idx: number[], gatherT: tf.Tensor1D | null, contiguous: boolean): tf.Tensor4D => {
    const lo = Math.min(...idx);
    const hi = Math.max(...idx) + 1;
    const seg = segmentFor(bufs, buf, lo, hi);
    if (contiguous) {
      if (seg.start === lo && seg.count === hi - lo) return seg.value;
      return tf.slice(seg.value, [0, 0, 0, lo - seg.start], [-1, -1, -1, hi - lo]);
    }
    return tf.gather(seg.value, gatherT!, 3);
  };
  const write = (bufs: Segment[][], buf: number, offset: number, value: tf.Tensor4D): void => {
    const count = value.shape[3];
    const segs = bufs[buf]!;
    const end = offset + count;
    const next: Segment[] = [];
    for (const s of segs) {
      const sEnd = s.start + s.count;
      if (sEnd <= offset || s.start >= end) { next.push(s); continue; }
      if (s.start < offset) next.push({ start: s.start, count: offset - s.start, value: tf.slice(s.value, [0, 0, 0, 0], [-1, -1, -1, offset - s.start]) });
      if (sEnd > end) next.push({ start: end, count: sEnd - end, value: tf.slice(s.value, [0, 0, 0, end - s.start], [-1, -1, -1, sEnd - end]) });
    }
    const w = written(segs);
    if (offset > w) next.push({ start: w, count: offset - w, value: tf.zeros([1, value.shape[1], value.shape[2], offset - w]) });
    next.push({ start: offset, count, value });
    next.sort((a, b) => a.start - b.start);
    bufs[buf] = next;
  };
  /** Index list relative to the segment that will hold it is resolved at run time; precompute absolute lists. */
  const reader = (buf: number, offset: number, count: number, index: TensorRef): ((bufs: Segment[][]) => tf.Tensor4D) => {
    const idx = (ints(index) ?? Array.from({ length: count }, (_, i) => i)).map((i) => i + offset);
    const contiguous = idx.every((v, i) => i === 0 || v === idx[i - 1]! + 1);
    const cache = new Map<number, tf.Tensor1D>();
    return (bufs) => {
      if (contiguous) return read(bufs, buf, idx, null, true);
      const seg = segmentFor(bufs, buf, Math.min(...idx), Math.max(...idx) + 1);
      let t = cache.get(seg.start);
      if (!t) { t = k.i(idx.map((v) => v - seg.start)); cache.set(seg.start, t); }
      return read(bufs, buf, idx, t, false);
    };
  };
  const affine = (scale: TensorRef, shift: TensorRef, act: number, perm?: number[]): ((x: tf.Tensor4D) => tf.Tensor4D) => {
    let s: tf.Tensor | null = null;
    let h: tf.Tensor | null = null;
    if (scale !== null && shift !== null) {
      let sv = f32(scale);
      let hv = f32(shift);
      if (perm) { const s2 = new Float32Array(sv.length); const h2 = new Float32Array(hv.length); perm.forEach((p, i) => { s2[p] = sv[i]!; h2[p] = hv[i]!; }); sv = s2; hv = h2; }
      s = k.f(sv, [sv.length]);
      h = k.f(hv, [hv.length]);
    }
    return (x) => activate(s && h ? tf.add(tf.mul(x, s), h) : x, act) as tf.Tensor4D;
  };

  /** y = outAct(conv(prep(input)) + bias), all cout channels in output order. */
  const convForward = (op: Conv2dOp): ((bufs: Segment[][]) => tf.Tensor4D) => {
    const w = f32(op.weight);
    const bias = op.bias === null ? null : k.f(f32(op.bias), [op.cout]);
    const cpg = op.cin / op.groups;
    const opg = op.cout / op.groups;
    const input = reader(op.inBuffer, op.inChannel, op.cin, op.inIndex);
    const prep = affine(op.inScale, op.inShift, op.inAct);
    // Depthwise (one input and one output per group): one depthwiseConv2d instead of cin single-channel convs.
    // OIHW [c, 1, k, k] -> HWIO [k, k, 1, c] has the same element order as [k, k, c, 1].
    const depthwise = cpg === 1 && opg === 1 && op.groups > 1;
    const ws = depthwise
      ? [k.f(oihwToHwio(w, 0, op.cout, 1, op.kernel), [op.kernel, op.kernel, op.cout, 1]) as tf.Tensor4D]
      : Array.from({ length: op.groups }, (_, g) => k.f(oihwToHwio(w, g * opg, opg, cpg, op.kernel), [op.kernel, op.kernel, cpg, opg]) as tf.Tensor4D);
    return (bufs) => {
      const x = prep(input(bufs));
      let y: tf.Tensor4D;
      if (depthwise) y = tf.depthwiseConv2d(x, ws[0]!, op.stride, op.pad);
      else if (op.groups === 1) y = tf.conv2d(x, ws[0]!, op.stride, op.pad);
      else y = tf.concat((tf.split(x, op.groups, 3) as tf.Tensor4D[]).map((p, g) => tf.conv2d(p, ws[g]!, op.stride, op.pad)), 3);
      if (bias) y = tf.add(y, bias);
      return activate(y, op.outAct) as tf.Tensor4D;
    };
  };
  /**
   * accumulate = 1 on any conv (the SFR-ShuffleNetV2 index-sum is a depthwise 3x3): y computed whole, then
   * scattered-added onto channels outChannel + outIndex[o]. TF.js has no scatter-add on the channel axis: the
   * scatter is one matMul of y's pixels by a 0/1 [cout, target span] matrix (on tfjs-wasm about 6x faster on
   * SFR-ShuffleNetV2 1.0x than a gather per repeated target, 78 against 502 ms a run).
   */
  const scatterAddConv = (op: Conv2dOp): Step => {
    const forward = convForward(op);
    const targets = (ints(op.outIndex) ?? Array.from({ length: op.cout }, (_, i) => i)).map((t) => t + op.outChannel);
    const lo = Math.min(...targets);
    const hi = Math.max(...targets) + 1;
    const width = hi - lo;
    const scatter = new Float32Array(op.cout * width); // [cout, width]: 1 where output o lands on channel t
    targets.forEach((t, o) => { scatter[o * width + t - lo] = 1; });
    const scatterT = k.f(scatter, [op.cout, width]) as tf.Tensor2D;
    return (bufs) => {
      const y = forward(bufs);
      const [, h, wd] = y.shape;
      let sum = tf.reshape(tf.matMul(tf.reshape(y, [h * wd, op.cout]) as tf.Tensor2D, scatterT), [1, h, wd, width]) as tf.Tensor4D;
      const seg = segmentFor(bufs, op.outBuffer, lo, hi);
      if (seg.start !== lo || seg.count !== width) sum = tf.pad(sum, [[0, 0], [0, 0], [0, 0], [lo - seg.start, seg.start + seg.count - hi]]);
      bufs[op.outBuffer] = bufs[op.outBuffer]!.map((s) => (s === seg ? { ...s, value: tf.add(s.value, sum) } : s));
    };
  };

  const conv2d = (op: Conv2dOp): Step => {
    const w = f32(op.weight);
    const cpg = op.cin / op.groups;
    const opg = op.cout / op.groups;
    const outIdx = ints(op.outIndex);
    if (op.accumulate === 1 && (op.kernel !== 1 || op.pad !== 0 || op.outAct !== ACT.none)) return scatterAddConv(op);
    if (op.accumulate === 1) {
      // Index-sum as one dense 1x1 conv onto the target channels (weights of outputs sharing a target add up).
      const idx = ints(op.inIndex) ?? Array.from({ length: op.cin }, (_, i) => i);
      const isPerm = new Set(idx).size === idx.length && Math.max(...idx) - Math.min(...idx) + 1 === idx.length;
      const base = isPerm ? Math.min(...idx) : 0;
      const col = (i: number): number => (isPerm ? idx[i]! - base : i);
      const input = isPerm ? reader(op.inBuffer, op.inChannel + base, op.cin, null) : reader(op.inBuffer, op.inChannel, op.cin, op.inIndex);
      const prep = affine(op.inScale, op.inShift, op.inAct, isPerm ? idx.map((v) => v - base) : undefined);
      const targets = (outIdx ?? Array.from({ length: op.cout }, (_, i) => i)).map((t) => t + op.outChannel);
      const lo = Math.min(...targets);
      const hi = Math.max(...targets) + 1;
      const width = hi - lo;
      const dense = new Float32Array(op.cin * width); // HWIO [1, 1, cin, width]
      const db = new Float32Array(width);
      for (let o = 0; o < op.cout; o++) {
        const g = Math.floor(o / opg);
        for (let i = 0; i < cpg; i++) dense[col(g * cpg + i) * width + targets[o]! - lo] += w[o * cpg + i]!;
        if (op.bias !== null) db[targets[o]! - lo] += f32(op.bias)[o]!;
      }
      const dw = k.f(dense, [1, 1, op.cin, width]) as tf.Tensor4D;
      const dbt = op.bias !== null ? k.f(db, [width]) : null;
      return (bufs) => {
        let y = tf.conv2d(prep(input(bufs)), dw, op.stride, 'valid');
        if (dbt) y = tf.add(y, dbt);
        const seg = segmentFor(bufs, op.outBuffer, lo, hi);
        if (seg.start !== lo || seg.count !== width) y = tf.pad(y, [[0, 0], [0, 0], [0, 0], [lo - seg.start, seg.start + seg.count - hi]]);
        bufs[op.outBuffer] = bufs[op.outBuffer]!.map((s) => (s === seg ? { ...s, value: tf.add(s.value, y) } : s));
      };
    }
    const forward = convForward(op);
    let inv: tf.Tensor1D | null = null;
    if (outIdx) {
      const invA = new Array<number>(op.cout);
      outIdx.forEach((t, o) => { invA[t] = o; });
      if (invA.some((v) => v === undefined)) throw new Error('condensedGraph: outIndex is not a permutation');
      if (!invA.every((v, i) => v === i)) inv = k.i(invA);
    }
    return (bufs) => {
      let y = forward(bufs);
      if (inv) y = tf.gather(y, inv, 3);
      write(bufs, op.outBuffer, op.outChannel, y);
    };
  };

  for (const op of model.ops) {
    switch (op.kind) {
      case 'conv2d': steps.push(conv2d(op)); break;
      case 'se': {
        const input = reader(op.buffer, op.channel, op.channels, null);
        const w1 = k.f(transpose(f32(op.w1), op.hidden, op.channels), [op.channels, op.hidden]) as tf.Tensor2D;
        const w2 = k.f(transpose(f32(op.w2), op.channels, op.hidden), [op.hidden, op.channels]) as tf.Tensor2D;
        const b1 = op.b1 === null ? null : k.f(f32(op.b1), [op.hidden]);
        const b2 = op.b2 === null ? null : k.f(f32(op.b2), [op.channels]);
        steps.push((bufs) => {
          const x = input(bufs);
          let h: tf.Tensor = tf.matMul(tf.reshape(tf.mean(x, [1, 2]), [1, op.channels]) as tf.Tensor2D, w1);
          if (b1) h = tf.add(h, b1);
          let s: tf.Tensor = tf.matMul(tf.relu(h) as tf.Tensor2D, w2);
          if (b2) s = tf.add(s, b2);
          write(bufs, op.buffer, op.channel, tf.mul(x, tf.reshape(tf.sigmoid(s), [1, 1, 1, op.channels])));
        });
        break;
      }
      case 'avgpool': {
        const input = reader(op.inBuffer, op.inChannel, op.channels, null);
        steps.push((bufs) => write(bufs, op.outBuffer, op.outChannel, tf.avgPool(input(bufs), op.kernel, op.stride, 'valid')));
        break;
      }
      case 'maxpool': {
        // Padded with -infinity, so padding never wins (docs/format.md, opcode 7).
        const input = reader(op.inBuffer, op.inChannel, op.channels, null);
        const p = op.pad;
        steps.push((bufs) => {
          const x = p ? tf.pad(input(bufs), [[0, 0], [p, p], [p, p], [0, 0]], -Infinity) as tf.Tensor4D : input(bufs);
          return write(bufs, op.outBuffer, op.outChannel, tf.maxPool(x, op.kernel, op.stride, 'valid'));
        });
        break;
      }
      case 'global_avgpool': {
        const input = reader(op.inBuffer, op.inChannel, op.channels, null);
        const prep = affine(op.inScale, op.inShift, op.inAct);
        steps.push((bufs) => write(bufs, op.outBuffer, op.outChannel, tf.mean(prep(input(bufs)), [1, 2], true)));
        break;
      }
      case 'fc': {
        const input = reader(op.inBuffer, op.inChannel, op.cin, null);
        const w = k.f(transpose(f32(op.weight), op.cout, op.cin), [op.cin, op.cout]) as tf.Tensor2D;
        const b = op.bias === null ? null : k.f(f32(op.bias), [op.cout]);
        steps.push((bufs) => {
          let y: tf.Tensor = tf.matMul(tf.reshape(input(bufs), [1, op.cin]) as tf.Tensor2D, w);
          if (b) y = tf.add(y, b);
          write(bufs, op.outBuffer, op.outChannel, tf.reshape(activate(y, op.outAct), [1, 1, 1, op.cout]));
        });
        break;
      }
      case 'channel_shuffle': {
        const input = reader(op.inBuffer, op.inChannel, op.channels, null);
        const { height: h, width: w } = model.buffers[op.inBuffer]!;
        const cpg = op.channels / op.groups;
        steps.push((bufs) => write(bufs, op.outBuffer, op.outChannel,
          tf.reshape(tf.transpose(tf.reshape(input(bufs), [1, h, w, op.groups, cpg]), [0, 1, 2, 4, 3]), [1, h, w, op.channels])));
        break;
      }
    }
  }
  const outC = model.buffers[model.outputBuffer]!.channels;
  const output = reader(model.outputBuffer, 0, outC, null);
  return {
    run: (x) => tf.tidy(() => {
      const bufs: Segment[][] = model.buffers.map(() => []);
      bufs[model.inputBuffer] = [{ start: 0, count: x.shape[3], value: x }];
      for (const s of steps) s(bufs);
      return tf.reshape(output(bufs), [1, outC]);
    }),
    dispose: () => k.dispose(),
  };
}
