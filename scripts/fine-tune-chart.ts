// The fine-tuning demonstration's chart (docs/training.md, "Fine-tuning"): held-out accuracy of each converted
// model against the training time of its run (the runs' own per-epoch seconds, evaluation included).
//   tsx scripts/fine-tune-chart.ts -o docs/fine-tuning-demo LABEL=RUN_DIR=EVAL_JSON ...
// EVAL_JSON is the output of `cdnv2 eval model.cnv2 --dataset folder --data DIR --json`.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type * as vl from 'vega-lite';

import { renderChart } from '../base/chart.js';
import { loadCheckpoint } from '../trainer/checkpoint.js';

const { values, positionals } = parseArgs({ options: { out: { type: 'string', short: 'o' }, title: { type: 'string' } }, allowPositionals: true });
if (!values.out || positionals.length === 0) {
  process.stderr.write('usage: tsx scripts/fine-tune-chart.ts -o PREFIX LABEL=RUN_DIR=EVAL_JSON ...\n');
  process.exit(2);
}
const rows = await Promise.all(positionals.map(async (p) => {
  const [label, run, evalJson] = p.split('=');
  if (!label || !run || !evalJson) throw new Error(`expected LABEL=RUN_DIR=EVAL_JSON, got '${p}'`);
  const ck = await loadCheckpoint(run, () => {});
  const seconds = ck.state.history.reduce((a, h) => a + h.seconds, 0);
  const { accuracy, count } = JSON.parse(readFileSync(evalJson, 'utf8')) as { accuracy: number; count: number };
  return { label, seconds: Math.round(seconds), accuracy, count };
}));
for (const r of rows) process.stdout.write(`${r.label}: ${(100 * r.accuracy).toFixed(2)}% of ${r.count}, ${r.seconds} s\n`);
const spec: vl.TopLevelSpec = {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  title: values.title ?? 'Held-out accuracy of the converted models',
  data: { values: rows.map((r) => ({ ...r, text: `${(100 * r.accuracy).toFixed(1)}%, ${r.seconds} s` })) },
  width: 360,
  height: 24 * rows.length,
  layer: [
    { mark: 'bar', encoding: { y: { field: 'label', type: 'nominal', sort: null, title: null }, x: { field: 'accuracy', type: 'quantitative', scale: { domain: [0, 1] }, title: 'accuracy (wasm runtime)' } } },
    { mark: { type: 'text', align: 'left', dx: 4 }, encoding: { y: { field: 'label', type: 'nominal', sort: null }, x: { field: 'accuracy', type: 'quantitative' }, text: { field: 'text' } } },
  ],
  background: 'white',
};
const { svg, png } = await renderChart(spec);
writeFileSync(`${values.out}.svg`, svg);
writeFileSync(`${values.out}.png`, png);
process.stdout.write(`wrote ${values.out}.svg, ${values.out}.png\n`);
