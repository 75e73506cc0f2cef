// `cdnv2 classify`: decode images on the host, run them in the wasm runtime, print labels, scores and latency.
import { Command, Option } from 'commander';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { UsageError } from './errors.js';
import { printable } from './text.js';
import { Cdnv2Error, loadModelFile, wasmPath, type Isa, type Prediction } from '../runtime/index.js';
import type { Cdnv2Model } from '../runtime/engine.js';
import { findWasmtime } from '../runtime/wasmtime.js';

interface ClassifyResult {
  file: string;
  ms: number;
  top: Prediction[];
}

/** A file that could not be classified, as `--json` reports it (in input order, with the others). */
interface ClassifyFailure {
  file: string;
  error: { code: string; message: string };
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`expected a positive integer, got '${value}'`);
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`expected a non-negative integer, got '${value}'`);
  return n;
}

/** V8 first runs wasm from its baseline compiler and optimises hot code after a while; latency is timed after. */
function warmUp(model: Cdnv2Model, ms: number): void {
  if (ms <= 0) return;
  const x = new Float32Array(model.inputLength);
  const end = performance.now() + ms;
  try {
    for (let i = 0; i < 200 && performance.now() < end; i++) model.run(x);
  } catch (err) {
    // A model that fails on a zero input fails on the images too; each image reports it there.
    if (!(err instanceof Cdnv2Error)) throw err;
  }
}

/** Logits for one file, measuring only the runtime (decode excluded). */
async function classifyInNode(model: Cdnv2Model, file: string, k: number): Promise<ClassifyResult> {
  const { readImageFile } = await import('../runtime/image.js'); // the decoders load only for this command
  const input = await readImageFile(file);
  const t0 = performance.now();
  let logits: Float32Array;
  try {
    logits = input.kind === 'tensor' ? model.run(input.data)
      : input.kind === 'pnm' ? model.runPnm(input.bytes) : model.runImage(input.image);
  } catch (err) {
    // The runtime does not know file names; with several images the message must say which one.
    if (err instanceof Cdnv2Error) throw new Cdnv2Error(err.code, `${file}: ${err.message}`);
    throw err;
  }
  const ms = performance.now() - t0;
  return { file, ms, top: model.top(logits, k) };
}

/** Runs build/cdnv2.wasm under wasmtime on the normalised input the host prepared (as a raw tensor). */
async function classifyInWasmtime(model: Cdnv2Model, modelFile: string, file: string, k: number): Promise<ClassifyResult> {
  const { readImageFile } = await import('../runtime/image.js');
  const input = await readImageFile(file);
  const tensor = input.kind === 'tensor' ? input.data
    : input.kind === 'pnm' ? model.preprocessPnm(input.bytes) : model.preprocess(input.image);
  const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-'));
  try {
    writeFileSync(path.join(dir, 'input.f32'), Buffer.from(tensor.buffer, tensor.byteOffset, tensor.byteLength));
    const w = findWasmtime();
    if ('unavailable' in w) throw new Cdnv2Error('wasmtime', w.unavailable);
    const { command, args } = w.runCommand(wasmPath('command', 'simd'), ['classify', `/model/${path.basename(modelFile)}`, '/in/input.f32', '--top', String(k)],
      { dirs: [`${dir}::/in`, `${path.dirname(path.resolve(modelFile))}::/model`] });
    const t0 = performance.now();
    const r = spawnSync(command, args, { encoding: 'utf8' });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Cdnv2Error('wasmtime', `wasmtime failed (${r.status}): ${r.stderr.trim()}`);
    // Labels come from the model's metadata, not from the printed (escaped) text.
    const top = r.stdout.trim().split('\n').map((line) => {
      const [score, index] = line.split(' ');
      return { index: Number(index), label: model.meta.labels[Number(index)] ?? String(index), score: Number(score) };
    });
    return { file, ms, top };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function register(program: Command): void {
  program
    .command('classify')
    .description('classify images (PNG, JPEG, PGM/PPM, raw .f32 tensors) with a .cnv2 model in the wasm runtime')
    .argument('<model>', '.cnv2 model file')
    .argument('<images...>', 'image files')
    .option('--top <k>', 'how many classes to print per image', positiveInt, 5)
    .addOption(new Option('--engine <engine>', 'which build runs the model').choices(['node', 'relaxed', 'scalar', 'wasmtime']).default('node'))
    .option('--json', 'print JSON: [{"file", "ms", "top": [{"index", "label", "score"}]} or {"file", "error": {"code", "message"}}], one per image in order')
    .option('--max-macs <n>', 'refuse models whose run needs more multiply-adds than this (exit 1, code compute)', positiveInt)
    .option('--warmup <ms>', 'run the network this long before timing, so V8 has optimised the wasm (0: time cold runs)', nonNegativeInt, 300)
    .action(async (modelFile: string, images: string[], opts: { top: number; engine: string; json?: boolean; warmup: number; maxMacs?: number }) => {
      if (opts.engine === 'wasmtime') {
        const w = findWasmtime();
        if ('unavailable' in w) throw new Cdnv2Error('wasmtime', w.unavailable);
      }
      const isa: Isa = opts.engine === 'relaxed' ? 'relaxed' : opts.engine === 'scalar' ? 'scalar' : 'simd';
      const model = await loadModelFile(modelFile, { isa, maxMacs: opts.maxMacs });
      if (opts.engine !== 'wasmtime') warmUp(model, opts.warmup);
      const results: (ClassifyResult | ClassifyFailure)[] = [];
      let failed = 0;
      for (const file of images) {
        try {
          const r = opts.engine === 'wasmtime'
            ? await classifyInWasmtime(model, modelFile, file, opts.top)
            : await classifyInNode(model, file, opts.top);
          results.push(r);
          if (!opts.json) {
            process.stdout.write(`${file}  (${r.ms.toFixed(2)} ms, ${opts.engine})\n`);
            for (const p of r.top) process.stdout.write(`  ${p.score.toFixed(6)}  ${String(p.index).padStart(3)}  ${printable(p.label)}\n`);
          }
        } catch (err) {
          if (!(err instanceof Cdnv2Error)) throw err;
          failed++;
          process.stderr.write(`cdnv2: ${err.message}\n`);
          results.push({ file, error: { code: err.code, message: err.message } });
        }
      }
      if (opts.json) {
        process.stdout.write(JSON.stringify(results.map((r) => ('error' in r ? r : { file: r.file, ms: r.ms, top: r.top }))) + '\n');
      }
      model.dispose();
      if (failed > 0) process.exitCode = 1;
    });
}
