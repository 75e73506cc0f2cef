// Fine-tuning (`cdnv2 train --init-from SOURCE --dataset folder`): the source network (a cdnv2 checkpoint, or an
// official PyTorch file through the `cdnv2 import` code) with a new classifier sized to the folder's classes, its
// final LGC/SFR masks kept, and which parameters train at which iteration (--freeze). TensorFlow-free: the CLI
// uses the defaults below before it loads TensorFlow.js. docs/training.md, "Fine-tuning".
import { readFileSync, statSync } from 'node:fs';

import type { ArchConfig, TrainDefaults } from '../base/arch/configs.js';
import type { NetworkParams } from '../base/arch/params.js';
import { findNetworkConfig, isShuffleNetConfig, networkTensorInventory, type NetworkConfig } from '../base/arch/networks.js';
import { importedCheckpointContent } from './imported-checkpoint.js';
import { loadCheckpoint, masksAreFinal, type LoadedCheckpoint, type TrainOptions } from './checkpoint.js';

export const FREEZE_MODES = ['none', 'head-only', 'stages'] as const;
export type FreezeMode = (typeof FREEZE_MODES)[number];

/** The tensors a new head replaces: the last linear layer (the hidden fc layer, if any, is kept). */
export const CLASSIFIER_TENSORS = ['head.classifier.weight', 'head.classifier.bias'];

/**
 * A new classifier learns at this multiple of the schedule's rate (--head-lr-scale): it starts random while the
 * rest is trained, and at the low fine-tuning rate it would hardly move in a short run.
 */
export const DEFAULT_HEAD_LR_SCALE = 10;

/** A PyTorch file rather than a checkpoint directory (torch.save writes .pth, .pth.tar, .pt, .tar). */
export function isTorchFile(source: string): boolean {
  try { return statSync(source).isFile(); } catch { return /\.(pth|pt|tar)$/i.test(source); }
}

/**
 * Reads an official PyTorch file as training-form parameters. The CLI passes the converter's importer (the code of
 * `cdnv2 import`): trainer/ sits beside converter/ and does not import it.
 */
export type TorchImporter = (bytes: Uint8Array, cfg: ArchConfig, file: string) => { params: NetworkParams; source: string };

/**
 * Loads the network to start from. A checkpoint directory (a run or one epoch) as it is; a PyTorch file is
 * imported with `arch` (required) by `importTorch`, then taken in training form.
 */
