// Condensation of ShuffleNetV2 / SFR-ShuffleNetV2 training forms (docs/shufflenet.md; TF.js layouts, the
// checkpoint's names) into the op graph of docs/format.md. Every BN is folded into the conv before it; the channel
// split and the concat + shuffle move no data: each logical tensor is a list of physical channels of one buffer,
// convs read it through inIndex (1x1 weights take the permutation) and write through outIndex. Depthwise convs are
// CONV2D groups = C (the runtime's depthwise kernel); the SFR is a CONV2D accumulate = 1 whose outIndex adds each
// input channel's one kept output onto the untouched half, with BN_sfr + ReLU as its input transform.
import { shuffleStem, shuffleUnits, type ShuffleNetConfig } from '../base/arch/shufflenet.js';
import { floatsToHalves } from '../base/cnv2/f16.js';
import { ACT, type BufferShape, type MetaEntry, type Model, type Op, type Tensor } from '../base/cnv2/model.js';
import { toolVersion } from '../base/version.js';
import { CondenseError, type CondenseOptions } from './condense.js';

/** A training form: named tensors (TF.js layouts) and SFR masks ([in, out], 0/1), as a checkpoint holds them. */
export interface ShuffleNetParams {
  config: ShuffleNetConfig;
  tensors: Map<string, Float32Array>;
  masks: Map<string, Uint8Array | Float32Array>;
}

const EPS = 1e-5;

/** A logical tensor: its channel k is physical channel phys[k] of buffer `buffer`. */
interface View { buffer: number; phys: number[] }

