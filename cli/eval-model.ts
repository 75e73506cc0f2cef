// `cdnv2 eval <model.cnv2>`: accuracy of a converted model in the wasm runtime, with the same options and output
// as `cdnv2 eval <checkpointDir>` (TensorFlow.js), so the two can be compared image by image.
import { CONFIGS, type ArchConfig } from '../base/arch/configs.js';
import { reportEvaluation } from './eval-report.js';
import { evalProgress } from './progress.js';
import { limitSource, openDataset, type DatasetName } from '../base/data/index.js';
import { loadModelFile, type Isa } from '../runtime/index.js';
import { evaluateModel } from '../runtime/evaluate.js';
import type { ModelMeta } from '../runtime/engine.js';

export interface EvalModelOptions {
  dataset: DatasetName;
  data?: string;
  limit?: number;
  json?: boolean;
  logits?: string;
  isa?: Isa;
  /** Progress on stderr (default true): a bar on a terminal, a line every 10 s elsewhere. */
  progress?: boolean;
}

/** The data loaders want a configuration: the model's own, or one shaped after its metadata. */
function configFor(meta: ModelMeta, classes: number): ArchConfig {
  const known = meta.arch ? CONFIGS[meta.arch] : undefined;
  const base = known ?? CONFIGS['cdnv2-fmnist']!;
  const [channels, height, width] = meta.inputShape;
  return { ...base, input: { channels, height, width }, classes, mean: meta.mean, std: meta.std, labels: meta.labels };
}

export async function evalModelFile(file: string, o: EvalModelOptions): Promise<void> {
  const model = await loadModelFile(file, { isa: o.isa ?? 'simd' });
  const src = limitSource(openDataset(o.dataset, 'test', configFor(model.meta, model.outputLength), o.data), o.limit);
  try {
    const bar = evalProgress(src.count, o.progress ?? true);
    const r = evaluateModel(model, src, { keepLogits: Boolean(o.logits), onProgress: (done) => bar.update(done) });
    bar.stop();
    await reportEvaluation(r, model.outputLength, o, `${file}, wasm ${model.isa}`);
  } finally {
    model.dispose();
    src.close();
  }
}
