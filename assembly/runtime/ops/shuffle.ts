// CHANNEL_SHUFFLE: attributes checked at load, no scratch; the call at run time.

import { ERR_ALIAS, ERR_GRAPH, ERR_SHAPE } from '../errors';
import { Model, OpInfo, bufferAt } from '../model';
import { checkRange, disjoint, opFail, spans, touch, word } from './checks';
import { channel_shuffle } from '../../kernels/shuffle';

/** Checks the op's words (ops/checks.ts: the current op) and fills op; false after fail(). */
export function validateShuffle(m: Model, op: OpInfo): bool {
  const inBuf = word(0), inCh = word(1), c = word(2), outBuf = word(3), outCh = word(4), groups = word(5);
  if (!checkRange(m, inBuf, inCh, c, 'input') || !checkRange(m, outBuf, outCh, c, 'output')) return false;
  if (groups == 0 || c % groups != 0) return opFail(ERR_GRAPH, 'bad groups');
  const ib = bufferAt(m, <i32>inBuf), ob = bufferAt(m, <i32>outBuf);
  if (ib.h != ob.h || ib.w != ob.w) return opFail(ERR_SHAPE, 'shuffle keeps the spatial size');
  if (inBuf == outBuf && !disjoint(<i32>inCh, <i32>(inCh + c - 1), <i32>outCh, <i32>(outCh + c - 1))) {
    return opFail(ERR_ALIAS, 'input and output overlap');
  }
  op.inBuf = <i32>inBuf; op.inCh = <i32>inCh; op.cin = <i32>c;
  op.outBuf = <i32>outBuf; op.outCh = <i32>outCh; op.cout = <i32>c; op.groups = <i32>groups;
  op.h = ib.h; op.w = ib.w; op.outH = ib.h; op.outW = ib.w;
  spans(op);
  touch(m, <i32>inBuf); touch(m, <i32>outBuf);
  return true;
}

export function runShuffle(op: OpInfo, src: usize, dst: usize, scratch: usize): void {
  channel_shuffle(src, op.cin, op.h * op.w, op.groups, dst);
}
