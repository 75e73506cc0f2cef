// ShuffleNetV2 (Ma et al. 2018) and SFR-ShuffleNetV2 (CondenseNetV2 paper §3.3, Figure 5, Appendix A.1,
// Tables 8 and 9): a second network family beside CondenseNetV2, with its own configuration type, training-form
// schema (tensor and mask inventories, the checkpoint's order) and cost count. TensorFlow-free.
// Unit semantics, names and the SFR's sparse structure: docs/shufflenet.md; FLOPs convention: docs/flops.md.
import {
  CIFAR_MEAN, CIFAR_STD, CIFAR10_LABELS, FASHION_MNIST_LABELS, FASHION_MNIST_MEAN, FASHION_MNIST_STD, IMAGENET_LABELS,
  IMAGENET_MEAN, IMAGENET_STD, type TrainDefaults,
} from './configs.js';
import { tensorListBuilder, type MaskInfo, type TensorInfo } from './schema.js';

export const SHUFFLENET_FAMILY = 'shufflenetv2';

export interface ShuffleNetConfig {
  family: typeof SHUFFLENET_FAMILY;
  name: string;
  description: string;
  /** Input tensor, channel-planar. */
  input: { channels: number; height: number; width: number };
  classes: number;
  /** Stem: 3x3 conv (padding 1, stride stemStride) -> BN -> ReLU. */
  stemChannels: number;
  stemStride: number;
  /** 3x3 max pool, stride 2, padding 1 after the stem (ImageNet; the small variants have none). */
  maxPool: boolean;
  /** Output channels c_i of each stage (Table 9); each unit splits them into two halves of c_i/2. */
  stageChannels: number[];
  /** Units per stage, the first one (stride 2) included: 4-8-4 as in Ma et al. (Table 8: 1+3, 1+7, 1+3). */
  stageUnits: number[];
  /** 1x1 conv -> BN -> ReLU before the global pool (1024). */
  lastChannels: number;
  /** Sparse feature reactivation in the basic (stride-1) units. */
  sfr: boolean;
  /** S_i per stage: after training each SFR input group keeps (c_i/2)/S_i outputs (Table 9: S_i = c_i/2). */
  sfrFactor: number[];
  /** G_i per stage: SFR input channel j is in group j mod G_i (ours: G_i = c_i/2, one input channel per group). */
  sfrGroups: number[];
  /** Per-channel normalisation applied to pixels scaled to [0,1]. */
  mean: number[];
  std: number[];
  labels: string[];
  resize?: 'bilinear' | 'bicubic' | 'nearest';
  resizeShorter?: number;
  train: TrainDefaults;
}

// Ma et al. train ImageNet with batch 1024, lr 0.5 decayed linearly, weight decay 4e-5 (not on BN), label
// smoothing 0.1 in the public code; our schedule is warm-up + cosine (trainer/train.ts), 240 epochs.
const IMAGENET_TRAIN: TrainDefaults = {
  epochs: 240, batch: 1024, lr: 0.5, warmupEpochs: 1, warmupLr: 0.1, weightDecay: 4e-5,
  momentum: 0.9, labelSmoothing: 0.1, ema: 0,
};
const SMALL_TRAIN: TrainDefaults = {
  epochs: 40, batch: 64, lr: 0.1, warmupEpochs: 1, warmupLr: 0.02, weightDecay: 5e-5,
  momentum: 0.9, labelSmoothing: 0.1, ema: 0,
};

const halves = (widths: number[]): number[] => widths.map((c) => c / 2);

function imagenet(scale: string, widths: number[], sfr: boolean): ShuffleNetConfig {
  return {
    family: SHUFFLENET_FAMILY,
    name: `${sfr ? 'sfr-' : ''}shufflenetv2-${scale}`,
    description: sfr
      ? `SFR-ShuffleNetV2 ${scale}, ImageNet 224x224 (paper Tables 8-9, S = ${halves(widths).join('-')})`
      : `ShuffleNetV2 ${scale}, ImageNet 224x224 (Ma et al. 2018)`,
    input: { channels: 3, height: 224, width: 224 }, classes: 1000,
    stemChannels: 24, stemStride: 2, maxPool: true,
    stageChannels: widths, stageUnits: [4, 8, 4], lastChannels: 1024,
    sfr, sfrFactor: halves(widths), sfrGroups: halves(widths),
    mean: IMAGENET_MEAN, std: IMAGENET_STD, labels: IMAGENET_LABELS, resize: 'bilinear', resizeShorter: 256,
    train: IMAGENET_TRAIN,
  };
}

