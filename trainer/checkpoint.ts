// Checkpoints: one directory per epoch, written atomically, with a manifest of checksums and tensor shapes.
// Layout and conventions: docs/checkpoint.md.
import type { FolderAugment } from '../base/data/augment.js';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

import { upgradeConfig, type ArchConfig } from '../base/arch/configs.js';
import { isShuffleNetConfig, networkMaskInventory, networkTensorInventory, type NetworkConfig } from '../base/arch/networks.js';
import { shuffleFinalSfrStage, shuffleMaskInventory } from '../base/arch/shufflenet.js';
import type { BatchNormParams, DenseLayerParams, LinearParams, NetworkParams, SeParams } from '../base/arch/params.js';
import { lgcKeptAt, lgcKeptPerGroup, lgcMaskIsGroupwise, sfrKeptAt, sfrKeptPerGroup, sfrMaskIsGroupwise } from './masks.js';
import { BN_EPS, headSeHidden, layerSpecs, maskInventory } from '../base/arch/schema.js';

export const CHECKPOINT_FORMAT = 'cdnv2-checkpoint';
/** 2: the manifest carries the SHA-256 of its own other fields (`manifestSha256`). Version 1 is still read. */
export const CHECKPOINT_VERSION = 2;
const KEEP = 3; // checkpoints kept per run, so a corrupt newest one can fall back to the previous

export type TensorGroup = 'model' | 'mask' | 'momentum' | 'ema';

export interface ManifestTensor { name: string; group: TensorGroup; dtype: 'float32' | 'uint8'; shape: number[]; offset: number; bytes: number }

export interface Manifest {
  format: string;
  version: number;
  epoch: number;
  files: Record<string, { sha256: string; bytes: number }>;
  tensors: ManifestTensor[];
  /** SHA-256 of JSON.stringify of the manifest without this field (version 2): offsets and shapes are covered too. */
  manifestSha256?: string;
}

/** The manifest's own checksum (manifestSha256): tests re-seal a manifest they edit with it. */
export function manifestDigest(m: Manifest): string {
  const { manifestSha256: _ignored, ...rest } = m;
  return sha256(Buffer.from(JSON.stringify(rest)));
}

export interface EpochMetrics {
  epoch: number; trainLoss: number; trainAccuracy: number; testLoss: number; testAccuracy: number; testCount: number;
  lr: number; stageLgc: number; stageSfr: number; lgcDensity: number; sfrDensity: number; seconds: number; imagesPerSecond: number;
}

export interface StageRecord { kind: 'lgc' | 'sfr'; from: number; to: number; progress: number; iteration: number; epoch: number; density: number }

export interface TrainOptions {
  arch: string; dataset: string; epochs: number; batch: number; lr: number; warmupEpochs: number; warmupLr: number;
  weightDecay: number; momentum: number; labelSmoothing: number; ema: number; groupLasso: number; sfr: boolean;
  seed: number; limitTrain?: number; limitTest?: number; augment: boolean;
  /** Random-crop shift in pixels when augmenting; absent: the default (input height / 8). */
  crop?: number;
  /** The run started from this checkpoint's weights, BN statistics and masks instead of random weights. */
  initFrom?: string;
  /** Which parameters train when starting from another network (--freeze; absent: all). trainer/fine-tune.ts. */
  freeze?: 'none' | 'head-only' | 'stages';
  /** The new classifier's learning rate as a multiple of the schedule's (fine-tuning with a new head). */
  headLrScale?: number;
  /** Classifier outputs when not the configuration's own (`--classes N`); the stored config already has them. */
  classes?: number;
  /** Image folders: the official augmentation (base/data/augment.ts) instead of the padded crop and flip. */
  folderAugment?: FolderAugment;
}

