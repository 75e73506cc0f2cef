// One source of truth for the numbers of the `.cnv2` format: base/cnv2/constants.ts (the TypeScript reader and
// writer) against the wasm runtime's spelling (assembly/runtime/format.ts, assembly/kernels/activation.ts) and the tables
// of docs/format.md, each parsed from its text. A number changed in one place and not the others fails here.
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import {
  ACT, DIR_ENTRY_SIZE, DTYPE_CODES, HEADER_SIZE, MAGIC, MAJOR_VERSION, META_TYPE_CODES, MINOR_VERSION, NONE, OP_LAYOUT,
  SECTION_TAGS, TENSOR_RECORD_SIZE,
} from '../../../base/cnv2/constants.js';
import { dtypeSize, type DType } from '../../../base/cnv2/model.js';

const root = path.resolve(import.meta.dirname, '../../..');
const read = (file: string): string => readFileSync(path.join(root, file), 'utf8');

/** `export const NAME: u32 = VALUE;` and `export const NAME = VALUE;` of an AssemblyScript file. */
function asConstants(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^export const (\w+)(?::\s*\w+)?\s*=\s*(0x[0-9a-fA-F]+|\d+);/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

/** `case NAME: return N;` inside the body of `function fn(`. */
function asSwitch(text: string, fn: string): Map<string, number> {
  const start = text.indexOf(`function ${fn}(`);
  if (start < 0) throw new Error(`no function ${fn}`);
  const body = text.slice(start, text.indexOf('\n}', start));
  return new Map([...body.matchAll(/case (\w+): return (\d+);/g)].map((m) => [m[1]!, Number(m[2])]));
}

/** The first word of each comma-separated item, brackets and parentheses left out. */
const firstWords = (list: string): string[] =>
  list.replace(/\[[^\]]*\]/g, '').replace(/\([^)]*\)/g, '').split(',').map((item) => item.trim().match(/^\w+/)?.[0] ?? '');

