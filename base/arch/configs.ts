// Named CondenseNetV2 configurations, shared by the trainer, the converter and `cdnv2 arch`.
// Sources: paper Table 1/2 and §4.3; official code facts in ../shared/reference/condensenetv2.md (§1, §5, §7).

import imagenetClasses from './imagenet-classes.json' with { type: 'json' };

export type Activation = 'relu' | 'hardswish';

export interface TrainDefaults {
  epochs: number;
  batch: number;
  lr: number;            // peak learning rate
  warmupEpochs: number;  // linear warm-up from warmupLr to lr, per iteration
  warmupLr: number;
  weightDecay: number;   // not applied to BN parameters and biases
  momentum: number;      // Nesterov
  labelSmoothing: number;
  ema: number;           // EMA decay, 0 = off
}

export interface ArchConfig {
  name: string;
  description: string;
  /** Input tensor, channel-planar. */
  input: { channels: number; height: number; width: number };
  classes: number;
  /** Layers per dense block (d_i). */
  layers: number[];
  /** Growth rate per dense block (k_i). */
  growth: number[];
  /** Groups of the LGC 1x1 (output o in group o mod G; official `group_1x1`). */
  group1x1: number;
  /** Groups of the 3x3 convolution (contiguous channel chunks; official `group_3x3`). */
  group3x3: number;
  /** Groups of the SFR 1x1 (input j in group j mod G; official `group_trans`). */
  groupTrans: number;
  /** C: LGC condense factor; each LGC group keeps in/C input channels. */
  condenseFactor: number;
  /** S: SFR sparse factor; each SFR input group keeps out/S outputs. */
  sfrFactor: number;
  /** LGC output width = bottleneck * growth. */
  bottleneck: number;
  stemChannels: number;
  stemStride: number;
  /** Blocks with index >= this use hardswish in every BN-act pair (Infinity: never). */
  hsStartBlock: number;
  /** Blocks with index >= this apply SE (reduction seReduction) to the new features (Infinity: never). */
  seStartBlock: number;
  seReduction: number;
  /** SE on the pooled vector in the head (0: none). */
  headSeReduction: number;
  /** Hidden linear layer with hardswish before the classifier (0: none). */
  fcChannels: number;
  /** Per-channel normalisation applied to pixels scaled to [0,1]. */
  mean: number[];
  std: number[];
  /** Class names; empty when none are shipped: models then carry no labels and hosts print indices. */
  labels: string[];
  /**
   * How hosts resize images (default bilinear). 'bicubic', or any filter with resizeShorter, is the official
   * evaluation resize: PIL's antialiased filters, as torchvision's Resize on a PIL image.
   */
  resize?: 'bilinear' | 'bicubic' | 'nearest';
  /** Shorter side resized to this many pixels, then the input centre-cropped (absent: shorter side to the input). */
  resizeShorter?: number;
  train: TrainDefaults;
}

export const FASHION_MNIST_LABELS = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
  'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];
export const CIFAR10_LABELS = [
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
];
/**
 * The 100 CIFAR-100 fine label names in label order (the dataset's `fine_label_names.txt` of the binary version and
 * the `fine_label_names` of its Python `meta` file: alphabetical).
 */
export const CIFAR100_LABELS = [
  'apple', 'aquarium_fish', 'baby', 'bear', 'beaver', 'bed', 'bee', 'beetle', 'bicycle', 'bottle',
  'bowl', 'boy', 'bridge', 'bus', 'butterfly', 'camel', 'can', 'castle', 'caterpillar', 'cattle',
  'chair', 'chimpanzee', 'clock', 'cloud', 'cockroach', 'couch', 'crab', 'crocodile', 'cup', 'dinosaur',
  'dolphin', 'elephant', 'flatfish', 'forest', 'fox', 'girl', 'hamster', 'house', 'kangaroo', 'keyboard',
  'lamp', 'lawn_mower', 'leopard', 'lion', 'lizard', 'lobster', 'man', 'maple_tree', 'motorcycle', 'mountain',
  'mouse', 'mushroom', 'oak_tree', 'orange', 'orchid', 'otter', 'palm_tree', 'pear', 'pickup_truck', 'pine_tree',
  'plain', 'plate', 'poppy', 'porcupine', 'possum', 'rabbit', 'raccoon', 'ray', 'road', 'rocket',
  'rose', 'sea', 'seal', 'shark', 'shrew', 'skunk', 'skyscraper', 'snail', 'snake', 'spider',
  'squirrel', 'streetcar', 'sunflower', 'sweet_pepper', 'table', 'tank', 'telephone', 'television', 'tiger', 'tractor',
  'train', 'trout', 'tulip', 'turtle', 'wardrobe', 'whale', 'willow_tree', 'wolf', 'woman', 'worm',
];
/** The 1000 ILSVRC-2012 class names in the standard order (class index of torchvision's ImageFolder). */
export const IMAGENET_LABELS: string[] = imagenetClasses.labels;
// Per-channel normalisation of pixels scaled to [0,1], shared by every network family (shufflenet.ts too).
export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];
export const CIFAR_MEAN = [0.4914, 0.4822, 0.4465];
export const CIFAR_STD = [0.2470, 0.2435, 0.2616];
export const FASHION_MNIST_MEAN = [0.2860];
export const FASHION_MNIST_STD = [0.3530];
// The per-channel statistics of the CIFAR-100 training images, as commonly quoted.
const CIFAR100_MEAN = [0.5071, 0.4865, 0.4409];
const CIFAR100_STD = [0.2673, 0.2564, 0.2762];

