// Finds real wasmtime for running the WASI command (Node only): the `wasmtime` CLI on PATH, else the official Python
// embedding through scripts/wasmtime-run.py (`python3 -m pip install wasmtime==49.0.0`), which takes the same
// options. Used by `cdnv2 classify --engine wasmtime`, `cdnv2 bench --engines wasmtime` and the tests.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface WasmtimeRunOptions {
  /** Preopened directories, `HOST` or `HOST::GUEST` (the runner makes them read-only; the CLI grants write too). */
  dirs?: string[];
  /** Enable relaxed SIMD (build/cdnv2-relaxed.wasm needs it). */
  relaxedSimd?: boolean;
  /** The module is precompiled (`.cwasm` from `compileCommand`). */
  precompiled?: boolean;
}

export interface Wasmtime {
  kind: 'cli' | 'python';
  /** What runs, with its version: `wasmtime 49.0.0 (CLI)` or `wasmtime-py 49.0.0 (Python embedding, ...)`. */
  version: string;
  /** Command line running a WASI command module with guest arguments `args`. */
  runCommand(module: string, args: string[], opts?: WasmtimeRunOptions): { command: string; args: string[] };
  /** Command line compiling `module` ahead of time into `out` (`wasmtime compile`). With `timings`, the runner prints
   *  `wasmtime-run: compile_ms=X` to stderr (the CLI prints nothing: time its process instead). */
  compileCommand(module: string, out: string, opts?: { relaxedSimd?: boolean; target?: string; timings?: boolean }): { command: string; args: string[] };
}

const here = path.dirname(fileURLToPath(import.meta.url));

/** scripts/wasmtime-run.py, from the sources (runtime/) or the compiled tree (dist/runtime/). */
export function wasmtimeRunnerPath(): string | null {
  for (const candidate of [path.join(here, '..', 'scripts'), path.join(here, '..', '..', 'scripts')]) {
    const file = path.join(candidate, 'wasmtime-run.py');
    if (existsSync(file)) return file;
  }
  return null;
}

let found: Wasmtime | { unavailable: string } | undefined;

/** The wasmtime to use, or why there is none. The CLI wins when both exist. Cached per process. */
export function findWasmtime(): Wasmtime | { unavailable: string } {
  found ??= probe();
  return found;
}

function probe(): Wasmtime | { unavailable: string } {
  const cli = spawnSync('wasmtime', ['--version'], { encoding: 'utf8', timeout: 60_000 });
  if (cli.status === 0) {
    return {
      kind: 'cli',
      version: `${cli.stdout.trim()} (CLI)`,
      runCommand: (module, args, opts = {}) => ({
        command: 'wasmtime',
        args: ['run', ...(opts.dirs ?? []).map((d) => `--dir=${d}`), ...(opts.relaxedSimd ? ['-W', 'relaxed-simd=y'] : []),
          ...(opts.precompiled ? ['--allow-precompiled'] : []), module, ...args],
      }),
      compileCommand: (module, out, opts = {}) => ({
        command: 'wasmtime',
        args: ['compile', ...(opts.relaxedSimd ? ['-W', 'relaxed-simd=y'] : []), ...(opts.target ? ['--target', opts.target] : []),
          module, '-o', out],
      }),
    };
  }
  const runner = wasmtimeRunnerPath();
  if (!runner) return { unavailable: 'no wasmtime CLI on PATH and scripts/wasmtime-run.py not found' };
  const py = spawnSync('python3', [runner, '--version'], { encoding: 'utf8', timeout: 60_000 });
  if (py.status !== 0) {
    const why = py.error ? `python3: ${py.error.message}` : py.stderr.trim();
    return { unavailable: `no wasmtime CLI on PATH, and the Python embedding does not work (${why})` };
  }
  return {
    kind: 'python',
    version: `${py.stdout.trim()} (Python embedding, scripts/wasmtime-run.py)`,
    runCommand: (module, args, opts = {}) => ({
      command: 'python3',
      args: [runner, ...(opts.dirs ?? []).map((d) => `--dir=${d}`), ...(opts.relaxedSimd ? ['--relaxed-simd'] : []),
        ...(opts.precompiled ? ['--allow-precompiled'] : []), module, ...args],
    }),
    compileCommand: (module, out, opts = {}) => ({
      command: 'python3',
      args: [runner, 'compile', ...(opts.relaxedSimd ? ['--relaxed-simd'] : []), ...(opts.target ? ['--target', opts.target] : []),
        ...(opts.timings ? ['--timings'] : []), module, '-o', out],
    }),
  };
}
