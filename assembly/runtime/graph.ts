// GRPH (docs/format.md): the buffer table, the input and output buffers, and the op list; each op is validated
// by its file in ops/ (ops/registry.ts), which also chooses its kernel and states its scratch.

import { ERR_GRAPH, ERR_OVERFLOW, ERR_RANGE, ERR_SHAPE, ERR_TRUNCATED, fail } from './errors';
import { fits, opWordCount, readU16, readU32 } from './format';
import { BufferInfo, Model, OpInfo, bufferAt, opAt, zeroAlloc } from './model';
import { beginOp } from './ops/checks';
import { validateOp } from './ops/registry';
import { dec } from './dec';

/** Largest element count of one f32 buffer: its byte size must fit in 32 bits (docs/format.md). Buffers above
 *  2 GiB pass the parser but never the planner (arena limit, and arenas above 2^31 bytes are refused). */
const MAX_BUFFER_ELEMENTS: u64 = 0x3fffffff;

export function parseGraph(m: Model): bool {
  const img = m.image;
  const start = m.grphOff, end = m.grphOff + m.grphSize;
  if (m.grphSize < 16) return fail(ERR_TRUNCATED, 'GRPH section too short');
  const nb = readU32(img, start), nOps = readU32(img, start + 4);
  const inputBuf = readU32(img, start + 8), outputBuf = readU32(img, start + 12);
  if (nb == 0 || nb > 65535) return fail(ERR_GRAPH, 'bad buffer count');
  if (nOps == 0 || nOps > 65535) return fail(ERR_GRAPH, 'bad op count');
  if (inputBuf >= nb || outputBuf >= nb || inputBuf == outputBuf) return fail(ERR_RANGE, 'bad input/output buffer');
  if (!fits(start + 16, nb * 12, end)) return fail(ERR_TRUNCATED, 'GRPH buffer table is truncated');
  // Each op takes at least 4 bytes, so the op count is bounded by the section size before allocating.
  if (<u64>nOps * 4 > <u64>m.grphSize) return fail(ERR_TRUNCATED, 'GRPH op list is truncated');
  m.nBuffers = <i32>nb;
  m.buffers = zeroAlloc(<usize>nb * offsetof<BufferInfo>());
  for (let i: u32 = 0; i < nb; i++) {
    const r = start + 16 + i * 12;
    const c = readU32(img, r), h = readU32(img, r + 4), w = readU32(img, r + 8);
    if (c == 0 || h == 0 || w == 0 || c > 65535 || h > 65535 || w > 65535) return fail(ERR_SHAPE, 'buffer ' + dec(i) + ': dimension not in 1..65535');
    if (<u64>c * <u64>h * <u64>w > MAX_BUFFER_ELEMENTS) return fail(ERR_OVERFLOW, 'buffer ' + dec(i) + ' too large');
    const b = bufferAt(m, <i32>i);
    b.c = <i32>c; b.h = <i32>h; b.w = <i32>w; b.first = -1; b.last = -1;
  }
  const ib = bufferAt(m, <i32>inputBuf), ob = bufferAt(m, <i32>outputBuf);
  if (ib.c != m.inC || ib.h != m.inH || ib.w != m.inW) return fail(ERR_SHAPE, 'input buffer is not input.shape');
  // labels are optional (labelsOff is 0 without them): then classes are named by their index.
  if (ob.h != 1 || ob.w != 1 || (m.labelsOff != 0 && ob.c != m.labelCount)) return fail(ERR_SHAPE, 'output must be 1x1, a channel per label');
  m.labelCount = ob.c;
  m.inputBuf = <i32>inputBuf; m.outputBuf = <i32>outputBuf;

  m.nOps = <i32>nOps;
  m.ops = zeroAlloc(<usize>nOps * offsetof<OpInfo>());
  let p = start + 16 + nb * 12;
  for (let i: u32 = 0; i < nOps; i++) {
    if (!fits(p, 4, end)) return fail(ERR_TRUNCATED, 'op ' + dec(i) + ' truncated');
    const code = readU16(img, p), nw = readU16(img, p + 2);
    const expected = opWordCount(code);
    if (expected < 0) return fail(ERR_GRAPH, 'op ' + dec(i) + ': unknown opcode');
    if (nw != <u32>expected) return fail(ERR_GRAPH, 'op ' + dec(i) + ': wrong word count');
    if (!fits(p + 4, nw * 4, end)) return fail(ERR_TRUNCATED, 'op ' + dec(i) + ' truncated');
    beginOp(img + p + 4, <i32>i);
    const op = opAt(m, <i32>i);
    op.code = code;
    if (!validateOp(m, op)) return false;
    p += 4 + nw * 4;
  }
  if (p != end) return fail(ERR_GRAPH, 'GRPH trailing bytes');
  // The host writes the input before op 0 and reads the output after the last op.
  ib.first = 0;
  if (ib.last < 0) ib.last = 0;
  if (ob.first < 0) ob.first = 0;
  ob.last = <i32>nOps;
  return true;
}
