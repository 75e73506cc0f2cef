// Small but awkward configurations for exact-equivalence tests: odd sizes, stride-2 stem, 1x1 last block,
// hardswish, SE in blocks and head, hidden FC; and one with G > C = S (LGC groups share input channels).
import { CONFIGS, type ArchConfig } from '../base/arch/configs.js';

const base = CONFIGS['cdnv2-fmnist']!;

export const TINY_A: ArchConfig = {
  ...base,
  name: 'tiny-a', description: 'test config A',
  input: { channels: 3, height: 11, width: 11 }, classes: 5,
  layers: [2, 2, 1], growth: [4, 8, 8], groups: 4, condenseFactor: 4, sfrFactor: 4, bottleneck: 4,
  stemChannels: 8, stemStride: 2, hsStartBlock: 1, seStartBlock: 1, seReduction: 2, headSeReduction: 4, fcChannels: 12,
  mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3], labels: ['a', 'b', 'c', 'd', 'e'],
};

export const TINY_B: ArchConfig = {
  ...base,
  name: 'tiny-b', description: 'test config B (G > C)',
  input: { channels: 2, height: 9, width: 9 }, classes: 3,
  layers: [2, 2], growth: [4, 8], groups: 4, condenseFactor: 2, sfrFactor: 2, bottleneck: 2,
  stemChannels: 8, stemStride: 1, hsStartBlock: Infinity, seStartBlock: Infinity, seReduction: 1, headSeReduction: 0,
  fcChannels: 0, mean: [0.5, 0.5], std: [0.25, 0.25], labels: ['x', 'y', 'z'],
};
