// Small derived configurations for tests and quick experiments (not part of the named CONFIGS).
import { getConfig, type ArchConfig } from '../base/arch/configs.js';
import { SHUFFLENET_CONFIGS, type ShuffleNetConfig } from '../base/arch/shufflenet.js';

/** A configuration derived from a named one with fields overridden (e.g. a tiny network on 8x8 inputs). */
export function deriveConfig(base: string | ArchConfig, overrides: Partial<ArchConfig>): ArchConfig {
  const b = typeof base === 'string' ? getConfig(base) : base;
  return { ...b, ...overrides, input: { ...b.input, ...(overrides.input ?? {}) }, train: { ...b.train, ...(overrides.train ?? {}) } };
}

/** A tiny network exercising every feature (SE, hardswish, head SE, fc layer, SFR) that trains in seconds. */
export function tinyConfig(overrides: Partial<ArchConfig> = {}): ArchConfig {
  return deriveConfig('cdnv2-fmnist', {
    name: 'tiny', description: 'tiny test network',
    input: { channels: 1, height: 8, width: 8 }, classes: 4,
    layers: [2, 2], growth: [4, 8], group1x1: 2, group3x3: 2, groupTrans: 2, condenseFactor: 4, sfrFactor: 2, bottleneck: 2,
    stemChannels: 8, stemStride: 1, hsStartBlock: 1, seStartBlock: 1, seReduction: 1, headSeReduction: 4, fcChannels: 8,
    mean: [0.5], std: [0.25], labels: ['a', 'b', 'c', 'd'],
    ...overrides,
  });
}

/**
 * A tiny SFR-ShuffleNetV2 (8x8 gray, 4 classes; two stages of a stride-2 and a basic unit, SFR with S = G = b) that
 * trains in seconds; maxPool and stemStride can be switched on to exercise the ImageNet stem.
 */
export function tinyShuffleConfig(overrides: Partial<ShuffleNetConfig> = {}): ShuffleNetConfig {
  const b = SHUFFLENET_CONFIGS['sfr-shufflenetv2-fmnist']!;
  return {
    ...b, name: 'tiny-shufflenet', description: 'tiny SFR-ShuffleNetV2 test network',
    input: { channels: 1, height: 8, width: 8 }, classes: 4,
    stemChannels: 8, stemStride: 1, maxPool: false, stageChannels: [8, 16], stageUnits: [2, 2], lastChannels: 16,
    sfr: true, sfrFactor: [4, 8], sfrGroups: [4, 8],
    mean: [0.5], std: [0.25], labels: ['a', 'b', 'c', 'd'],
    ...overrides,
    train: { ...b.train, ...(overrides.train ?? {}) },
  };
}