export async function loadInitSource(source: string, arch: NetworkConfig | undefined, log: (m: string) => void,
  importTorch?: TorchImporter): Promise<LoadedCheckpoint> {
  if (!isTorchFile(source)) return loadCheckpoint(source, (m) => log(`warning: ${m}`));
  if (!arch) throw new Error(`--init-from ${source}: a PyTorch file needs --arch, the configuration it was trained as`);
  if (isShuffleNetConfig(arch)) throw new Error(`--init-from ${source}: PyTorch files are read for CondenseNetV2 configurations, not ${arch.name}`);
  if (!importTorch) throw new Error(`--init-from ${source}: reading a PyTorch file needs an importer (cdnv2 train passes the converter's)`);
  let bytes: Uint8Array;
  try { bytes = new Uint8Array(readFileSync(source)); } catch (e) {
    throw new Error(`--init-from: cannot read '${source}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let imported;
  try { imported = importTorch(bytes, arch, source); } catch (e) {
    throw new Error(`--init-from ${source} as ${arch.name}: ${(e as Error).message}`);
  }
  const { params, source: part } = imported;
  const content = importedCheckpointContent(params, `${source}, ${part}`);
  return { dir: source, manifest: { format: 'imported', version: 0, epoch: 0, files: {}, tensors: [] }, ...content };
}

/** Configuration fields that do not make the network's structure (classes, names, normalisation, recipe). */
const NOT_STRUCTURE = new Set(['name', 'description', 'classes', 'labels', 'train', 'mean', 'std', 'resize', 'resizeShorter']);

function structure(cfg: NetworkConfig): string {
  const c = cfg as unknown as Record<string, unknown>;
  return JSON.stringify(Object.keys(c).filter((k) => !NOT_STRUCTURE.has(k)).sort().map((k) => [k, c[k]]), (_k, v) => (v === Infinity ? 'Infinity' : v));
}

/**
 * The configuration a run started from `source` trains: the source's network with `classes` outputs named
 * `labels` (a folder's class names). Refuses a source of another architecture than `cfg` (the --arch given).
 */
export function fineTuneConfig(source: LoadedCheckpoint, cfg: NetworkConfig, sfr: boolean, labels?: string[]): { config: NetworkConfig; newHead: boolean } {
  const src = source.state.config;
  const what = (c: NetworkConfig, s: boolean) => `${c.name}${s ? '' : ' without SFR'}`;
  if (src.name !== cfg.name || structure(src) !== structure(cfg) || source.state.options.sfr !== sfr) {
    throw new Error(`--init-from: ${source.dir} holds ${what(src, source.state.options.sfr)}, this run trains ${what(cfg, sfr)}`
      + (src.name === cfg.name ? ' (same name, another structure)' : ''));
  }
  for (const t of networkTensorInventory(src, sfr)) {
    const v = source.model.get(t.name);
    if (!v || v.length !== t.shape.reduce((a, b) => a * b, 1)) throw new Error(`--init-from: ${source.dir}: tensor ${t.name} does not match ${cfg.name}`);
  }
  if (!labels) return { config: src, newHead: false };
  const newHead = labels.length !== src.classes || labels.join('\n') !== src.labels.join('\n');
  if (!newHead) return { config: src, newHead: false };
  if (!masksAreFinal(source)) {
    throw new Error(`--init-from: ${source.dir}: its LGC/SFR masks are not final yet (stage ${source.state.stage.lgc}/${source.state.stage.sfr}); `
      + 'a new head fine-tunes a finished network: train the source past its last condensation stage first');
  }
  return { config: { ...src, classes: labels.length, labels: [...labels], description: `${src.description}, fine-tuned to ${labels.length} classes` }, newHead: true };
}

/**
 * The source's tensors with the classifier replaced by `fresh`'s (the trainer's own initial values for the new
 * configuration: PyTorch's default uniform for linear layers, from the run's seed).
 */
export function withNewHead(source: Map<string, Float32Array>, fresh: Map<string, Float32Array>): Map<string, Float32Array> {
  const out = new Map(source);
  for (const n of CLASSIFIER_TENSORS) out.set(n, fresh.get(n)!);
  return out;
}

/**
 * Unfreezing stages of `--freeze stages` for a network of `blocks` dense blocks: blocks + 1 stages of equal length
 * in iterations. Stage 0 trains the classifier; stage 1 adds the rest of the head (BN, SE, fc) and the last
 * block; each further stage the block before; the last stage adds the stem: everything trains.
 */
export function unfreezeStages(blocks: number): number {
  return blocks + 1;
}

/** The stage of `--freeze stages` at iteration t of `total`. */
export function freezeStageAt(t: number, total: number, blocks: number): number {
  const S = unfreezeStages(blocks);
  return Math.min(S - 1, Math.floor((t * S) / Math.max(1, total)));
}

/** Whether parameter `name` trains in `stage` of `--freeze stages` (network of `blocks` blocks). */
function trainsInStage(name: string, stage: number, blocks: number): boolean {
  if (CLASSIFIER_TENSORS.includes(name)) return true;
  if (stage === 0) return false;
  if (name.startsWith('head.')) return true;
  const m = /^b(\d+)\./.exec(name);
  if (m) return Number(m[1]) >= blocks - stage;
  return stage >= unfreezeStages(blocks) - 1; // the stem
}

/**
 * The parameters that get a step at iteration t (undefined: all of them). Frozen parameters keep their values,
 * their momentum and are not decayed; BN running statistics follow the batches everywhere (training mode).
 */
export function trainableAt(freeze: FreezeMode | undefined, params: string[], blocks: number, t: number, total: number): string[] | undefined {
  if (!freeze || freeze === 'none') return undefined;
  if (freeze === 'head-only') return params.filter((n) => CLASSIFIER_TENSORS.includes(n));
  const stage = freezeStageAt(t, total, blocks);
  if (stage === unfreezeStages(blocks) - 1) return undefined;
  return params.filter((n) => trainsInStage(n, stage, blocks));
}

/**
 * Defaults of a run with --init-from for what the command line leaves out (docs/training.md says why): batch
 * 64 (or the configuration's, if smaller), a tenth of the configuration's peak rate scaled to that batch, a
 * warm-up over the first 5% of the epochs from a tenth of the peak, cosine to 0, 10 epochs, no EMA; weight decay,
 * momentum and label smoothing as the configuration's. `given`: the epochs and batch of the command line.
 */
export function fineTuneDefaults(cfg: { train: TrainDefaults }, given: { epochs?: number; batch?: number } = {}): Pick<TrainOptions, 'epochs' | 'batch' | 'lr' | 'warmupEpochs' | 'warmupLr' | 'ema'> {
  const t = cfg.train;
  const batch = given.batch ?? Math.min(64, t.batch);
  const lr = Number(((0.1 * t.lr * batch) / t.batch).toPrecision(3));
  const epochs = given.epochs ?? 10;
  return { epochs, batch, lr, warmupEpochs: 0.05 * epochs, warmupLr: Number((lr / 10).toPrecision(3)), ema: 0 };
}

/** The configuration named by a source checkpoint's state (for `--init-from` without --arch). */
export function sourceArch(source: LoadedCheckpoint): NetworkConfig {
  return findNetworkConfig(source.state.config.name) ?? source.state.config;
}
