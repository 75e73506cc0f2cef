#!/usr/bin/env node
// Runs a WASI preview1 command module under Node's node:wasi, the way `wasmtime run` would:
//   node scripts/wasi-run.mjs [--dir=HOSTDIR[::GUESTDIR]]... module.wasm [args...]
//   node scripts/wasi-run.mjs --batch [--dir=HOSTDIR[::GUESTDIR]]... module.wasm JOBS.json
// Used by the tests (CI has no wasmtime) and by users without wasmtime. Exits with the module's exit code.
// --batch runs the command once per entry of JOBS.json (a JSON list of guest argument lists), compiling the module
// once, and prints one JSON line per run, in order: {"code": N, "stdout": "...", "stderr": "..."} (as
// scripts/wasmtime-run.py batch does), N what a run of its own would exit with (70 on a trap), plus "alone": true
// for a run that had to be repeated in a process of its own (below). Exit status 0 once every run is reported.
// node:wasi prints an ExperimentalWarning on first use; it is not the module's output.
import v8 from 'node:v8';
// Node 20's TurboFan fast calls into node:wasi keep using the memory's backing store from before a large
// memory.grow: once a run's memory has grown past about 32 MB the command's output calls read freed memory, and the
// process dies after correct output (exit 139, or exit 1 with 'number 0 is not a function'; nodejs/node#53087).
// Without fast calls they look the memory up on every call (classify of a 27 MB PPM: 5 of 5 runs exit 0 with it, 0 of 3
// without). A run that calls proc_exit after such growth can still crash (1 of 3 in the same case).
v8.setFlagsFromString('--no-turbo-fast-api-calls');
const emitWarning = process.emitWarning;
process.emitWarning = (w, ...rest) => (String(w).includes('WASI') ? undefined : emitWarning.call(process, w, ...rest));
const { WASI } = await import('node:wasi');
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const TRAP_EXIT = 70;
// A batch worker runs each job in a fresh instance with returnOnExit: true, known safe only while the memory is
// small (see `run` below): a job whose memory grows past this is abandoned (the worker exits WORKER_GIVES_UP before
// proc_exit unwinds) and repeated alone, in its own process, with returnOnExit: false.
const BATCH_MEMORY_BYTES = 16 << 20;
const WORKER_GIVES_UP = 75;

const args = process.argv.slice(2);
const mode = args[0] === '--batch' || args[0] === '--batch-worker' ? args.shift() : 'run';
const dirArgs = [];
const preopens = {};
while (args.length && args[0].startsWith('--dir')) {
  const opt = args.shift();
  const spec = opt.replace(/^--dir=?/, '') || args.shift();
  dirArgs.push(`--dir=${spec}`);
  const [host, guest] = spec.split('::');
  preopens[guest ?? host] = path.resolve(host);
}
const file = args.shift();
if (!file || (mode !== 'run' && args.length !== (mode === '--batch' ? 1 : 2))) {
  process.stderr.write('usage: wasi-run.mjs [--dir=DIR]... module.wasm [args...]\n'
    + '       wasi-run.mjs --batch [--dir=DIR]... module.wasm JOBS.json\n');
  process.exit(2);
}
if (file.includes('relaxed')) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');

// node:wasi follows symlinks (of files and of directories) out of a preopened directory; wasmtime does not. Paths
// under a preopen are resolved on the host first and refused (ENOTCAPABLE) unless they stay inside its real path.
// node:wasi numbers the preopens from fd 3 in the order given.
const ENOTCAPABLE = 76;
const roots = new Map(Object.values(preopens).map((host, i) => [3 + i, realpathSync(host)]));

/** The module instantiated with `wasi`'s imports, path lookups confined to the preopens; `onExit` sees proc_exit first. */
async function instantiate(module, wasi, onExit) {
  const imports = wasi.getImportObject();
  const real = imports.wasi_snapshot_preview1;
  let memory = null;
  const escapes = (dirFd, ptr, len) => {
    const root = roots.get(dirFd);
    if (root === undefined || !memory) return false; // not a preopen: node:wasi's own checks apply
    const rel = new TextDecoder().decode(new Uint8Array(memory.buffer, ptr >>> 0, len >>> 0));
    let resolved;
    try {
      resolved = realpathSync(path.resolve(root, rel));
    } catch {
      return false; // missing: node:wasi reports it
    }
    return resolved !== root && !resolved.startsWith(root + path.sep);
  };
  const guarded = {
    ...real,
    path_open: (fd, dirflags, ptr, len, ...rest) => (escapes(fd, ptr, len) ? ENOTCAPABLE : real.path_open(fd, dirflags, ptr, len, ...rest)),
    path_filestat_get: (fd, flags, ptr, len, buf) => (escapes(fd, ptr, len) ? ENOTCAPABLE : real.path_filestat_get(fd, flags, ptr, len, buf)),
    proc_exit: (code) => { onExit(memory); return real.proc_exit(code); },
  };
  const instance = await WebAssembly.instantiate(module, { ...imports, wasi_snapshot_preview1: guarded });
  memory = instance.exports.memory;
  return instance;
}

