// Condensation: training-form parameters (masked dense 1x1 convs + BN, PyTorch layouts) -> the condensed op graph
// of docs/format.md. The mapping here is the contract with the runtime; docs/format.md describes the ops.
import { activationOfBlock, blockChannels, type ArchConfig } from '../base/arch/configs.js';
import type { BatchNormParams, DenseLayerParams, NetworkParams } from '../base/arch/params.js';
import { floatsToHalves } from '../base/cnv2/f16.js';
import { riceParams } from '../base/cnv2/rice.js';
import { ACT, type BufferShape, type MetaEntry, type Model, type Op, type Tensor } from '../base/cnv2/model.js';
import { toolVersion } from '../base/version.js';

export type WeightsDtype = 'f32' | 'f16';

export interface CondenseOptions {
  weights: WeightsDtype;
  name?: string;
}

/** Thrown when the parameters cannot be condensed (e.g. masks still in their sparsification phase). */
export class CondenseError extends Error {
  override name = 'CondenseError';
}

/** BN in eval mode as an affine map: scale = gamma / sqrt(var + eps), shift = beta - mean * scale (float64). */
export function bnAffine(bn: BatchNormParams): { scale: Float64Array; shift: Float64Array } {
  const n = bn.gamma.length;
  const scale = new Float64Array(n);
  const shift = new Float64Array(n);
  for (let c = 0; c < n; c++) {
    scale[c] = bn.gamma[c]! / Math.sqrt(bn.variance[c]! + bn.eps);
    shift[c] = bn.beta[c]! - bn.mean[c]! * scale[c]!;
  }
  return { scale, shift };
}

function actCode(a: 'relu' | 'hardswish'): number {
  return a === 'relu' ? ACT.relu : ACT.hardswish;
}

function expectLength(what: string, arr: ArrayLike<number>, n: number): void {
  if (arr.length !== n) throw new CondenseError(`${what}: ${arr.length} values, expected ${n}`);
}

function checkBn(what: string, bn: BatchNormParams, n: number): void {
  for (const k of ['gamma', 'beta', 'mean', 'variance'] as const) expectLength(`${what} BN ${k}`, bn[k], n);
}

function divides(what: string, a: number, b: number): number {
  if (b <= 0 || a % b !== 0) throw new CondenseError(`${what}: ${a} is not divisible by ${b}`);
  return a / b;
}

/** Collects tensors; index lists are stored rice-coded (sorted runs, ~5 bits an entry) and identical ones are shared. */
class TensorTable {
  readonly tensors: Tensor[] = [];
  private readonly indexCache = new Map<string, number>();
  constructor(private readonly weights: WeightsDtype) {}

  float(shape: number[], values: ArrayLike<number>): number {
    const f32 = Float32Array.from(values);
    this.tensors.push(this.weights === 'f16'
      ? { dtype: 'f16', shape, data: floatsToHalves(f32) }
      : { dtype: 'f32', shape, data: f32 });
    return this.tensors.length - 1;
  }

  index(values: number[]): number {
    const key = values.join(',');
    const hit = this.indexCache.get(key);
    if (hit !== undefined) return hit;
    this.tensors.push({ dtype: 'rice', shape: [values.length], data: Uint32Array.from(values), rice: riceParams(values) });
    this.indexCache.set(key, this.tensors.length - 1);
    return this.tensors.length - 1;
  }
}

/** The sorted input set of each LGC output group; all outputs of a group must share one set of in/C channels. */
export function lgcGroups(mask: Uint8Array, outputs: number, inputs: number, groups: number, keep: number, where: string): number[][] {
  const sets: number[][] = [];
  for (let g = 0; g < groups; g++) {
    const set: number[] = [];
    for (let i = 0; i < inputs; i++) if (mask[g * inputs + i]) set.push(i);
    if (set.length !== keep) {
      throw new CondenseError(`masks not final: ${where} LGC group ${g} keeps ${set.length} inputs, expected ${keep}`);
    }
    for (let o = g + groups; o < outputs; o += groups) {
      for (let i = 0; i < inputs; i++) {
        if ((mask[o * inputs + i] ? 1 : 0) !== (mask[g * inputs + i] ? 1 : 0)) {
          throw new CondenseError(`masks not final: ${where} LGC outputs ${g} and ${o} (group ${g}) keep different inputs`);
        }
      }
    }
    sets.push(set);
  }
  return sets;
}

