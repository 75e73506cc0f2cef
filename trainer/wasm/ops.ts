// Training ops built on the wasm backend's fused kernels, with their gradients. The model uses them in place of
// its op compositions when the 'cdnv2-wasm' backend is active; the compositions stay the reference elsewhere.
import * as tf from '@tensorflow/tfjs';

import type { Activation } from '../../base/arch/configs.js';
import { AFFINE_ACT, BATCH_NORM_ACT, BATCH_NORM_ACT_GRAD, GROUP_CONV3X3, GROUP_CONV3X3_FILTER_GRAD, GROUP_CONV3X3_INPUT_GRAD } from './backend.js';

type GradFn = Parameters<typeof tf.customGrad>[0];
const run = (name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap): tf.Tensor | tf.Tensor[] =>
  tf.engine().runKernel(name, inputs, attrs) as unknown as tf.Tensor | tf.Tensor[];

/** act(batchNorm(x)) over the rows of x[M, C] with batch statistics; `onStats` gets the batch mean and variance. */
export function fusedBatchNormAct(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, act: Activation, epsilon: number,
  onStats?: (mean: tf.Tensor1D, variance: tf.Tensor1D) => void): tf.Tensor2D {
  const attrs = { epsilon, activation: act };
  const op = tf.customGrad(((xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    const [y, mean, variance, rstd] = run(BATCH_NORM_ACT, { x: xi, gamma: g, beta: b }, attrs) as tf.Tensor[];
    onStats?.(mean as tf.Tensor1D, variance as tf.Tensor1D);
    save([xi, g, b, mean!, rstd!]);
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, gs, bs, ms, rs] = saved;
        return run(BATCH_NORM_ACT_GRAD, { x: xs!, dy: dy as tf.Tensor, gamma: gs!, beta: bs!, mean: ms!, rstd: rs! }, { activation: act }) as tf.Tensor[];
      },
    };
  }) as unknown as GradFn);
  return op(x, gamma, beta) as tf.Tensor2D;
}

/** 3x3, stride 1, padding 1 convolution with `groups` contiguous channel groups; weight HWIO [3, 3, in/groups, out]. */
export function fusedGroupConv3x3(x: tf.Tensor4D, w: tf.Tensor4D, groups: number): tf.Tensor4D {
  const op = tf.customGrad(((xi: tf.Tensor, wi: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xi, wi]);
    return {
      value: run(GROUP_CONV3X3, { x: xi, filter: wi }, { groups }) as tf.Tensor,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, ws] = saved;
        return [
          run(GROUP_CONV3X3_INPUT_GRAD, { dy: dy as tf.Tensor, filter: ws! }, { groups }) as tf.Tensor,
          run(GROUP_CONV3X3_FILTER_GRAD, { x: xs!, dy: dy as tf.Tensor }, { groups }) as tf.Tensor,
        ];
      },
    };
  }) as unknown as GradFn);
  return op(x, w) as tf.Tensor4D;
}

/** act(x * scale + shift) over the rows of x[M, C]: inference-mode batch norm (no gradient; evaluation only). */
export function affineAct(x: tf.Tensor2D, scale: tf.Tensor1D, shift: tf.Tensor1D, act: Activation): tf.Tensor2D {
  return run(AFFINE_ACT, { x, scale, shift }, { activation: act }) as tf.Tensor2D;
}
