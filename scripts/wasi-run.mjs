#!/usr/bin/env node
// Runs a WASI preview1 command module under Node's node:wasi, the way `wasmtime run` would:
//   node scripts/wasi-run.mjs [--dir=HOSTDIR[::GUESTDIR]]... module.wasm [args...]
// Used by the tests (CI has no wasmtime) and by users without wasmtime. Exits with the module's exit code.
// node:wasi prints an ExperimentalWarning on first use; it is not the module's output.
const emitWarning = process.emitWarning;
process.emitWarning = (w, ...rest) => (String(w).includes('WASI') ? undefined : emitWarning.call(process, w, ...rest));
const { WASI } = await import('node:wasi');
import { readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';

const args = process.argv.slice(2);
const preopens = {};
while (args.length && args[0].startsWith('--dir')) {
  const spec = args.shift().replace(/^--dir=?/, '') || args.shift();
  const [host, guest] = spec.split('::');
  preopens[guest ?? host] = path.resolve(host);
}
const file = args.shift();
if (!file) {
  process.stderr.write('usage: wasi-run.mjs [--dir=DIR]... module.wasm [args...]\n');
  process.exit(2);
}
if (file.includes('relaxed')) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
// returnOnExit: false: proc_exit ends the process with the module's code at once. Unwinding out of wasm instead
// (returnOnExit: true) segfaults Node 20 once the module's memory has grown past about 32 MB (exit 139 after
// correct output, e.g. `cdnv2 arch cdnv2-c` models or a 31 MB input; nodejs/node#53087).
const wasi = new WASI({ version: 'preview1', args: [path.basename(file), ...args], env: {}, preopens, returnOnExit: false });
const module = await WebAssembly.compile(readFileSync(file));

// node:wasi follows symlinks (of files and of directories) out of a preopened directory; wasmtime does not. Paths
// under a preopen are resolved on the host first and refused (ENOTCAPABLE) unless they stay inside its real path.
// node:wasi numbers the preopens from fd 3 in the order given.
const ENOTCAPABLE = 76;
const roots = new Map(Object.values(preopens).map((host, i) => [3 + i, realpathSync(host)]));
const imports = wasi.getImportObject();
const real = imports.wasi_snapshot_preview1;
let memory = null;
function escapes(dirFd, ptr, len) {
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
}
const guarded = {
  ...real,
  path_open: (fd, dirflags, ptr, len, ...rest) => (escapes(fd, ptr, len) ? ENOTCAPABLE : real.path_open(fd, dirflags, ptr, len, ...rest)),
  path_filestat_get: (fd, flags, ptr, len, buf) => (escapes(fd, ptr, len) ? ENOTCAPABLE : real.path_filestat_get(fd, flags, ptr, len, buf)),
};
const instance = await WebAssembly.instantiate(module, { ...imports, wasi_snapshot_preview1: guarded });
memory = instance.exports.memory;
let code;
try {
  code = wasi.start(instance);
} catch (err) {
  process.stderr.write(`wasm trap: ${err.message}\n`);
  code = 70;
}
process.exitCode = code;