// Official recipe (reference §5): 350 epochs, SGD Nesterov 0.9, lr 0.4 with 5 warm-up epochs from 0.1,
// cosine per iteration, wd 4e-5 without BN/bias, label smoothing 0.1, EMA 0.9998.
const IMAGENET_TRAIN: TrainDefaults = {
  epochs: 350, batch: 1024, lr: 0.4, warmupEpochs: 5, warmupLr: 0.1, weightDecay: 4e-5,
  momentum: 0.9, labelSmoothing: 0.1, ema: 0.9998,
};
// Paper §4.3: cosine from 0.1, 300 epochs, batch 64; wd 1e-4 as in CondenseNet V1's CIFAR recipe.
const CIFAR_TRAIN: TrainDefaults = {
  epochs: 300, batch: 64, lr: 0.1, warmupEpochs: 0, warmupLr: 0.1, weightDecay: 1e-4,
  momentum: 0.9, labelSmoothing: 0.1, ema: 0,
};

// Official values (model/condensenetv2.py cdnv2_a/b/c): group_1x1, group_3x3, group_trans, condense_factor and
// trans_factor are all 8 for A and C, all 6 for B. Evaluation (convert_and_eval.py): Resize(256), bicubic for A
// and B, bilinear for C, CenterCrop(224), ImageNet mean/std.
function imagenet(name: string, description: string, layers: number[], growth: number[], g: number, fc: number,
  resize: 'bilinear' | 'bicubic'): ArchConfig {
  return {
    name, description,
    input: { channels: 3, height: 224, width: 224 }, classes: 1000,
    layers, growth, group1x1: g, group3x3: g, groupTrans: g, condenseFactor: g, sfrFactor: g, bottleneck: 4,
    stemChannels: 2 * growth[0]!, stemStride: 2,
    hsStartBlock: 2, seStartBlock: 3, seReduction: 1, headSeReduction: 16, fcChannels: fc,
    mean: IMAGENET_MEAN, std: IMAGENET_STD, labels: IMAGENET_LABELS, resize, resizeShorter: 256, train: IMAGENET_TRAIN,
  };
}

function cifar(name: string, description: string, n: number, variant: 10 | 100 = 10): ArchConfig {
  return {
    name, description,
    input: { channels: 3, height: 32, width: 32 }, classes: variant,
    layers: [n, n, n], growth: [8, 16, 32], group1x1: 4, group3x3: 4, groupTrans: 4, condenseFactor: 4, sfrFactor: 4, bottleneck: 4,
    stemChannels: 16, stemStride: 1,
    hsStartBlock: Infinity, seStartBlock: Infinity, seReduction: 1, headSeReduction: 0, fcChannels: 0,
    mean: variant === 10 ? CIFAR_MEAN : CIFAR100_MEAN, std: variant === 10 ? CIFAR_STD : CIFAR100_STD,
    labels: variant === 10 ? CIFAR10_LABELS : CIFAR100_LABELS, train: CIFAR_TRAIN,
  };
}

const FMNIST: ArchConfig = {
  name: 'cdnv2-fmnist',
  description: 'Small CondenseNetV2 for 28x28 grayscale Fashion-MNIST',
  input: { channels: 1, height: 28, width: 28 }, classes: 10,
  layers: [4, 6, 6], growth: [8, 16, 32], group1x1: 4, group3x3: 4, groupTrans: 4, condenseFactor: 4, sfrFactor: 4, bottleneck: 4,
  stemChannels: 16, stemStride: 1,
  hsStartBlock: 1, seStartBlock: 2, seReduction: 1, headSeReduction: 8, fcChannels: 0,
  mean: FASHION_MNIST_MEAN, std: FASHION_MNIST_STD, labels: FASHION_MNIST_LABELS,
  train: {
    epochs: 40, batch: 64, lr: 0.1, warmupEpochs: 1, warmupLr: 0.02, weightDecay: 5e-5,
    momentum: 0.9, labelSmoothing: 0.1, ema: 0,
  },
};

// A few-thousand-parameter network the official PyTorch code can build too (its CIFAR branch: stem stride 1, 8x8
// final pool), with a different group count in each of the three places: the PyTorch bridge's fixtures use it.
const TINY: ArchConfig = {
  name: 'cdnv2-tiny',
  description: 'Tiny CondenseNetV2, 32x32 RGB, for tests and the PyTorch bridge fixtures',
  input: { channels: 3, height: 32, width: 32 }, classes: 10,
  layers: [1, 2, 1], growth: [4, 8, 8], group1x1: 4, group3x3: 2, groupTrans: 4, condenseFactor: 4, sfrFactor: 4,
  bottleneck: 4, stemChannels: 8, stemStride: 1,
  hsStartBlock: 1, seStartBlock: 2, seReduction: 1, headSeReduction: 4, fcChannels: 16,
  mean: IMAGENET_MEAN, std: IMAGENET_STD, labels: [], train: CIFAR_TRAIN,
};

