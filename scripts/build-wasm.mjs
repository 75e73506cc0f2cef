// Builds every WebAssembly target from the same AssemblyScript sources:
//   command (WASI preview1, wasmtime-ready)  -> build/cdnv2{,-scalar,-relaxed}.wasm
//   library (JS API, no imports)             -> build/cdnv2-lib{,-scalar,-relaxed}.wasm
//   kernel test harness                      -> build/test/kernels{,-scalar,-relaxed}.wasm
//   training kernels (TF.js backend, shared memory for a worker thread) -> build/cdnv2-train{,-relaxed}.wasm
// Usage: node scripts/build-wasm.mjs [targetNamePrefix...]
import { execFileSync } from 'node:child_process';
import { mkdirSync, existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const asc = path.join(root, 'node_modules/assemblyscript/bin/asc.js');
const wasmOpt = path.join(root, 'node_modules/binaryen/bin/wasm-opt');
const wasiConfig = 'asconfig.json'; // relative: asc resolves the shim's lib folder from it

const isas = [
  { suffix: '', features: ['simd'] },
  { suffix: '-scalar', features: [] },
  { suffix: '-relaxed', features: ['simd', 'relaxed-simd'] },
];
const entries = [
  // The command is short-lived: the minimal runtime (no incremental GC) keeps it under 64 KiB.
  { name: 'cdnv2', entry: 'assembly/runtime/command.ts', wasi: true, runtime: 'minimal' },
  { name: 'cdnv2-lib', entry: 'assembly/runtime/library.ts', wasi: false, runtime: 'incremental' },
  { name: 'test/kernels', entry: 'assembly/runtime/testing.ts', wasi: false, runtime: 'stub' },
  // Imports a shared memory so a worker thread can run half of each kernel on the same tensors; SIMD builds only
  // (the trainer falls back to the TF.js CPU backend where SIMD is missing).
  { name: 'cdnv2-train', entry: 'assembly/training/module.ts', wasi: false, runtime: 'stub', shared: true, isas: ['', '-relaxed'] },
];

const only = process.argv.slice(2);
mkdirSync(path.join(root, 'build/test'), { recursive: true });
for (const e of entries) {
  if (!existsSync(path.join(root, e.entry))) { console.log(`skip ${e.name}: ${e.entry} missing`); continue; }
  for (const isa of isas) {
    if (e.isas && !e.isas.includes(isa.suffix)) continue;
    const name = e.name + isa.suffix;
    if (only.length && !only.some((o) => name.startsWith(o))) continue;
    const out = path.join(root, 'build', name + '.wasm');
    // Features not named are disabled explicitly so the scalar build contains no SIMD opcode.
    const disable = ['simd', 'relaxed-simd'].filter((f) => !isa.features.includes(f));
    // Shrink level 1 keeps the command under 64 KiB; measured no slower than level 0 on CondenseNetV2-A.
    const args = [asc, e.entry, '-o', out, '-O3', '--shrinkLevel', '1', '--noAssert', '--runtime', e.runtime,
      '--initialMemory', '2'];
    const features = e.shared ? [...isa.features, 'threads'] : isa.features;
    // 32768 pages = 2 GiB: shared memories need a maximum; V8 reserves it without committing it.
    if (e.shared) args.push('--importMemory', '--sharedMemory', '--maximumMemory', '32768');
    if (features.length) args.push('--enable', features.join(','));
    if (disable.length) args.push('--disable', disable.join(','));
    if (e.wasi) args.push('--config', wasiConfig);
    // An explicit config keeps asc from picking up asconfig.json (the WASI shim) for the import-free builds.
    else args.push('--config', 'asconfig.library.json', '--use', 'abort=');
    execFileSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
    // A second binaryen pass shrinks the module further; asc already ran -O3.
    // AssemblyScript's default features; binaryen must be told, since asc emits no target_features section.
    const optFlags = ['-O3', '--converge', '--strip-debug', '--strip-producers', '--enable-bulk-memory',
      '--enable-sign-ext', '--enable-mutable-globals', '--enable-nontrapping-float-to-int'];
    for (const f of isa.features) optFlags.push('--enable-' + f);
    if (e.shared) optFlags.push('--enable-threads');
    execFileSync(wasmOpt, [out, ...optFlags, '-o', out], { cwd: root, stdio: 'inherit' });
    console.log(`${name}.wasm ${statSync(out).size} bytes`);
  }
}
