// AVGPOOL and GLOBAL_AVGPOOL: no scratch; MAXPOOL: one padded plane; the call at run time.

import { OpInfo } from '../model';
import { avgpool, global_avgpool } from '../../kernels/pool';
import { maxpool, maxpool_scratch_bytes } from '../../kernels/maxpool';

/** Scratch bytes of a MAXPOOL op (one padded plane); above 0x7fffffff when that overflows. */
export function planMaxPool(op: OpInfo): u64 {
  const bytes = maxpool_scratch_bytes(op.h, op.w, op.pad);
  return bytes < 0 ? 0xffffffffffffffff : <u64>bytes;
}

export function runMaxPool(op: OpInfo, src: usize, dst: usize, scratch: usize): void {
  maxpool(src, op.cin, op.h, op.w, op.kernel, op.stride, op.pad, dst, op.outH, op.outW, scratch);
}

export function runAvgPool(op: OpInfo, src: usize, dst: usize): void {
  avgpool(src, op.cin, op.h, op.w, op.kernel, op.stride, dst, op.outH, op.outW);
}

export function runGlobalAvgPool(op: OpInfo, src: usize, dst: usize): void {
  global_avgpool(src, op.cin, op.h * op.w, op.inScale, op.inShift, op.inAct, dst);
}