/** The sorted output set of each SFR input group; all inputs of a group must share one set of out/S outputs. */
export function sfrGroups(mask: Uint8Array, outputs: number, inputs: number, groups: number, keep: number, where: string): number[][] {
  const sets: number[][] = [];
  for (let g = 0; g < groups; g++) {
    const set: number[] = [];
    for (let o = 0; o < outputs; o++) if (mask[o * inputs + g]) set.push(o);
    if (set.length !== keep) {
      throw new CondenseError(`masks not final: ${where} SFR input group ${g} keeps ${set.length} outputs, expected ${keep}`);
    }
    for (let j = g + groups; j < inputs; j += groups) {
      for (let o = 0; o < outputs; o++) {
        if ((mask[o * inputs + j] ? 1 : 0) !== (mask[o * inputs + g] ? 1 : 0)) {
          throw new CondenseError(`masks not final: ${where} SFR inputs ${g} and ${j} (group ${g}) keep different outputs`);
        }
      }
    }
    sets.push(set);
  }
  return sets;
}

interface Ctx {
  cfg: ArchConfig;
  t: TensorTable;
  ops: Op[];
}

function condenseLayer(ctx: Ctx, layer: DenseLayerParams, blockBuf: number, tempBuf: number, where: string): void {
  const { cfg, t, ops } = ctx;
  const G = cfg.group1x1;
  const inC = layer.inChannels;
  const k = layer.growth;
  const bk = cfg.bottleneck * k;
  const a = actCode(layer.activation);
  const keepIn = divides(`${where} in/C`, inC, cfg.condenseFactor);
  const opg = divides(`${where} bottleneck*growth/group_1x1`, bk, G);
  const G3 = cfg.group3x3;
  const cpg3 = divides(`${where} bottleneck*growth/group_3x3`, bk, G3);
  divides(`${where} growth/group_3x3`, k, G3);

  // a) LGC: gathered, pre-activated 1x1 group conv; the 3x3 conv's BN (its only reader) is folded in.
  const lgc = layer.lgc;
  checkBn(`${where} LGC`, lgc.bn, inC);
  expectLength(`${where} LGC weight`, lgc.weight, bk * inC);
  expectLength(`${where} LGC mask`, lgc.mask, bk * inC);
  const sets = lgcGroups(lgc.mask, bk, inC, G, keepIn, where);
  const inIndex = sets.flat();
  const bn1 = bnAffine(lgc.bn);
  checkBn(`${where} 3x3`, layer.conv.bn, bk);
  const bn3 = bnAffine(layer.conv.bn);
  const w = new Float64Array(bk * keepIn);
  const bias = new Float64Array(bk);
  const outIndex: number[] = new Array<number>(bk);
  for (let g = 0; g < G; g++) {
    for (let j = 0; j < opg; j++) {
      const row = g * opg + j;
      const o = j * G + g; // the original (interleaved) output channel
      for (let tt = 0; tt < keepIn; tt++) w[row * keepIn + tt] = lgc.weight[o * inC + sets[g]![tt]!]! * bn3.scale[o]!;
      bias[row] = bn3.shift[o]!;
      outIndex[row] = o;
    }
  }
  ops.push({
    kind: 'conv2d', inBuffer: blockBuf, inChannel: 0, cin: G * keepIn, outBuffer: tempBuf, outChannel: 0, cout: bk,
    kernel: 1, stride: 1, pad: 0, groups: G, inAct: a, outAct: a, accumulate: 0,
    weight: t.float([bk, keepIn, 1, 1], w), bias: t.float([bk], bias), inIndex: t.index(inIndex),
    inScale: t.float([inIndex.length], inIndex.map((i) => bn1.scale[i]!)),
    inShift: t.float([inIndex.length], inIndex.map((i) => bn1.shift[i]!)),
    outIndex: t.index(outIndex),
  });

  // b) 3x3 group conv appends the k new features to the block buffer.
  expectLength(`${where} 3x3 weight`, layer.conv.weight, k * cpg3 * 9);
  ops.push({
    kind: 'conv2d', inBuffer: tempBuf, inChannel: 0, cin: bk, outBuffer: blockBuf, outChannel: inC, cout: k,
    kernel: 3, stride: 1, pad: 1, groups: G3, inAct: ACT.none, outAct: ACT.none, accumulate: 0,
    weight: t.float([k, cpg3, 3, 3], layer.conv.weight), bias: null, inIndex: null, inScale: null, inShift: null, outIndex: null,
  });

  // c) SE on the new features, in place.
  if (layer.se) {
    const hd = layer.se.hidden;
    expectLength(`${where} SE w1`, layer.se.w1, hd * k);
    expectLength(`${where} SE w2`, layer.se.w2, k * hd);
    ops.push({
      kind: 'se', buffer: blockBuf, channel: inC, channels: k, hidden: hd,
      w1: t.float([hd, k], layer.se.w1), b1: null, w2: t.float([k, hd], layer.se.w2), b2: null, gate: 0,
    });
  }

  // d) SFR: group conv over the regrouped new features, scatter-added into the kept old channels.
  if (layer.sfr) {
    const sfr = layer.sfr;
    const G = cfg.groupTrans;
    const keepOut = divides(`${where} in/S`, inC, cfg.sfrFactor);
    const ipg = divides(`${where} growth/group_trans`, k, G);
    checkBn(`${where} SFR`, sfr.bn, k);
    expectLength(`${where} SFR weight`, sfr.weight, inC * k);
    expectLength(`${where} SFR mask`, sfr.mask, inC * k);
    const outSets = sfrGroups(sfr.mask, inC, k, G, keepOut, where);
    const bn = bnAffine(sfr.bn);
    const gather: number[] = [];
    for (let g = 0; g < G; g++) for (let tt = 0; tt < ipg; tt++) gather.push(tt * G + g);
    const sw = new Float64Array(G * keepOut * ipg);
    const sOut: number[] = [];
    for (let g = 0; g < G; g++) {
      for (let u = 0; u < keepOut; u++) {
        const row = g * keepOut + u;
        const o = outSets[g]![u]!;
        for (let tt = 0; tt < ipg; tt++) sw[row * ipg + tt] = sfr.weight[o * k + tt * G + g]!;
        sOut.push(o);
      }
    }
    ops.push({
      kind: 'conv2d', inBuffer: blockBuf, inChannel: inC, cin: k, outBuffer: blockBuf, outChannel: 0, cout: G * keepOut,
      kernel: 1, stride: 1, pad: 0, groups: G, inAct: a, outAct: ACT.none, accumulate: 1,
      weight: t.float([G * keepOut, ipg, 1, 1], sw), bias: null, inIndex: t.index(gather),
      inScale: t.float([k], gather.map((j) => bn.scale[j]!)), inShift: t.float([k], gather.map((j) => bn.shift[j]!)),
      outIndex: t.index(sOut),
    });
  }
}

