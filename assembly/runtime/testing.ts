// Kernel test harness: every numeric kernel plus a 16-byte aligned allocator, for test/assembly/kernels.test.ts and bench/kernels.ts.
export { ACT_NONE, ACT_RELU, ACT_HARDSWISH, activate_inplace } from '../kernels/activation';
export { prepare_channels } from '../kernels/prepare';
export { conv1x1_group } from '../kernels/conv1x1';
export { conv2d_scratch_bytes, conv2d_group } from '../kernels/conv2d';
export { avgpool, global_avgpool } from '../kernels/pool';
export { maxpool, maxpool_scratch_bytes } from '../kernels/maxpool';
export { maxpool3x3s2p1_split, maxpool3x3s2p1_split_scratch_bytes } from '../kernels/ukernels/f32-maxpool3x3s2p1-split-wasmsimd';
export { depthwise3x3, depthwise3x3_scratch_bytes } from '../kernels/depthwise';
export { conv3x3s2p1_split, conv3x3s2p1_split_scratch_bytes } from '../kernels/conv3x3s2p1-split';
export { squeeze_excite } from '../kernels/se';
export { fully_connected } from '../kernels/fc';
export { channel_shuffle } from '../kernels/shuffle';
export { softmax, top_k } from '../kernels/softmax';
export { peak_madd, peak_madds_per_iteration } from '../kernels/peak';

/** 16-byte aligned block of at least `bytes` bytes (the stub runtime aligns every block to 16). */
export function alloc(bytes: usize): usize {
  return heap.alloc(bytes);
}

/** Releases a block from alloc (the stub runtime only reclaims the most recent block; tests reset by reinstantiating). */
export function free(ptr: usize): void {
  heap.free(ptr);
}
