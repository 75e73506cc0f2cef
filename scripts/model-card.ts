// Writes the card of a shipped model (models/README.md) from what was measured, never from hand-copied numbers:
// the training run's checkpoint state and metrics, the converted file's FLOPs/params/size/arena (converter and wasm
// loader), and its top-1 accuracy on the whole test set in the wasm runtime. Copies the run's log and chart beside it.
//   npx tsx scripts/model-card.ts --run /work/runs/fmnist-full --model models/cdnv2-fmnist.cnv2 [--dataset fashion-mnist]
import { Command } from 'commander';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { readModel } from '../converter/format.js';
import { analyze, formatCount } from '../converter/flops.js';
import { writeFileAtomicSync } from '../converter/io.js';
import { loadModelFile } from '../runtime/index.js';
import { evaluateModel } from '../runtime/evaluate.js';
import { loadCheckpoint, masksAreFinal } from '../trainer/checkpoint.js';
import { limitSource, openDataset, type DatasetName } from '../trainer/data/index.js';

// Published Fashion-MNIST results the issue compares against (parameters where the source gives them).
const PUBLISHED = [
  { model: '2-conv CNN with batch norm', accuracy: 93.4, params: '' },
  { model: 'MobileNet', accuracy: 95.0, params: '' },
  { model: 'DenseNet-BC', accuracy: 95.4, params: '768K' },
];

const program = new Command('model-card')
  .requiredOption('--run <dir>', 'training run directory (checkpoints/, metrics.jsonl, training-curve.*)')
  .requiredOption('--model <file>', 'the converted .cnv2 model')
  .option('--dataset <name>', 'test set', 'fashion-mnist')
  .option('--out <file>', 'card to write', 'models/README.md')
  .parse();
const o = program.opts<{ run: string; model: string; dataset: string; out: string }>();

const ckpt = await loadCheckpoint(o.run);
if (!masksAreFinal(ckpt)) throw new Error(`${ckpt.dir}: masks are not final; train past the last condensation stage first`);
const st = ckpt.state;
const bytes = readFileSync(o.model);
const info = analyze(readModel(new Uint8Array(bytes)), bytes.length);
const model = await loadModelFile(o.model);
const src = openDataset(o.dataset as DatasetName, 'test', st.config);
let evalResult;
try {
  evalResult = evaluateModel(model, limitSource(src, undefined));
} finally {
  src.close();
}
const arena = model.arenaBytes;
model.dispose();

const outDir = path.dirname(o.out);
const base = path.basename(o.model, '.cnv2');
const copied: string[] = [];
for (const [from, to] of [['metrics.jsonl', `${base}.metrics.jsonl`], ['training-curve.svg', `${base}.training-curve.svg`], ['training-curve.png', `${base}.training-curve.png`]] as const) {
  const p = path.join(o.run, from);
  if (existsSync(p)) { copyFileSync(p, path.join(outDir, to)); copied.push(to); }
}

const opt = st.options;
const cfg = st.config;
const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
const trainCommand = [
  `cdnv2 train --arch ${opt.arch} --dataset ${opt.dataset} --epochs ${opt.epochs} --batch ${opt.batch} --lr ${opt.lr}`,
  `--warmup-epochs ${opt.warmupEpochs} --warmup-lr ${opt.warmupLr} --weight-decay ${opt.weightDecay} --momentum ${opt.momentum}`,
  `--label-smoothing ${opt.labelSmoothing}${opt.ema > 0 ? ` --ema ${opt.ema}` : ' --no-ema'} --seed ${opt.seed}`
    + `${opt.sfr ? '' : ' --no-sfr'}${opt.augment ? '' : ' --no-augment'}${opt.crop !== undefined ? ` --crop ${opt.crop}` : ''}${opt.groupLasso ? ` --group-lasso ${opt.groupLasso}` : ''}`
    + `${opt.limitTrain ? ` --limit-train ${opt.limitTrain}` : ''}${opt.initFrom ? ` --init-from ${opt.initFrom}` : ''} --out RUN`,
].join(' \\\n    ');
const hours = st.history.reduce((s, h) => s + h.seconds, 0) / 3600;
const epochRows = st.history.map((h) => `| ${h.epoch} | ${h.trainLoss.toFixed(4)} | ${pct(h.trainAccuracy)} | ${h.testLoss.toFixed(4)} | `
  + `${pct(h.testAccuracy)} | ${h.lr.toFixed(4)} | ${h.stageLgc}/${h.stageSfr} | ${h.lgcDensity.toFixed(3)}/${h.sfrDensity.toFixed(3)} | `
  + `${h.seconds.toFixed(0)} | ${h.imagesPerSecond.toFixed(1)} |`);
