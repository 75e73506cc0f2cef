// The one error vocabulary of the two `.cnv2` readers: the wasm loader (assembly/runtime/errors.ts, ERR_* = the index
// here), the JS API over it (Cdnv2Error.code) and the TypeScript reader (ModelFormatError.code). Both readers
// check the same rules in the same order, so a file breaking several rules gets the same code from each.
// test/base/cnv2/error-codes.test.ts holds assembly/runtime/errors.ts, this list and docs/format.md equal.

/** Code names by number; a number is stable once published (new codes are appended). */
export const ERROR_CODES = [
  'ok', 'bad-magic', 'version', 'size', 'checksum', 'truncated', 'section', 'meta', 'graph', 'range', 'shape',
  'index', 'overflow', 'arena', 'alias', 'input', 'handle', 'header', 'numeric', 'unwritten', 'compute',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The codes a model file itself can earn from either reader ('arena' depends on the caller's limit, the rest on runs). */
export type FormatErrorCode = Exclude<ErrorCode, 'ok' | 'arena' | 'input' | 'handle' | 'numeric' | 'compute'>;
