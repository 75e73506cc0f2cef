// `cdnv2 bench`: side-by-side batch-1, single-thread latency of our runtime and its peers on the same models.
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { UsageError } from './errors.js';
import { CONFIGS } from '../base/arch/configs.js';
import { fileErrorReason, writeFileAtomic } from '../base/io.js';
import { INDEX_SUM_HELP, parseIndexSum } from './onnx-cli.js';
import { DEFAULT_ENGINES, ENGINE_NAMES, type EngineName } from '../bench/engines.js';
import type { BenchReport } from '../bench/run.js';
// report.js (vega, resvg) and run.js (onnx-proto) are imported inside the action: other subcommands start without them.

export const DEFAULT_MODELS = ['cdnv2-a', 'cdnv2-b', 'cdnv2-c', 'cdnv2-cifar-110', 'cdnv2-fmnist'];

function list(v: string, what: string): string[] {
  const items = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (!items.length) throw new UsageError(`--${what} needs at least one name`);
  return items;
}

function count(v: string, what: string, min: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > 100000) throw new UsageError(`--${what} must be an integer >= ${min}, not '${v}'`);
  return n;
}

/** latest.json, latest.md, latest.svg and latest.png in `dir`. */
async function writeReport(report: BenchReport, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const { chart, markdown } = await import('../bench/report.js');
  const { svg, png } = await chart(report);
  const enc = (t: string): Uint8Array => new TextEncoder().encode(t);
  await writeFileAtomic(path.join(dir, 'latest.json'), enc(`${JSON.stringify(report, null, 2)}\n`));
  await writeFileAtomic(path.join(dir, 'latest.md'), enc(markdown(report)));
  await writeFileAtomic(path.join(dir, 'latest.svg'), enc(svg));
  await writeFileAtomic(path.join(dir, 'latest.png'), png);
}

export function register(program: Command): void {
  program
    .command('bench')
    .description('batch-1 single-thread latency of cdnv2 and its peers (tfjs, onnxruntime) on the same models')
    .option('--models <list>', 'comma-separated configurations or .cnv2 files', DEFAULT_MODELS.join(','))
    .option('--engines <list>', `comma-separated engines: ${ENGINE_NAMES.join(', ')}`, DEFAULT_ENGINES.join(','))
    .option('--runs <n>', 'timed runs per engine and model', '20')
    .option('--rounds <n>', 'round-robin: split the runs over this many processes per engine and model, the engines taking turns; figures are medians over rounds (at most --runs)', '3')
    .option('--warmup <n>', 'warm-up runs before timing (in every round)', '3')
    .option('--max-seconds <s>', 'per engine and model, stop timing after this long once 3 runs are done (0: never)', '30')
    .option('--seed <n>', 'weights seed of configuration models (as `cdnv2 arch --seed`)', '1')
    .option('--index-sum <variant>', `ONNX index-sum for the ort engines: auto (the fastest per engine: ort-node conv, ort-web gather) or one for both; ${INDEX_SUM_HELP}`, 'auto')
    .option('--profile [runs]', 'also a per-op profile of our engines (cdnv2*, wasmtime*): median of this many runs per op (default: --runs)')
    .option('--json <file>', 'write the results as JSON')
    .option('--out <dir>', 'write latest.json, latest.md, latest.svg and latest.png into this directory')
    .option('--no-progress', 'no progress bar')
    .option('--render <json>', 'measure nothing: re-render the Markdown and chart of a saved JSON report (with --out)')
    .action(async (opts: { models: string; engines: string; runs: string; rounds: string; warmup: string; maxSeconds: string; seed: string; indexSum: string; json?: string; out?: string; progress: boolean; render?: string; profile?: string | boolean }) => {
      if (opts.render) {
        let saved: BenchReport;
        try {
          saved = JSON.parse(readFileSync(opts.render, 'utf8')) as BenchReport;
        } catch (err) {
          const reason = (err as NodeJS.ErrnoException).code ? fileErrorReason(err, opts.render) : (err as Error).message;
          throw new Error(`cannot read report '${opts.render}': ${reason}`);
        }
        if (!Array.isArray(saved.results) || !Array.isArray(saved.models)) throw new Error(`'${opts.render}' is not a bench report`);
        if (opts.out) await writeReport(saved, opts.out);
        const { markdown } = await import('../bench/report.js');
        process.stdout.write(markdown(saved));
        return;
      }
      const engines = list(opts.engines, 'engines');
      for (const e of engines) {
        if (!(ENGINE_NAMES as readonly string[]).includes(e)) throw new UsageError(`unknown engine '${e}' (known: ${ENGINE_NAMES.join(', ')})`);
      }
      const models = list(opts.models, 'models');
      // A model that is neither is a mistake on the command line, like an unknown engine: both exit 2.
      for (const m of models) {
        if (!CONFIGS[m] && !existsSync(m)) {
          throw new UsageError(`unknown model '${m}': neither a configuration (${Object.keys(CONFIGS).join(', ')}) nor an existing .cnv2 file`);
        }
      }
      const runs = count(opts.runs, 'runs', 1);
      const rounds = count(opts.rounds, 'rounds', 1);
      const warmup = count(opts.warmup, 'warmup', 0);
      const seed = count(opts.seed, 'seed', 0);
      const maxSeconds = count(opts.maxSeconds, 'max-seconds', 0);
      const indexSum = opts.indexSum === 'auto' ? 'auto' : parseIndexSum(opts.indexSum);
      const profileRuns = opts.profile === undefined || opts.profile === false ? 0 : opts.profile === true ? runs : count(opts.profile, 'profile', 1);
      const bar = opts.progress && process.stderr.isTTY
        ? new cliProgress.SingleBar({ format: 'bench [{bar}] {percentage}% {value}/{total} runs | {label}', stream: process.stderr }, cliProgress.Presets.shades_classic)
        : null;
      let started = false;
      let lastLabel = '';
      const { runBench } = await import('../bench/run.js');
      const { markdown } = await import('../bench/report.js');
      const report = await runBench({
        models, engines: engines as EngineName[], runs, rounds, warmup, maxSeconds, seed, indexSum, profileRuns,
        onProgress: (done, total, label) => {
          if (bar) {
            if (!started) { bar.start(total, 0, { label }); started = true; }
            bar.update(done, { label });
          } else if (opts.progress && label !== lastLabel) {
            process.stderr.write(`bench: ${label} (${done}/${total} runs)\n`);
          }
          lastLabel = label;
        },
      });
      bar?.stop();
      const md = markdown(report);
      const json = `${JSON.stringify(report, null, 2)}\n`;
      if (opts.json) await writeFileAtomic(opts.json, new TextEncoder().encode(json));
      if (opts.out) await writeReport(report, opts.out);
      process.stdout.write(md);
      if (report.results.length === 0) throw new Error('no engine produced a result');
    });
}