export function condenseShuffleNet(p: ShuffleNetParams, opts: CondenseOptions): Model {
  const cfg = p.config;
  const tensors: Tensor[] = [];
  const buffers: BufferShape[] = [];
  const ops: Op[] = [];
  const get = (name: string, n: number): Float32Array => {
    const t = p.tensors.get(name);
    if (!t) throw new CondenseError(`missing tensor ${name}`);
    if (t.length !== n) throw new CondenseError(`${name}: ${t.length} values, expected ${n}`);
    return t;
  };
  const float = (shape: number[], values: ArrayLike<number>): number => {
    const f = Float32Array.from(values);
    tensors.push(opts.weights === 'f16' ? { dtype: 'f16', shape, data: floatsToHalves(f) } : { dtype: 'f32', shape, data: f });
    return tensors.length - 1;
  };
  const index = (values: number[]): number => {
    tensors.push({ dtype: 'u16', shape: [values.length], data: Uint16Array.from(values) });
    return tensors.length - 1;
  };
  const buffer = (c: number, h: number, w: number): number => { buffers.push({ channels: c, height: h, width: w }); return buffers.length - 1; };
  /** BN (eval) as scale/shift, float64. */
  const bn = (name: string, c: number): { scale: Float64Array; shift: Float64Array } => {
    const g = get(`${name}.gamma`, c), b = get(`${name}.beta`, c), m = get(`${name}.mean`, c), v = get(`${name}.variance`, c);
    const scale = new Float64Array(c), shift = new Float64Array(c);
    for (let i = 0; i < c; i++) { scale[i] = g[i]! / Math.sqrt(v[i]! + EPS); shift[i] = b[i]! - m[i]! * scale[i]!; }
    return { scale, shift };
  };
  /** How an op reads a view: contiguous from its lowest channel, or a gather; order = the views' channels sorted. */
  const reader = (v: View): { inChannel: number; inIndex: number | null; order: number[] } => {
    const order = v.phys.map((_, k) => k).sort((a, b) => v.phys[a]! - v.phys[b]!);
    const sorted = order.map((k) => v.phys[k]!);
    const lo = sorted[0]!;
    const contiguous = sorted.every((c, i) => c === lo + i);
    return { inChannel: lo, inIndex: contiguous ? null : index(sorted.map((c) => c - lo)), order };
  };
  /** How an op writes logical channel o to phys[o] of a buffer: contiguous, or a scatter. */
  const writer = (phys: number[]): { outChannel: number; outIndex: number | null } => {
    const lo = Math.min(...phys);
    const contiguous = phys.every((c, i) => c === lo + i);
    return { outChannel: lo, outIndex: contiguous ? null : index(phys.map((c) => c - lo)) };
  };
  const conv = (o: Omit<Extract<Op, { kind: 'conv2d' }>, 'kind' | 'inAct' | 'inScale' | 'inShift' | 'accumulate' | 'groups' | 'stride' | 'pad'>
    & Partial<Extract<Op, { kind: 'conv2d' }>>): void => {
    ops.push({ kind: 'conv2d', inAct: ACT.none, inScale: null, inShift: null, accumulate: 0, groups: 1, stride: 1, pad: 0, ...o });
  };

  /** 1x1 conv (TF.js [in, out]) + BN + ReLU over a view, written to `out` channels of buffer ob. */
  const pointwise = (name: string, x: View, cin: number, cout: number, ob: number, out: number[]): void => {
    const w = get(`${name}.weight`, cin * cout);
    const { scale, shift } = bn(`${name}.bn`, cout);
    const r = reader(x);
    const wt = new Float32Array(cout * cin);
    for (let o = 0; o < cout; o++) for (let i = 0; i < cin; i++) wt[o * cin + i] = w[r.order[i]! * cout + o]! * scale[o]!;
    const wr = writer(out);
    conv({ inBuffer: x.buffer, inChannel: r.inChannel, cin, inIndex: r.inIndex, outBuffer: ob, ...wr, cout, kernel: 1,
      outAct: ACT.relu, weight: float([cout, cin, 1, 1], wt), bias: float([cout], shift) });
  };
  /** Depthwise 3x3 (TF.js [3, 3, C, 1]) + BN over a view; writes a new buffer; returns the output view. */
  const depthwise = (name: string, x: View, c: number, stride: number, size: [number, number]): View => {
    const w = get(`${name}.weight`, 9 * c);
    const { scale, shift } = bn(`${name}.bn`, c);
    const r = reader(x);
    const wt = new Float32Array(c * 9), bias = new Float64Array(c);
    for (let i = 0; i < c; i++) {
      const k = r.order[i]!;
      for (let t = 0; t < 9; t++) wt[i * 9 + t] = w[t * c + k]! * scale[k]!;
      bias[i] = shift[k]!;
    }
    const ob = buffer(c, size[0], size[1]);
    conv({ inBuffer: x.buffer, inChannel: r.inChannel, cin: c, inIndex: r.inIndex, outBuffer: ob, outChannel: 0, cout: c,
      outIndex: null, kernel: 3, stride, pad: 1, groups: c, outAct: ACT.none, weight: float([c, 1, 3, 3], wt), bias: float([c], bias) });
    // Output channel i holds logical channel order[i].
    const phys = new Array<number>(c);
    r.order.forEach((k, i) => { phys[k] = i; });
    return { buffer: ob, phys };
  };

  // Stem: 3x3 conv + BN + ReLU, then the max pool.
  const stem = shuffleStem(cfg);
  const inBuf = buffer(cfg.input.channels, cfg.input.height, cfg.input.width);
  const sc = cfg.stemChannels, ci = cfg.input.channels;
  let x: View;
  {
    const w = get('stem.weight', 9 * ci * sc);
    const { scale, shift } = bn('stem.bn', sc);
    const wt = new Float32Array(sc * ci * 9);
    for (let o = 0; o < sc; o++) for (let i = 0; i < ci; i++) for (let t = 0; t < 9; t++) wt[(o * ci + i) * 9 + t] = w[(t * ci + i) * sc + o]! * scale[o]!;
    const sb = buffer(sc, stem.size[0], stem.size[1]);
    conv({ inBuffer: inBuf, inChannel: 0, cin: ci, inIndex: null, outBuffer: sb, outChannel: 0, cout: sc, outIndex: null, kernel: 3,
      stride: cfg.stemStride, pad: 1, outAct: ACT.relu, weight: float([sc, ci, 3, 3], wt), bias: float([sc], shift) });
    x = { buffer: sb, phys: Array.from({ length: sc }, (_, i) => i) };
  }
  if (cfg.maxPool) {
    const pb = buffer(sc, stem.pooled[0], stem.pooled[1]);
    ops.push({ kind: 'maxpool', inBuffer: x.buffer, inChannel: 0, channels: sc, outBuffer: pb, outChannel: 0, kernel: 3, stride: 2, pad: 1 });
    x = { buffer: pb, phys: x.phys };
  }

  for (const stage of shuffleUnits(cfg)) {
    const u0 = stage[0]!;
    const b = u0.branch;
    // The stage's buffer: 2b channels, plus b fresh ones per basic unit, where its M goes, above everything written
    // before: an SFR reads M and adds onto x1 in the same buffer, so their channel spans must not overlap; and a
    // contiguous write keeps every op expressible in ONNX (export-onnx takes no scattered plain writes).
    const U = buffer(2 * b + (stage.length - 1) * b, u0.size[0], u0.size[1]);
    let top = 2 * b;
    {
      const cin = u0.inChannels;
      // proj: dw s2 + BN, then 1x1 + BN + ReLU into U[0, b); main: 1x1, dw s2, 1x1 into U[b, 2b).
      const pd = depthwise(`${u0.prefix}.proj.dw`, x, cin, 2, u0.size);
      pointwise(`${u0.prefix}.proj.pw`, pd, cin, b, U, range(0, b));
      const t1 = buffer(b, u0.inSize[0], u0.inSize[1]);
      pointwise(`${u0.prefix}.main.pw1`, x, cin, b, t1, range(0, b));
      const md = depthwise(`${u0.prefix}.main.dw`, { buffer: t1, phys: range(0, b) }, b, 2, u0.size);
      pointwise(`${u0.prefix}.main.pw2`, md, b, b, U, range(b, 2 * b));
      x = { buffer: U, phys: shuffled(range(0, b), range(b, 2 * b)) };
    }
    for (const u of stage.slice(1)) {
      const x1 = x.phys.slice(0, b), x2 = x.phys.slice(b);
      const t1 = buffer(b, u.size[0], u.size[1]);
      pointwise(`${u.prefix}.main.pw1`, { buffer: U, phys: x2 }, b, b, t1, range(0, b));
      const md = depthwise(`${u.prefix}.main.dw`, { buffer: t1, phys: range(0, b) }, b, 1, u.size);
      const mPhys = range(top, top + b);
      top += b;
      pointwise(`${u.prefix}.main.pw2`, md, b, b, U, mPhys);
      if (u.sfr) sfr(u.prefix, b, u.sfrFactor, U, mPhys, x1);
      x = { buffer: U, phys: shuffled(x1, mPhys) };
    }
  }

  /** x1[o_j] += depthwise3x3_j(ReLU(BN_sfr(M))_j) for each kept connection (j -> o_j) of the final mask. */
  function sfr(prefix: string, b: number, S: number, U: number, mPhys: number[], x1: number[]): void {
    const mask = p.masks.get(`${prefix}.sfr.mask`);
    if (!mask || mask.length !== b * b) throw new CondenseError(`missing or misshapen mask ${prefix}.sfr.mask`);
    const keep = b / S;
    const w = get(`${prefix}.sfr.weight`, 9 * b * b);
    const { scale, shift } = bn(`${prefix}.sfr.bn`, b);
    const r = reader({ buffer: U, phys: mPhys });
    const targets: number[] = [], wt: number[] = [];
    r.order.forEach((j) => {
      const outs: number[] = [];
      for (let o = 0; o < b; o++) if (mask[j * b + o]) outs.push(o);
      if (outs.length !== keep) throw new CondenseError(`${prefix}.sfr.mask: input ${j} keeps ${outs.length} outputs, final is ${keep}; train past the first half of the schedule`);
      for (const o of outs) {
        targets.push(x1[o]!);
        for (let t = 0; t < 9; t++) wt.push(w[(t * b + j) * b + o]!);
      }
    });
    const lo = Math.min(...targets);
    const ordered = r.order;
    conv({ inBuffer: U, inChannel: r.inChannel, cin: b, inIndex: r.inIndex, inAct: ACT.relu,
      inScale: float([b], ordered.map((j) => scale[j]!)), inShift: float([b], ordered.map((j) => shift[j]!)),
      outBuffer: U, outChannel: lo, cout: b * keep, outIndex: index(targets.map((c) => c - lo)), accumulate: 1,
      kernel: 3, pad: 1, groups: b, outAct: ACT.none, weight: float([b * keep, 1, 3, 3], wt), bias: null });
  }

  // Head: 1x1 to lastChannels + BN + ReLU, global pool, classifier.
  const last = cfg.stageChannels[cfg.stageChannels.length - 1]!;
  const size = shuffleUnits(cfg).at(-1)!.at(-1)!.size;
  const hb = buffer(cfg.lastChannels, size[0], size[1]);
  pointwise('head.conv', x, last, cfg.lastChannels, hb, range(0, cfg.lastChannels));
  const vb = buffer(cfg.lastChannels, 1, 1);
  ops.push({ kind: 'global_avgpool', inBuffer: hb, inChannel: 0, channels: cfg.lastChannels, outBuffer: vb, outChannel: 0, inAct: ACT.none, inScale: null, inShift: null });
  const k = cfg.classes, L = cfg.lastChannels;
  const cw = get('head.classifier.weight', L * k);
  const fw = new Float32Array(k * L);
  for (let o = 0; o < k; o++) for (let i = 0; i < L; i++) fw[o * L + i] = cw[i * k + o]!;
  const ob = buffer(k, 1, 1);
  ops.push({ kind: 'fc', inBuffer: vb, inChannel: 0, cin: L, outBuffer: ob, outChannel: 0, cout: k, outAct: ACT.none,
    weight: float([k, L], fw), bias: float([k], get('head.classifier.bias', k)) });

  const meta: MetaEntry[] = [
    { key: 'name', type: 'string', value: opts.name ?? cfg.name },
    { key: 'arch', type: 'string', value: cfg.name },
    { key: 'input.shape', type: 'u32[]', value: Uint32Array.of(cfg.input.channels, cfg.input.height, cfg.input.width) },
    { key: 'input.mean', type: 'f32[]', value: Float32Array.from(cfg.mean) },
    { key: 'input.std', type: 'f32[]', value: Float32Array.from(cfg.std) },
  ];
  if (cfg.labels.length === k) meta.push({ key: 'labels', type: 'string[]', value: cfg.labels });
  if (cfg.resize) meta.push({ key: 'input.resize', type: 'string', value: cfg.resize });
  if (cfg.resizeShorter) meta.push({ key: 'input.resize_shorter', type: 'u32[]', value: Uint32Array.of(cfg.resizeShorter) });
  meta.push({ key: 'provenance', type: 'string', value: JSON.stringify({ tool: 'cdnv2', version: toolVersion(), weights: opts.weights, date: new Date().toISOString() }) });
  return { meta, buffers, inputBuffer: inBuf, outputBuffer: ob, ops, tensors };
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a }, (_, i) => a + i);
}

