// The repository's import graph, from every import the TypeScript pre-processor finds (static, type-only,
// re-exports and literal dynamic imports): test/layers.test.ts checks its layer order and
// scripts/import-graph.ts prints it folder by folder (docs/architecture.md, "The import graph").
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** File -> files it imports (repository-relative paths), and file -> its package (bare) specifiers. */
export interface ImportGraph {
  graph: Map<string, string[]>;
  bare: Map<string, string[]>;
}

/** Source files under dir (repository-relative), .d.ts excluded. */
export function listSources(root: string, dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(path.join(root, dir))) {
    const rel = path.posix.join(dir, name);
    if (statSync(path.join(root, rel)).isDirectory()) out.push(...listSources(root, rel));
    else if (/\.(ts|mts|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** Every import specifier of a file, as the TypeScript pre-processor sees it. */
export function specifiers(root: string, file: string): string[] {
  const info = ts.preProcessFile(readFileSync(path.join(root, file), 'utf8'), true, true);
  return info.importedFiles.map((f) => f.fileName);
}

/** A relative TypeScript specifier to the path of the file it names (`./x.js` is `x.ts` when that exists). */
export function resolveTs(root: string, from: string, spec: string): string {
  const target = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  if (target.endsWith('.js') && existsSync(path.join(root, target.slice(0, -3) + '.ts'))) return target.slice(0, -3) + '.ts';
  return target;
}

/** An AssemblyScript relative specifier (no extension: `./x` is `x.ts`) to the path of its file. */
export function resolveAssembly(from: string, spec: string): string {
  return path.posix.normalize(path.posix.join(path.posix.dirname(from), spec)) + '.ts';
}

/** The import graph of the files under dirs; assembly: AssemblyScript resolution (no extensions). */
export function importGraph(root: string, dirs: string[], assembly = false): ImportGraph {
  const graph = new Map<string, string[]>(), bare = new Map<string, string[]>();
  for (const f of dirs.flatMap((d) => listSources(root, d))) {
    const specs = specifiers(root, f);
    graph.set(f, specs.filter((s) => s.startsWith('.')).map((s) => (assembly ? resolveAssembly(f, s) : resolveTs(root, f, s))));
    bare.set(f, specs.filter((s) => !s.startsWith('.')));
  }
  return { graph, bare };
}

/** Folder -> folder it imports -> number of imports, a file's folder being its directory; imports within a folder left out. */
export function folderGraph(graph: Map<string, string[]>): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const [from, tos] of graph) {
    const a = path.posix.dirname(from);
    const edges = out.get(a) ?? new Map<string, number>();
    out.set(a, edges);
    for (const to of tos) {
      const b = path.posix.dirname(to);
      if (b !== a) edges.set(b, (edges.get(b) ?? 0) + 1);
    }
  }
  return out;
}

/** One line per folder: `folder/ -> dep/ (imports), ...`, folders and their dependencies sorted by name. */
export function renderFolderGraph(folders: Map<string, Map<string, number>>): string[] {
  return [...folders.keys()].sort().map((a) => {
    const deps = [...folders.get(a)!].sort(([x], [y]) => x.localeCompare(y)).map(([b, n]) => `${b}/ (${n})`);
    return `${a}/ -> ${deps.length ? deps.join(', ') : '(nothing)'}`;
  });
}