// Small inputs: stem stride 1 and no max pool, so the three stages run at 14/7/4 (28x28) or 16/8/4 (32x32), the
// ImageNet model's 28/14/7 halved.
function small(kind: 'fmnist' | 'cifar', widths: number[], sfr: boolean): ShuffleNetConfig {
  const fm = kind === 'fmnist';
  return {
    family: SHUFFLENET_FAMILY,
    name: `${sfr ? 'sfr-' : ''}shufflenetv2-${kind}`,
    description: `${sfr ? 'SFR-' : ''}ShuffleNetV2 for ${fm ? '28x28 grayscale Fashion-MNIST (0.5x widths)' : '32x32 RGB CIFAR (1.0x widths)'}`,
    input: fm ? { channels: 1, height: 28, width: 28 } : { channels: 3, height: 32, width: 32 }, classes: 10,
    stemChannels: 24, stemStride: 1, maxPool: false,
    stageChannels: widths, stageUnits: [4, 8, 4], lastChannels: 1024,
    sfr, sfrFactor: halves(widths), sfrGroups: halves(widths),
    mean: fm ? FASHION_MNIST_MEAN : CIFAR_MEAN, std: fm ? FASHION_MNIST_STD : CIFAR_STD, labels: fm ? FASHION_MNIST_LABELS : CIFAR10_LABELS,
    train: SMALL_TRAIN,
  };
}

const W05 = [48, 96, 192];
const W10 = [116, 232, 464];
const W15 = [176, 352, 704];

export const SHUFFLENET_CONFIGS: Record<string, ShuffleNetConfig> = Object.fromEntries([
  imagenet('0.5x', W05, false), imagenet('1.0x', W10, false), imagenet('1.5x', W15, false),
  imagenet('0.5x', W05, true), imagenet('1.0x', W10, true), imagenet('1.5x', W15, true),
  small('fmnist', W05, false), small('fmnist', W05, true),
  small('cifar', W10, false), small('cifar', W10, true),
].map((c) => [c.name, c]));

export function isShuffleNetConfig(c: unknown): c is ShuffleNetConfig {
  return typeof c === 'object' && c !== null && (c as { family?: unknown }).family === SHUFFLENET_FAMILY;
}

/** Spatial size after a 3x3 window with padding 1 and the given stride. */
export function after3x3(size: number, stride: number): number {
  return Math.floor((size + 2 - 3) / stride) + 1;
}

export interface ShuffleUnitSpec {
  stage: number;
  index: number;            // 0: the stride-2 unit
  prefix: string;           // "s{stage}.u{index}"
  stride: 1 | 2;
  inChannels: number;       // the unit's input (c_{i-1}, or the stem's for stage 0, for stride 2; c_i otherwise)
  channels: number;         // c_i, the unit's output
  branch: number;           // c_i / 2
  inSize: [number, number]; // height, width of the input
  size: [number, number];   // height, width of the output
  sfr: boolean;
  sfrFactor: number;        // S_i
  sfrGroups: number;        // G_i
}

/** The stem's output size and the units, validated (even widths, S and G dividing c_i/2). */
export function shuffleStem(cfg: ShuffleNetConfig): { size: [number, number]; pooled: [number, number] } {
  const size: [number, number] = [after3x3(cfg.input.height, cfg.stemStride), after3x3(cfg.input.width, cfg.stemStride)];
  const pooled: [number, number] = cfg.maxPool ? [after3x3(size[0], 2), after3x3(size[1], 2)] : size;
  return { size, pooled };
}

