// Training-curve chart (SVG and PNG), written next to the checkpoints.
import type * as vl from 'vega-lite';

import { renderChart } from '../base/chart.js';

import type { EpochMetrics } from './checkpoint.js';

export async function renderTrainingCurves(history: EpochMetrics[], title: string): Promise<{ svg: string; png: Uint8Array }> {
  const values = history.flatMap((h) => [
    { epoch: h.epoch, metric: 'train loss', panel: 'loss', value: h.trainLoss },
    { epoch: h.epoch, metric: 'test loss', panel: 'loss', value: h.testLoss },
    { epoch: h.epoch, metric: 'train accuracy', panel: 'accuracy', value: h.trainAccuracy },
    { epoch: h.epoch, metric: 'test accuracy', panel: 'accuracy', value: h.testAccuracy },
  ]);
  const spec: vl.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    data: { values },
    hconcat: ['loss', 'accuracy'].map((panel) => ({
      width: 320, height: 220,
      transform: [{ filter: `datum.panel === '${panel}'` }],
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', title: 'epoch' },
        y: { field: 'value', type: 'quantitative', title: panel, scale: { zero: false } },
        color: { field: 'metric', type: 'nominal' },
      },
    })),
    background: 'white',
  };
  return renderChart(spec);
}
