// Real wasmtime for tests: the CLI on PATH, else python3 + scripts/wasmtime-run.py (runtime/wasmtime.ts).
// `wasmtimeOrSkip(t)` returns it, or, when neither works, fails the test under CI (CI set, as `.ci/run` does) and
// skips it with the reason elsewhere (as test/assembly/runtime/arm64.test.ts does for qemu). `runWasmtime` spawns one run;
// `runWasmtimeBatch` many, in one process with the Python runner (`batch`: the module is compiled once).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findWasmtime, wasmtimeRunnerPath, type Wasmtime, type WasmtimeRunOptions } from '../../runtime/wasmtime.js';

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

export interface WasmtimeRun { code: number; stdout: string; stderr: string }

function spawnCollect(command: string, argv: string[]): Promise<WasmtimeRun> {
  return new Promise((resolve, reject) => {
    const p = spawn(command, argv);
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/**
 * Runs the command once per argument list, results in order. The Python runner runs them all in one process
 * (`wasmtime-run.py batch`: one engine and compiled module, a fresh instance per run, guest output captured per
 * run); the CLI has no such mode, so each is its own process there.
 */
export async function runWasmtimeBatch(w: Wasmtime, module: string, argLists: string[][], opts: WasmtimeRunOptions = {}):
Promise<WasmtimeRun[]> {
  if (w.kind === 'cli') {
    const out: WasmtimeRun[] = [];
    for (const args of argLists) {
      const { command, args: argv } = w.runCommand(module, args, opts);
      out.push(await spawnCollect(command, argv));
    }
    return out;
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-wasmtime-batch-'));
  try {
    const jobs = path.join(dir, 'jobs.json');
    writeFileSync(jobs, JSON.stringify(argLists));
    const argv = [wasmtimeRunnerPath()!, 'batch', ...(opts.dirs ?? []).map((d) => `--dir=${d}`),
      ...(opts.relaxedSimd ? ['--relaxed-simd'] : []), ...(opts.precompiled ? ['--allow-precompiled'] : []), module, jobs];
    const r = await spawnCollect('python3', argv);
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    if (r.code !== 0 || lines.length !== argLists.length) {
      throw new Error(`wasmtime-run.py batch: exit ${r.code}, ${lines.length} of ${argLists.length} runs reported: ${r.stderr}`);
    }
    return lines.map((l) => JSON.parse(l) as WasmtimeRun);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