export function shuffleUnits(cfg: ShuffleNetConfig): ShuffleUnitSpec[][] {
  const n = cfg.stageChannels.length;
  if (cfg.stageUnits.length !== n || cfg.sfrFactor.length !== n || cfg.sfrGroups.length !== n) {
    throw new Error(`${cfg.name}: stageChannels, stageUnits, sfrFactor and sfrGroups need one entry per stage`);
  }
  let size = shuffleStem(cfg).pooled;
  let cin = cfg.stemChannels;
  return cfg.stageChannels.map((c, si) => {
    const b = c / 2;
    const S = cfg.sfrFactor[si]!, G = cfg.sfrGroups[si]!;
    if (!Number.isInteger(b) || b < 1) throw new Error(`${cfg.name}: stage ${si} width ${c} must be even`);
    if (cfg.stageUnits[si]! < 1) throw new Error(`${cfg.name}: stage ${si} needs at least its stride-2 unit`);
    if (cfg.sfr && (!(S >= 1 && b % S === 0) || !(G >= 1 && b % G === 0))) {
      throw new Error(`${cfg.name}: stage ${si}: the SFR's sparse factor ${S} and groups ${G} must divide the half width ${b}`);
    }
    const units: ShuffleUnitSpec[] = [];
    for (let u = 0; u < cfg.stageUnits[si]!; u++) {
      const stride = u === 0 ? 2 : 1;
      const out: [number, number] = u === 0 ? [after3x3(size[0], 2), after3x3(size[1], 2)] : size;
      units.push({
        stage: si, index: u, prefix: `s${si}.u${u}`, stride, inChannels: u === 0 ? cin : c, channels: c, branch: b,
        inSize: size, size: out, sfr: cfg.sfr && u > 0, sfrFactor: S, sfrGroups: G,
      });
      size = out;
    }
    cin = c;
    return units;
  });
}

/** The mask of one SFR: the [in, out] connection matrix of its 3x3 weight (every tap shares it). */
export interface ShuffleMaskInfo extends MaskInfo {
  kind: 'sfr';
  /** G: input channel j is in group j mod G. */
  groups: number;
  /** The masked weight is a [3, 3, inCh, outCh] (HWIO) convolution. */
  kernel: 3;
}

/** Every tensor of the network with its shape, in the checkpoint's order (forward order). */
export function shuffleTensorInventory(cfg: ShuffleNetConfig): TensorInfo[] {
  const list: TensorInfo[] = [];
  const { p, bn } = tensorListBuilder(list);
  const conv = (name: string, shape: number[], c: number): void => { p(`${name}.weight`, shape, true); bn(`${name}.bn`, c); };
  conv('stem', [3, 3, cfg.input.channels, cfg.stemChannels], cfg.stemChannels);
  let last = cfg.stemChannels;
  for (const stage of shuffleUnits(cfg)) {
    for (const u of stage) {
      const b = u.branch;
      if (u.stride === 2) {
        conv(`${u.prefix}.proj.dw`, [3, 3, u.inChannels, 1], u.inChannels);
        conv(`${u.prefix}.proj.pw`, [u.inChannels, b], b);
      }
      conv(`${u.prefix}.main.pw1`, [u.stride === 2 ? u.inChannels : b, b], b);
      conv(`${u.prefix}.main.dw`, [3, 3, b, 1], b);
      conv(`${u.prefix}.main.pw2`, [b, b], b);
      if (u.sfr) {
        bn(`${u.prefix}.sfr.bn`, b);
        p(`${u.prefix}.sfr.weight`, [3, 3, b, b], true);
      }
      last = u.channels;
    }
  }
  conv('head.conv', [last, cfg.lastChannels], cfg.lastChannels);
  p('head.classifier.weight', [cfg.lastChannels, cfg.classes], true);
  p('head.classifier.bias', [cfg.classes], false);
  return list;
}

/** The SFR masks, one per basic unit of an SFR configuration, in unit order. */
export function shuffleMaskInventory(cfg: ShuffleNetConfig): ShuffleMaskInfo[] {
  const list: ShuffleMaskInfo[] = [];
  for (const stage of shuffleUnits(cfg)) {
    for (const u of stage) {
      if (!u.sfr) continue;
      list.push({
        name: `${u.prefix}.sfr.mask`, kind: 'sfr', weight: `${u.prefix}.sfr.weight`, inCh: u.branch, outCh: u.branch,
        factor: u.sfrFactor, groups: u.sfrGroups, kernel: 3,
      });
    }
  }
  return list;
}

/** Condensation steps of the whole network when every SFR is final: the sum over SFR masks of S - 1. */
export function shuffleFinalSfrStage(cfg: ShuffleNetConfig): number {
  return shuffleMaskInventory(cfg).reduce((s, m) => s + m.factor - 1, 0);
}

export type ShuffleLayerKind = 'conv' | 'dwconv' | 'maxpool' | 'sfr' | 'global_avgpool' | 'fc';

export interface ShuffleCostRow {
  name: string;                        // the tensor prefix (e.g. "s1.u3.main.dw"), "stem.pool" or "head.pool"
  op: ShuffleLayerKind;
  input: [number, number, number];     // channels, height, width
  output: [number, number, number];
  groups: number;
  macs: number;
  flops: number;                       // macs + activations and pooling work
  params: number;                      // weights, biases, BN scale and shift (as the paper counts: not running stats)
}

