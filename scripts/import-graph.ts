// Prints the folder-level import graph of the repository (docs/architecture.md, "The import graph"): per source
// folder, the folders its files import and how many imports go there (imports within a folder left out), for the
// TypeScript tree and the AssemblyScript tree. The file-level rules it reflects are checked by test/layers.test.ts.
//   npx tsx scripts/import-graph.ts [--root DIR]     (DIR: another checkout, e.g. to compare before and after)
import { existsSync } from 'node:fs';
import path from 'node:path';

import { folderGraph, importGraph, renderFolderGraph } from '../testkit/import-graph.js';

const TS_FOLDERS = ['base', 'runtime', 'converter', 'trainer', 'testkit', 'bench', 'cli', 'scripts'];

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
const tsDirs = TS_FOLDERS.filter((d) => existsSync(path.join(root, d)));
console.log(section('TypeScript (folder -> folders it imports (imports)):', renderFolderGraph(folderGraph(importGraph(root, tsDirs).graph))));
console.log(section('AssemblyScript:', renderFolderGraph(folderGraph(importGraph(root, ['assembly'], true).graph))));
