// The training loop: mask schedule, SGD (Nesterov), warm-up + cosine LR per iteration, label smoothing,
// optional group lasso and weight EMA, per-epoch evaluation, atomic checkpoints and exact resume.
import * as tf from '@tensorflow/tfjs';
import cliProgress from 'cli-progress';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

import { withClasses } from '../base/arch/configs.js';
import { getNetworkConfig, isShuffleNetConfig, networkHasSfr, type NetworkConfig } from '../base/arch/networks.js';
import { writeFileAtomicSync } from '../base/io.js';
import {
  listCheckpointDirs, loadCheckpoint, saveCheckpoint, type CheckpointState, type EpochMetrics, type StageRecord,
  type TrainOptions,
} from './checkpoint.js';
import { renderTrainingCurves } from './chart.js';
import { assembleBatch, defaultAugment, limitSource, openDataset, type DatasetName, type ImageSource } from '../base/data/index.js';
import { assembleAugmentedBatch, parseRandAugment } from '../base/data/augment.js';
import { DataError } from '../base/data/source.js';
import { evaluateSource } from './evaluate.js';
import { ownedVariable } from './model.js';
import { createTrainModel, networkInitialValues, type TrainModel } from './net.js';
import { Rng } from '../base/rng.js';
import type { BackendChoice } from './backend.js';
import { DataParallel } from './data-parallel.js';
import { CLASSIFIER_TENSORS, DEFAULT_HEAD_LR_SCALE, fineTuneConfig, freezeStageAt, loadInitSource, trainableAt, withNewHead, type TorchImporter } from './fine-tune.js';
import { folderClassNames } from '../base/data/folder.js';
import { acquireRunLock } from './run-lock.js';
import { applyStep, disposeSlice, sliceGradients } from './step.js';

export interface TrainRun extends TrainOptions {
  out: string;
  resume: boolean;
  dataDir?: string;
  backend: string;
  /**
   * Data-parallel replicas (1 or 2, default 1): with 2, a worker thread computes the second half of every batch on
   * its own backend instance (`backendChoice`, `workerThreads` kernel threads). Batch norm then normalises each half
   * with its own statistics; the running statistics stay those of the whole batch.
   */
  workers?: number;
  backendChoice?: BackendChoice;
  workerThreads?: number;
  /** A derived configuration (tests); default getNetworkConfig(arch). Stored in the checkpoint. */
  config?: NetworkConfig;
  /** Stop after this many epochs of this invocation (simulates an interruption; tests). */
  stopAfterEpochs?: number;
  progress?: boolean;
  chart?: boolean;
  log?: (msg: string) => void;
  /** Also checkpoint inside an epoch after this many minutes of training (default 10; 0: only at epoch ends). */
  checkpointMinutes?: number;
  /** Stop after this many iterations of this invocation, after a checkpoint inside the epoch (tests). */
  stopAfterIterations?: number;
  /** Injected sources (tests); default openDataset(dataset). */
  sources?: { train: ImageSource; test: ImageSource };
  /** Reads an --init-from PyTorch file (the CLI passes the converter's importer). */
  importTorch?: TorchImporter;
}

export interface TrainResult { dir: string; checkpoint: string; history: EpochMetrics[]; stages: StageRecord[]; state: CheckpointState }

/** Learning rate at global iteration t: linear warm-up from warmupLr, then cosine to 0 (per iteration). */
export function learningRate(o: Pick<TrainOptions, 'lr' | 'warmupLr' | 'warmupEpochs'>, t: number, itersPerEpoch: number, total: number): number {
  const warm = Math.min(total, Math.round(o.warmupEpochs * itersPerEpoch));
  if (t < warm) return o.warmupLr + ((o.lr - o.warmupLr) * t) / warm;
  const span = Math.max(1, total - warm);
  return 0.5 * o.lr * (1 + Math.cos((Math.PI * (t - warm)) / span));
}

/** Options that must match when resuming (everything that changes the numbers). */
const RESUME_KEYS: (keyof TrainOptions)[] = ['arch', 'dataset', 'epochs', 'batch', 'lr', 'warmupEpochs', 'warmupLr', 'weightDecay',
  'momentum', 'labelSmoothing', 'ema', 'groupLasso', 'sfr', 'seed', 'limitTrain', 'limitTest', 'augment', 'crop', 'initFrom', 'classes', 'folderAugment',
  'freeze', 'headLrScale'];