/**
 * The cost of the network as deployed (SFR masks final) in the paper's convention (docs/flops.md): one
 * multiply-add is one FLOP, every ReLU 1 per element, max pool 9 per output, global pool 1 per input element; BN,
 * the channel split, the concatenation, the shuffle and the SFR's addition are free. A trained SFR keeps
 * (c_i/2)/S_i outputs per input group: its 3x3 conv costs 9 * (c_i/2) * ((c_i/2)/S_i) * H * W multiply-adds.
 */
export function shuffleCost(cfg: ShuffleNetConfig): { layers: ShuffleCostRow[]; totals: { flops: number; macs: number; params: number } } {
  const rows: ShuffleCostRow[] = [];
  const conv = (name: string, op: 'conv' | 'dwconv' | 'sfr', cin: number, cout: number, k: number, groups: number,
    inSize: [number, number], outSize: [number, number], relu: boolean, bnChannels: number, keptOutPerGroup?: number): void => {
    const hw = outSize[0] * outSize[1];
    // A condensed SFR: G groups of cin/G inputs, each writing keptOutPerGroup outputs.
    const outs = keptOutPerGroup !== undefined ? groups * keptOutPerGroup : cout;
    const weights = k * k * (cin / groups) * outs;
    const macs = weights * hw;
    // The SFR's ReLU is on its (pre-activated) input; every other ReLU follows its conv's BN.
    const act = !relu ? 0 : op === 'sfr' ? cin * inSize[0] * inSize[1] : cout * hw;
    rows.push({ name, op, input: [cin, inSize[0], inSize[1]], output: [cout, outSize[0], outSize[1]], groups, macs, flops: macs + act, params: weights + 2 * bnChannels });
  };
  const stem = shuffleStem(cfg);
  const inSize: [number, number] = [cfg.input.height, cfg.input.width];
  conv('stem', 'conv', cfg.input.channels, cfg.stemChannels, 3, 1, inSize, stem.size, true, cfg.stemChannels);
  if (cfg.maxPool) {
    const n = cfg.stemChannels * stem.pooled[0] * stem.pooled[1];
    rows.push({ name: 'stem.pool', op: 'maxpool', input: [cfg.stemChannels, ...stem.size], output: [cfg.stemChannels, ...stem.pooled], groups: 1, macs: 0, flops: 9 * n, params: 0 });
  }
  let last = cfg.stemChannels;
  let size = stem.pooled;
  for (const stage of shuffleUnits(cfg)) {
    for (const u of stage) {
      const b = u.branch;
      if (u.stride === 2) {
        conv(`${u.prefix}.proj.dw`, 'dwconv', u.inChannels, u.inChannels, 3, u.inChannels, u.inSize, u.size, false, u.inChannels);
        conv(`${u.prefix}.proj.pw`, 'conv', u.inChannels, b, 1, 1, u.size, u.size, true, b);
      }
      conv(`${u.prefix}.main.pw1`, 'conv', u.stride === 2 ? u.inChannels : b, b, 1, 1, u.inSize, u.inSize, true, b);
      conv(`${u.prefix}.main.dw`, 'dwconv', b, b, 3, b, u.inSize, u.size, false, b);
      conv(`${u.prefix}.main.pw2`, 'conv', b, b, 1, 1, u.size, u.size, true, b);
      if (u.sfr) conv(`${u.prefix}.sfr`, 'sfr', b, b, 3, u.sfrGroups, u.size, u.size, true, b, b / u.sfrFactor);
      last = u.channels;
      size = u.size;
    }
  }
  conv('head.conv', 'conv', last, cfg.lastChannels, 1, 1, size, size, true, cfg.lastChannels);
  const pooled = cfg.lastChannels * size[0] * size[1];
  rows.push({ name: 'head.pool', op: 'global_avgpool', input: [cfg.lastChannels, ...size], output: [cfg.lastChannels, 1, 1], groups: 1, macs: 0, flops: pooled, params: 0 });
  const fc = cfg.lastChannels * cfg.classes;
  rows.push({ name: 'head.classifier', op: 'fc', input: [cfg.lastChannels, 1, 1], output: [cfg.classes, 1, 1], groups: 1, macs: fc, flops: fc, params: fc + cfg.classes });
  return {
    layers: rows,
    totals: {
      flops: rows.reduce((s, r) => s + r.flops, 0),
      macs: rows.reduce((s, r) => s + r.macs, 0),
      params: rows.reduce((s, r) => s + r.params, 0),
    },
  };
}
