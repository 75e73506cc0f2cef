// Converter commands: `cdnv2 arch` (random model of a named config), `cdnv2 info`, `cdnv2 convert` (checkpoint).
import type { Command } from 'commander';

import { CONFIGS } from '../base/arch/configs.js';
import { findNetworkConfig, isShuffleNetConfig, networkConfigNames } from '../base/arch/networks.js';
import { shuffleCost, shuffleTensorInventory, type ShuffleNetConfig } from '../base/arch/shufflenet.js';
import { condenseShuffleNet, randomShuffleNetParams } from '../converter/shufflenet.js';
import { UsageError } from './errors.js';
import { printable } from './text.js';
import { condense, type WeightsDtype } from '../converter/condense.js';
import { analyze, formatCount, type Analysis } from '../converter/flops.js';
import { readModel, writeModel, getMeta, type Model } from '../base/cnv2/format.js';
import { readModelFile, writeFileAtomic } from '../base/io.js';
import { randomNetworkParams } from '../converter/random.js';
import { INDEX_SUM_HELP, parseIndexSum, writeOnnx } from './onnx-cli.js';
import { DEFAULT_INDEX_SUM } from '../converter/onnx-variants.js';

function parseWeights(v: string): WeightsDtype {
  if (v !== 'f32' && v !== 'f16') throw new UsageError(`--weights must be f32 or f16, not '${v}'`);
  return v;
}

function parseSeed(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n > 0xffffffff) throw new UsageError(`--seed must be an integer 0..4294967295, not '${v}'`);
  return n;
}

function summary(file: string, model: Model, bytes: Uint8Array): string {
  const a = analyze(model, bytes.length);
  return `wrote ${file}: ${printable(getMeta(model, 'name') as string)}, ${formatCount(a.totals.flops)} FLOPs, `
    + `${formatCount(a.totals.params)} params, ${bytes.length} bytes`;
}

const RUNTIME_FORMAT_CODES = new Set(['bad-magic', 'version', 'size', 'checksum', 'truncated', 'section', 'meta',
  'graph', 'range', 'shape', 'index', 'overflow', 'arena', 'alias']);

/**
 * The activation arena the wasm runtime plans for the model (runtime/index.ts). Undefined, with the reason, when
 * the runtime or its wasm build is not available; a model the runtime rejects is an error.
 */
async function arenaBytesOf(bytes: Uint8Array): Promise<{ arenaBytes?: number; macs?: number; note?: string }> {
  const spec = '../runtime/index.js'; // not a static import: these commands work without the wasm runtime
  type Loaded = { arenaBytes: number; macs?: number; dispose?: () => void };
  let mod: { loadModel?: (b: Uint8Array) => Promise<Loaded> };
  try {
    mod = await import(spec);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') return { note: 'runtime not available' };
    throw err;
  }
  if (typeof mod.loadModel !== 'function') return { note: 'runtime has no loadModel' };
  let loaded: Loaded;
  try {
    loaded = await mod.loadModel(bytes);
  } catch (err) {
    // A format complaint from the runtime (the TS reader accepted the file) is a real disagreement: fail.
    // Anything else (wasm not built, instantiation problems) only leaves the arena size out.
    const code = (err as { code?: string }).code;
    if (code && RUNTIME_FORMAT_CODES.has(code)) throw new Error(`the wasm runtime rejected the model (${code}): ${(err as Error).message}`);
    return { note: `runtime failed: ${(err as Error).message}` };
  }
  const { arenaBytes, macs } = loaded;
  loaded.dispose?.();
  return { arenaBytes, macs };
}

function parseMaxMacs(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`--max-macs needs a positive integer, got '${value}'`);
  return n;
}

/** The shortest decimal that reads back as the same float32 (0.286, not 0.28600001335144043). */
function float32Decimal(x: number): number {
  for (let digits = 1; digits < 17; digits++) {
    const d = Number(x.toPrecision(digits));
    if (Math.fround(d) === x) return d;
  }
  return x;
}

function shape(s: [number, number, number]): string {
  return `${s[0]}x${s[1]}x${s[2]}`;
}