const module = mode === '--batch' ? null : await WebAssembly.compile(readFileSync(file));

if (mode === 'run') {
  // returnOnExit: false: proc_exit ends the process with the module's code at once. Unwinding out of wasm instead
  // (returnOnExit: true) segfaults Node 20 once the module's memory has grown past about 32 MB (exit 139 after
  // correct output, e.g. `cdnv2 arch cdnv2-c` models or a 31 MB input; nodejs/node#53087).
  const wasi = new WASI({ version: 'preview1', args: [path.basename(file), ...args], env: {}, preopens, returnOnExit: false });
  const instance = await instantiate(module, wasi, () => {});
  let code;
  try {
    code = wasi.start(instance);
  } catch (err) {
    process.stderr.write(`wasm trap: ${err.message}\n`);
    code = TRAP_EXIT;
  }
  process.exitCode = code;
} else if (mode === '--batch-worker') {
  // Runs jobs FIRST.. of JOBS.json in this process, one JSON line each, as long as each stays within
  // BATCH_MEMORY_BYTES; the first that does not ends the worker with WORKER_GIVES_UP, unreported.
  const [jobsFile, first] = args;
  const jobs = JSON.parse(readFileSync(jobsFile, 'utf8'));
  const scratch = mkdtempSync(path.join(tmpdir(), 'wasi-run-'));
  const outPath = path.join(scratch, 'stdout'), errPath = path.join(scratch, 'stderr');
  const tooBig = (memory) => memory != null && memory.buffer.byteLength > BATCH_MEMORY_BYTES;
  const giveUp = () => { rmSync(scratch, { recursive: true, force: true }); process.exit(WORKER_GIVES_UP); };
  for (let i = Number(first); i < jobs.length; i++) {
    const out = openSync(outPath, 'w'), err = openSync(errPath, 'w');
    const wasi = new WASI({ version: 'preview1', args: [path.basename(file), ...jobs[i]], env: {}, preopens, returnOnExit: true, stdout: out, stderr: err });
    // Checked before proc_exit unwinds (the segfault is in the unwinding) and after a run that returns.
    const instance = await instantiate(module, wasi, (memory) => { if (tooBig(memory)) giveUp(); });
    let code, trap = '';
    try {
      code = wasi.start(instance);
    } catch (e) {
      trap = `wasm trap: ${e.message}\n`;
      code = TRAP_EXIT;
    }
    closeSync(out);
    closeSync(err);
    if (tooBig(instance.exports.memory)) giveUp();
    const stdout = readFileSync(outPath, 'utf8'), stderr = readFileSync(errPath, 'utf8') + trap;
    process.stdout.write(`${JSON.stringify({ code, stdout, stderr })}\n`);
  }
  rmSync(scratch, { recursive: true, force: true });
} else {
  // --batch: a worker process runs the jobs; a job it gives up on, or dies in, runs alone (the `run` mode above) and
  // a new worker takes the rest. Results are printed in job order.
  const jobsFile = args[0];
  let jobs;
  try {
    jobs = JSON.parse(readFileSync(jobsFile, 'utf8'));
  } catch (e) {
    process.stderr.write(`wasi-run: cannot read ${jobsFile}: ${e.message}\n`);
    process.exit(1);
  }
  if (!Array.isArray(jobs) || !jobs.every((j) => Array.isArray(j) && j.every((a) => typeof a === 'string'))) {
    process.stderr.write(`wasi-run: ${jobsFile} must hold a JSON list of lists of strings\n`);
    process.exit(1);
  }
  const node = (argv) => spawnSync(process.execPath, [self, ...argv], { encoding: 'utf8', maxBuffer: 1 << 30 });
  let next = 0;
  while (next < jobs.length) {
    const w = node(['--batch-worker', ...dirArgs, file, jobsFile, String(next)]);
    const lines = w.stdout.split('\n').filter((l) => l !== '');
    for (const l of lines) process.stdout.write(`${l}\n`);
    next += lines.length;
    if (next >= jobs.length) break;
    if (w.status !== WORKER_GIVES_UP && w.stderr) process.stderr.write(`wasi-run: batch worker ended (${w.signal ?? w.status}) at job ${next}: ${w.stderr}`);
    const r = node([...dirArgs, file, ...jobs[next]]);
    const code = r.status ?? 128 + (constants.signals[r.signal] ?? 0); // killed: as a shell reports it
    process.stdout.write(`${JSON.stringify({ code, stdout: r.stdout, stderr: r.stderr, alone: true })}\n`);
    next++;
  }
}
