// Bench report: Markdown table, target ratios, and a latency-vs-FLOPs chart (vega-lite -> SVG -> PNG via resvg).
import type * as vl from 'vega-lite';

import { renderChart } from '../base/chart.js';

import type { BenchReport, BenchResult } from './run.js';
import { formatProfile } from '../runtime/engine.js';

const fmt = (v: number | null | undefined, digits = 2): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits);

const mflops = (n: number): string => `${(n / 1e6).toFixed(1)}M`;

function best(rs: BenchResult[], engines: string[]): BenchResult | undefined {
  return rs.filter((r) => engines.includes(r.engine)).sort((a, b) => a.medianMs - b.medianMs)[0];
}

/** CPU-time ratio a/b when both were measured, for the "(CPU x)" note. */
function cpuRatio(a: BenchResult, b: BenchResult): string {
  return a.cpuMedianMs && b.cpuMedianMs ? `, CPU time ${fmt(a.cpuMedianMs / b.cpuMedianMs)}x` : '';
}

/** The issue's targets, as ratios measured in this one run (medians; wall clock, CPU time alongside). */
export function targetLines(report: BenchReport): string[] {
  const lines: string[] = [];
  const ours = ['cdnv2', 'cdnv2-relaxed'];
  for (const m of report.models) {
    const rs = report.results.filter((r) => r.model === m.name);
    const o = best(rs, ours);
    if (!o) continue;
    const simd = rs.find((r) => r.engine === 'cdnv2');
    const pk = simd ? `SIMD build at ${fmt(simd.peakPct, 1)}% of the SIMD peak (${fmt(simd.peakPctCpu, 1)}% by CPU time; target >= 30%: ${simd.peakPct >= 30 ? 'met' : (simd.peakPctCpu ?? 0) >= 30 ? 'met by CPU time only' : 'not met'})` : '';
    const parts: string[] = [`**${m.name}**: ours ${fmt(o.medianMs)} ms (${o.engine})${pk ? `, ${pk}` : ''}`];
    const tw = best(rs, ['tfjs-wasm', 'tfjs-wasm-condensed']);
    if (tw) parts.push(`tfjs-wasm/ours ${fmt(tw.medianMs / o.medianMs)}x${cpuRatio(tw, o)} (target >= 3x: ${tw.medianMs / o.medianMs >= 3 ? 'met' : 'not met'})`);
    const ow = best(rs, ['ort-web']);
    if (ow) parts.push(`ort-web/ours ${fmt(ow.medianMs / o.medianMs)}x${cpuRatio(ow, o)} (target >= 1.5x: ${ow.medianMs / o.medianMs >= 1.5 ? 'met' : 'not met'})`);
    const on = best(rs, ['ort-node']);
    if (on) parts.push(`ours/ort-node ${fmt(o.medianMs / on.medianMs)}x${cpuRatio(o, on)} (target <= 2x: ${o.medianMs / on.medianMs <= 2 ? 'met' : 'not met'})`);
    lines.push(`- ${parts.join('; ')}`);
  }
  return lines;
}

/** Median latency per model (rows) and engine (columns), CPU time in parentheses. */
export function pivot(report: BenchReport): string {
  const engines = [...new Set(report.results.map((r) => r.engine))];
  const rows = [`| model (FLOPs) | ${engines.join(' | ')} |`, `|---|${engines.map(() => '---:').join('|')}|`];
  for (const m of report.models) {
    const cells = engines.map((e) => {
      const r = report.results.find((x) => x.model === m.name && x.engine === e);
      return r ? `${fmt(r.medianMs, r.medianMs >= 100 ? 0 : 1)}${r.cpuMedianMs !== null ? ` (${fmt(r.cpuMedianMs, r.cpuMedianMs >= 100 ? 0 : 1)})` : ''}` : '–';
    });
    rows.push(`| ${m.name} (${mflops(m.flops)}) | ${cells.join(' | ')} |`);
  }
  return `${rows.join('\n')}\n`;
}

