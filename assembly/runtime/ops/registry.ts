// The operator table: per opcode, the function that validates the op at load (checking its attributes, choosing
// its kernel, stating its scratch), the one that runs it, and what one run of it costs. A new op: its opcode, word
// count and name in format.ts (and docs/format.md), a file ops/<op>.ts with validate<Op> and run<Op>, and a line
// in each function below. A new kernel for an existing op: a choice in that op's file.

import { OP_AVGPOOL, OP_CHANNEL_SHUFFLE, OP_CONV2D, OP_FC, OP_GLOBAL_AVGPOOL, OP_MAXPOOL, OP_SE } from '../format';
import { Model, OpInfo } from '../model';
import { runConv2d, validateConv2d } from './conv2d';
import { runSe, validateSe } from './se';
import { runAvgPool, runGlobalAvgPool, validateAvgPool, validateGlobalAvgPool } from './pool';
import { runFc, validateFc } from './fc';
import { runShuffle, validateShuffle } from './shuffle';
import { runMaxPool, validateMaxPool } from './maxpool';

/** Validates the current op (ops/checks.ts) by its opcode, which format.ts's opWordCount has accepted. */
export function validateOp(m: Model, op: OpInfo): bool {
  const code = op.code;
  if (code == OP_CONV2D) return validateConv2d(m, op);
  if (code == OP_SE) return validateSe(m, op);
  if (code == OP_AVGPOOL) return validateAvgPool(m, op);
  if (code == OP_GLOBAL_AVGPOOL) return validateGlobalAvgPool(m, op);
  if (code == OP_FC) return validateFc(m, op);
  if (code == OP_CHANNEL_SHUFFLE) return validateShuffle(m, op);
  if (code == OP_MAXPOOL) return validateMaxPool(m, op);
  return false;
}

/** Runs op at run time; src, dst: its first input and output planes; scratch: the arena's scratch region. */
@inline export function runOp(op: OpInfo, src: usize, dst: usize, scratch: usize): void {
  const code = op.code;
  if (code == OP_CONV2D) runConv2d(op, src, dst, scratch);
  else if (code == OP_SE) runSe(op, src, dst, scratch);
  else if (code == OP_AVGPOOL) runAvgPool(op, src, dst, scratch);
  else if (code == OP_GLOBAL_AVGPOOL) runGlobalAvgPool(op, src, dst, scratch);
  else if (code == OP_FC) runFc(op, src, dst, scratch);
  else if (code == OP_CHANNEL_SHUFFLE) runShuffle(op, src, dst, scratch);
  else if (code == OP_MAXPOOL) runMaxPool(op, src, dst, scratch);
}

/** Multiply-adds of one op, counted as converter/flops.ts does (conv, SE and FC; pools and shuffles: 0). */
export function opMadds(op: OpInfo): f64 {
  const code = op.code;
  if (code == OP_CONV2D) return <f64>op.kernel * <f64>op.kernel * <f64>(op.cin / op.groups) * <f64>op.cout * <f64>op.outH * <f64>op.outW;
  if (code == OP_SE) return 2 * <f64>op.cin * <f64>op.hidden;
  if (code == OP_FC) return <f64>op.cin * <f64>op.cout;
  return 0;
}

/** The compute budget's work of one op beyond one unit per element it reads and writes (writes.ts). */
export function opArithmetic(op: OpInfo, outPx: f64): f64 {
  const code = op.code;
  if (code == OP_CONV2D) return <f64>op.cout * <f64>(op.cin / op.groups) * <f64>(op.kernel * op.kernel) * outPx;
  if (code == OP_SE) return 2 * <f64>op.cin * <f64>op.hidden;
  if (code == OP_AVGPOOL || code == OP_MAXPOOL) return <f64>op.cin * <f64>(op.kernel * op.kernel) * outPx;
  if (code == OP_FC) return <f64>op.cin * <f64>op.cout;
  return 0;
}
