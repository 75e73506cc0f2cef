// `cdnv2 train` and `cdnv2 eval`.
// TensorFlow.js takes seconds to load, so the modules that need it are imported inside the actions: the other
// subcommands (classify, info, ...) start without it.
import { Command, Option } from 'commander';
import { statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { getNetworkConfig, isShuffleNetConfig, networkConfigNames } from '../base/arch/networks.js';
import { UsageError } from './errors.js';
import { reportEvaluation } from './eval-report.js';
import { evalProgress } from './progress.js';
import type { BackendChoice } from '../trainer/backend.js';
import type { TrainOptions } from '../trainer/checkpoint.js';
import type { TorchImporter } from '../trainer/fine-tune.js';
import { DATASETS, limitSource, openDataset, type DatasetName } from '../base/data/index.js';
import { OFFICIAL_FOLDER_AUGMENT, parseRandAugment, type FolderAugment } from '../base/data/augment.js';

// Spelled out here rather than imported: backend.ts loads TensorFlow.js, which other subcommands must not wait for.
const BACKEND_CHOICES: BackendChoice[] = ['auto', 'node', 'wasm', 'cpu'];
const FREEZE_CHOICES = ['none', 'head-only', 'stages'] as const; // trainer/fine-tune.ts FREEZE_MODES

function int(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, got '${v}'`);
    return n;
  };
}
function probability(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !(n >= 0 && n <= 1)) throw new UsageError(`${name} must be a probability from 0 to 1, got '${v}'`);
    return n;
  };
}
/** 'min,max' with 0 < min <= max (<= top when given). */
function range(name: string, top?: number) {
  return (v: string): [number, number] => {
    const parts = v.split(',').map((x) => (x.trim() === '' ? NaN : Number(x)));
    const [lo, hi] = parts as [number, number];
    if (parts.length !== 2 || !(lo > 0 && hi >= lo && Number.isFinite(hi)) || (top !== undefined && hi > top)) {
      throw new UsageError(`${name} must be MIN,MAX with 0 < MIN <= MAX${top !== undefined ? ` <= ${top}` : ''}, got '${v}'`);
    }
    return [lo, hi];
  };
}

/** The options of the official folder augmentation (docs/training.md), as commander names them. */
const FOLDER_AUGMENT_KEYS = ['resizedCrop', 'resizedCropScale', 'resizedCropRatio', 'trainInterpolation', 'hflip', 'colorJitter',
  'randAugment', 'randomErasing', 'erasingMode'];

function folderAugmentOf(o: Record<string, unknown>): FolderAugment {
  const d = OFFICIAL_FOLDER_AUGMENT;
  if (typeof o.randAugment === 'string') {
    try { parseRandAugment(o.randAugment); } catch (e) { throw new UsageError(`--rand-augment: ${(e as Error).message}`); }
  }
  return {
    resizedCrop: o.resizedCrop === false ? null : {
      scale: (o.resizedCropScale as [number, number] | undefined) ?? d.resizedCrop!.scale,
      ratio: (o.resizedCropRatio as [number, number] | undefined) ?? d.resizedCrop!.ratio,
    },
    interpolation: (o.trainInterpolation as FolderAugment['interpolation'] | undefined) ?? d.interpolation,
    hflip: (o.hflip as number | undefined) ?? d.hflip,
    colorJitter: (o.colorJitter as number | undefined) ?? d.colorJitter,
    randAugment: o.randAugment === false ? null : typeof o.randAugment === 'string' ? o.randAugment : d.randAugment,
    randomErasing: (o.randomErasing as number | undefined) ?? d.randomErasing,
    erasingMode: (o.erasingMode as FolderAugment['erasingMode'] | undefined) ?? d.erasingMode,
  };
}

function num(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new UsageError(`${name} must be a number >= ${min}, got '${v}'`);
    return n;
  };
}

export function register(program: Command): void {
  program.command('train')
    .description('train a CondenseNetV2 (learned LGC and SFR masks) or a (SFR-)ShuffleNetV2 with TensorFlow.js; checkpoints every epoch')
    .option('--arch <name>', `configuration (${networkConfigNames().join(', ')}); required unless --resume`)
    .addOption(new Option('--dataset <name>', 'data set; required unless --resume').choices([...DATASETS]))
    .option('--data <dir>', 'data directory (default per data set, e.g. /usr/share/datasets/fashion-mnist)')
    .option('--epochs <n>', 'epochs (default: the configuration\'s)', int('--epochs', 1))
    .option('--batch <n>', 'batch size', int('--batch', 1))
    .option('--lr <x>', 'peak learning rate', num('--lr', 0))
    .option('--warmup-epochs <x>', 'linear warm-up epochs', num('--warmup-epochs', 0))
    .option('--warmup-lr <x>', 'learning rate at the start of the warm-up', num('--warmup-lr', 0))
    .option('--weight-decay <x>', 'weight decay (not on BN and biases)', num('--weight-decay', 0))
    .option('--momentum <x>', 'Nesterov momentum', num('--momentum', 0))
    .option('--label-smoothing <x>', 'label smoothing', num('--label-smoothing', 0))
    .option('--ema [decay]', 'keep an EMA of the weights (default decay 0.9998)')
    .option('--no-ema', 'no weight EMA even if the configuration has one')
    .option('--group-lasso <lambda>', 'group-lasso coefficient (CondenseNet V1), 0 = off', num('--group-lasso', 0), 0)
    .option('--no-sfr', 'no sparse feature reactivation: the original CondenseNet (LGC only)')
    .option('--no-augment', 'no random crop / flip')
    .option('--crop <pixels>', 'random-crop shift of the augmentation, in pixels (default: input height / 8; 0: flip only); with --dataset folder it selects this pipeline instead of the official one', int('--crop', 0))
    .option('--resized-crop-scale <min,max>', 'folder: RandomResizedCrop area fraction (official 0.08,1)', range('--resized-crop-scale', 1))
    .option('--resized-crop-ratio <min,max>', 'folder: RandomResizedCrop aspect ratio w/h (official 0.75,1.3333)', range('--resized-crop-ratio'))
    .option('--no-resized-crop', 'folder: no RandomResizedCrop; the model\'s evaluation resize instead')
    .addOption(new Option('--train-interpolation <filter>', 'folder: filter of the crop resize and RandAugment\'s geometric ops (official: random, bilinear or bicubic per use)')
      .choices(['random', 'bilinear', 'bicubic']))
    .option('--hflip <p>', 'folder: probability of a horizontal flip (official 0.5; 0: off)', probability('--hflip'))
    .option('--color-jitter <x>', 'folder: brightness/contrast/saturation jitter strength, used only with --no-rand-augment as in the official code (0.4; 0: off)', num('--color-jitter', 0))
    .option('--rand-augment <spec>', 'folder: timm RandAugment specification (official rand-m9-mstd0.5)')
    .option('--no-rand-augment', 'folder: no RandAugment (colour jitter instead)')
    .option('--random-erasing <p>', 'folder: probability of random erasing (official 0.2; 0: off)', probability('--random-erasing'))
    .addOption(new Option('--erasing-mode <mode>', 'folder: random-erasing fill: pixel (N(0,1) per value, official), rand (per channel), const (the mean)')
      .choices(['pixel', 'rand', 'const']))
    .option('--classes <n>', 'classifier outputs (default: the configuration\'s; e.g. a few classes of a folder); the class names stay only when their count matches', (v: string) => {
      const n = int('--classes', 2)(v);
      if (n > 100_000) throw new UsageError(`--classes must be at most 100000, got '${v}'`);
      return n;
    })
    .option('--seed <n>', 'random seed', int('--seed', 0), 1)
    .option('--limit-train <n>', 'use only the first N training images', int('--limit-train', 1))
    .option('--limit-test <n>', 'evaluate on the first N test images', int('--limit-test', 1))
    .option('--out <dir>', 'run directory (checkpoints, metrics.jsonl, training-curve.svg/png)')
    .option('--init-from <source>', 'start from the weights, BN statistics and masks of a checkpoint, a run or an official PyTorch file (.pth, with --arch); with --dataset folder, a new classifier for the folder\'s classes; fine-tuning defaults (docs/training.md)')
    .addOption(new Option('--freeze <mode>', 'with --init-from: which layers train: none (all), head-only (the classifier), stages (unfreeze from the head down, in equal spans of iterations)')
      .choices([...FREEZE_CHOICES]))
    .option('--head-lr-scale <x>', 'with a new classifier: its learning rate as a multiple of --lr (default 10)', num('--head-lr-scale', 0))
    .option('--resume', 'continue the run in --out from its last checkpoint, with its stored options (a larger --epochs extends it)', false)
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend: auto = tfjs-node if installed, else wasm (our SIMD kernels)')
      .choices(BACKEND_CHOICES).default('auto'))
    .option('--threads <n>', 'threads of the wasm backend (1 or 2; default 2 on 2+ CPUs)', (v: string) => {
      if (v !== '1' && v !== '2') throw new UsageError(`--threads must be 1 or 2, got '${v}'`);
      return Number(v);
    })
    .option('--workers <n>', 'data-parallel replicas, 1 or 2: 2 computes each half of a batch on its own core with one kernel thread, batch norm per half (default: 2 on the wasm backend with 2+ CPUs unless --threads is given)', (v: string) => {
      if (v !== '1' && v !== '2') throw new UsageError(`--workers must be 1 or 2, got '${v}'`);
      return Number(v);
    })
    .option('--checkpoint-minutes <m>', 'also checkpoint inside an epoch every m minutes (0: only at epoch ends)', num('--checkpoint-minutes', 0), 10)
    .option('--no-progress', 'no progress bar')
    .action(async (o, cmd: Command) => {
      // --resume continues with the options stored in the run's checkpoint; options given again must agree with
      // them (train() checks), except --epochs, which may grow.
      let stored: TrainOptions | undefined;
      if (o.resume) {
        if (!o.out && !(o.arch && o.dataset)) throw new UsageError('--resume needs --out DIR, the run to continue');
        const { loadCheckpoint } = await import('../trainer/checkpoint.js');
        const runDir = o.out ?? path.join('runs', `${o.arch}-${o.dataset}`);
        stored = (await loadCheckpoint(runDir, (m) => process.stderr.write(`warning: ${m}\n`))).state.options;
      } else {
        if (o.freeze && !o.initFrom) throw new UsageError('--freeze needs --init-from (the network whose layers it freezes)');
        if (!o.arch && o.initFrom) {
          // The configuration of the network fine-tuned is the source's; a PyTorch file does not say it.
          const { isTorchFile, sourceArch } = await import('../trainer/fine-tune.js');
          if (isTorchFile(o.initFrom)) throw new UsageError(`--init-from ${o.initFrom}: a PyTorch file needs --arch, the configuration it was trained as`);
          const { loadCheckpoint } = await import('../trainer/checkpoint.js');
          o.arch = sourceArch(await loadCheckpoint(o.initFrom, (m) => process.stderr.write(`warning: ${m}\n`))).name;
        }
        if (!o.arch) throw new UsageError("required option '--arch <name>' not specified");
        if (!o.dataset) throw new UsageError("required option '--dataset <name>' not specified");
      }
      const given = (key: string): boolean => cmd.getOptionValueSource(key) === 'cli';
      // Folder data sets train with the official augmentation unless --crop asks for the padded crop and flips.
      const folderOptionGiven = FOLDER_AUGMENT_KEYS.some(given);
      let folderAugment: FolderAugment | undefined;
      if (stored && !folderOptionGiven) folderAugment = stored.folderAugment;
      else if ((o.dataset ?? stored?.dataset) === 'folder' && o.augment !== false && !given('crop')) folderAugment = folderAugmentOf(o);
      if (folderOptionGiven && !folderAugment) {
        throw new UsageError('the folder augmentation options (--resized-crop-*, --train-interpolation, --hflip, --color-jitter, --rand-augment, '
          + '--random-erasing, --erasing-mode) apply to --dataset folder without --crop or --no-augment');
      }
      if (stored) {
        // Unless given on the command line, every option that shapes the numbers is the stored one.
        const fromStore: [string, keyof TrainOptions][] = [['arch', 'arch'], ['dataset', 'dataset'], ['epochs', 'epochs'],
          ['batch', 'batch'], ['lr', 'lr'], ['warmupEpochs', 'warmupEpochs'], ['warmupLr', 'warmupLr'],
          ['weightDecay', 'weightDecay'], ['momentum', 'momentum'], ['labelSmoothing', 'labelSmoothing'],
          ['groupLasso', 'groupLasso'], ['sfr', 'sfr'], ['seed', 'seed'], ['limitTrain', 'limitTrain'],
          ['limitTest', 'limitTest'], ['augment', 'augment'], ['crop', 'crop'], ['initFrom', 'initFrom'], ['classes', 'classes'],
          ['freeze', 'freeze'], ['headLrScale', 'headLrScale']];
        for (const [key, storedKey] of fromStore) if (!given(key)) o[key] = stored[storedKey];
        if (!given('ema')) o.ema = stored.ema > 0 ? String(stored.ema) : false;
      }
      let cfg;
      try { cfg = getNetworkConfig(o.arch); } catch (e) { throw new UsageError((e as Error).message); }
      if (isShuffleNetConfig(cfg) && cfg.sfr && given('sfr') && !o.sfr) {
        throw new UsageError(`--no-sfr is for CondenseNetV2; ${cfg.name} has SFR by definition (train ${cfg.name.replace(/^sfr-/, '')} for the plain network)`);
      }
      const { selectBackend } = await import('../trainer/backend.js');
      const { train } = await import('../trainer/train.js');
      // Two replicas already use both cores: each gets one kernel thread unless --threads says otherwise. By default
      // the wasm backend trains data-parallel on 2+ CPUs (1.5x the images/s of one 2-thread replica, bench/README.md);
      // tfjs-node threads natively and the CPU backend is too slow to matter, so they keep one replica.
      const auto = o.workers === undefined && o.threads === undefined;
      const threads: number | undefined = o.threads ?? (o.workers === 2 || auto ? 1 : undefined);
      const backend = await selectBackend(o.backend as BackendChoice, (m) => process.stderr.write(`${m}\n`), { threads });
      const { WASM_BACKEND } = await import('../trainer/wasm/backend.js');
      // (With one CPU the single replica has the one thread it would have had anyway.)
      const workers: number = o.workers ?? (auto && backend.startsWith(WASM_BACKEND) && os.availableParallelism() >= 2 ? 2 : 1);
      process.stderr.write(`backend: ${backend}${workers === 2 ? ' per replica, 2 data-parallel replicas' : ''}\n`);
      // Starting from a trained network: a fine-tuning recipe for what the command line leaves out.
      const { fineTuneDefaults } = await import('../trainer/fine-tune.js');
      const d = o.initFrom && !o.resume ? { ...cfg.train, ...fineTuneDefaults(cfg, { epochs: o.epochs, batch: o.batch }) } : cfg.train;
      let ema = d.ema;
      if (o.ema === false) ema = 0;
      else if (o.ema === true) ema = 0.9998;
      else if (typeof o.ema === 'string') {
        ema = Number(o.ema);
        if (!(ema > 0 && ema < 1)) throw new UsageError(`--ema decay must be in (0, 1), got '${o.ema}'`);
      }
      const out = o.out ?? path.join('runs', `${cfg.name}-${o.dataset}`);
      let importTorch: TorchImporter | undefined;
      if (o.initFrom) {
        const { isTorchFile } = await import('../trainer/fine-tune.js');
        if (isTorchFile(o.initFrom)) {
          const { importTorchCheckpoint } = await import('../converter/pytorch/import.js');
          importTorch = (bytes, arch, file) => importTorchCheckpoint(bytes, arch, { file });
        }
      }
      const r = await train({
        arch: cfg.name, dataset: o.dataset, dataDir: o.data, epochs: o.epochs ?? d.epochs, batch: o.batch ?? d.batch,
        lr: o.lr ?? d.lr, warmupEpochs: o.warmupEpochs ?? d.warmupEpochs, warmupLr: o.warmupLr ?? d.warmupLr,
        weightDecay: o.weightDecay ?? d.weightDecay, momentum: o.momentum ?? d.momentum, labelSmoothing: o.labelSmoothing ?? d.labelSmoothing,
        ema, groupLasso: o.groupLasso, sfr: o.sfr, seed: o.seed, limitTrain: o.limitTrain, limitTest: o.limitTest, augment: o.augment,
        crop: o.crop, out, resume: o.resume, backend, workers, backendChoice: o.backend as BackendChoice, workerThreads: threads ?? 1,
        progress: o.progress, checkpointMinutes: o.checkpointMinutes, initFrom: o.initFrom, classes: o.classes, folderAugment,
        freeze: o.freeze, headLrScale: o.headLrScale, importTorch,
      });
      const last = r.history.at(-1);
      process.stderr.write(`checkpoint: ${r.checkpoint}\n`);
      if (last) process.stderr.write(`test accuracy ${(100 * last.testAccuracy).toFixed(2)}% on ${last.testCount} images after ${last.epoch} epochs\n`);
    });

  program.command('eval')
    .description('accuracy of a checkpoint (TensorFlow.js, eval mode: BN running statistics, EMA weights if present) or of a .cnv2 model (wasm runtime)')
    .argument('<checkpointDir>', 'a run directory (newest valid checkpoint), one checkpoint directory, or a .cnv2 model (wasm runtime)')
    .addOption(new Option('--dataset <name>', 'data set').choices([...DATASETS]).makeOptionMandatory())
    .option('--data <dir>', 'data directory')
    .option('--limit <n>', 'only the first N test images (file order)', int('--limit', 1))
    .option('--json', 'print {"accuracy":..., "count":...}', false)
    .option('--logits <file>', 'write {"logits":[[...], ...]} in test-file order')
    .option('--no-ema', 'use the raw weights even if EMA weights are present')
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend (checkpoints)').choices(BACKEND_CHOICES).default('auto'))
    .option('--no-progress', 'no progress on stderr (a bar on a terminal, else a line every 10 s)')
    .action(async (dir: string, o) => {
      // A model file is evaluated by the wasm runtime, with the same options and output as a checkpoint.
      let isFile = false;
      try { isFile = statSync(dir).isFile(); } catch { /* missing: loadCheckpoint says so */ }
      if (isFile) {
        const { evalModelFile } = await import('./eval-model.js');
        await evalModelFile(dir, { dataset: o.dataset as DatasetName, data: o.data, limit: o.limit, json: o.json, logits: o.logits, progress: o.progress });
        return;
      }
      const { selectBackend } = await import('../trainer/backend.js');
      const { loadCheckpoint, masksAreFinal } = await import('../trainer/checkpoint.js');
      const { evaluateSource, modelFromCheckpoint } = await import('../trainer/evaluate.js');
      const backend = await selectBackend(o.backend as BackendChoice, (m) => process.stderr.write(`${m}\n`));
      process.stderr.write(`backend: ${backend}\n`);
      const ckpt = await loadCheckpoint(dir);
      if (!masksAreFinal(ckpt)) process.stderr.write('note: the masks of this checkpoint are not final yet (training stopped before the last condensation stage)\n');
      const src = limitSource(openDataset(o.dataset as DatasetName, 'test', ckpt.state.config, o.data), o.limit);
      const model = modelFromCheckpoint(ckpt, { ema: o.ema === false ? false : undefined });
      try {
        const bar = evalProgress(src.count, o.progress);
        const r = await evaluateSource(model, src, { keepLogits: Boolean(o.logits), onBatch: (done) => bar.update(done) });
        bar.stop();
        await reportEvaluation(r, ckpt.state.config.classes, o, ckpt.dir);
      } finally {
        model.dispose();
        src.close();
      }
    });
}