function table(a: Analysis): string {
  const head = ['#', 'op', 'input', 'output', 'groups', 'MACs', 'FLOPs', 'params'];
  const rows = a.layers.map((r) => [String(r.index), r.op, shape(r.input), shape(r.output), String(r.groups),
    String(r.macs), String(r.flops), String(r.params)]);
  return rowsTable(head, rows, 2);
}

function rowsTable(head: string[], rows: string[][], leftColumns: number): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [fmt(head), ...rows.map(fmt)].map((l) => l.trimEnd()).join('\n');
}

/** `cdnv2 arch <shufflenet config>`: the layers and totals of the deployed network (SFR masks final). */
function shuffleSummary(cfg: ShuffleNetConfig): string {
  const a = shuffleCost(cfg);
  const rows = a.layers.map((r) => [r.name, r.op, shape(r.input), shape(r.output), String(r.groups), String(r.macs), String(r.flops), String(r.params)]);
  return [
    `config   ${cfg.name}: ${cfg.description}`,
    `input    ${cfg.input.channels}x${cfg.input.height}x${cfg.input.width}, ${cfg.classes} classes`,
    '',
    rowsTable(['layer', 'op', 'input', 'output', 'groups', 'MACs', 'FLOPs', 'params'], rows, 2),
    '',
    `total    ${a.totals.flops} FLOPs (${formatCount(a.totals.flops)}), ${a.totals.macs} MACs, ${a.totals.params} params (${formatCount(a.totals.params)})`
      + ' as deployed (SFR masks final; docs/flops.md)',
  ].join('\n');
}

/** `cdnv2 arch --list`: every configuration of both families. */
function configListing(): string {
  const rows = networkConfigNames().map((n) => {
    const c = findNetworkConfig(n)!;
    const family = isShuffleNetConfig(c) ? 'shufflenetv2' : 'condensenetv2';
    return [n, family, `${c.input.channels}x${c.input.height}x${c.input.width}`, c.description];
  });
  return rowsTable(['name', 'family', 'input', 'description'], rows, 4);
}

