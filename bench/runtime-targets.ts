// Issue targets of the runtime itself: module sizes, load+plan time and activation arena per configuration.
//   npx tsx bench/runtime-targets.ts [--runs N] [--out DIR]     (with --out: writes DIR/runtime-targets.json)
// Load time is measured two ways: the wasm loader alone (parse, validate, CRC, expand, plan, allocate) and the
// whole JS `loadModel` (instantiate, copy bytes in, load, read metadata).
import { statSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { getConfig } from '../base/arch/configs.js';
import { randomNetworkParams } from '../converter/random.js';
import { condense } from '../converter/condense.js';
import { writeModel } from '../base/cnv2/format.js';
import { compileWasm, loadModel, wasmPath, type Isa } from '../runtime/index.js';

const runs = Number(process.argv[process.argv.indexOf('--runs') + 1] || 15) || 15;
// Tracked results (bench/results/) change only when asked: without --out the figures are printed only.
const outDir = process.argv.includes('--out') ? process.argv[process.argv.indexOf('--out') + 1] : undefined;
if (process.argv.includes('--out') && (!outDir || outDir.startsWith('--'))) {
  console.error('--out needs a directory');
  process.exit(2);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface LibExports {
  memory: WebAssembly.Memory;
  cdnv2_alloc(n: number): number;
  cdnv2_load(p: number, n: number, limit: number): number;
  cdnv2_unload(h: number): number;
  cdnv2_arena_bytes(h: number): number;
}

const sizes: Record<string, number> = {};
for (const kind of ['command', 'lib'] as const) {
  for (const isa of ['simd', 'relaxed', 'scalar'] as Isa[]) sizes[path.basename(wasmPath(kind, isa))] = statSync(wasmPath(kind, isa)).size;
}

const models: Record<string, { bytes: number; arenaBytes: number; wasmLoadMs: number; jsLoadMs: number }> = {};
const module = await compileWasm('lib', 'simd');
for (const name of ['cdnv2-a', 'cdnv2-b', 'cdnv2-c']) {
  const bytes = writeModel(condense(randomNetworkParams(getConfig(name), 1), { weights: 'f32' }));
  const wasmTimes: number[] = [];
  const jsTimes: number[] = [];
  let arena = 0;
  for (let r = 0; r < runs; r++) {
    const inst = await WebAssembly.instantiate(module, {});
    const ex = inst.exports as unknown as LibExports;
    const p = ex.cdnv2_alloc(bytes.length);
    new Uint8Array(ex.memory.buffer, p, bytes.length).set(bytes);
    const t0 = performance.now();
    const h = ex.cdnv2_load(p, bytes.length, 0);
    wasmTimes.push(performance.now() - t0);
    if (h <= 0) throw new Error(`load failed: ${h}`);
    arena = ex.cdnv2_arena_bytes(h);
    const t1 = performance.now();
    const m = await loadModel(bytes);
    jsTimes.push(performance.now() - t1);
    m.dispose();
  }
  models[name] = { bytes: bytes.length, arenaBytes: arena, wasmLoadMs: median(wasmTimes), jsLoadMs: median(jsTimes) };
}

const report = { date: new Date().toISOString(), node: process.version, runs, wasmBytes: sizes, models };
if (outDir) {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, 'runtime-targets.json'), JSON.stringify(report, null, 2) + '\n');
  console.log(`wrote ${path.join(outDir, 'runtime-targets.json')}`);
}
console.log('module sizes (bytes):');
for (const [k, v] of Object.entries(sizes)) console.log(`  ${k.padEnd(24)} ${v}${k === 'cdnv2.wasm' ? `  (target <= 65536: ${v <= 65536 ? 'met' : 'MISSED'})` : ''}`);
console.log(`load + plan, median of ${runs}:`);
for (const [k, v] of Object.entries(models)) {
  console.log(`  ${k}: wasm loader ${v.wasmLoadMs.toFixed(1)} ms, whole loadModel ${v.jsLoadMs.toFixed(1)} ms, arena ${(v.arenaBytes / 1048576).toFixed(2)} MiB, file ${(v.bytes / 1048576).toFixed(2)} MiB`);
}
