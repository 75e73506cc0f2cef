// CONV2D: at load, the kernel that runs the op and the scratch it needs, decided once; at run time, the call.
// The parser (model.ts) validates the op's attributes and tensors, then asks planConv2d.

import { OpInfo } from '../model';
import { prepare_channels } from '../../kernels/prepare';
import { conv1x1_group } from '../../kernels/conv1x1';
import { conv2d_group, conv2d_scratch_bytes } from '../../kernels/conv2d';

/** Pointwise (1x1, stride 1, no padding): a small matrix product over planes, no padded copy. */
export const CONV_POINTWISE: i32 = 1;
/** Any other kernel, stride and padding: direct convolution over a zero-padded copy of the input. */
export const CONV_DIRECT: i32 = 2;

/** The reader's pre-activation (gathered channels, BN scale/shift, activation) runs once into an input panel. */
@inline function needsPanel(op: OpInfo): bool {
  return op.inIndex != 0 || op.inScale != 0 || op.inAct != 0;
}

@inline function panelBytes(op: OpInfo): u64 {
  return needsPanel(op) ? (<u64>op.cin * <u64>op.h * <u64>op.w * 4 + 15) & ~<u64>15 : 0;
}

/**
 * Chooses the kernel (op.impl) and returns the scratch bytes the op needs: the input panel (16-aligned), then the
 * kernel's own scratch. Above 0x7fffffff when the size overflows (the caller rejects the op).
 */
export function planConv2d(op: OpInfo): u64 {
  op.impl = op.kernel == 1 && op.stride == 1 && op.pad == 0 ? CONV_POINTWISE : CONV_DIRECT;
  if (op.impl == CONV_POINTWISE) return panelBytes(op);
  const kernelScratch = conv2d_scratch_bytes(op.cin, op.h, op.w, op.kernel, op.stride, op.pad);
  if (kernelScratch < 0) return 0xffffffffffffffff;
  return panelBytes(op) + <u64>kernelScratch;
}

/** src, dst: the op's first input and output planes; scratch: planConv2d's bytes. */
export function runConv2d(op: OpInfo, src: usize, dst: usize, scratch: usize): void {
  const hw = op.h * op.w;
  let input = src;
  if (needsPanel(op)) {
    prepare_channels(src, hw, op.inIndex, op.inScale, op.inShift, op.inAct, op.cin, scratch);
    input = scratch;
  }
  if (op.impl == CONV_POINTWISE) {
    conv1x1_group(input, op.cin, hw, op.weight, op.bias, op.cout, op.groups, dst, op.outIndex, op.outAct, op.accumulate);
  } else {
    conv2d_group(input, op.cin, op.h, op.w, op.weight, op.bias, op.cout, op.groups, op.kernel, op.stride, op.pad,
      dst, op.outH, op.outW, op.outIndex, op.outAct, op.accumulate, scratch + <usize>panelBytes(op));
  }
}