export interface CheckpointState {
  config: NetworkConfig;
  options: TrainOptions;
  epochsDone: number;
  iteration: number;          // iterations done
  itersPerEpoch: number;
  totalIterations: number;
  stage: { lgc: number; sfr: number };
  history: EpochMetrics[];
  stages: StageRecord[];
  rng: number[];              // state of the data-order generator for the next epoch (informative; derived from seed+epoch)
  /** Set in a checkpoint taken inside an epoch: how far epoch epochsDone+1 got, to resume exactly from there. */
  partial?: PartialEpoch;
  backend: string;
  date: string;
  trainCount: number;
}

export interface PartialEpoch {
  iterations: number;         // iterations of the epoch done
  rng: number[];              // the epoch's data generator (order already drawn) after those iterations
  lossSum: number;
  correct: number;
  seen: number;
  seconds: number;            // training time spent in the epoch so far
}

export interface LoadedCheckpoint {
  dir: string;
  manifest: Manifest;
  state: CheckpointState;
  model: Map<string, Float32Array>;      // every network tensor (TF.js layouts), incl. BN running statistics
  masks: Map<string, Uint8Array>;
  momentum: Map<string, Float32Array>;
  ema?: Map<string, Float32Array>;
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

// ---------- config (de)serialisation: JSON has no Infinity ----------
function encodeConfig(cfg: NetworkConfig): unknown {
  return JSON.parse(JSON.stringify(cfg, (_k, v) => (v === Infinity ? 'Infinity' : v)));
}
function decodeConfig(raw: unknown): NetworkConfig {
  const cfg = JSON.parse(JSON.stringify(raw), (_k, v) => (v === 'Infinity' ? Infinity : v)) as NetworkConfig;
  return isShuffleNetConfig(cfg) ? cfg : upgradeConfig(cfg);
}

function sha256(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

function writeFileSynced(file: string, data: Uint8Array | string): void {
  try {
    writeFileSyncedRaw(file, data);
  } catch (err) {
    // ENOSPC and friends name the file: the bare system error names only the call.
    const code = (err as NodeJS.ErrnoException).code;
    throw new CheckpointError(`cannot write '${file}': ${code ?? (err as Error).message}${code === 'ENOSPC' ? ' (disk full)' : ''}`);
  }
}

function writeFileSyncedRaw(file: string, data: Uint8Array | string): void {
  const fd = openSync(file, 'w');
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  try { const fd = openSync(dir, 'r'); fsyncSync(fd); closeSync(fd); } catch { /* not supported everywhere */ }
}

export function checkpointDirName(epoch: number, iterations?: number): string {
  const base = `epoch-${String(epoch).padStart(4, '0')}`;
  // Inside an epoch: epochs done, then iterations of the next one; sorts between epoch-N and epoch-(N+1).
  return iterations === undefined ? base : `${base}-it${String(iterations).padStart(7, '0')}`;
}

export interface CheckpointContent {
  state: CheckpointState;
  model: Map<string, Float32Array>;
  masks: Map<string, Uint8Array>;
  momentum: Map<string, Float32Array>;
  ema?: Map<string, Float32Array>;
}

/**
 * Writes <runDir>/checkpoints/epoch-NNNN (or epoch-NNNN-itIIIIIII inside an epoch) atomically (temp dir, fsync,
 * rename) and prunes old checkpoints.
 */
export function saveCheckpoint(runDir: string, content: CheckpointContent): string {
  const root = path.join(runDir, 'checkpoints');
  mkdirSync(root, { recursive: true });
  const epoch = content.state.epochsDone;
  const name = checkpointDirName(epoch, content.state.partial?.iterations);
  const final = path.join(root, name);
  const tmp = path.join(root, `.tmp-${name}-${process.pid}`);
  // Leftovers of interrupted writes (any process) are never valid checkpoints.
  for (const d of readdirSync(root)) if (d.startsWith('.tmp-')) rmSync(path.join(root, d), { recursive: true, force: true });
  mkdirSync(tmp);
  const tensors: ManifestTensor[] = [];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const add = (group: TensorGroup, name: string, shape: number[], data: Float32Array | Uint8Array): void => {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const pad = (16 - (offset % 16)) % 16; // keep float data aligned
    if (pad) { chunks.push(new Uint8Array(pad)); offset += pad; }
    tensors.push({ name, group, dtype: data instanceof Float32Array ? 'float32' : 'uint8', shape, offset, bytes: bytes.length });
    chunks.push(bytes.slice());
    offset += bytes.length;
  };
  const cfg = content.state.config;
  const inv = networkTensorInventory(cfg, content.state.options.sfr);
  for (const t of inv) add('model', t.name, t.shape, content.model.get(t.name)!);
  for (const m of networkMaskInventory(cfg, content.state.options.sfr)) add('mask', m.name, [m.inCh, m.outCh], content.masks.get(m.name)!);
  for (const t of inv) if (t.kind === 'param') add('momentum', t.name, t.shape, content.momentum.get(t.name)!);
  if (content.ema) for (const t of inv) add('ema', t.name, t.shape, content.ema.get(t.name)!);
  const bin = Buffer.concat(chunks);
  const stateJson = JSON.stringify({ ...content.state, config: encodeConfig(cfg) }, null, 1);
  const manifest: Manifest = {
    format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, epoch,
    files: {
      'tensors.bin': { sha256: sha256(bin), bytes: bin.length },
      'state.json': { sha256: sha256(Buffer.from(stateJson)), bytes: Buffer.byteLength(stateJson) },
    },
    tensors,
  };
  manifest.manifestSha256 = manifestDigest(manifest);
  try {
    writeFileSynced(path.join(tmp, 'tensors.bin'), bin);
    writeFileSynced(path.join(tmp, 'state.json'), stateJson);
    writeFileSynced(path.join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 1));
  } catch (err) {
    // A failed write (a full disk) leaves nothing behind; a killed one is removed by the next save.
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  fsyncDir(tmp);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  fsyncDir(root);
  const all = listCheckpointDirs(runDir);
  for (const old of all.slice(0, Math.max(0, all.length - KEEP))) rmSync(old, { recursive: true, force: true });
  return final;
}

/** Checkpoint directories of a run, oldest first. */
export function listCheckpointDirs(runDir: string): string[] {
  const root = path.join(runDir, 'checkpoints');
  if (!existsSync(root)) return [];
  return readdirSync(root).filter((d) => /^epoch-\d{4,}(-it\d{7})?$/.test(d)).sort().map((d) => path.join(root, d));
}

function readOne(dir: string): LoadedCheckpoint {
  const mpath = path.join(dir, 'manifest.json');
  if (!existsSync(mpath)) throw new CheckpointError(`${dir}: no manifest.json (not a checkpoint directory)`);
  let manifest: Manifest;
  try { manifest = JSON.parse(readFileSync(mpath, 'utf8')) as Manifest; } catch (e) {
    throw new CheckpointError(`${mpath}: not valid JSON (${(e as Error).message})`);
  }
  if (manifest.format !== CHECKPOINT_FORMAT) throw new CheckpointError(`${mpath}: format is ${JSON.stringify(manifest.format)}, expected ${CHECKPOINT_FORMAT}`);
  if (manifest.version !== CHECKPOINT_VERSION && manifest.version !== 1) throw new CheckpointError(`${mpath}: unsupported checkpoint version ${manifest.version}`);
  // The files' checksums say nothing of the offsets and shapes that cut tensors.bin: the manifest checks itself.
  if (manifest.version >= 2 && manifestDigest(manifest) !== manifest.manifestSha256) {
    throw new CheckpointError(`${mpath}: manifest checksum mismatch (manifest corrupt)`);
  }
  const files = new Map<string, Buffer>();
  for (const [name, info] of Object.entries(manifest.files ?? {})) {
    const p = path.join(dir, name);
    if (!existsSync(p)) throw new CheckpointError(`${dir}: missing ${name}`);
    const buf = readFileSync(p);
    if (buf.length !== info.bytes) throw new CheckpointError(`${p}: ${buf.length} bytes, manifest says ${info.bytes}`);
    if (sha256(buf) !== info.sha256) throw new CheckpointError(`${p}: checksum mismatch (file corrupt)`);
    files.set(name, buf);
  }
  const bin = files.get('tensors.bin');
  const sj = files.get('state.json');
  if (!bin || !sj) throw new CheckpointError(`${mpath}: must list tensors.bin and state.json`);
  const rawState = JSON.parse(sj.toString('utf8')) as CheckpointState;
  const state: CheckpointState = { ...rawState, config: decodeConfig(rawState.config) };
  const cfg = state.config;
  const sfr = state.options.sfr;
  const byKey = new Map(manifest.tensors.map((t) => [`${t.group}:${t.name}`, t]));
  const take = <T extends Float32Array | Uint8Array>(group: TensorGroup, name: string, shape: number[], ctor: 'float32' | 'uint8'): T => {
    const t = byKey.get(`${group}:${name}`);
    if (!t) throw new CheckpointError(`${dir}: tensor ${group}:${name} missing`);
    if (t.dtype !== ctor || t.shape.join(',') !== shape.join(',')) {
      throw new CheckpointError(`${dir}: tensor ${group}:${name} is ${t.dtype}[${t.shape}], expected ${ctor}[${shape}]`);
    }
    const n = shape.reduce((a, b) => a * b, 1) * (ctor === 'float32' ? 4 : 1);
    if (t.bytes !== n || t.offset < 0 || t.offset + n > bin.length) throw new CheckpointError(`${dir}: tensor ${name} lies outside tensors.bin`);
    const copy = new Uint8Array(bin.subarray(t.offset, t.offset + n));
    return (ctor === 'float32' ? new Float32Array(copy.buffer) : copy) as T;
  };
  const inv = networkTensorInventory(cfg, sfr);
  const model = new Map<string, Float32Array>();
  const momentum = new Map<string, Float32Array>();
  let ema: Map<string, Float32Array> | undefined;
  const hasEma = manifest.tensors.some((t) => t.group === 'ema');
  if (hasEma) ema = new Map();
  for (const t of inv) {
    model.set(t.name, take('model', t.name, t.shape, 'float32'));
    if (t.kind === 'param') momentum.set(t.name, take('momentum', t.name, t.shape, 'float32'));
    if (ema) ema.set(t.name, take('ema', t.name, t.shape, 'float32'));
  }
  const masks = new Map<string, Uint8Array>();
  for (const m of networkMaskInventory(cfg, sfr)) {
    const v = take<Uint8Array>('mask', m.name, [m.inCh, m.outCh], 'uint8');
    for (let i = 0; i < v.length; i++) if (v[i]! > 1) throw new CheckpointError(`${dir}: mask ${m.name} has a value other than 0/1`);
    masks.set(m.name, v);
  }
  return { dir, manifest, state, model, masks, momentum, ema };
}

/**
 * Loads a checkpoint: `dir` is either one checkpoint directory (epoch-NNNN) or a run directory, in which case the
 * newest valid checkpoint is used (a corrupt newer one is skipped with a warning on stderr).
 */
export async function loadCheckpoint(dir: string, warn: (msg: string) => void = (m) => process.stderr.write(`warning: ${m}\n`)): Promise<LoadedCheckpoint> {
  if (!existsSync(dir)) throw new CheckpointError(`${dir}: no such directory`);
  if (existsSync(path.join(dir, 'manifest.json'))) return readOne(dir);
  const dirs = listCheckpointDirs(dir).reverse();
  if (dirs.length === 0) throw new CheckpointError(`${dir}: no checkpoints (expected ${dir}/checkpoints/epoch-NNNN/manifest.json)`);
  const errors: string[] = [];
  for (const d of dirs) {
    try {
      const c = readOne(d);
      if (errors.length) warn(`newest checkpoint unusable (${errors.join('; ')}); using ${d}`);
      return c;
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  throw new CheckpointError(`${dir}: no valid checkpoint: ${errors.join('; ')}`);
}

// ---------- conversion to the converter's training-form schema (PyTorch layouts) ----------

/** [rows, cols] row-major -> [cols, rows]. */
export function transpose2d(a: Float32Array | Uint8Array, rows: number, cols: number): Float32Array | Uint8Array {
  const out = a instanceof Float32Array ? new Float32Array(a.length) : new Uint8Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
  return out;
}

/** HWIO [kh, kw, in, out] -> OIHW [out, in, kh, kw]. */
export function hwioToOihw(a: Float32Array, kh: number, kw: number, cin: number, cout: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let i = 0; i < cin; i++) for (let o = 0; o < cout; o++) {
    out[((o * cin + i) * kh + y) * kw + x] = a[((y * kw + x) * cin + i) * cout + o]!;
  }
  return out;
}

/**
 * Eval-form parameters in the layouts of base/arch/params.ts. opts.ema: use the EMA weights (default: when present).
 */
export function checkpointToNetworkParams(ckpt: LoadedCheckpoint, opts: { ema?: boolean } = {}): NetworkParams {
  const useEma = opts.ema ?? ckpt.ema !== undefined;
  if (useEma && !ckpt.ema) throw new CheckpointError(`${ckpt.dir}: EMA weights requested but the checkpoint has none`);
  const src = useEma ? ckpt.ema! : ckpt.model;
  const cfg = ckpt.state.config;
  if (isShuffleNetConfig(cfg)) throw new CheckpointError(`${ckpt.dir}: ${cfg.name} is a ShuffleNet checkpoint, not CondenseNetV2 (docs/shufflenet.md)`);
  const sfr = ckpt.state.options.sfr;
  const G = cfg.group3x3;
  const t = (n: string): Float32Array => { const v = src.get(n); if (!v) throw new CheckpointError(`tensor ${n} missing`); return v; };
  const bn = (p: string): BatchNormParams => ({
    gamma: t(`${p}.gamma`).slice(), beta: t(`${p}.beta`).slice(), mean: t(`${p}.mean`).slice(), variance: t(`${p}.variance`).slice(), eps: BN_EPS,
  });
  const se = (p: string, c: number, hidden: number): SeParams => ({
    hidden, w1: transpose2d(t(`${p}.w1`), c, hidden) as Float32Array, w2: transpose2d(t(`${p}.w2`), hidden, c) as Float32Array,
  });
  const linear = (p: string, cin: number, cout: number): LinearParams => ({
    weight: transpose2d(t(`${p}.weight`), cin, cout) as Float32Array, bias: t(`${p}.bias`).slice(),
  });
  const blocks: DenseLayerParams[][] = layerSpecs(cfg, sfr).map((block) => block.map((s) => {
    const layer: DenseLayerParams = {
      inChannels: s.inChannels, growth: s.growth, activation: s.activation,
      lgc: {
        bn: bn(`${s.prefix}.lgc.bn`),
        weight: transpose2d(t(`${s.prefix}.lgc.weight`), s.inChannels, s.mid) as Float32Array,
        mask: transpose2d(ckpt.masks.get(`${s.prefix}.lgc.mask`)!, s.inChannels, s.mid) as Uint8Array,
      },
      conv: { bn: bn(`${s.prefix}.conv.bn`), weight: hwioToOihw(t(`${s.prefix}.conv.weight`), 3, 3, s.mid / G, s.growth) },
    };
    if (s.seHidden > 0) layer.se = se(`${s.prefix}.se`, s.growth, s.seHidden);
    if (s.sfr) {
      layer.sfr = {
        bn: bn(`${s.prefix}.sfr.bn`),
        weight: transpose2d(t(`${s.prefix}.sfr.weight`), s.growth, s.inChannels) as Float32Array,
        mask: transpose2d(ckpt.masks.get(`${s.prefix}.sfr.mask`)!, s.growth, s.inChannels) as Uint8Array,
      };
    }
    return layer;
  }));
  const C = blocks.length ? blocks[blocks.length - 1]!.at(-1)!.inChannels + blocks[blocks.length - 1]!.at(-1)!.growth : cfg.stemChannels;
  const hs = headSeHidden(cfg);
  const last = ckpt.state.history.at(-1);
  return {
    config: cfg,
    sfr,
    stem: { weight: hwioToOihw(t('stem.weight'), 3, 3, cfg.input.channels, cfg.stemChannels) },
    blocks,
    head: {
      bn: bn('head.bn'),
      se: hs > 0 ? se('head.se', C, hs) : undefined,
      fc: cfg.fcChannels > 0 ? linear('head.fc', C, cfg.fcChannels) : undefined,
      classifier: linear('head.classifier', cfg.fcChannels > 0 ? cfg.fcChannels : C, cfg.classes),
    },
    provenance: {
      tool: 'cdnv2 train', checkpoint: ckpt.dir, epochsDone: ckpt.state.epochsDone, epochs: ckpt.state.options.epochs,
      dataset: ckpt.state.options.dataset, accuracy: last?.testAccuracy, testCount: last?.testCount, seed: ckpt.state.options.seed,
      backend: ckpt.state.backend, date: ckpt.state.date, ema: useEma, masksFinal: masksAreFinal(ckpt),
    },
  };
}

export interface MaskReport { name: string; kind: 'lgc' | 'sfr'; keptPerGroup: number[]; expected: number; groupwise: boolean }

/** Per mask: connections kept per group and the number a final mask must keep. */
export function maskReport(ckpt: Pick<LoadedCheckpoint, 'state' | 'masks'>): MaskReport[] {
  const cfg = ckpt.state.config;
  if (isShuffleNetConfig(cfg)) {
    return shuffleMaskInventory(cfg).map((m) => {
      const mask = ckpt.masks.get(m.name)!;
      return { name: m.name, kind: m.kind, keptPerGroup: sfrKeptPerGroup(mask, m.inCh, m.outCh, m.groups),
        expected: sfrKeptAt(m.outCh, m.factor, m.factor - 1), groupwise: sfrMaskIsGroupwise(mask, m.inCh, m.outCh, m.groups) };
    });
  }
  return maskInventory(cfg, ckpt.state.options.sfr).map((m) => {
    const mask = ckpt.masks.get(m.name)!;
    if (m.kind === 'lgc') {
      return { name: m.name, kind: m.kind, keptPerGroup: lgcKeptPerGroup(mask, m.inCh, m.outCh, cfg.group1x1),
        expected: lgcKeptAt(m.inCh, m.factor, m.factor - 1), groupwise: lgcMaskIsGroupwise(mask, m.inCh, m.outCh, cfg.group1x1) };
    }
    return { name: m.name, kind: m.kind, keptPerGroup: sfrKeptPerGroup(mask, m.inCh, m.outCh, cfg.groupTrans),
      expected: sfrKeptAt(m.outCh, m.factor, m.factor - 1), groupwise: sfrMaskIsGroupwise(mask, m.inCh, m.outCh, cfg.groupTrans) };
  });
}

/**
 * True when training is past the last condensation stage and every mask is final: every LGC group keeps exactly
 * in - (C-1)*floor(in/C) inputs (= in/C when C divides in), every SFR input group exactly out - (S-1)*floor(out/S)
 * outputs, and masks are uniform inside each group.
 */
export function masksAreFinal(ckpt: Pick<LoadedCheckpoint, 'state' | 'masks'>): boolean {
  const cfg = ckpt.state.config;
  if (isShuffleNetConfig(cfg)) {
    // Each SFR mask has its own S; stage.sfr counts the drops of all of them (docs/shufflenet.md).
    if (ckpt.state.stage.sfr < shuffleFinalSfrStage(cfg)) return false;
    return maskReport(ckpt).every((r) => r.groupwise && r.keptPerGroup.every((k) => k === r.expected));
  }
  if (ckpt.state.stage.lgc < cfg.condenseFactor - 1) return false;
  if (ckpt.state.options.sfr && ckpt.state.stage.sfr < cfg.sfrFactor - 1) return false;
  return maskReport(ckpt).every((r) => r.groupwise && r.keptPerGroup.every((k) => k === r.expected));
}
