// `cdnv2 import` (official PyTorch checkpoint -> .cnv2, optionally a cdnv2 checkpoint) and `cdnv2 export-pytorch`
// (cdnv2 checkpoint -> official training-form state dict). docs/pytorch.md describes the round trip.
import { promises as fs } from 'node:fs';
import type { Command } from 'commander';

import { CONFIGS, configNames } from '../base/arch/configs.js';
import { UsageError } from './errors.js';
import type { WeightsDtype } from '../converter/condense.js';
import { analyze, formatCount } from '../converter/flops.js';
import { getMeta, writeModel } from '../base/cnv2/format.js';
import { writeFileAtomic } from '../base/io.js';
// The pytorch modules (zip, pickle) are imported by the actions: other subcommands start without them.

function parseWeights(v: string): WeightsDtype {
  if (v !== 'f32' && v !== 'f16') throw new UsageError(`--weights must be f32 or f16, not '${v}'`);
  return v;
}

async function readInput(file: string): Promise<Uint8Array> {
  let st;
  try { st = await fs.stat(file); } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`cannot read '${file}': ${code === 'ENOENT' ? 'no such file' : code ?? (err as Error).message}`);
  }
  if (!st.isFile()) throw new Error(`cannot read '${file}': not a regular file`);
  return new Uint8Array(await fs.readFile(file));
}

export function register(program: Command): void {
  program
    .command('import')
    .description('convert an official CondenseNetV2 PyTorch checkpoint (training or converted form) into a model file')
    .argument('<file>', 'torch.save file (.pth, .pth.tar): zip or legacy format')
    .requiredOption('--arch <config>', `configuration the checkpoint was trained as (${configNames().join(', ')})`)
    .requiredOption('-o, --output <file>', 'model file to write (.cnv2)')
    .option('--no-ema', 'use state_dict even when the file has state_dict_ema (as convert_and_eval.py --wo_ema_weight)')
    .option('--weights <dtype>', 'weight storage: f32 or f16', 'f32')
    .option('--name <name>', 'model name (default: the configuration name)')
    .option('--checkpoint <dir>', 'also write the weights as a cdnv2 checkpoint run directory (for train --init-from)')
    .action(async (file: string, opts: { arch: string; output: string; ema: boolean; weights: string; name?: string; checkpoint?: string }) => {
      const cfg = CONFIGS[opts.arch];
      if (!cfg) throw new UsageError(`unknown configuration '${opts.arch}' (known: ${configNames().join(', ')})`);
      const weights = parseWeights(opts.weights);
      const bytes = await readInput(file);
      const { importTorchCheckpoint } = await import('../converter/pytorch/import.js');
      const { model, params, form, source } = importTorchCheckpoint(bytes, cfg, { noEma: !opts.ema, weights, name: opts.name, file });
      const out = writeModel(model);
      await writeFileAtomic(opts.output, out);
      const a = analyze(model, out.length);
      process.stdout.write(`wrote ${opts.output}: ${getMeta(model, 'name') as string} from ${source} (${form} form), `
        + `${formatCount(a.totals.flops)} FLOPs, ${formatCount(a.totals.params)} params, ${out.length} bytes (${weights} weights)\n`);
      if (opts.checkpoint) {
        const { writeImportedCheckpoint } = await import('../trainer/imported-checkpoint.js'); // trainer code: only when asked
        const dir = writeImportedCheckpoint(opts.checkpoint, params, `${file}, ${source}`);
        process.stdout.write(`wrote checkpoint ${dir}\n`);
      }
    });

  program
    .command('export-pytorch')
    .description('write a cdnv2 checkpoint as the official training-form state dict (torch.save zip format)')
    .argument('<checkpointDir>', 'checkpoint directory or run directory written by `cdnv2 train`')
    .requiredOption('-o, --output <file>', 'file to write (.pth)')
    .option('--no-ema', 'export the live weights even when the checkpoint has EMA weights')
    .action(async (dir: string, opts: { output: string; ema: boolean }) => {
      const { loadCheckpoint, checkpointToNetworkParams } = await import('../trainer/checkpoint.js');
      const ckpt = await loadCheckpoint(dir);
      const useEma = opts.ema && ckpt.ema !== undefined;
      const params = checkpointToNetworkParams(ckpt, { ema: useEma });
      const { paramsToStateDict } = await import('../converter/pytorch/state-dict.js');
      const { torchSaveStateDict } = await import('../converter/pytorch/torch-save.js');
      const tensors = paramsToStateDict(params, ckpt.state.stage);
      const bytes = torchSaveStateDict(tensors);
      await writeFileAtomic(opts.output, bytes);
      process.stdout.write(`wrote ${opts.output}: ${ckpt.state.config.name} state dict (${tensors.length} tensors, `
        + `${useEma ? 'EMA' : 'live'} weights, condensation stage ${ckpt.state.stage.lgc}/${ckpt.state.stage.sfr}), ${bytes.length} bytes\n`);
    });
}