export function register(program: Command): void {
  program
    .command('arch')
    .description('write a model of a named configuration with deterministic random weights and final masks; '
      + 'for a ShuffleNet configuration, print its layers, FLOPs and parameters')
    .argument('[config]', `configuration (${networkConfigNames().join(', ')})`)
    .option('-o, --output <file>', 'model file to write (.cnv2); required for CondenseNetV2 configurations')
    .option('--seed <n>', 'random seed', '1')
    .option('--weights <dtype>', 'weight storage: f32 or f16', 'f32')
    .option('--no-sfr', 'omit sparse feature reactivation (CondenseNet V1 dense layers)')
    .option('--list', 'list the configurations of both families (name, family, input, description)')
    .option('--json', 'ShuffleNet configurations: print the layers and totals as JSON')
    .action(async (name: string | undefined, opts: { output?: string; seed: string; weights: string; sfr: boolean; list?: boolean; json?: boolean }) => {
      if (opts.list) {
        process.stdout.write(`${configListing()}\n`);
        return;
      }
      if (!name) throw new UsageError('missing configuration name (cdnv2 arch --list shows them)');
      const any = findNetworkConfig(name);
      if (!any) throw new UsageError(`unknown configuration '${name}' (known: ${networkConfigNames().join(', ')})`);
      const weights = parseWeights(opts.weights);
      const seed = parseSeed(opts.seed);
      if (isShuffleNetConfig(any)) {
        if (!opts.sfr) throw new UsageError(`--no-sfr is for CondenseNetV2; ${name} ${any.sfr ? 'has SFR by definition (use ' + name.replace(/^sfr-/, '') + ')' : 'has no SFR'}`);
        if (opts.output) {
          const model = condenseShuffleNet(randomShuffleNetParams(any, seed, shuffleTensorInventory(any)), { weights });
          const bytes = writeModel(model);
          await writeFileAtomic(opts.output, bytes);
          process.stdout.write(`${summary(opts.output, model, bytes)} (${weights} weights, seed ${seed})\n`);
          return;
        }
        process.stdout.write(`${opts.json ? JSON.stringify({ name, ...shuffleCost(any) }) : shuffleSummary(any)}\n`);
        return;
      }
      if (!opts.output) throw new UsageError(`arch ${name}: -o, --output <file> is required for CondenseNetV2 configurations`);
      const cfg = CONFIGS[name]!;
      const model = condense(randomNetworkParams(cfg, seed, { sfr: opts.sfr }), { weights });
      const bytes = writeModel(model);
      await writeFileAtomic(opts.output, bytes);
      process.stdout.write(`${summary(opts.output, model, bytes)} (${weights} weights, seed ${seed}${opts.sfr ? '' : ', no SFR'})\n`);
    });

  program
    .command('info')
    .description('validate a model and print its layers, FLOPs, parameters and sizes')
    .argument('<model>', 'model file (.cnv2)')
    .option('--json', 'print JSON: name, arch, inputShape, classes, labels, preprocessing (mean, std, resize), flops, macs, params, bytes, arenaBytes, budgetMacs, layers')
    .option('--max-macs <n>', 'fail (exit 1) when a run needs more multiply-adds than this (the runtime\'s count)', parseMaxMacs)
    .action(async (file: string, opts: { json?: boolean; maxMacs?: number }) => {
      const bytes = await readModelFile(file);
      const model = readModel(bytes);
      const a = analyze(model, bytes.length);
      const { arenaBytes, macs: budget, note } = await arenaBytesOf(bytes);
      if (opts.maxMacs !== undefined && budget !== undefined && budget > opts.maxMacs) {
        throw new Error(`${file}: a run needs ${budget} multiply-adds, above --max-macs ${opts.maxMacs}`);
      }
      if (opts.json) {
        const out: Record<string, unknown> = {
          name: getMeta(model, 'name'), arch: getMeta(model, 'arch'),
          inputShape: Array.from(getMeta(model, 'input.shape') as Uint32Array), // channels, height, width
          classes: model.buffers[model.outputBuffer]!.channels,
          labels: (getMeta(model, 'labels') as string[] | undefined) ?? [],
          // As every host does it (docs/format.md): samples scaled to [0, 1], the shorter side resized to the input
          // size, the centre cropped, then (x - mean) / std per channel.
          preprocessing: {
            fit: 'shorter-side-then-center-crop',
            mean: Array.from(getMeta(model, 'input.mean') as Float32Array, float32Decimal),
            std: Array.from(getMeta(model, 'input.std') as Float32Array, float32Decimal),
            resize: (getMeta(model, 'input.resize') as string | undefined) ?? 'bilinear',
          },
          flops: a.totals.flops, macs: a.totals.macs, params: a.totals.params, bytes: bytes.length,
        };
        if (arenaBytes !== undefined) out.arenaBytes = arenaBytes;
        else process.stderr.write(`cdnv2: arenaBytes left out: ${note}\n`);
        if (budget !== undefined) out.budgetMacs = budget;
        out.layers = a.layers;
        process.stdout.write(`${JSON.stringify(out)}\n`);
        return;
      }
      const inShape = Array.from(getMeta(model, 'input.shape') as Uint32Array).join('x');
      const lines = [
        `model    ${printable(getMeta(model, 'name') as string)}${getMeta(model, 'arch') ? ` (${printable(getMeta(model, 'arch') as string)})` : ''}`,
        `input    ${inShape}, ${(getMeta(model, 'input.resize') as string | undefined) ?? 'bilinear'} resize`,
        `classes  ${model.buffers[model.outputBuffer]!.channels}${getMeta(model, 'labels') ? '' : ' (unnamed)'}`,
        `buffers  ${model.buffers.length}, ops ${model.ops.length}, tensors ${model.tensors.length}`,
      ];
      const prov = getMeta(model, 'provenance');
      if (typeof prov === 'string') lines.push(`source   ${printable(prov)}`);
      lines.push('', table(a), '');
      lines.push(`total    ${a.totals.flops} FLOPs (${formatCount(a.totals.flops)}), ${a.totals.macs} MACs, `
        + `${a.totals.params} params (${formatCount(a.totals.params)}), ${bytes.length} bytes`);
      lines.push(arenaBytes !== undefined ? `arena    ${arenaBytes} bytes` : `arena    (${note})`);
      // The runtime's count: multiply-adds plus one per element pooled, shuffled or gathered (--max-macs).
      if (budget !== undefined) lines.push(`budget   ${budget} multiply-adds a run in the runtime (pooling and copies included)`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  program
    .command('convert')
    .description('condense a training checkpoint into a model file')
    .argument('<checkpointDir>', 'checkpoint directory written by `cdnv2 train`')
    .requiredOption('-o, --output <file>', 'model file to write (.cnv2)')
    .option('--weights <dtype>', 'weight storage: f32 or f16', 'f32')
    .option('--name <name>', 'model name (default: the configuration name)')
    .option('--onnx <file>', 'also write the model as standard ONNX (.onnx)')
    .option('--index-sum <variant>', `with --onnx: ${INDEX_SUM_HELP}`, DEFAULT_INDEX_SUM)
    .option('--no-ema', 'convert the raw weights even when the checkpoint has EMA weights (official --wo_ema_weight)')
    .action(async (dir: string, opts: { output: string; weights: string; name?: string; onnx?: string; indexSum: string; ema: boolean }) => {
      const weights = parseWeights(opts.weights);
      const indexSum = parseIndexSum(opts.indexSum);
      // Imported here, not statically: trainer code is only needed by this command.
      const { loadCheckpoint, checkpointToNetworkParams, masksAreFinal, maskReport } = await import('../trainer/checkpoint.js');
      const ckpt = await loadCheckpoint(dir);
      if (isShuffleNetConfig(ckpt.state.config)) {
        // condenseShuffleNet checks that every SFR mask is final and says which one is not.
        const source = opts.ema && ckpt.ema ? new Map([...ckpt.model, ...ckpt.ema]) : ckpt.model;
        const model = condenseShuffleNet({ config: ckpt.state.config, tensors: source, masks: ckpt.masks }, { weights, name: opts.name });
        const bytes = writeModel(model);
        await writeFileAtomic(opts.output, bytes);
        process.stdout.write(`${summary(opts.output, model, bytes)} (${weights} weights)\n`);
        if (opts.onnx) process.stdout.write(`${await writeOnnx(model, opts.onnx, indexSum)}\n`);
        return;
      }
      if (!masksAreFinal(ckpt)) {
        const bad = maskReport(ckpt).find((r) => !r.groupwise || r.keptPerGroup.some((k) => k !== r.expected));
        const where = bad ? ` (${bad.name} keeps ${bad.keptPerGroup.join('/')} per group, final is ${bad.expected})` : '';
        throw new Error(`${dir}: masks are not final yet: condensation stage lgc ${ckpt.state.stage.lgc}`
          + `/${ckpt.state.config.condenseFactor - 1} after ${ckpt.state.epochsDone} of ${ckpt.state.options.epochs} epochs${where}; `
          + 'train past the first half of the schedule before converting');
      }
      // As convert_and_eval.py: the EMA weights when the checkpoint has them, unless --no-ema. Without EMA weights
      // --no-ema changes nothing (the official flag is then a no-op too), which a note says.
      if (!opts.ema && !ckpt.ema) process.stderr.write(`note: ${ckpt.dir} has no EMA weights (trained without --ema); --no-ema changes nothing\n`);
      const useEma = opts.ema && ckpt.ema !== undefined;
      const params = checkpointToNetworkParams(ckpt, { ema: useEma });
      // condense() checks that every mask is final and says which layer is not.
      const model = condense(params, { weights, name: opts.name });
      const bytes = writeModel(model);
      await writeFileAtomic(opts.output, bytes);
      process.stdout.write(`${summary(opts.output, model, bytes)} (${weights} weights${useEma ? ', the EMA copy' : ''})\n`);
      if (opts.onnx) process.stdout.write(`${await writeOnnx(model, opts.onnx, indexSum)}\n`);
    });
}
