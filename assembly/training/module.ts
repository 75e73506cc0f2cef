// The training backend's WebAssembly module (build/cdnv2-train.wasm): the kernels TensorFlow.js training spends
// its time in, over pointers into this module's memory. The JS side (trainer/wasm/) copies tensors in and out.
export { gemm, transpose } from './gemm';
export { plane_stride, pack_padded, unpack_padded, conv3x3_planes, conv3x3_filter_grad } from './conv3x3';
export { bn_part_floats, bn_sums, bn_mean, bn_scale_shift, bn_affine, bn_grad_sums, bn_grad_finish, bn_grad_dx, affine_act } from './batchnorm';

/** First byte after the module's static data: the JS side allocates from here up. */
export function heap_base(): usize {
  return (__heap_base + 15) & ~15;
}
export { binary_bcast, copy_columns, avgpool_tiled, avgpool_tiled_grad } from './elementwise';
export { dw_pad, dw_crop, dw_forward, dw_input_grad_scatter, dw_filter_grad } from './depthwise';
export { maxpool_fwd, maxpool_grad } from './pool';