function density(model: TrainModel, kind: 'lgc' | 'sfr'): number {
  let on = 0, all = 0;
  for (const m of model.maskList) {
    if (m.kind !== kind) continue;
    const mask = model.masks.get(m.name)!;
    for (let i = 0; i < mask.length; i++) on += mask[i]!;
    all += mask.length;
  }
  return all ? on / all : 0;
}


function requireDataDir(dir: string | undefined): string {
  if (!dir) throw new DataError('--dataset folder needs --data DIR');
  return dir;
}

export async function train(run: TrainRun): Promise<TrainResult> {
  const log = run.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  mkdirSync(run.out, { recursive: true });
  const lock = acquireRunLock(run.out, (m) => log(`warning: ${m}`));
  try {
    return await trainLocked(run, log);
  } finally {
    lock.release();
  }
}

async function trainLocked(run: TrainRun, log: (m: string) => void): Promise<TrainResult> {
  const existing = listCheckpointDirs(run.out);
  let cfg = run.config ?? getNetworkConfig(run.arch);
  let opts: TrainOptions = {
    arch: run.arch, dataset: run.dataset, epochs: run.epochs, batch: run.batch, lr: run.lr, warmupEpochs: run.warmupEpochs,
    warmupLr: run.warmupLr, weightDecay: run.weightDecay, momentum: run.momentum, labelSmoothing: run.labelSmoothing, ema: run.ema,
    groupLasso: run.groupLasso, sfr: networkHasSfr(cfg, run.sfr), seed: run.seed, limitTrain: run.limitTrain, limitTest: run.limitTest, augment: run.augment,
    ...(run.crop !== undefined ? { crop: run.crop } : {}),
    ...(run.initFrom ? { initFrom: run.initFrom } : {}),
    ...(run.freeze ? { freeze: run.freeze } : {}),
    ...(run.headLrScale !== undefined ? { headLrScale: run.headLrScale } : {}),
    ...(run.classes !== undefined ? { classes: run.classes } : {}),
    ...(run.folderAugment ? { folderAugment: run.folderAugment } : {}),
  };
  if (opts.freeze && !opts.initFrom) throw new Error('--freeze needs --init-from: only a trained network has layers worth freezing');
  let resumeFrom: Awaited<ReturnType<typeof loadCheckpoint>> | undefined;
  if (run.resume) {
    if (existing.length === 0) throw new Error(`--resume: ${run.out} has no checkpoints`);
    resumeFrom = await loadCheckpoint(run.out, (m) => log(`warning: ${m}`));
    const saved = resumeFrom.state.options;
    // More epochs extend the run (the cosine schedule stretches over the new total); anything else must match.
    // (The head's rate multiplier defaults to the stored one: a run with a new head stored its default.)
    const diffs = RESUME_KEYS.filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(opts[k]) && !(k === 'epochs' && opts.epochs > saved.epochs)
      && !(k === 'headLrScale' && opts.headLrScale === undefined));
    if (diffs.length) {
      throw new Error(`--resume: options differ from the checkpoint's (${diffs.map((k) => `${k}: ${JSON.stringify(opts[k])} vs ${JSON.stringify(saved[k])}`).join(', ')})`
        + (diffs.includes('epochs') ? '; --epochs may only grow' : ''));
    }
    if (opts.epochs > saved.epochs) {
      log(`extending the run from ${saved.epochs} to ${opts.epochs} epochs: the learning-rate schedule now ends at epoch ${opts.epochs}`);
    }
    opts = { ...saved, epochs: opts.epochs };
    cfg = resumeFrom.state.config;
  } else if (existing.length > 0) {
    throw new Error(`${run.out} already holds checkpoints; pass --resume to continue that run or choose another --out`);
  }
  // A folder's classes are its sub-directories: the run's classifier has one output per class, named after it.
  const folderLabels = opts.dataset === 'folder' && !run.sources ? folderClassNames(requireDataDir(run.dataDir)) : undefined;
  if (folderLabels && opts.classes !== undefined && opts.classes !== folderLabels.length) {
    throw new DataError(`--classes ${opts.classes}, but ${run.dataDir} has ${folderLabels.length} classes (${folderLabels.join(', ')})`);
  }
  if (resumeFrom && folderLabels && folderLabels.join('\n') !== cfg.labels.join('\n')) {
    throw new DataError(`--resume: the folder's classes (${folderLabels.join(', ')}) are not the run's (${cfg.labels.join(', ')})`);
  }
  // Weights to start from: the run's own checkpoint (resume), another network (--init-from: a checkpoint or an
  // official PyTorch file; masks and stage carry over, schedule, momentum and history start fresh; a new
  // classifier when the folder's classes are not the source's), or random ones.
  let start = resumeFrom;
  let newHead = false;
  if (!resumeFrom && opts.initFrom) {
    start = await loadInitSource(opts.initFrom, cfg, log, run.importTorch);
    ({ config: cfg, newHead } = fineTuneConfig(start, cfg, opts.sfr, folderLabels));
    if (newHead) opts.headLrScale ??= DEFAULT_HEAD_LR_SCALE;
    else if (opts.headLrScale !== undefined) throw new Error('--head-lr-scale applies to a new classifier, and this run keeps the source\'s');
    log(`starting from ${start.dir} (${start.state.config.name} after ${start.state.epochsDone} epochs, mask stage ${start.state.stage.lgc}/${start.state.stage.sfr})`
      + (newHead ? `; new classifier for ${cfg.classes} classes (${cfg.labels.join(', ')}) at ${opts.headLrScale}x the learning rate, freeze ${opts.freeze ?? 'none'}` : ''));
  } else if (!resumeFrom && folderLabels) {
    cfg = { ...withClasses(cfg, folderLabels.length), labels: folderLabels };
  } else if (!resumeFrom && opts.classes !== undefined) {
    // A resumed run's stored configuration already has its class count.
    cfg = withClasses(cfg, opts.classes);
  }
  if (opts.freeze === 'stages' && isShuffleNetConfig(cfg)) throw new Error('--freeze stages: the unfreezing stages are defined for CondenseNetV2\'s dense blocks; use none or head-only');
  if (opts.crop !== undefined && !(Number.isInteger(opts.crop) && opts.crop >= 0 && opts.crop < Math.min(cfg.input.height, cfg.input.width))) {
    throw new Error(`crop must be a whole number of pixels from 0 to ${Math.min(cfg.input.height, cfg.input.width) - 1} for ${cfg.name}, got ${opts.crop}`);
  }

  const trainSrc = limitSource(run.sources?.train ?? openDataset(opts.dataset as DatasetName, 'train', cfg, run.dataDir), opts.limitTrain);
  const testSrc = limitSource(run.sources?.test ?? openDataset(opts.dataset as DatasetName, 'test', cfg, run.dataDir), opts.limitTest);
  // An empty split would train NaN iterations or report accuracy on nothing.
  if (trainSrc.count === 0) throw new DataError(`${trainSrc.name}: 0 training images`);
  if (testSrc.count === 0) throw new DataError(`${testSrc.name}: 0 test images`);
  const folderAug = opts.augment ? opts.folderAugment : undefined;
  if (folderAug) {
    if (!trainSrc.readOriginal) throw new DataError(`${trainSrc.name}: the folder augmentation needs an image folder (--dataset folder)`);
    if (folderAug.randAugment) parseRandAugment(folderAug.randAugment);
  }
  const B = Math.min(opts.batch, trainSrc.count);
  const itersPerEpoch = Math.max(1, Math.floor(trainSrc.count / B));
  const total = opts.epochs * itersPerEpoch;
  if (opts.warmupEpochs > 0 && Math.round(opts.warmupEpochs * itersPerEpoch) >= total) {
    log(`note: the learning-rate warm-up (${opts.warmupEpochs} epochs) covers the whole run (${opts.epochs} epochs): `
      + `the rate rises from ${opts.warmupLr} towards ${opts.lr} until the end and never decays`);
  }

  const model = start
    ? createTrainModel(cfg, opts.sfr, newHead ? withNewHead(start.model, networkInitialValues(cfg, opts.sfr, opts.seed)) : start.model, start.masks)
    : createTrainModel(cfg, opts.sfr, networkInitialValues(cfg, opts.sfr, opts.seed));
  if (start) model.stage = { ...start.state.stage };
  const params = model.trainable();
  const paramNames = params.map((p) => p.name);
  const freezeBlocks = isShuffleNetConfig(cfg) ? 0 : cfg.layers.length; // --freeze stages: CondenseNetV2's dense blocks
  const headLrScale = opts.headLrScale !== undefined ? new Map(CLASSIFIER_TENSORS.map((n) => [n, opts.headLrScale!])) : undefined;
  const momentum = new Map(params.map((p) => [p.name, ownedVariable(resumeFrom ? tf.tensor(resumeFrom.momentum.get(p.name)!, p.variable.shape) : tf.zerosLike(p.variable), false)]));
  let ema: Map<string, tf.Variable> | undefined;
  if (opts.ema > 0) {
    ema = new Map();
    for (const [name, v] of model.vars) {
      const init = resumeFrom?.ema?.get(name);
      ema.set(name, ownedVariable(init ? tf.tensor(init, v.shape) : v.clone(), false));
    }
  }
  const history: EpochMetrics[] = resumeFrom ? [...resumeFrom.state.history] : [];
  const stages: StageRecord[] = resumeFrom ? [...resumeFrom.state.stages] : [];
  let epoch = resumeFrom ? resumeFrom.state.epochsDone : 0;
  const startEpoch = epoch;
  let partial = resumeFrom?.state.partial;
  let iteration = epoch * itersPerEpoch + (partial?.iterations ?? 0);
  const aug = opts.augment
    ? { ...defaultAugment(cfg, opts.dataset as DatasetName), ...(opts.crop !== undefined ? { crop: opts.crop } : {}) }
    : undefined;
  const { height: H, width: W, channels: C } = cfg.input;
  const xBuf = new Float32Array(B * H * W * C);
  const yBuf = new Int32Array(B);
  const workers = run.workers ?? 1;
  if (workers !== 1 && workers !== 2) throw new Error(`workers must be 1 or 2, got ${workers}`);
  let dp: DataParallel | undefined;
  if (workers === 2 && B >= 2) {
    try {
      // Room for half a training batch and half an evaluation batch (evaluateSource's 100 images).
      dp = await DataParallel.start(model, { backend: run.backendChoice ?? 'auto', threads: run.workerThreads ?? 1, maxSlice: Math.max(Math.floor(B / 2), 50) });
    } catch (e) {
      model.dispose();
      for (const v of momentum.values()) v.dispose();
      if (ema) for (const v of ema.values()) v.dispose();
      throw e;
    }
  }
  // What the checkpoints record as the run's backend: with data parallelism, how the batch was split too.
  const backendNote = dp ? `${run.backend}, data-parallel x2 (worker: ${dp.workerBackend})` : run.backend;
  let lastCheckpoint = resumeFrom?.dir ?? '';
  let state!: CheckpointState;

  log(`training ${cfg.name}${opts.sfr ? '' : isShuffleNetConfig(cfg) ? ' (no SFR: plain ShuffleNetV2)' : ' (no SFR: CondenseNet)'} on ${trainSrc.name} (${trainSrc.count} images, test ${testSrc.count}), ` +
    `${opts.epochs} epochs x ${itersPerEpoch} iterations of ${B}, backend ${run.backend}` +
    (dp ? `, data-parallel: 2 replicas of ${B - Math.floor(B / 2)} + ${Math.floor(B / 2)} images (worker: ${dp.workerBackend})` : '') +
    (resumeFrom ? `, resuming after epoch ${epoch}${partial ? ` and ${partial.iterations} iterations` : ''}` : ''));

  const writeLogs = async (): Promise<void> => {
    const lines = [
      ...stages.map((s) => JSON.stringify({ type: 'stage', ...s })),
      ...history.map((h) => JSON.stringify({ type: 'epoch', ...h })),
    ];
    writeFileAtomicSync(path.join(run.out, 'metrics.jsonl'), lines.join('\n') + '\n');
    if (run.chart !== false && history.length > 0) {
      try {
        const { svg, png } = await renderTrainingCurves(history, `${cfg.name} on ${opts.dataset}`);
        writeFileAtomicSync(path.join(run.out, 'training-curve.svg'), svg);
        writeFileAtomicSync(path.join(run.out, 'training-curve.png'), png);
      } catch (e) {
        log(`warning: could not render the training curve: ${(e as Error).message}`);
      }
    }
  };

  const stopAt = run.stopAfterEpochs !== undefined ? Math.min(opts.epochs, startEpoch + run.stopAfterEpochs) : opts.epochs;
  const checkpointMs = (run.checkpointMinutes ?? 10) * 60_000;
  let lastSave = Date.now();
  let itersThisRun = 0;
  const snapshotState = (epochsDone: number, iterationsDone: number, extra: Partial<CheckpointState>): CheckpointState => ({
    config: cfg, options: opts, epochsDone, iteration: iterationsDone, itersPerEpoch, totalIterations: total, stage: { ...model.stage },
    history: [...history], stages: [...stages], rng: Rng.derive(opts.seed, 0xe90c, epochsDone).state(), backend: backendNote,
    date: new Date().toISOString(), trainCount: trainSrc.count, ...extra,
  });
  const save = (s: CheckpointState): string => saveCheckpoint(run.out, {
    state: s, model: model.snapshot(), masks: model.masks,
    momentum: new Map([...momentum].map(([n, v]) => [n, (v.dataSync() as Float32Array).slice()])),
    ema: ema ? new Map([...ema].map(([n, v]) => [n, (v.dataSync() as Float32Array).slice()])) : undefined,
  });
  try {
    for (; epoch < stopAt; epoch++) {
      let t0 = Date.now();
      let rng = Rng.derive(opts.seed, 0xe90c, epoch);
      const order = Array.from({ length: trainSrc.count }, (_, i) => i);
      rng.shuffle(order);
      let lossSum = 0, correct = 0, seen = 0, lr = 0, firstIt = 0;
      if (partial) {
        // Resuming inside this epoch: same order, the generator where it was, the running sums so far.
        ({ lossSum, correct, seen } = partial);
        rng = new Rng(partial.rng);
        firstIt = partial.iterations;
        t0 -= partial.seconds * 1000;
        partial = undefined;
      }
      // A redrawn bar on terminals; plain periodic lines otherwise (logs of background runs).
      const tty = Boolean(process.stderr.isTTY);
      const every = Math.max(1, Math.floor(itersPerEpoch / 20));
      const bar = run.progress && tty ? new cliProgress.SingleBar({
        format: `epoch ${epoch + 1}/${opts.epochs} |{bar}| {value}/{total} loss {loss} acc {acc} lr {lr} stage {stage} ETA {eta_formatted}`,
        noTTYOutput: true, notTTYSchedule: 30000, stream: process.stderr, etaBuffer: 20,
      }, cliProgress.Presets.shades_classic) : undefined;
      bar?.start(itersPerEpoch, firstIt, { loss: '-', acc: '-', lr: '-', stage: `${model.stage.lgc}/${model.stage.sfr}` });
      for (let it = firstIt; it < itersPerEpoch; it++, iteration++) {
        const p = iteration / total;
        if (opts.freeze === 'stages' && iteration > 0 && freezeStageAt(iteration, total, freezeBlocks) !== freezeStageAt(iteration - 1, total, freezeBlocks)) {
          log(`unfreezing: stage ${freezeStageAt(iteration, total, freezeBlocks)} from iteration ${iteration}`);
        }
        for (const ev of model.updateMasks(p)) {
          const rec: StageRecord = { ...ev, iteration, epoch, density: density(model, ev.kind) };
          stages.push(rec);
          bar ? bar.update({ stage: `${model.stage.lgc}/${model.stage.sfr}` }) : undefined;
          if (!bar) log(`${ev.kind} stage ${ev.from} -> ${ev.to} at iteration ${iteration} (progress ${p.toFixed(4)}), mask density ${rec.density.toFixed(4)}`);
        }
        lr = learningRate(opts, iteration, itersPerEpoch, total);
        const batch = order.slice(it * B, it * B + B);
        if (folderAug) assembleAugmentedBatch(trainSrc, cfg, batch, xBuf, yBuf, folderAug, opts.seed, epoch);
        else assembleBatch(trainSrc, cfg, batch, xBuf, yBuf, aug, aug ? rng : undefined);
        const only = trainableAt(opts.freeze, paramNames, freezeBlocks, iteration, total);
        const lossOpts = { labelSmoothing: opts.labelSmoothing, groupLasso: opts.groupLasso, ...(only ? { params: only } : {}) };
        const step = dp ? await dp.step(model, xBuf, yBuf, B, lossOpts) : sliceGradients(model, xBuf, yBuf, B, lossOpts);
        const lossVal = step.loss;
        if (!Number.isFinite(lossVal)) throw new Error(`training diverged at iteration ${iteration} (loss ${lossVal}); try a lower --lr`);
        applyStep(model, step, momentum, { lr, momentum: opts.momentum, weightDecay: opts.weightDecay, lrScale: headLrScale });
        if (ema) {
          tf.tidy(() => {
            for (const [name, e] of ema!) e.assign(tf.add(tf.mul(e, opts.ema), tf.mul(model.vars.get(name)!, 1 - opts.ema)));
          });
        }
        const pred = tf.tidy(() => tf.argMax(step.logits, 1));
        const predV = pred.dataSync();
        for (let i = 0; i < B; i++) if (predV[i] === yBuf[i]) correct++;
        seen += B;
        lossSum += lossVal * B;
        pred.dispose();
        disposeSlice(step);
        const fields = { loss: (lossSum / seen).toFixed(4), acc: (correct / seen).toFixed(3), lr: lr.toFixed(4), stage: `${model.stage.lgc}/${model.stage.sfr}` };
        bar?.update(it + 1, fields);
        if (run.progress && !tty && ((it + 1) % every === 0 || it + 1 === itersPerEpoch)) {
          const el = (Date.now() - t0) / 1000;
          const eta = (el / (it + 1)) * (itersPerEpoch - it - 1);
          log(`epoch ${epoch + 1}/${opts.epochs} iteration ${it + 1}/${itersPerEpoch} loss ${fields.loss} acc ${fields.acc} lr ${fields.lr} ` +
            `stage ${fields.stage} ${el.toFixed(0)} s, ETA ${eta.toFixed(0)} s (epoch)`);
        }
        itersThisRun++;
        const stopNow = run.stopAfterIterations !== undefined && itersThisRun >= run.stopAfterIterations;
        if (it + 1 < itersPerEpoch && ((checkpointMs > 0 && Date.now() - lastSave >= checkpointMs) || stopNow)) {
          lastCheckpoint = save(snapshotState(epoch, iteration + 1, {
            partial: { iterations: it + 1, rng: rng.state(), lossSum, correct, seen, seconds: (Date.now() - t0) / 1000 },
          }));
          lastSave = Date.now();
          if (!bar) log(`checkpoint ${lastCheckpoint}`);
          if (stopNow) {
            bar?.stop();
            state = snapshotState(epoch, iteration + 1, {});
            return { dir: run.out, checkpoint: lastCheckpoint, history, stages, state };
          }
        }
      }
      bar?.stop();
      const trainSeconds = (Date.now() - t0) / 1000;
      const lookup = ema ? (n: string) => ema!.get(n)! : undefined;
      const ev = await evaluateSource(model, testSrc, { lookup, logitsOf: dp?.evaluator(model, lookup) });
      const m: EpochMetrics = {
        epoch: epoch + 1, trainLoss: lossSum / seen, trainAccuracy: correct / seen, testLoss: ev.loss, testAccuracy: ev.accuracy, testCount: ev.count,
        lr, stageLgc: model.stage.lgc, stageSfr: model.stage.sfr, lgcDensity: density(model, 'lgc'), sfrDensity: density(model, 'sfr'),
        seconds: (Date.now() - t0) / 1000, imagesPerSecond: seen / trainSeconds,
      };
      history.push(m);
      log(`epoch ${m.epoch}/${opts.epochs}: train loss ${m.trainLoss.toFixed(4)} acc ${(100 * m.trainAccuracy).toFixed(2)}%, ` +
        `test loss ${m.testLoss.toFixed(4)} acc ${(100 * m.testAccuracy).toFixed(2)}% (${m.testCount}), stage ${m.stageLgc}/${m.stageSfr}, ` +
        `${m.seconds.toFixed(1)} s (${m.imagesPerSecond.toFixed(1)} images/s training)`);
      state = snapshotState(epoch + 1, iteration, {});
      lastCheckpoint = save(state);
      lastSave = Date.now();
      await writeLogs();
    }
  } finally {
    await dp?.close();
    model.dispose();
    for (const v of momentum.values()) v.dispose();
    if (ema) for (const v of ema.values()) v.dispose();
    trainSrc.close();
    testSrc.close();
  }
  if (!state) {
    if (!resumeFrom) throw new Error('no epoch was trained');
    state = resumeFrom.state;
  }
  if (!existsSync(lastCheckpoint)) throw new Error('checkpoint missing after training');
  return { dir: run.out, checkpoint: lastCheckpoint, history, stages, state };
}
