// Real wasmtime for tests: the CLI on PATH, else python3 + scripts/wasmtime-run.py (runtime/wasmtime.ts).
// `wasmtimeOrSkip(t)` returns it, or, when neither works, fails the test under CI (CI set, as `.ci/run` does) and
// skips it with the reason elsewhere (as test/assembly/runtime/arm64.test.ts does for qemu). `runWasmtime` spawns one run.
import { spawnSync } from 'node:child_process';
import { findWasmtime, type Wasmtime, type WasmtimeRunOptions } from '../../runtime/wasmtime.js';

export type { Wasmtime, WasmtimeRunOptions };

interface TapLike {
  fail(message: string): unknown;
  skip(message: string): unknown;
  comment(message: string): unknown;
}

export function wasmtimeOrSkip(t: TapLike): Wasmtime | null {
  const w = findWasmtime();
  if ('unavailable' in w) {
    if (process.env.CI) t.fail(`wasmtime is required in CI: ${w.unavailable}`);
    else t.skip(`wasmtime test skipped outside CI: ${w.unavailable}`);
    return null;
  }
  t.comment(`wasmtime: ${w.version}`);
  return w;
}

export function runWasmtime(w: Wasmtime, module: string, args: string[], opts: WasmtimeRunOptions = {}):
{ code: number; stdout: string; stderr: string } {
  const { command, args: argv } = w.runCommand(module, args, opts);
  const r = spawnSync(command, argv, { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
