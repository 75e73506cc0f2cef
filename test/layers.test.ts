// The dependency order of the TypeScript tree (docs/architecture.md, "Layers"), from every import the TypeScript
// parser finds (static, type-only, re-exports and literal dynamic imports; testkit/import-graph.ts): no import
// cycle between files, no import from a higher layer or between folders of one layer, no product code importing
// test/, no TensorFlow.js below the trainer, and test/ laid out like the source tree. The same for the
// AssemblyScript tree (assembly/): the inference runtime and the training kernels each import only themselves and
// the shared micro-kernels.
import t from 'tap';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { importGraph, listSources as listUnder } from '../testkit/import-graph.js';

const root = path.resolve(import.meta.dirname, '..');

/** Top-level product folders by layer: a folder may import its own files and those of lower layers only. */
export const LAYERS: Record<string, number> = {
  base: 0,                                  // configurations, training-form schema, .cnv2 format library, data sets, file helpers
  runtime: 1, converter: 1, trainer: 1,     // side by side, each importing only base/
  testkit: 2,                               // shared by tests, bench/ and scripts/: kernel harness, model builders, fuzzer
  bench: 3,                                 // benchmark library and scripts (`cdnv2 bench` is wired in cli/)
  cli: 4,                                   // the `cdnv2` subcommands
  scripts: 5,                               // one-off tools
};
/** Folders that must not load TensorFlow.js (so convert, info and classify start without it). */
const TF_FREE = ['base', 'runtime', 'converter'];

/** Folders of the AssemblyScript tree and the folders each may import besides its own. */
export const ASSEMBLY_LAYERS: Record<string, string[]> = {
  'assembly/kernels': [],                     // micro-kernels: pure functions over pointers and shapes
  'assembly/runtime': ['assembly/kernels'],   // inference: model parsing, operators, planner, executor, entries
  'assembly/training': ['assembly/kernels'],  // the TF.js training backend's kernels
};

type Graph = Map<string, string[]>; // file -> files it imports (repository-relative paths)

const listSources = (dir: string): string[] => listUnder(root, dir);

const top = (file: string): string => file.split('/')[0]!;
const assemblyFolder = (file: string): string => file.split('/').slice(0, 2).join('/');

/** Import cycles (strongly connected components of more than one file, or a file importing itself). */
export function cycles(graph: Graph): string[][] {
  let counter = 0;
  const index = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter); low.set(v, counter); counter++;
    stack.push(v); onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do { w = stack.pop()!; onStack.delete(w); comp.push(w); } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** Imports that break the layer order: upward, sideways between folders of one layer, into test/, or unknown folders. */
export function layerViolations(graph: Graph, layers: Record<string, number>): string[] {
  const bad: string[] = [];
  for (const [from, tos] of graph) {
    const a = top(from);
    if (!(a in layers)) { bad.push(`${from}: folder ${a}/ has no layer`); continue; }
    for (const to of tos) {
      const b = top(to);
      if (b === a) continue;
      if (b === 'test') bad.push(`${from} imports test code ${to}`);
      else if (!(b in layers)) bad.push(`${from} imports ${to}, outside the layered folders`);
      else if (layers[b]! >= layers[a]!) bad.push(`${from} (${a}/, layer ${layers[a]}) imports ${to} (${b}/, layer ${layers[b]})`);
    }
  }
  return bad;
}

/** Imports in the AssemblyScript tree that leave a file's folder for one it may not import. */
export function assemblyViolations(graph: Graph, layers: Record<string, string[]>): string[] {
  const bad: string[] = [];
  for (const [from, tos] of graph) {
    const a = assemblyFolder(from);
    if (!(a in layers)) { bad.push(`${from}: folder ${a}/ has no layer`); continue; }
    for (const to of tos) {
      const b = assemblyFolder(to);
      if (b !== a && !layers[a]!.includes(b)) bad.push(`${from} (${a}/) imports ${to} (${b}/)`);
    }
  }
  return bad;
}

const { graph, bare } = importGraph(root, Object.keys(LAYERS));
const files = [...graph.keys()];

