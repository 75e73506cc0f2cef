// The numbers of the `.cnv2` format (docs/format.md): the one table the TypeScript reader and writer use. The
// wasm runtime spells them in assembly/runtime/format.ts and assembly/kernels/activation.ts, and docs/format.md in its
// tables; test/base/cnv2/constants.test.ts parses both and holds them equal to this file.

export const MAGIC = [0x43, 0x4e, 0x56, 0x32]; // "CNV2"
export const MAJOR_VERSION = 1;
export const MINOR_VERSION = 2; // 1: rice index tensors (dtype 6), optional labels; 2: MAXPOOL (opcode 7)
export const NONE = 0xffffffff; // an absent tensor reference
export const HEADER_SIZE = 32;
export const DIR_ENTRY_SIZE = 16;
export const TENSOR_RECORD_SIZE = 32;
export const SECTION_TAGS = ['META', 'GRPH', 'TENS', 'DATA'] as const;

/** Tensor dtype codes (TENS). */
export const DTYPE_CODES = { f32: 1, f16: 2, u8: 3, u16: 4, u32: 5, rice: 6 } as const;
/** META entry type codes. */
export const META_TYPE_CODES = { 'u32[]': 1, 'f32[]': 2, string: 3, 'string[]': 4 } as const;
/** Activation codes of the ops. */
export const ACT = { none: 0, relu: 1, hardswish: 2 } as const;

export type OpName = 'conv2d' | 'se' | 'avgpool' | 'global_avgpool' | 'fc' | 'channel_shuffle' | 'maxpool';

/** Opcode, and the op's words in file order; fields listed in TENSOR_FIELDS are tensor references (NONE = null). */
export const OP_LAYOUT: Record<OpName, { opcode: number; fields: string[] }> = {
  conv2d: {
    opcode: 1,
    fields: ['inBuffer', 'inChannel', 'cin', 'outBuffer', 'outChannel', 'cout', 'kernel', 'stride', 'pad', 'groups',
      'inAct', 'outAct', 'accumulate', 'weight', 'bias', 'inIndex', 'inScale', 'inShift', 'outIndex'],
  },
  se: { opcode: 2, fields: ['buffer', 'channel', 'channels', 'hidden', 'w1', 'b1', 'w2', 'b2', 'gate'] },
  avgpool: { opcode: 3, fields: ['inBuffer', 'inChannel', 'channels', 'outBuffer', 'outChannel', 'kernel', 'stride'] },
  global_avgpool: {
    opcode: 4,
    fields: ['inBuffer', 'inChannel', 'channels', 'outBuffer', 'outChannel', 'inAct', 'inScale', 'inShift'],
  },
  fc: { opcode: 5, fields: ['inBuffer', 'inChannel', 'cin', 'outBuffer', 'outChannel', 'cout', 'outAct', 'weight', 'bias'] },
  channel_shuffle: { opcode: 6, fields: ['inBuffer', 'inChannel', 'channels', 'outBuffer', 'outChannel', 'groups'] },
  maxpool: { opcode: 7, fields: ['inBuffer', 'inChannel', 'channels', 'outBuffer', 'outChannel', 'kernel', 'stride', 'pad'] },
};

export const TENSOR_FIELDS = new Set([
  'weight', 'bias', 'inIndex', 'inScale', 'inShift', 'outIndex', 'w1', 'b1', 'w2', 'b2',
]);
