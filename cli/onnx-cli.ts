// `cdnv2 export-onnx <model.cnv2> -o <file.onnx>`, and the `--onnx` option helpers shared with `cdnv2 convert`.
import type { Command } from 'commander';

import { UsageError } from './errors.js';
import { readModel } from '../base/cnv2/format.js';
import { readModelFile, writeFileAtomic } from '../base/io.js';
import type { Model } from '../base/cnv2/model.js';
import { DEFAULT_INDEX_SUM, INDEX_SUM_VARIANTS, type IndexSumVariant } from '../converter/onnx-variants.js';

export const INDEX_SUM_HELP = `how the SFR index-sum is written: ${INDEX_SUM_VARIANTS.join(', ')} (default ${DEFAULT_INDEX_SUM})`;

export function parseIndexSum(v: string): IndexSumVariant {
  if (!(INDEX_SUM_VARIANTS as readonly string[]).includes(v)) {
    throw new UsageError(`--index-sum must be one of ${INDEX_SUM_VARIANTS.join(', ')}, not '${v}'`);
  }
  return v as IndexSumVariant;
}

export function parseOpset(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 13 || n > 17) throw new UsageError(`--opset must be an integer 13..17, not '${v}'`);
  return n;
}

/** Writes the ONNX form of a model (atomically) and returns a one-line summary. */
export async function writeOnnx(model: Model, file: string, indexSum: IndexSumVariant, opset = 16): Promise<string> {
  const { exportOnnx } = await import('../converter/onnx.js'); // onnx-proto loads only for the commands that write ONNX
  const bytes = exportOnnx(model, { indexSum, opset });
  await writeFileAtomic(file, bytes);
  return `wrote ${file}: ONNX opset ${opset}, index-sum '${indexSum}', ${bytes.length} bytes`;
}

export function register(program: Command): void {
  program
    .command('export-onnx')
    .description('write a model as standard ONNX (grouped Conv, Gather, HardSwish, GlobalAveragePool, Gemm)')
    .argument('<model>', 'model file (.cnv2)')
    .requiredOption('-o, --output <file>', 'ONNX file to write (.onnx)')
    .option('--index-sum <variant>', INDEX_SUM_HELP, DEFAULT_INDEX_SUM)
    .option('--opset <n>', 'ONNX opset 13..17 (HardSwish needs 14, scatter needs 16)', '16')
    .action(async (file: string, opts: { output: string; indexSum: string; opset: string }) => {
      const indexSum = parseIndexSum(opts.indexSum);
      const opset = parseOpset(opts.opset);
      const model = readModel(await readModelFile(file));
      process.stdout.write(`${await writeOnnx(model, opts.output, indexSum, opset)}\n`);
    });
}