const stageRows = st.stages.map((s) => `| ${s.kind} | ${s.from} -> ${s.to} | ${s.iteration} | ${s.progress.toFixed(4)} | ${s.density.toFixed(4)} |`);

const card = `# Shipped models

## \`${path.basename(o.model)}\`: the default model

${cfg.description}, trained by \`cdnv2 train\` on the ${st.trainCount.toLocaleString('en')} training images of ${opt.dataset} with the
full LGC and SFR mask schedule, then condensed by \`cdnv2 convert\`. This card is written by \`scripts/model-card.ts\` from
the run's checkpoint and metrics and from measurements of the file itself.

| | |
|---|---|
| top-1 accuracy | **${pct(evalResult.accuracy)}** on the ${evalResult.count.toLocaleString('en')} ${opt.dataset} test images, in the wasm runtime |
| multiply-adds (FLOPs as the paper counts them) | ${formatCount(info.totals.flops)} (${info.totals.flops.toLocaleString('en')}) per image |
| parameters | ${formatCount(info.totals.params)} (${info.totals.params.toLocaleString('en')}) |
| file | ${bytes.length.toLocaleString('en')} bytes |
| activation arena (wasm runtime) | ${(arena / 1024).toFixed(0)} KiB |
| training | ${st.history.length} epochs, ${hours.toFixed(1)} h on backend ${st.backend} |

Reproduce the accuracy: \`cdnv2 eval ${o.model} --dataset ${opt.dataset} --json\` prints
\`{"accuracy":${evalResult.accuracy},"count":${evalResult.count}}\`.

Published ${opt.dataset} results for scale:

| model | top-1 | parameters |
|---|---:|---:|
${PUBLISHED.map((p) => `| ${p.model} | ${p.accuracy.toFixed(1)}% | ${p.params || 'n/a'} |`).join('\n')}
| this model (\`${cfg.name}\`) | ${pct(evalResult.accuracy)} | ${formatCount(info.totals.params)} |

## How it was made

\`\`\`sh
${trainCommand}
cdnv2 convert RUN -o ${o.model} --weights f16
\`\`\`

The run was stopped and continued with \`--resume\` across sessions; resuming is bit-identical (docs/training.md).

Configuration \`${cfg.name}\` (arch/configs.ts): input ${cfg.input.channels}x${cfg.input.height}x${cfg.input.width}, layers
${cfg.layers.join('-')}, growth ${cfg.growth.join('-')}, groups ${cfg.groups}, condensation factor ${cfg.condenseFactor}, SFR factor
${cfg.sfrFactor}, bottleneck ${cfg.bottleneck}, stem ${cfg.stemChannels} channels, hardswish from block ${cfg.hsStartBlock}, SE from block
${cfg.seStartBlock}, head SE reduction ${cfg.headSeReduction}.

Mask schedule (stage changes):

| masks | stage | iteration | progress | density |
|---|---|---:|---:|---:|
${stageRows.join('\n')}

Log per epoch (${copied.includes(`${base}.metrics.jsonl`) ? `\`${base}.metrics.jsonl\`` : 'metrics.jsonl'}; test columns: TensorFlow.js on the checkpoint):

| epoch | train loss | train acc | test loss | test acc | lr | stage | density lgc/sfr | s | images/s |
|---:|---:|---:|---:|---:|---:|---|---|---:|---:|
${epochRows.join('\n')}

${copied.includes(`${base}.training-curve.png`) ? `![training curve](${base}.training-curve.png)\n` : ''}`;

writeFileAtomicSync(o.out, card);
process.stdout.write(`wrote ${o.out}${copied.length ? ` and ${copied.join(', ')}` : ''}: top-1 ${pct(evalResult.accuracy)} on ${evalResult.count}\n`);
