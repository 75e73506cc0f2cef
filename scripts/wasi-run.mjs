#!/usr/bin/env node
// Runs a WASI preview1 command module under Node's node:wasi, the way `wasmtime run` would:
//   node scripts/wasi-run.mjs [--dir=HOSTDIR[::GUESTDIR]]... module.wasm [args...]
// Used by the tests (CI has no wasmtime) and by users without wasmtime. Exits with the module's exit code.
// node:wasi prints an ExperimentalWarning on first use; it is not the module's output.
const emitWarning = process.emitWarning;
process.emitWarning = (w, ...rest) => (String(w).includes('WASI') ? undefined : emitWarning.call(process, w, ...rest));
const { WASI } = await import('node:wasi');
import { readFileSync } from 'node:fs';
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
const wasi = new WASI({ version: 'preview1', args: [path.basename(file), ...args], env: {}, preopens, returnOnExit: true });
const module = await WebAssembly.compile(readFileSync(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
let code;
try {
  code = wasi.start(instance);
} catch (err) {
  process.stderr.write(`wasm trap: ${err.message}\n`);
  code = 70;
}
process.exitCode = code;
