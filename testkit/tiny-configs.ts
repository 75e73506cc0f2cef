// Small but awkward configurations for exact-equivalence tests: odd sizes, stride-2 stem, 1x1 last block,
// hardswish, SE in blocks and head, hidden FC; one with G > C = S (LGC groups share input channels); and one with
// different group counts for the LGC, the 3x3 conv and the SFR (official group_1x1, group_3x3, group_trans).
import { CONFIGS, type ArchConfig } from '../base/arch/configs.js';

const base = CONFIGS['cdnv2-fmnist']!;

export const TINY_A: ArchConfig = {
  ...base,
  name: 'tiny-a', description: 'test config A',
  input: { channels: 3, height: 11, width: 11 }, classes: 5,
  layers: [2, 2, 1], growth: [4, 8, 8], group1x1: 4, group3x3: 4, groupTrans: 4, condenseFactor: 4, sfrFactor: 4, bottleneck: 4,
  stemChannels: 8, stemStride: 2, hsStartBlock: 1, seStartBlock: 1, seReduction: 2, headSeReduction: 4, fcChannels: 12,
  mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3], labels: ['a', 'b', 'c', 'd', 'e'],
};

export const TINY_B: ArchConfig = {
  ...base,
  name: 'tiny-b', description: 'test config B (G > C)',
  input: { channels: 2, height: 9, width: 9 }, classes: 3,
  layers: [2, 2], growth: [4, 8], group1x1: 4, group3x3: 4, groupTrans: 4, condenseFactor: 2, sfrFactor: 2, bottleneck: 2,
  stemChannels: 8, stemStride: 1, hsStartBlock: Infinity, seStartBlock: Infinity, seReduction: 1, headSeReduction: 0,
  fcChannels: 0, mean: [0.5, 0.5], std: [0.25, 0.25], labels: ['x', 'y', 'z'],
};

export const TINY_C: ArchConfig = {
  ...TINY_B,
  name: 'tiny-c', description: 'test config C (group_1x1 2, group_3x3 4, group_trans 4, C = S = 2)',
  group1x1: 2, group3x3: 4, groupTrans: 4, hsStartBlock: 1, seStartBlock: 1, headSeReduction: 2, fcChannels: 6,
};