/** Condenses training-form parameters into a `.cnv2` model (see docs/format.md and docs/flops.md). */
export function condense(params: NetworkParams, opts: CondenseOptions): Model {
  const cfg = params.config;
  const t = new TensorTable(opts.weights);
  const ops: Op[] = [];
  const ctx: Ctx = { cfg, t, ops };
  const blocks = blockChannels(cfg);
  const nb = blocks.length;
  if (params.blocks.length !== nb) throw new CondenseError(`${params.blocks.length} blocks, config has ${nb}`);
  const sizeW: number[] = [];
  let w = Math.floor((cfg.input.width + 2 - 3) / cfg.stemStride) + 1;
  for (let b = 0; b < nb; b++) { sizeW.push(w); w = Math.floor(w / 2); }

  const buffers: BufferShape[] = [{ channels: cfg.input.channels, height: cfg.input.height, width: cfg.input.width }];
  const blockBuf = blocks.map((bl, b) => buffers.push({ channels: bl.out, height: bl.size, width: sizeW[b]! }) - 1);
  const tempBuf = blocks.map((bl, b) =>
    buffers.push({ channels: cfg.bottleneck * cfg.growth[b]!, height: bl.size, width: sizeW[b]! }) - 1);
  const cFinal = blocks[nb - 1]!.out;
  const vec = buffers.push({ channels: cFinal, height: 1, width: 1 }) - 1;
  const fcBuf = cfg.fcChannels > 0 ? buffers.push({ channels: cfg.fcChannels, height: 1, width: 1 }) - 1 : -1;
  const outBuf = buffers.push({ channels: cfg.classes, height: 1, width: 1 }) - 1;

  // Stem: plain 3x3 conv, no BN/activation after it (the first LGC pre-activates).
  expectLength('stem weight', params.stem.weight, cfg.stemChannels * cfg.input.channels * 9);
  ops.push({
    kind: 'conv2d', inBuffer: 0, inChannel: 0, cin: cfg.input.channels, outBuffer: blockBuf[0]!, outChannel: 0,
    cout: cfg.stemChannels, kernel: 3, stride: cfg.stemStride, pad: 1, groups: 1, inAct: ACT.none, outAct: ACT.none,
    accumulate: 0, weight: t.float([cfg.stemChannels, cfg.input.channels, 3, 3], params.stem.weight),
    bias: null, inIndex: null, inScale: null, inShift: null, outIndex: null,
  });

  for (let b = 0; b < nb; b++) {
    const layers = params.blocks[b]!;
    if (layers.length !== cfg.layers[b]) throw new CondenseError(`block ${b}: ${layers.length} layers, config has ${cfg.layers[b]}`);
    let inC = blocks[b]!.in;
    layers.forEach((layer, l) => {
      const where = `block ${b} layer ${l}`;
      if (layer.inChannels !== inC || layer.growth !== cfg.growth[b]) {
        throw new CondenseError(`${where}: ${layer.inChannels} -> +${layer.growth} channels, config says ${inC} -> +${cfg.growth[b]}`);
      }
      if (layer.activation !== activationOfBlock(cfg, b)) throw new CondenseError(`${where}: activation ${layer.activation} differs from the config`);
      if (Boolean(layer.se) !== b >= cfg.seStartBlock) throw new CondenseError(`${where}: SE presence differs from the config`);
      if (Boolean(layer.sfr) !== params.sfr) throw new CondenseError(`${where}: SFR presence differs from params.sfr`);
      condenseLayer(ctx, layer, blockBuf[b]!, tempBuf[b]!, where);
      inC += layer.growth;
    });
    if (b < nb - 1) {
      ops.push({
        kind: 'avgpool', inBuffer: blockBuf[b]!, inChannel: 0, channels: blocks[b]!.out,
        outBuffer: blockBuf[b + 1]!, outChannel: 0, kernel: 2, stride: 2,
      });
    }
  }

  // Head: BN -> ReLU -> global pool, SE on the pooled vector, hidden FC with hardswish, classifier.
  const head = params.head;
  checkBn('head', head.bn, cFinal);
  const hb = bnAffine(head.bn);
  ops.push({
    kind: 'global_avgpool', inBuffer: blockBuf[nb - 1]!, inChannel: 0, channels: cFinal, outBuffer: vec, outChannel: 0,
    inAct: ACT.relu, inScale: t.float([cFinal], hb.scale), inShift: t.float([cFinal], hb.shift),
  });
  if (Boolean(head.se) !== cfg.headSeReduction > 0) throw new CondenseError('head SE presence differs from the config');
  if (head.se) {
    const hd = head.se.hidden;
    expectLength('head SE w1', head.se.w1, hd * cFinal);
    expectLength('head SE w2', head.se.w2, cFinal * hd);
    ops.push({
      kind: 'se', buffer: vec, channel: 0, channels: cFinal, hidden: hd,
      w1: t.float([hd, cFinal], head.se.w1), b1: null, w2: t.float([cFinal, hd], head.se.w2), b2: null, gate: 0,
    });
  }
  let last = vec;
  let lastC = cFinal;
  if (Boolean(head.fc) !== cfg.fcChannels > 0) throw new CondenseError('head FC presence differs from the config');
  if (head.fc) {
    expectLength('head fc weight', head.fc.weight, cfg.fcChannels * cFinal);
    expectLength('head fc bias', head.fc.bias, cfg.fcChannels);
    ops.push({
      kind: 'fc', inBuffer: vec, inChannel: 0, cin: cFinal, outBuffer: fcBuf, outChannel: 0, cout: cfg.fcChannels,
      outAct: ACT.hardswish, weight: t.float([cfg.fcChannels, cFinal], head.fc.weight), bias: t.float([cfg.fcChannels], head.fc.bias),
    });
    last = fcBuf;
    lastC = cfg.fcChannels;
  }
  expectLength('classifier weight', head.classifier.weight, cfg.classes * lastC);
  expectLength('classifier bias', head.classifier.bias, cfg.classes);
  ops.push({
    kind: 'fc', inBuffer: last, inChannel: 0, cin: lastC, outBuffer: outBuf, outChannel: 0, cout: cfg.classes,
    outAct: ACT.none, weight: t.float([cfg.classes, lastC], head.classifier.weight), bias: t.float([cfg.classes], head.classifier.bias),
  });

  // No labels (a configuration without class names): the file leaves them out and hosts print indices.
  if (cfg.labels.length !== 0 && cfg.labels.length !== cfg.classes) throw new CondenseError(`config has ${cfg.labels.length} labels for ${cfg.classes} classes`);
  const provenance = { ...params.provenance, tool: 'cdnv2', toolVersion: toolVersion(), weights: opts.weights, sfr: params.sfr };
  const meta: MetaEntry[] = [
    { key: 'name', type: 'string', value: opts.name ?? cfg.name },
    { key: 'arch', type: 'string', value: cfg.name },
    { key: 'input.shape', type: 'u32[]', value: Uint32Array.from([cfg.input.channels, cfg.input.height, cfg.input.width]) },
    { key: 'input.mean', type: 'f32[]', value: Float32Array.from(cfg.mean) },
    { key: 'input.std', type: 'f32[]', value: Float32Array.from(cfg.std) },
    { key: 'input.resize', type: 'string', value: cfg.resize ?? 'bilinear' },
    ...(cfg.resizeShorter ? [{ key: 'input.resize_shorter', type: 'u32[]', value: Uint32Array.of(cfg.resizeShorter) } as MetaEntry] : []),
    ...(cfg.labels.length ? [{ key: 'labels', type: 'string[]', value: [...cfg.labels] } as MetaEntry] : []),
    { key: 'provenance', type: 'string', value: JSON.stringify(provenance) },
  ];
  return { meta, buffers, inputBuffer: 0, outputBuffer: outBuf, ops, tensors: t.tensors };
}
