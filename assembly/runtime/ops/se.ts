// SE (squeeze and excitation, in place): its scratch at load, the call at run time.

import { OpInfo } from '../model';
import { squeeze_excite } from '../../kernels/se';

/** The channel means, then the hidden activations (squeeze_excite's layout), plus 16 bytes of alignment slack. */
export function planSe(op: OpInfo): u64 {
  return (<u64>op.cin + <u64>op.hidden) * 4 + 16;
}

export function runSe(op: OpInfo, x: usize, scratch: usize): void {
  squeeze_excite(x, op.cin, op.h * op.w, op.hidden, op.weight, op.bias, op.weight2, op.bias2, scratch);
}