export const CONFIGS: Record<string, ArchConfig> = {
  'cdnv2-a': imagenet('cdnv2-a', 'CondenseNetV2-A, ImageNet 224x224 (paper Table 2)', [1, 1, 4, 6, 8], [8, 8, 16, 32, 64], 8, 828, 'bicubic'),
  'cdnv2-b': imagenet('cdnv2-b', 'CondenseNetV2-B, ImageNet 224x224 (paper Table 2)', [2, 4, 6, 8, 6], [6, 12, 24, 48, 96], 6, 1024, 'bicubic'),
  'cdnv2-c': imagenet('cdnv2-c', 'CondenseNetV2-C, ImageNet 224x224 (paper Table 2)', [4, 6, 8, 10, 8], [8, 16, 32, 64, 128], 8, 1024, 'bilinear'),
  // Depth = 9n+2 counting LGC, 3x3 and SFR convolutions per layer (reference §7).
  'cdnv2-cifar-110': cifar('cdnv2-cifar-110', 'CondenseNetV2-110, CIFAR 32x32 (paper §4.3, 12-12-12)', 12),
  'cdnv2-cifar-146': cifar('cdnv2-cifar-146', 'CondenseNetV2-146, CIFAR 32x32 (paper §4.3, 16-16-16)', 16),
  // The same networks with a 100-way classifier, for the paper's CIFAR-100 column (Table 6).
  'cdnv2-cifar100-110': cifar('cdnv2-cifar100-110', 'CondenseNetV2-110, CIFAR-100 32x32 (paper §4.3, 12-12-12)', 12, 100),
  'cdnv2-cifar100-146': cifar('cdnv2-cifar100-146', 'CondenseNetV2-146, CIFAR-100 32x32 (paper §4.3, 16-16-16)', 16, 100),
  'cdnv2-fmnist': FMNIST,
  // The same network with 1.5x the growth in blocks 2 and 3: 1.9x the multiply-adds, 2.1x the parameters, for a
  // network that fits the training set better (the 8-16-32 one stops near 92% of the training images).
  'cdnv2-fmnist-w': {
    ...FMNIST, name: 'cdnv2-fmnist-w',
    description: 'CondenseNetV2 for 28x28 grayscale Fashion-MNIST, 1.5x wider in blocks 2-3 (growth 8-24-48)',
    growth: [8, 24, 48], train: { ...FMNIST.train, epochs: 32 },
  },
  'cdnv2-tiny': TINY,
};

export function configNames(): string[] {
  return Object.keys(CONFIGS);
}

/** Looks up a configuration by name; throws a clear error listing the known names. */
export function getConfig(name: string): ArchConfig {
  const c = CONFIGS[name];
  if (!c) throw new Error(`unknown configuration '${name}' (known: ${configNames().join(', ')})`);
  return c;
}

/**
 * `cfg` with a classifier of `classes` outputs (`train --classes N`). The class names stay when there are as many,
 * otherwise the model carries none (hosts then print indices).
 */
export function withClasses<C extends Pick<ArchConfig, 'classes' | 'labels'>>(cfg: C, classes: number): C {
  if (!Number.isInteger(classes) || classes < 2 || classes > 100_000) throw new Error(`classes must be an integer from 2 to 100000, got ${classes}`);
  if (classes === cfg.classes) return cfg;
  return { ...cfg, classes, labels: cfg.labels.length === classes ? cfg.labels : [] };
}

export function activationOfBlock(cfg: ArchConfig, block: number): Activation {
  return block >= cfg.hsStartBlock ? 'hardswish' : 'relu';
}

/** Reads a configuration saved before the three group counts were separate (one `groups` for all). */
export function upgradeConfig(raw: ArchConfig & { groups?: number }): ArchConfig {
  if (raw.group1x1 !== undefined || raw.groups === undefined) return raw;
  const { groups, ...rest } = raw;
  return { ...rest, group1x1: groups, group3x3: groups, groupTrans: groups };
}

/** Channel count entering each block and after it (dense growth). */
export function blockChannels(cfg: ArchConfig): { in: number; out: number; size: number }[] {
  const out: { in: number; out: number; size: number }[] = [];
  let c = cfg.stemChannels;
  let size = Math.floor((cfg.input.height + 2 - 3) / cfg.stemStride) + 1;
  for (let b = 0; b < cfg.layers.length; b++) {
    const cin = c;
    c += cfg.layers[b]! * cfg.growth[b]!;
    out.push({ in: cin, out: c, size });
    if (b < cfg.layers.length - 1) size = Math.floor(size / 2);
  }
  return out;
}