/** shuffle(concat[A, B]) with groups 2: out[2k] = A[k], out[2k+1] = B[k] (docs/shufflenet.md). */
function shuffled(a: number[], b: number[]): number[] {
  const out: number[] = [];
  for (let k = 0; k < a.length; k++) out.push(a[k]!, b[k]!);
  return out;
}

/** Deterministic random training form with non-trivial BN statistics and final SFR masks (each input keeps b/S random outputs). */
export function randomShuffleNetParams(cfg: ShuffleNetConfig, seed: number, inventory: { name: string; shape: number[] }[]): ShuffleNetParams {
  let st = (seed ^ 0x9e3779b9) >>> 0;
  const rnd = (): number => {
    st = (st + 0x6d2b79f5) >>> 0;
    let t = st;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const tensors = new Map<string, Float32Array>();
  for (const t of inventory) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    const field = t.name.slice(t.name.lastIndexOf('.') + 1);
    // Fan-in of a weight: all dimensions but the last (TF.js layouts put the output last; depthwise: 9).
    const fanIn = t.shape.length > 1 ? (t.name.endsWith('dw.weight') ? 9 : n / t.shape.at(-1)!) : 1;
    for (let i = 0; i < n; i++) {
      if (field === 'gamma' || field === 'variance') v[i] = 0.5 + rnd();
      else if (field === 'beta' || field === 'mean' || field === 'bias') v[i] = 0.2 * (rnd() - 0.5);
      else v[i] = (rnd() * 2 - 1) * Math.sqrt(3 / fanIn);
    }
    tensors.set(t.name, v);
  }
  const masks = new Map<string, Uint8Array>();
  for (const stage of shuffleUnits(cfg)) {
    for (const u of stage) {
      if (!u.sfr) continue;
      const b = u.branch, keep = b / u.sfrFactor;
      const m = new Uint8Array(b * b);
      for (let j = 0; j < b; j++) {
        let left = keep;
        while (left > 0) { const o = Math.floor(rnd() * b); if (!m[j * b + o]) { m[j * b + o] = 1; left--; } }
      }
      masks.set(`${u.prefix}.sfr.mask`, m);
    }
  }
  return { config: cfg, tensors, masks };
}
