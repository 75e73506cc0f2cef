// SE (squeeze and excitation, in place): attributes, tensors and scratch at load; the call at run time.

import { ERR_GRAPH, ERR_RANGE, ERR_SHAPE } from '../errors';
import { Model, OpInfo, bufferAt } from '../model';
import { floatsOf, shapeIs } from '../tensors';
import { checkRange, opFail, optionalFloats, spans, touch, word } from './checks';
import { squeeze_excite } from '../../kernels/se';
import { dec } from '../dec';

/** Checks the op's words (ops/checks.ts: the current op) and fills op; false after fail(). */
export function validateSe(m: Model, op: OpInfo): bool {
  const b = word(0), ch = word(1), c = word(2), hidden = word(3);
  const w1 = word(4), b1 = word(5), w2 = word(6), b2 = word(7), gate = word(8);
  if (!checkRange(m, b, ch, c, 'SE')) return false;
  if (hidden == 0 || hidden > 65535) return opFail(ERR_GRAPH, 'hidden width outside 1..65535');
  if (gate != 0) return opFail(ERR_GRAPH, 'unknown gate ' + dec(gate));
  if (w1 >= <u32>m.nTensors || w2 >= <u32>m.nTensors) return opFail(ERR_RANGE, 'no such tensor');
  if (!shapeIs(m, w1, 2, hidden, c, 1, 1)) return opFail(ERR_SHAPE, 'w1: wrong shape');
  if (!shapeIs(m, w2, 2, c, hidden, 1, 1)) return opFail(ERR_SHAPE, 'w2: wrong shape');
  op.weight = floatsOf(m, w1, 'w1');
  op.weight2 = floatsOf(m, w2, 'w2');
  if (op.weight == 0 || op.weight2 == 0) return false;
  const ok = memory.data(4);
  store<bool>(ok, true);
  op.bias = optionalFloats(m, b1, hidden, 'b1', ok);
  op.bias2 = optionalFloats(m, b2, c, 'b2', ok);
  if (!load<bool>(ok)) return false;
  const buf = bufferAt(m, <i32>b);
  op.inBuf = <i32>b; op.inCh = <i32>ch; op.cin = <i32>c; op.hidden = <i32>hidden;
  op.outBuf = <i32>b; op.outCh = <i32>ch; op.cout = <i32>c;
  op.h = buf.h; op.w = buf.w; op.outH = buf.h; op.outW = buf.w;
  spans(op);
  // The channel means, then the hidden activations (squeeze_excite's layout), plus 16 bytes of alignment slack.
  op.scratchBytes = <i32>((<u64>op.cin + <u64>op.hidden) * 4 + 16);
  touch(m, <i32>b);
  return true;
}

export function runSe(op: OpInfo, src: usize, dst: usize, scratch: usize): void {
  squeeze_excite(src, op.cin, op.h * op.w, op.hidden, op.weight, op.bias, op.weight2, op.bias2, scratch);
}
