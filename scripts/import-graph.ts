// Prints the folder-level import graph of the repository (docs/architecture.md, "The import graph"): per source
// folder, the folders its files import and how many imports go there (imports within a folder left out), for the
// TypeScript tree and the AssemblyScript tree. The file-level rules it reflects are checked by test/layers.test.ts.
//   npx tsx scripts/import-graph.ts [--root DIR]     (DIR: another checkout, e.g. to compare before and after)
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

import { folderGraph, importGraph, listSources, renderFolderGraph } from '../testkit/import-graph.js';

/** Top-level folders that are not TypeScript product code: tests, the AssemblyScript tree, build outputs. */
const NOT_TS = new Set(['test', 'assembly', 'node_modules', 'dist', 'build']);

/** Every other top-level folder holding sources (an older tree has other folders: arch/, no base/). */
function tsFolders(root: string): string[] {
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.') && !NOT_TS.has(e.name) && listSources(root, e.name).length > 0)
    .map((e) => e.name).sort();
}

function parseRoot(argv: string[]): string {
  const i = argv.indexOf('--root');
  const here = path.resolve(import.meta.dirname, '..');
  if (i < 0) return here;
  const dir = argv[i + 1];
  if (!dir || !existsSync(path.join(dir, 'assembly'))) {
    console.error(`--root needs a checkout of this repository (with assembly/), got ${dir ?? '(nothing)'}`);
    process.exit(2);
  }
  return path.resolve(dir);
}

const root = parseRoot(process.argv.slice(2));
const section = (title: string, lines: string[]): string => `${title}\n\n\`\`\`\n${lines.join('\n')}\n\`\`\`\n`;
console.log(section('TypeScript (folder -> folders it imports (imports)):', renderFolderGraph(folderGraph(importGraph(root, tsFolders(root)).graph))));
console.log(section('AssemblyScript:', renderFolderGraph(folderGraph(importGraph(root, ['assembly'], true).graph))));
