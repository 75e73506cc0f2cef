// FC (fully connected over 1x1 buffers): attributes and tensors checked at load, no scratch; the call at run time.

import { ERR_ALIAS, ERR_RANGE, ERR_SHAPE } from '../errors';
import { Model, OpInfo, bufferAt } from '../model';
import { floatsOf, shapeIs } from '../tensors';
import { checkAct, checkRange, disjoint, opFail, optionalFloats, spans, touch, word } from './checks';
import { fully_connected } from '../../kernels/fc';

/** Checks the op's words (ops/checks.ts: the current op) and fills op; false after fail(). */
export function validateFc(m: Model, op: OpInfo): bool {
  const inBuf = word(0), inCh = word(1), cin = word(2), outBuf = word(3), outCh = word(4), cout = word(5);
  const act = word(6), wT = word(7), bT = word(8);
  if (!checkRange(m, inBuf, inCh, cin, 'input') || !checkRange(m, outBuf, outCh, cout, 'output')) return false;
  if (!checkAct(act)) return false;
  const ib = bufferAt(m, <i32>inBuf), ob = bufferAt(m, <i32>outBuf);
  if (ib.h != 1 || ib.w != 1 || ob.h != 1 || ob.w != 1) return opFail(ERR_SHAPE, 'buffers must be 1x1');
  if (inBuf == outBuf && !disjoint(<i32>inCh, <i32>(inCh + cin - 1), <i32>outCh, <i32>(outCh + cout - 1))) {
    return opFail(ERR_ALIAS, 'input and output overlap');
  }
  if (wT >= <u32>m.nTensors) return opFail(ERR_RANGE, 'no such tensor');
  if (!shapeIs(m, wT, 2, cout, cin, 1, 1)) return opFail(ERR_SHAPE, 'weight: wrong shape');
  op.weight = floatsOf(m, wT, 'weight');
  if (op.weight == 0) return false;
  const ok = memory.data(4);
  store<bool>(ok, true);
  op.bias = optionalFloats(m, bT, cout, 'bias', ok);
  if (!load<bool>(ok)) return false;
  op.inBuf = <i32>inBuf; op.inCh = <i32>inCh; op.cin = <i32>cin;
  op.outBuf = <i32>outBuf; op.outCh = <i32>outCh; op.cout = <i32>cout; op.outAct = <i32>act;
  op.h = 1; op.w = 1; op.outH = 1; op.outW = 1;
  spans(op);
  touch(m, <i32>inBuf); touch(m, <i32>outBuf);
  return true;
}

export function runFc(op: OpInfo, src: usize, dst: usize, scratch: usize): void {
  fully_connected(src, op.cin, op.weight, op.bias, op.cout, op.outAct, dst);
}
