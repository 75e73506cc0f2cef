// Writes the card of a shipped model (models/README.md) from what was measured, never from hand-copied numbers:
// the training run's checkpoint state and metrics, the converted file's FLOPs/params/size/arena (converter and wasm
// loader), and its top-1 accuracy on the whole test set in the wasm runtime. Copies the run's log and chart beside it.
//   npx tsx scripts/model-card.ts --run /work/runs/fmnist-full --model models/cdnv2-fmnist.cnv2 [--dataset fashion-mnist]
import { Command } from 'commander';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { readModel } from '../base/cnv2/format.js';
import { analyze, formatCount } from '../converter/flops.js';
import { writeFileAtomicSync } from '../base/io.js';
import { loadModelFile } from '../runtime/index.js';
import { evaluateModel } from '../runtime/evaluate.js';
import { loadCheckpoint, masksAreFinal, type LoadedCheckpoint } from '../trainer/checkpoint.js';
import { limitSource, openDataset, type DatasetName } from '../base/data/index.js';

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
  .option('--note <text>', 'a paragraph about how the model was made that the checkpoints do not record')
  .parse();
const o = program.opts<{ run: string; model: string; dataset: string; out: string; note?: string }>();

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

const cfg = st.config;
const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;

// The runs that made the model, first to last: a fine-tuning run (--init-from) names the run it started from.
const chain: LoadedCheckpoint[] = [ckpt];
while (chain[0]!.state.options.initFrom && chain.length < 8) chain.unshift(await loadCheckpoint(chain[0]!.state.options.initFrom));
const runName = (i: number): string => (chain.length === 1 ? 'RUN' : `RUN${i + 1}`);

function trainCommand(c: LoadedCheckpoint, i: number): string {
  const opt = c.state.options;
  return [
    `cdnv2 train --arch ${opt.arch} --dataset ${opt.dataset} --epochs ${opt.epochs} --batch ${opt.batch} --lr ${opt.lr}`,
    `--warmup-epochs ${opt.warmupEpochs} --warmup-lr ${opt.warmupLr} --weight-decay ${opt.weightDecay} --momentum ${opt.momentum}`,
    `--label-smoothing ${opt.labelSmoothing}${opt.ema > 0 ? ` --ema ${opt.ema}` : ' --no-ema'} --seed ${opt.seed}`
      + `${opt.sfr ? '' : ' --no-sfr'}${opt.augment ? '' : ' --no-augment'}${opt.crop !== undefined ? ` --crop ${opt.crop}` : ''}`
      + `${opt.groupLasso ? ` --group-lasso ${opt.groupLasso}` : ''}${opt.limitTrain ? ` --limit-train ${opt.limitTrain}` : ''}`
      + `${i > 0 ? ` --init-from ${runName(i - 1)}` : ''} --out ${runName(i)}`,
  ].join(' \\\n    ');
}

function runLog(c: LoadedCheckpoint, i: number): string {
  const h = c.state.history;
  const rows = h.map((e) => `| ${e.epoch} | ${e.trainLoss.toFixed(4)} | ${pct(e.trainAccuracy)} | ${e.testLoss.toFixed(4)} | `
    + `${pct(e.testAccuracy)} | ${e.lr.toFixed(4)} | ${e.stageLgc}/${e.stageSfr} | ${e.lgcDensity.toFixed(3)}/${e.sfrDensity.toFixed(3)} | `
    + `${e.seconds.toFixed(0)} | ${e.imagesPerSecond.toFixed(1)} |`);
  const stageRows = c.state.stages.map((s) => `| ${s.kind} | ${s.from} -> ${s.to} | ${s.iteration} | ${s.progress.toFixed(4)} | ${s.density.toFixed(4)} |`);
  const title = chain.length === 1 ? '' : `### ${runName(i)}: ${i === 0 ? 'training with the mask schedule' : 'fine-tuning (masks fixed)'}\n\n`;
  const stages = stageRows.length
    ? `Mask schedule (stage changes):\n\n| masks | stage | iteration | progress | density |\n|---|---|---:|---:|---:|\n${stageRows.join('\n')}\n\n`
    : 'No mask stage changes: the masks were final already.\n\n';
  return `${title}${stages}Log per epoch (test columns: TensorFlow.js on the checkpoint):\n\n`
    + '| epoch | train loss | train acc | test loss | test acc | lr | stage | density lgc/sfr | s | images/s |\n'
    + '|---:|---:|---:|---:|---:|---:|---|---|---:|---:|\n'
    + `${rows.join('\n')}\n`;
}