t.test('the checks catch what they are for', async (t) => {
  const g: Graph = new Map([
    ['base/a.ts', ['base/b.ts']], ['base/b.ts', ['base/a.ts']],
    ['runtime/x.ts', ['converter/y.ts', 'cli/z.ts', 'test/helpers/h.ts', 'base/a.ts']],
    ['converter/y.ts', []], ['cli/z.ts', ['runtime/x.ts']], ['tools/q.ts', []],
  ]);
  t.same(cycles(g).sort(), [['base/a.ts', 'base/b.ts'], ['cli/z.ts', 'runtime/x.ts']]);
  t.same(layerViolations(g, LAYERS).length, 4, 'sideways, upward, test/ and an unknown folder');
  t.same(cycles(new Map([['a', ['a']]])), [['a']], 'a file importing itself');
});

t.test('the product tree has files in every layer and resolves every relative import', async (t) => {
  for (const dir of Object.keys(LAYERS)) t.ok(files.some((f) => top(f) === dir), `${dir}/ has sources`);
  const missing = [...graph].flatMap(([f, tos]) => tos.filter((to) => !existsSync(path.join(root, to))).map((to) => `${f} -> ${to}`));
  t.same(missing, [], 'every relative import names a file');
  t.ok([...graph.values()].reduce((n, tos) => n + tos.length, 0) > 150, 'the parser found the imports');
});

t.test('no import cycles between files', async (t) => {
  t.same(cycles(graph), []);
});

t.test('imports go down the layers only, and never into test/', async (t) => {
  t.same(layerViolations(graph, LAYERS), []);
});

t.test('base/, runtime/ and converter/ do not load TensorFlow.js', async (t) => {
  const tf = files.filter((f) => TF_FREE.includes(top(f))).flatMap((f) => bare.get(f)!.filter((s) => s.startsWith('@tensorflow/')).map((s) => `${f}: ${s}`));
  t.same(tf, []);
});

t.test('test/ mirrors the source tree', async (t) => {
  const sourceFolders = new Set([...Object.keys(LAYERS), 'assembly', 'models']);
  const testFiles = listSources('test').filter((f) => f.endsWith('.test.ts'));
  const stray = testFiles.filter((f) => {
    const parts = f.split('/');
    return parts.length > 2 && !sourceFolders.has(parts[1]!);
  });
  t.same(stray, [], 'every test folder is named after a source folder');
  const atRoot = testFiles.filter((f) => f.split('/').length === 2);
  t.same(atRoot, ['test/layers.test.ts'], 'only the whole-tree test sits at test/ itself');
});

const { graph: assemblyGraph, bare: assemblyBare } = importGraph(root, ['assembly'], true);
const assemblyFiles = [...assemblyGraph.keys()];

t.test('assembly/: the checks catch what they are for', async (t) => {
  const g: Graph = new Map([
    ['assembly/runtime/a.ts', ['assembly/training/b.ts', 'assembly/kernels/k.ts']],
    ['assembly/training/b.ts', ['assembly/runtime/a.ts']],
    ['assembly/kernels/k.ts', ['assembly/runtime/a.ts', 'assembly/kernels/j.ts']],
    ['assembly/loose.ts', []],
  ]);
  t.same(assemblyViolations(g, ASSEMBLY_LAYERS).length, 4, 'runtime -> training, training -> runtime, kernels -> runtime, a file outside the folders');
});

t.test('assembly/: every folder has sources and every relative import names a file', async (t) => {
  for (const dir of Object.keys(ASSEMBLY_LAYERS)) t.ok(assemblyFiles.some((f) => f.startsWith(dir + '/')), `${dir}/ has sources`);
  const missing = [...assemblyGraph].flatMap(([f, tos]) => tos.filter((to) => !existsSync(path.join(root, to))).map((to) => `${f} -> ${to}`));
  t.same(missing, [], 'every relative import names a file');
  t.ok([...assemblyGraph.values()].reduce((n, tos) => n + tos.length, 0) > 50, 'the parser found the imports');
});

t.test('assembly/: runtime and training import only themselves and the kernels; kernels import neither', async (t) => {
  t.same(assemblyViolations(assemblyGraph, ASSEMBLY_LAYERS), []);
  const bare = [...assemblyBare].flatMap(([f, specs]) => specs.filter((s) => !s.startsWith('@assemblyscript/')).map((s) => `${f}: ${s}`));
  t.same(bare, [], 'no package but AssemblyScript\'s own');
});

t.test('assembly/: no import cycles between files', async (t) => {
  t.same(cycles(assemblyGraph), []);
});
