// One error vocabulary (issue 19/26): the wasm loader's ERR_* constants and errorName() (assembly/runtime/errors.ts), the
// shared list base/cnv2/error-codes.ts (the JS API's ERROR_NAMES, the TypeScript reader's codes) and the table
// of docs/format.md name the same codes with the same numbers. Read from the sources, not from one another.
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES } from '../../../base/cnv2/error-codes.js';
import { ERROR_NAMES } from '../../../runtime/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const read = (f: string): string => readFileSync(path.join(root, f), 'utf8');

t.test('assembly/runtime/errors.ts, base/cnv2/error-codes.ts and docs/format.md agree', async (t) => {
  const asm = read('assembly/runtime/errors.ts');
  const constants = new Map<string, number>();
  for (const m of asm.matchAll(/export const (ERR_\w+): i32 = (\d+);/g)) constants.set(m[1]!, Number(m[2]));
  const names = new Map<number, string>();
  for (const m of asm.matchAll(/case (ERR_\w+): return '([a-z-]+)';/g)) {
    t.ok(constants.has(m[1]!), `errorName() case ${m[1]} is a declared constant`);
    names.set(constants.get(m[1]!)!, m[2]!);
  }
  t.equal(constants.size, ERROR_CODES.length, `${constants.size} ERR_* constants, ${ERROR_CODES.length} shared codes`);
  t.equal(names.size, ERROR_CODES.length, 'errorName() names every code');
  t.same([...new Set(constants.values())].sort((a, b) => a - b), ERROR_CODES.map((_, i) => i), 'numbers 0..n-1, none repeated');
  ERROR_CODES.forEach((code, i) => t.equal(names.get(i), code, `code ${i} is '${code}' in the wasm loader`));
  t.equal(ERROR_NAMES, ERROR_CODES, 'the JS API maps numbers through the shared list');

  const rows = [...read('docs/format.md').matchAll(/^\| (\d+) \| ([a-z-]+) \| .+ \|$/gm)].map((m) => [Number(m[1]), m[2]]);
  t.same(rows, ERROR_CODES.map((c, i) => [i, c]), 'docs/format.md lists the same codes in order');
});
