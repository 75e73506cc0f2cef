// One lookup over both network families (CondenseNetV2: configs.ts, ShuffleNetV2 / SFR-ShuffleNetV2:
// shufflenet.ts), for the CLI, the trainer and the checkpoint reader. The families keep their own types.
import { CONFIGS, type ArchConfig } from './configs.js';
import { maskInventory, tensorInventory, type MaskInfo, type TensorInfo } from './schema.js';
import {
  SHUFFLENET_CONFIGS, isShuffleNetConfig, shuffleMaskInventory, shuffleTensorInventory, type ShuffleNetConfig,
} from './shufflenet.js';

export type NetworkConfig = ArchConfig | ShuffleNetConfig;

export { isShuffleNetConfig };

/** Every configuration name of both families, CondenseNetV2 first. */
export function networkConfigNames(): string[] {
  return [...Object.keys(CONFIGS), ...Object.keys(SHUFFLENET_CONFIGS)];
}

export function findNetworkConfig(name: string): NetworkConfig | undefined {
  return CONFIGS[name] ?? SHUFFLENET_CONFIGS[name];
}

/** Looks up a configuration of either family; throws a clear error listing the known names. */
export function getNetworkConfig(name: string): NetworkConfig {
  const c = findNetworkConfig(name);
  if (!c) throw new Error(`unknown configuration '${name}' (known: ${networkConfigNames().join(', ')})`);
  return c;
}

/**
 * Whether the network has sparse feature reactivation: a ShuffleNet configuration says so itself (its name starts
 * with sfr-); a CondenseNetV2 one follows the `sfr` option (--no-sfr).
 */
export function networkHasSfr(cfg: NetworkConfig, sfrOption: boolean): boolean {
  return isShuffleNetConfig(cfg) ? cfg.sfr : sfrOption;
}

/** The training-form tensor inventory of either family (the checkpoint's order). */
export function networkTensorInventory(cfg: NetworkConfig, sfr: boolean): TensorInfo[] {
  return isShuffleNetConfig(cfg) ? shuffleTensorInventory(cfg) : tensorInventory(cfg, sfr);
}

/** The training-form mask inventory of either family. */
export function networkMaskInventory(cfg: NetworkConfig, sfr: boolean): MaskInfo[] {
  return isShuffleNetConfig(cfg) ? shuffleMaskInventory(cfg) : maskInventory(cfg, sfr);
}