export function markdown(report: BenchReport): string {
  const out: string[] = [];
  const h = report.host;
  out.push(`Measured ${report.date} on ${h.cpu} (${h.cores} cores, ${h.platform}/${h.arch}), Node ${h.node}; `
    + `${report.options.runs} timed runs (fewer where a pair exceeded ${report.options.maxSeconds} s: see the runs column) per engine and model, batch 1, one thread, `
    + ((report.options.rounds ?? 1) > 1
      ? `round-robin over ${report.options.rounds} rounds (each round a fresh process per engine after ${report.options.warmup} warm-up runs, the engines of a model taking turns; every figure is the median over the rounds of that round's figure).`
      : `after ${report.options.warmup} warm-up runs, each engine in its own process.`)
    + ` Load average ${h.loadavgStart.map((v) => v.toFixed(1)).join('/')} at the start, `
    + `${h.loadavgEnd.map((v) => v.toFixed(1)).join('/')} at the end (a shared machine: absolute times are noisy, ratios within one run are the useful numbers).`);
  out.push('');
  out.push(`wasm SIMD128 peak (peak_madd, this run): ${(report.peakMaddsPerSecond.simd / 1e9).toFixed(2)} G multiply-adds/s`
    + (report.peakMaddsPerSecond.relaxed ? `; relaxed SIMD: ${(report.peakMaddsPerSecond.relaxed / 1e9).toFixed(2)} G/s.` : '.'));
  out.push('');
  out.push('Median latency in ms (median CPU time per run in parentheses):');
  out.push('');
  out.push(pivot(report));
  out.push('All numbers:');
  out.push('');
  out.push('| model | FLOPs | engine | runs | median ms | p10 ms | p90 ms | CPU ms | GFLOP/s | % SIMD peak | % peak (CPU) | mem Δ MiB | max rel diff |');
  out.push('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const m of report.models) {
    for (const r of report.results.filter((x) => x.model === m.name)) {
      out.push(`| ${m.name} | ${mflops(m.flops)} | ${r.engine} | ${r.runs} | ${fmt(r.medianMs)} | ${fmt(r.p10Ms)} | ${fmt(r.p90Ms)} | ${fmt(r.cpuMedianMs)} | ${fmt(r.gflops)} | `
        + `${fmt(r.peakPct, 1)} | ${fmt(r.peakPctCpu, 1)} | ${fmt(r.memDeltaMiB, 1)}${r.wasmMemoryMiB !== null ? ` (wasm ${fmt(r.wasmMemoryMiB, 1)})` : ''} | ${r.maxRelDiff === null ? '–' : r.maxRelDiff.toExponential(1)} |`);
    }
  }
  out.push('');
  out.push('FLOPs: multiply-adds counted once (paper convention, docs/flops.md). CPU ms: median process CPU time per run (user + system), which the other processes on a shared machine disturb less than wall time. % SIMD peak: multiply-adds per second (over the '
    + 'median latency) over the SIMD128 peak_madd rate measured in the same run (best of 5 bursts); % peak (CPU): the same over the '
    + 'median CPU time. mem Δ: the worker\'s largest RSS sampled after set-up and after every run, minus its RSS after importing the engine\'s libraries (engine set-up, '
    + 'compiled code, weights, activations; wasmtime rows: the activation arena); for our engines also the wasm linear memory. max rel diff: logits '
    + `against the cdnv2 SIMD build on the same input. ONNX engines run the export with index-sum `
    + `${Object.entries(report.options.indexSum).map(([e, v]) => `'${v}' (${e})`).join(', ') || '–'}.`);
  const compiled = [...new Map(report.results.filter((r) => r.compileMs != null).map((r) => [r.engine, r.compileMs!])).entries()];
  if (compiled.length) {
    out.push('');
    out.push(`wasmtime: ${report.engines[compiled[0]![0]]?.split(': ').slice(1).join(': ') || 'version not recorded'}. Its rows run the module `
      + `compiled ahead of time (\`wasmtime compile\` / \`Module.serialize\`, as on a board); compiling took `
      + `${compiled.map(([e, ms]) => `${fmt(ms, 0)} ms (${e})`).join(', ')}, not included in the latencies.`);
  }
  if (report.skipped.length) {
    out.push('');
    out.push('Not measured: ' + report.skipped.map((s) => `${s.engine} on ${s.model} (${s.reason})`).join('; ') + '.');
  }
  const t = targetLines(report);
  if (t.length) {
    out.push('');
    out.push('Targets (medians, this run):');
    out.push('');
    out.push(...t);
  }
  for (const p of report.profiles ?? []) {
    out.push('');
    out.push(`Per-op profile, ${p.model}, ${p.engine} (median of ${p.runs} runs per op; each op timed alone):`);
    out.push('');
    out.push('```', formatProfile(p.ops).trimEnd(), '```');
  }
  return `${out.join('\n')}\n`;
}

/** Latency against FLOPs per engine (log-log), like the paper's Figure 9. */
export async function chart(report: BenchReport): Promise<{ svg: string; png: Uint8Array }> {
  const flops = new Map(report.models.map((m) => [m.name, m.flops]));
  const values = report.results.map((r) => ({ engine: r.engine, model: r.model, mflops: flops.get(r.model)! / 1e6, ms: r.medianMs }));
  const spec: vl.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: 'CondenseNetV2 batch-1 latency, one thread', subtitle: `${report.host.cpu}, ${report.date.slice(0, 10)}` },
    width: 520, height: 340,
    data: { values },
    layer: [
      {
        mark: { type: 'line', point: { size: 50 } },
        encoding: {
          x: { field: 'mflops', type: 'quantitative', title: 'model FLOPs (millions, multiply-adds)', scale: { type: 'log' } },
          y: { field: 'ms', type: 'quantitative', title: 'median latency (ms)', scale: { type: 'log' } },
          color: { field: 'engine', type: 'nominal', title: 'engine' },
          order: { field: 'mflops', type: 'quantitative' },
        },
      },
    ],
    background: 'white',
  };
  return renderChart(spec);
}
