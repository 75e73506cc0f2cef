// Runs the `cdnv2` CLI as a user would, and captures what it prints: the compiled entry point (dist/cli/cdnv2.js,
// the package's `bin`) when every source file is older than its compiled form (as after `npm test`'s build), else
// the sources through tsx, so that a test run after an edit without a build still tests the edit. The compiled
// form starts faster (no TypeScript to transform in each process; a training run: about 2 s of CPU less).
// CDNV2_TEST_CLI=tsx forces the sources.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// The top directories of tsconfig.json's include ("base/**/*.ts", ...): the compiled tree mirrors them under dist/.
const SOURCE_DIRS = [...new Set((JSON.parse(readFileSync(path.join(root, 'tsconfig.json'), 'utf8')) as { include: string[] }).include
  .map((glob) => glob.split('/')[0]!))];

/** True when dist/ holds a compiled file, at least as new, for every .ts file of the sources (and imported .json). */
function distIsCurrent(): boolean {
  const walk = (rel: string): boolean => {
    for (const e of readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const file = path.join(rel, e.name);
      if (e.isDirectory()) { if (!walk(file)) return false; continue; }
      if (e.name.endsWith('.d.ts') || !/\.(ts|json)$/.test(e.name)) continue;
      const ts = e.name.endsWith('.ts');
      const out = path.join(root, 'dist', ts ? file.replace(/\.ts$/, '.js') : file);
      let built: number;
      try {
        built = statSync(out).mtimeMs;
      } catch {
        if (ts) return false;
        continue; // a JSON file tsc did not copy: no module imports it
      }
      if (built < statSync(path.join(root, file)).mtimeMs) return false;
    }
    return true;
  };
  return SOURCE_DIRS.every(walk);
}

let entry: string[] | undefined;

/** The node arguments that start the CLI (decided once per test process). */
export function cliEntry(): string[] {
  entry ??= process.env.CDNV2_TEST_CLI !== 'tsx' && distIsCurrent()
    ? [path.join(root, 'dist/cli/cdnv2.js')]
    : ['--import', 'tsx', path.join(root, 'cli/cdnv2.ts')];
  return entry;
}

export function cdnv2(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...cliEntry(), ...args], {
    cwd: root, encoding: 'utf8', timeout: 300_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
