// The training-form schema: the network's layers, every tensor with its shape (the checkpoint's order) and every
// LGC/SFR mask, derived from a configuration. TensorFlow-free, so the checkpoint reader and the converter use it
// without loading TensorFlow.js. Names and layouts: docs/checkpoint.md.
import { activationOfBlock, blockChannels, type Activation, type ArchConfig } from './configs.js';

export const BN_EPS = 1e-5;

export interface LayerSpec {
  block: number;
  index: number;
  prefix: string;          // e.g. "b1.l3"
  inChannels: number;
  growth: number;
  mid: number;             // LGC output width = bottleneck * growth
  activation: Activation;
  seHidden: number;        // 0: no SE on the new features
  sfr: boolean;
}

/** Structure of the network, validated against the divisibility rules of LGC, group conv and SFR. */
export function layerSpecs(cfg: ArchConfig, sfr: boolean): LayerSpec[][] {
  const blocks = blockChannels(cfg);
  return blocks.map((b, bi) => {
    const k = cfg.growth[bi]!;
    const mid = cfg.bottleneck * k;
    if (mid % cfg.group1x1 !== 0 || mid % cfg.group3x3 !== 0 || k % cfg.group3x3 !== 0 || k % cfg.groupTrans !== 0) {
      throw new Error(`${cfg.name}: growth ${k} and bottleneck width ${mid} must be divisible by group_1x1 ${cfg.group1x1}, ` +
        `group_3x3 ${cfg.group3x3} and group_trans ${cfg.groupTrans}`);
    }
    const out: LayerSpec[] = [];
    for (let l = 0; l < cfg.layers[bi]!; l++) {
      const inChannels = b.in + l * k;
      const useSe = bi >= cfg.seStartBlock;
      out.push({
        block: bi, index: l, prefix: `b${bi}.l${l}`, inChannels, growth: k, mid,
        activation: activationOfBlock(cfg, bi),
        seHidden: useSe ? Math.max(1, Math.floor(k / cfg.seReduction)) : 0,
        sfr,
      });
    }
    return out;
  });
}

export function finalChannels(cfg: ArchConfig): number {
  const b = blockChannels(cfg);
  return b[b.length - 1]!.out;
}

export function headSeHidden(cfg: ArchConfig): number {
  return cfg.headSeReduction > 0 ? Math.max(1, Math.floor(finalChannels(cfg) / cfg.headSeReduction)) : 0;
}

export type TensorKind = 'param' | 'stat';

export interface TensorInfo {
  name: string;
  shape: number[];
  kind: TensorKind;
  decay: boolean;            // weight decay applies (conv and linear weights only, not BN or biases)
}

/**
 * Appenders onto a tensor inventory, shared by every network family: `p` a parameter, `bn` a batch norm's four
 * tensors (gamma and beta trained without decay, then the running mean and variance).
 */
export function tensorListBuilder(list: TensorInfo[]): {
  p: (name: string, shape: number[], decay: boolean) => void;
  bn: (name: string, c: number) => void;
} {
  const p = (name: string, shape: number[], decay: boolean): void => { list.push({ name, shape, kind: 'param', decay }); };
  const bn = (name: string, c: number): void => {
    p(`${name}.gamma`, [c], false);
    p(`${name}.beta`, [c], false);
    list.push({ name: `${name}.mean`, shape: [c], kind: 'stat', decay: false });
    list.push({ name: `${name}.variance`, shape: [c], kind: 'stat', decay: false });
  };
  return { p, bn };
}

/** Every tensor of the network with its shape, in a fixed order (the checkpoint's order). */
export function tensorInventory(cfg: ArchConfig, sfr: boolean): TensorInfo[] {
  const list: TensorInfo[] = [];
  const { p, bn } = tensorListBuilder(list);
  const G = cfg.group3x3;
  p('stem.weight', [3, 3, cfg.input.channels, cfg.stemChannels], true);
  for (const block of layerSpecs(cfg, sfr)) {
    for (const s of block) {
      bn(`${s.prefix}.lgc.bn`, s.inChannels);
      p(`${s.prefix}.lgc.weight`, [s.inChannels, s.mid], true);
      bn(`${s.prefix}.conv.bn`, s.mid);
      p(`${s.prefix}.conv.weight`, [3, 3, s.mid / G, s.growth], true);
      if (s.seHidden > 0) {
        p(`${s.prefix}.se.w1`, [s.growth, s.seHidden], true);
        p(`${s.prefix}.se.w2`, [s.seHidden, s.growth], true);
      }
      if (s.sfr) {
        bn(`${s.prefix}.sfr.bn`, s.growth);
        p(`${s.prefix}.sfr.weight`, [s.growth, s.inChannels], true);
      }
    }
  }
  const C = finalChannels(cfg);
  bn('head.bn', C);
  const hs = headSeHidden(cfg);
  if (hs > 0) {
    p('head.se.w1', [C, hs], true);
    p('head.se.w2', [hs, C], true);
  }
  let feat = C;
  if (cfg.fcChannels > 0) {
    p('head.fc.weight', [C, cfg.fcChannels], true);
    p('head.fc.bias', [cfg.fcChannels], false);
    feat = cfg.fcChannels;
  }
  p('head.classifier.weight', [feat, cfg.classes], true);
  p('head.classifier.bias', [cfg.classes], false);
  return list;
}

export interface MaskInfo {
  name: string;              // "<prefix>.lgc.mask" or "<prefix>.sfr.mask"
  kind: 'lgc' | 'sfr';
  weight: string;            // the weight it multiplies
  inCh: number;              // rows of the matmul weight
  outCh: number;             // columns
  factor: number;            // C or S
}

export function maskInventory(cfg: ArchConfig, sfr: boolean): MaskInfo[] {
  const list: MaskInfo[] = [];
  for (const block of layerSpecs(cfg, sfr)) {
    for (const s of block) {
      list.push({ name: `${s.prefix}.lgc.mask`, kind: 'lgc', weight: `${s.prefix}.lgc.weight`, inCh: s.inChannels, outCh: s.mid, factor: cfg.condenseFactor });
      if (s.sfr) {
        list.push({ name: `${s.prefix}.sfr.mask`, kind: 'sfr', weight: `${s.prefix}.sfr.weight`, inCh: s.growth, outCh: s.inChannels, factor: cfg.sfrFactor });
      }
    }
  }
  return list;
}
