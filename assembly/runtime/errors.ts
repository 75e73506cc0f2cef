// Load and run errors. AssemblyScript has no exceptions, so loaders return false after calling fail(),
// and the caller reads the code and message. Codes are stable: the JS API and the CLI map them to names.
// The names are the one vocabulary of both readers (base/cnv2/error-codes.ts, docs/format.md), tested equal.

export const ERR_NONE: i32 = 0;
export const ERR_BAD_MAGIC: i32 = 1;
export const ERR_VERSION: i32 = 2;
export const ERR_SIZE: i32 = 3;        // file size field or section count wrong
export const ERR_CHECKSUM: i32 = 4;
export const ERR_TRUNCATED: i32 = 5;
export const ERR_SECTION: i32 = 6;     // missing, duplicated, misaligned or overlapping section
export const ERR_META: i32 = 7;
export const ERR_GRAPH: i32 = 8;       // unknown opcode, wrong word count, bad attribute
export const ERR_RANGE: i32 = 9;       // buffer, tensor or channel range out of bounds
export const ERR_SHAPE: i32 = 10;      // shapes that do not chain, tensor shape or dtype mismatch
export const ERR_INDEX: i32 = 11;      // channel index out of range or repeated
export const ERR_OVERFLOW: i32 = 12;
export const ERR_ARENA: i32 = 13;      // planned arena larger than the caller's limit
export const ERR_ALIAS: i32 = 14;      // input and output channel ranges overlap
export const ERR_INPUT: i32 = 15;      // bad input given to run (wrong length, bad image)
export const ERR_HANDLE: i32 = 16;
export const ERR_HEADER: i32 = 17;     // non-zero header flags or reserved fields (appended: codes stay stable)
export const ERR_NUMERIC: i32 = 18;    // a run produced non-finite logits (finite but huge weights or input)
export const ERR_UNWRITTEN: i32 = 19;  // an op reads channels no earlier op wrote on the same run
export const ERR_COMPUTE: i32 = 20;    // the model's multiply-adds exceed the caller's budget

let lastCode: i32 = ERR_NONE;
let lastMessage: string = '';

export function fail(code: i32, message: string): bool {
  lastCode = code;
  lastMessage = message;
  return false;
}

export function clearError(): void {
  lastCode = ERR_NONE;
  lastMessage = '';
}

export function errorCode(): i32 {
  return lastCode;
}

export function errorMessage(): string {
  return lastMessage;
}

export function errorName(code: i32): string {
  switch (code) {
    case ERR_NONE: return 'ok';
    case ERR_BAD_MAGIC: return 'bad-magic';
    case ERR_VERSION: return 'version';
    case ERR_SIZE: return 'size';
    case ERR_CHECKSUM: return 'checksum';
    case ERR_TRUNCATED: return 'truncated';
    case ERR_SECTION: return 'section';
    case ERR_META: return 'meta';
    case ERR_GRAPH: return 'graph';
    case ERR_RANGE: return 'range';
    case ERR_SHAPE: return 'shape';
    case ERR_INDEX: return 'index';
    case ERR_OVERFLOW: return 'overflow';
    case ERR_ARENA: return 'arena';
    case ERR_ALIAS: return 'alias';
    case ERR_INPUT: return 'input';
    case ERR_HANDLE: return 'handle';
    case ERR_HEADER: return 'header';
    case ERR_NUMERIC: return 'numeric';
    case ERR_UNWRITTEN: return 'unwritten';
    case ERR_COMPUTE: return 'compute';
  }
  return 'unknown';
}

/** The heap hands out blocks just under 1 GiB, and wasm32 memory ends at 4 GiB. */
const MAX_ALLOC: u64 = (1 << 30) - (1 << 16);

/**
 * heap.alloc, or 0 when the block cannot be had (the caller then fails with its own code): the allocator would
 * otherwise abort ("Allocation too large") or trap when memory cannot grow.
 */
export function tryAlloc(bytes: usize): usize {
  if (<u64>bytes > MAX_ALLOC || (<u64>memory.size() << 16) + <u64>bytes > 0xfff00000) return 0;
  return heap.alloc(bytes < 16 ? 16 : bytes);
}
