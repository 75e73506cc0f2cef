// AVGPOOL and GLOBAL_AVGPOOL: no scratch; the call at run time.

import { OpInfo } from '../model';
import { avgpool, global_avgpool } from '../../kernels/pool';

export function runAvgPool(op: OpInfo, src: usize, dst: usize): void {
  avgpool(src, op.cin, op.h, op.w, op.kernel, op.stride, dst, op.outH, op.outW);
}

export function runGlobalAvgPool(op: OpInfo, src: usize, dst: usize): void {
  global_avgpool(src, op.cin, op.h * op.w, op.inScale, op.inShift, op.inAct, dst);
}
