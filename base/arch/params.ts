// The network's parameters in training form (before condensation): what the trainer saves and what the
// converter condenses. Layouts follow PyTorch: conv weights [out, in, kh, kw], linear weights [out, in].
import type { ArchConfig } from './configs.js';

export interface BatchNormParams {
  gamma: Float32Array;
  beta: Float32Array;
  mean: Float32Array;      // running mean (eval mode)
  variance: Float32Array;  // running variance (eval mode)
  eps: number;
}

/** Learned group convolution: BN -> act -> 1x1 conv masked per (output group, input channel). */
export interface LgcParams {
  bn: BatchNormParams;          // over the layer's `in` input channels
  weight: Float32Array;         // [bottleneck*k, in, 1, 1]
  /** [bottleneck*k, in], 0/1. Output o belongs to group o mod G; final masks keep in/C inputs per group. */
  mask: Uint8Array;
}

/** 3x3 group convolution: BN -> act -> conv (groups G, no bias). */
export interface GroupConvParams {
  bn: BatchNormParams;          // over bottleneck*k channels
  weight: Float32Array;         // [k, bottleneck*k/G, 3, 3]
}

/** Squeeze-and-excitation: GAP -> FC (no bias) -> ReLU -> FC (no bias) -> sigmoid -> scale. */
export interface SeParams {
  hidden: number;
  w1: Float32Array;             // [hidden, C]
  w2: Float32Array;             // [C, hidden]
}

/** Sparse feature reactivation: BN -> act -> 1x1 conv (k -> in) masked per (output, input group); added to the input. */
export interface SfrParams {
  bn: BatchNormParams;          // over the k new features
  weight: Float32Array;         // [in, k, 1, 1]
  /** [in, k], 0/1. Input j belongs to group j mod G; final masks keep in/S outputs per input group. */
  mask: Uint8Array;
}

export interface DenseLayerParams {
  inChannels: number;
  growth: number;
  activation: 'relu' | 'hardswish';
  lgc: LgcParams;
  conv: GroupConvParams;
  se?: SeParams;
  sfr?: SfrParams;               // absent for --no-sfr (CondenseNet V1 dense layer)
}

export interface LinearParams {
  weight: Float32Array;          // [out, in]
  bias: Float32Array;            // [out]
}

export interface NetworkParams {
  config: ArchConfig;
  sfr: boolean;
  stem: { weight: Float32Array }; // [stemChannels, inputChannels, 3, 3], no bias, no BN after it
  blocks: DenseLayerParams[][];
  head: {
    bn: BatchNormParams;         // BN -> ReLU -> global average pool
    se?: SeParams;
    fc?: LinearParams;           // hidden linear with hardswish (fcChannels > 0)
    classifier: LinearParams;
  };
  /** Free-form facts about where the parameters came from (checkpoint, seed, epochs). */
  provenance: Record<string, unknown>;
}
