// FC (fully connected over 1x1 buffers): no scratch; the call at run time.

import { OpInfo } from '../model';
import { fully_connected } from '../../kernels/fc';

export function runFc(op: OpInfo, src: usize, dst: usize): void {
  fully_connected(src, op.cin, op.weight, op.bias, op.cout, op.outAct, dst);
}
