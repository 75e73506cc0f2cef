// CHANNEL_SHUFFLE: no scratch; the call at run time.

import { OpInfo } from '../model';
import { channel_shuffle } from '../../kernels/shuffle';

export function runShuffle(op: OpInfo, src: usize, dst: usize): void {
  channel_shuffle(src, op.cin, op.h * op.w, op.groups, dst);
}