/** An op section's word names in file order: from its `| word | field |` table, or its one-line `a, b, ...` list. */
function wordNames(section: string): string[] {
  const rows = [...section.matchAll(/^\| ([\d, ]+) \| (.*) \|$/gm)];
  if (rows.length) {
    const names: string[] = [];
    for (const r of rows) {
      const words = r[1]!.split(',').map(Number);
      const items = firstWords(r[2]!);
      words.forEach((w, i) => { names[w] = items[i]!; });
    }
    return names;
  }
  return firstWords(section.match(/^`([^`]+)`/m)?.[1] ?? '');
}

const leU32 = (bytes: number[]): number => (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0;
const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));
const opConst = (kind: string): string => `OP_${kind.toUpperCase()}`;
const dtConst = (d: string): string => `DT_${d.toUpperCase()}`;
const metaConst: Record<string, string> = { 'u32[]': 'META_U32', 'f32[]': 'META_F32', string: 'META_STRING', 'string[]': 'META_STRINGS' };

t.test('assembly/runtime/format.ts and kernels/activation.ts spell the same numbers', async (t) => {
  const src = read('assembly/runtime/format.ts');
  const c = asConstants(src);
  t.equal(c.get('MAGIC'), leU32(MAGIC), 'magic');
  t.equal(c.get('VERSION_MAJOR'), MAJOR_VERSION, 'major version');
  t.equal(c.get('HEADER_BYTES'), HEADER_SIZE, 'header size');
  t.equal(c.get('DIR_ENTRY_BYTES'), DIR_ENTRY_SIZE, 'directory entry size');
  t.equal(c.get('TENSOR_RECORD_BYTES'), TENSOR_RECORD_SIZE, 'tensor record size');
  t.equal(c.get('NONE'), NONE, 'NONE');
  for (const tag of SECTION_TAGS) t.equal(c.get(`TAG_${tag}`), leU32(ascii(tag)), `section tag ${tag}`);
  const words = asSwitch(src, 'opWordCount');
  t.equal(words.size, Object.keys(OP_LAYOUT).length, 'as many opcodes as the TypeScript table');
  for (const [kind, layout] of Object.entries(OP_LAYOUT)) {
    t.equal(c.get(opConst(kind)), layout.opcode, `opcode of ${kind}`);
    t.equal(words.get(opConst(kind)), layout.fields.length, `word count of ${kind}`);
  }
  const bytes = asSwitch(src, 'dtypeBytes');
  t.equal(bytes.size, Object.keys(DTYPE_CODES).length, 'as many dtypes as the TypeScript table');
  for (const [d, code] of Object.entries(DTYPE_CODES)) {
    t.equal(c.get(dtConst(d)), code, `dtype code of ${d}`);
    t.equal(bytes.get(dtConst(d)), dtypeSize(d as DType), `element size of ${d}`);
  }
  for (const [type, code] of Object.entries(META_TYPE_CODES)) t.equal(c.get(metaConst[type]!), code, `META type ${type}`);
  const act = asConstants(read('assembly/kernels/activation.ts'));
  for (const [name, code] of Object.entries(ACT)) t.equal(act.get(`ACT_${name.toUpperCase()}`), code, `activation ${name}`);
});

t.test('docs/format.md states the same numbers', async (t) => {
  const doc = read('docs/format.md');
  const one = (re: RegExp, what: string): RegExpMatchArray => {
    const m = doc.match(re);
    if (!m) throw new Error(`docs/format.md: no ${what} (${re})`);
    return m;
  };
  const magic = one(/magic `"(\w{4})"` \(`([0-9A-F ]+)`\)/, 'magic');
  t.same(ascii(magic[1]!), MAGIC, 'magic as text');
  t.same(magic[2]!.split(' ').map((h) => parseInt(h, 16)), MAGIC, 'magic bytes');
  t.equal(Number(one(/\| u16 \| major version, `(\d+)`/, 'major version')[1]), MAJOR_VERSION, 'major version');
  t.equal(Number(one(/\| u16 \| minor version, `(\d+)`/, 'minor version')[1]), MINOR_VERSION, 'minor version');
  t.ok(doc.startsWith(`# The \`.cnv2\` model format, version ${MAJOR_VERSION}.${MINOR_VERSION}\n`), 'title version');
  t.equal(Number(one(/### Header \((\d+) bytes\)/, 'header size')[1]), HEADER_SIZE, 'header size');
  const dir = one(/### Section directory \(N x (\d+) bytes, at offset (\d+)\)/, 'directory entry size');
  t.equal(Number(dir[1]), DIR_ENTRY_SIZE, 'directory entry size');
  t.equal(Number(dir[2]), HEADER_SIZE, 'directory offset');
  t.same([...one(/four ASCII bytes, ((?:`\w{4}`(?:, )?)+)/, 'section tags')[1]!.matchAll(/`(\w{4})`/g)].map((m) => m[1]), [...SECTION_TAGS], 'section tags');
  t.equal(Number(one(/T x (\d+) bytes: u32 dtype/, 'tensor record size')[1]), TENSOR_RECORD_SIZE, 'tensor record size');
  t.equal(parseInt(one(/`NONE = (0x[0-9A-F]+)`/, 'NONE')[1]!, 16), NONE, 'NONE');

  const dtypes = one(/^dtype: (.*)$/m, 'dtype list')[1]!;
  const docDtypes = Object.fromEntries([...dtypes.matchAll(/`(\d+)` (\w+)/g)].map((m) => [m[2]!, Number(m[1])]));
  t.same(docDtypes, DTYPE_CODES, 'dtype codes');

  const metaTypes = one(/u8 {2}type: (.*)$/m, 'META type list')[1]!;
  const docMeta = Object.fromEntries([...metaTypes.matchAll(/(\d+) = ([\w[\]]+)/g)].map((m) => [m[2]!, Number(m[1])]));
  t.same(docMeta, META_TYPE_CODES, 'META type codes');

  const acts = one(/^Activation codes: (.*)$/m, 'activation codes')[1]!;
  const docAct = Object.fromEntries([...acts.matchAll(/`(\d+)` (\w+)/g)].map((m) => [m[2]!.toLowerCase(), Number(m[1])]));
  t.same(docAct, ACT, 'activation codes');

  const ops = [...doc.matchAll(/^### opcode (\d+): (\w+)(?:, [^(]*)? \((\d+) words\)$/gm)];
  t.equal(ops.length, Object.keys(OP_LAYOUT).length, 'one section per opcode');
  for (const m of ops) {
    const kind = m[2]!.toLowerCase() as keyof typeof OP_LAYOUT;
    t.ok(OP_LAYOUT[kind], `${m[2]} is an op of the TypeScript table`);
    t.equal(Number(m[1]), OP_LAYOUT[kind]?.opcode, `opcode of ${kind}`);
    t.equal(Number(m[3]), OP_LAYOUT[kind]?.fields.length, `word count of ${kind}`);
    t.same(wordNames(doc.slice(m.index!, doc.indexOf('\n### ', m.index! + 1))), OP_LAYOUT[kind]?.fields, `word names of ${kind}`);
  }
});

t.test('the parsers see a changed number', async (t) => {
  const c = asConstants('export const OP_FC: u32 = 7;\nexport const NONE: u32 = 0xfffffffe;\n');
  t.not(c.get('OP_FC'), OP_LAYOUT.fc.opcode);
  t.not(c.get('NONE'), NONE);
  t.same(asSwitch('function f(x: u32): i32 {\n  switch (x) {\n    case OP_FC: return 8;\n  }\n}\n', 'f'), new Map([['OP_FC', 8]]));
});
