// What the training loop, the data-parallel worker, evaluation and checkpoints need of a network, whichever family
// it is: CondenseNetV2 (model.ts) or ShuffleNetV2 / SFR-ShuffleNetV2 (shufflenet-model.ts).
import type * as tf from '@tensorflow/tfjs';

import { isShuffleNetConfig, type NetworkConfig } from '../base/arch/networks.js';
import type { MaskInfo, TensorInfo } from '../base/arch/schema.js';
import { CdnModel, initialValues, type BnBatchStat, type StageEvent, type TensorLookup } from './model.js';
import { ShuffleModel, shuffleInitialValues } from './shufflenet-model.js';

export interface TrainModel {
  readonly cfg: NetworkConfig;
  readonly sfr: boolean;
  /** Every tensor in the checkpoint's order, and every mask. */
  readonly inventory: TensorInfo[];
  readonly maskList: MaskInfo[];
  readonly vars: Map<string, tf.Variable>;
  readonly masks: Map<string, Uint8Array>;
  /** Condensation steps done (LGC and SFR). */
  stage: { lgc: number; sfr: number };
  get(name: string): tf.Tensor;
  trainable(): { name: string; variable: tf.Variable; decay: boolean }[];
  setMasks(masks: Map<string, Uint8Array>): void;
  /** Advances the mask schedule to training progress p in [0, 1]. */
  updateMasks(p: number): StageEvent[];
  lassoLoss(): tf.Scalar;
  /** Logits of normalised NHWC images: batch statistics (recorded into `stats`) when training, else running ones. */
  forward(x: tf.Tensor4D, training: boolean, stats?: BnBatchStat[], lookup?: TensorLookup): tf.Tensor2D;
  snapshot(): Map<string, Float32Array>;
  dispose(): void;
}

/** The TF.js training model of a configuration of either family (`sfr` applies to CondenseNetV2 only). */
export function createTrainModel(cfg: NetworkConfig, sfr: boolean, values: Map<string, Float32Array>, masks?: Map<string, Uint8Array>): TrainModel {
  return isShuffleNetConfig(cfg) ? new ShuffleModel(cfg, values, masks) : new CdnModel(cfg, sfr, values, masks);
}

/** Initial values of every tensor (the family's initialisation), by name. */
export function networkInitialValues(cfg: NetworkConfig, sfr: boolean, seed: number): Map<string, Float32Array> {
  return isShuffleNetConfig(cfg) ? shuffleInitialValues(cfg, seed) : initialValues(cfg, sfr, seed);
}
