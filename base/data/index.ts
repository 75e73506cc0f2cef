// Data set selection by name, batch assembly with augmentation and normalisation.
import type { ArchConfig } from '../arch/configs.js';

/** What the data readers need of a configuration (of either network family). */
export type DataConfig = Pick<ArchConfig, 'name' | 'input' | 'classes' | 'mean' | 'std' | 'resize' | 'resizeShorter'>;
import { Rng } from '../rng.js';
import { openCifar } from './cifar.js';
import { openFolder } from './folder.js';
import { openIdx } from './idx.js';
import { DataError, type ImageSource } from './source.js';
import { openSynthetic } from './synthetic.js';

export { DataError, limitSource, type ImageSource } from './source.js';

export const DATASETS = ['fashion-mnist', 'mnist', 'cifar10', 'cifar100', 'folder', 'synthetic'] as const;
export type DatasetName = (typeof DATASETS)[number];

export const DEFAULT_DATA_DIRS: Partial<Record<DatasetName, string>> = {
  'fashion-mnist': '/usr/share/datasets/fashion-mnist',
  mnist: '/usr/share/datasets/mnist',
  cifar10: '/usr/share/datasets/cifar-10-batches-bin',
  cifar100: '/usr/share/datasets/cifar-100-binary',
};

/** Horizontal flips make sense for natural images and clothing, not for digits or the synthetic patterns. */
export function flipAllowed(ds: DatasetName): boolean {
  return ds !== 'mnist' && ds !== 'synthetic';
}

export function openDataset(ds: DatasetName, split: 'train' | 'test', cfg: DataConfig, dataDir?: string): ImageSource {
  const dir = dataDir ?? DEFAULT_DATA_DIRS[ds];
  let src: ImageSource;
  switch (ds) {
    case 'fashion-mnist': case 'mnist': src = openIdx(dir!, split, ds); break;
    case 'cifar10': src = openCifar(dir!, split, 10); break;
    case 'cifar100': src = openCifar(dir!, split, 100); break;
    case 'folder':
      if (!dataDir) throw new DataError('--dataset folder needs --data DIR');
      src = openFolder(dataDir, split, { height: cfg.input.height, width: cfg.input.width, channels: cfg.input.channels },
        { resize: cfg.resize, resizeShorter: cfg.resizeShorter });
      break;
    case 'synthetic':
      src = openSynthetic({ split, count: split === 'train' ? 2048 : 512, height: cfg.input.height, width: cfg.input.width, channels: cfg.input.channels, classes: cfg.classes });
      break;
    default: throw new DataError(`unknown dataset ${String(ds)}`);
  }
  if (src.height !== cfg.input.height || src.width !== cfg.input.width || src.channels !== cfg.input.channels) {
    throw new DataError(`${src.name} has ${src.channels}x${src.height}x${src.width} images but ${cfg.name} expects ` +
      `${cfg.input.channels}x${cfg.input.height}x${cfg.input.width}`);
  }
  if (src.classes > cfg.classes) throw new DataError(`${src.name} has ${src.classes} classes but ${cfg.name} has ${cfg.classes} outputs`);
  return src;
}

export interface Augment { crop: number; flip: boolean }

/** Default augmentation: random crop with zero padding of size/8 pixels, and horizontal flip where it makes sense. */
export function defaultAugment(cfg: DataConfig, ds: DatasetName): Augment {
  return { crop: Math.max(1, Math.round(cfg.input.height / 8)), flip: flipAllowed(ds) };
}

/**
 * Fills `out` (N x H x W x C float32, normalised with the config's mean/std) with the images `indices`.
 * With `aug` and `rng`, each image gets a random crop (zero padding, i.e. black) and maybe a flip.
 */
export function assembleBatch(src: ImageSource, cfg: DataConfig, indices: ArrayLike<number>, out: Float32Array, labels: Int32Array,
  aug?: Augment, rng?: Rng): void {
  const { height: H, width: W, channels: C } = cfg.input;
  const img = new Uint8Array(H * W * C);
  const mean = cfg.mean, std = cfg.std;
  const zero = mean.map((m, c) => (0 - m) / std[c]!);
  for (let b = 0; b < indices.length; b++) {
    const idx = indices[b]!;
    src.read(idx, img);
    labels[b] = src.label(idx);
    let dy = 0, dx = 0, flip = false;
    if (aug && rng) {
      dy = rng.int(2 * aug.crop + 1) - aug.crop;
      dx = rng.int(2 * aug.crop + 1) - aug.crop;
      flip = aug.flip && rng.next() < 0.5;
    }
    const base = b * H * W * C;
    for (let y = 0; y < H; y++) {
      const sy = y + dy;
      for (let x = 0; x < W; x++) {
        const sx0 = x + dx;
        const sx = flip ? W - 1 - sx0 : sx0;
        const o = base + (y * W + x) * C;
        if (sy < 0 || sy >= H || sx0 < 0 || sx0 >= W) {
          for (let c = 0; c < C; c++) out[o + c] = zero[c]!;
        } else {
          const s = (sy * W + sx) * C;
          for (let c = 0; c < C; c++) out[o + c] = (img[s + c]! / 255 - mean[c]!) / std[c]!;
        }
      }
    }
  }
}