const hours = chain.reduce((s, c) => s + c.state.history.reduce((a, h) => a + h.seconds, 0), 0) / 3600;
const epochs = chain.reduce((s, c) => s + c.state.history.length, 0);
const first = chain[0]!.state;
// Runs of one chain may differ in thread count: name each distinct backend once, in order.
const backends = [...new Set(chain.map((c) => c.state.backend))];

const outDir = path.dirname(o.out);
const base = path.basename(o.model, '.cnv2');
const copied: string[] = [];
chain.forEach((c, i) => {
  const runDir = i === chain.length - 1 ? o.run : path.resolve(c.dir, '..', '..');
  const tag = chain.length === 1 ? '' : `.run${i + 1}`;
  for (const ext of ['metrics.jsonl', 'training-curve.svg', 'training-curve.png']) {
    const from = path.join(runDir, ext);
    const to = `${base}${tag}.${ext}`;
    if (existsSync(from)) { copyFileSync(from, path.join(outDir, to)); copied.push(to); }
  }
});

const card = `# Shipped models

## \`${path.basename(o.model)}\`: the default model

${cfg.description}, trained by \`cdnv2 train\` on the ${first.trainCount.toLocaleString('en')} training images of ${first.options.dataset} with the
full LGC and SFR mask schedule${chain.length > 1 ? `, fine-tuned with its masks fixed (${chain.length - 1} more run${chain.length > 2 ? 's' : ''}, \`--init-from\`)` : ''}, then
condensed by \`cdnv2 convert\`. This card is written by \`scripts/model-card.ts\` from the runs' checkpoints and metrics
and from measurements of the file itself.

| | |
|---|---|
| top-1 accuracy | **${pct(evalResult.accuracy)}** on the ${evalResult.count.toLocaleString('en')} ${first.options.dataset} test images, in the wasm runtime |
| multiply-adds (FLOPs as the paper counts them) | ${formatCount(info.totals.flops)} (${info.totals.flops.toLocaleString('en')}) per image |
| parameters | ${formatCount(info.totals.params)} (${info.totals.params.toLocaleString('en')}) |
| file | ${bytes.length.toLocaleString('en')} bytes |
| activation arena (wasm runtime) | ${(arena / 1024).toFixed(0)} KiB |
| training | ${epochs} epochs, ${hours.toFixed(1)} h on backend ${backends.join('; ')} |

Reproduce the accuracy: \`cdnv2 eval ${o.model} --dataset ${first.options.dataset} --json\` prints
\`{"accuracy":${evalResult.accuracy},"count":${evalResult.count}}\`.

Published ${first.options.dataset} results for scale:

| model | top-1 | parameters |
|---|---:|---:|
${PUBLISHED.map((p) => `| ${p.model} | ${p.accuracy.toFixed(1)}% | ${p.params || 'n/a'} |`).join('\n')}
| this model (\`${cfg.name}\`) | ${pct(evalResult.accuracy)} | ${formatCount(info.totals.params)} |

## How it was made

\`\`\`sh
${chain.map((c, i) => trainCommand(c, i)).join('\n')}
cdnv2 convert ${runName(chain.length - 1)} -o ${o.model} --weights f16
\`\`\`

A run that stops midway continues with \`--resume\` from its newest checkpoint, bit-identically (docs/training.md).
${o.note ? `\n${o.note}\n` : ''}
Configuration \`${cfg.name}\` (base/arch/configs.ts): input ${cfg.input.channels}x${cfg.input.height}x${cfg.input.width}, layers
${cfg.layers.join('-')}, growth ${cfg.growth.join('-')}, groups ${cfg.group1x1}/${cfg.group3x3}/${cfg.groupTrans} (1x1/3x3/SFR), condensation factor ${cfg.condenseFactor}, SFR factor
${cfg.sfrFactor}, bottleneck ${cfg.bottleneck}, stem ${cfg.stemChannels} channels, hardswish from block ${cfg.hsStartBlock}, SE from block
${cfg.seStartBlock}, head SE reduction ${cfg.headSeReduction}.

${chain.map((c, i) => runLog(c, i)).join('\n')}
Logs and charts beside this card: ${copied.map((f) => `\`${f}\``).join(', ')}.

${copied.filter((f) => f.endsWith('.png')).map((f) => `![training curve](${f})`).join('\n\n')}
`;

writeFileAtomicSync(o.out, card);
process.stdout.write(`wrote ${o.out}${copied.length ? ` and ${copied.join(', ')}` : ''}: top-1 ${pct(evalResult.accuracy)} on ${evalResult.count}\n`);
