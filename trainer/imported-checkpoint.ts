// Imported parameters as a cdnv2 training checkpoint (docs/checkpoint.md), so `cdnv2 train --init-from` can
// fine-tune an official model: weights, BN statistics and final masks carry over, the schedule starts fresh.
import type { NetworkParams } from '../base/arch/params.js';
import { saveCheckpoint, type CheckpointContent, type CheckpointState } from './checkpoint.js';
import { maskInventory, tensorInventory } from '../base/arch/schema.js';

function transpose(a: Float32Array | Uint8Array, rows: number, cols: number): Float32Array | Uint8Array {
  const out = new (a.constructor as Float32ArrayConstructor | Uint8ArrayConstructor)(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
  return out;
}

/** [out, in, kh, kw] -> [kh, kw, in, out] (TF.js HWIO). */
function oihwToHwio(a: Float32Array, cout: number, cin: number, k: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let o = 0; o < cout; o++) for (let i = 0; i < cin; i++) for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) {
    out[((y * k + x) * cin + i) * cout + o] = a[((o * cin + i) * k + y) * k + x]!;
  }
  return out;
}

/** Writes <runDir>/checkpoints/epoch-0000 holding `params`; returns its path. */
export function writeImportedCheckpoint(runDir: string, params: NetworkParams, source: string): string {
  return saveCheckpoint(runDir, importedCheckpointContent(params, source));
}

/** `params` as the content of a checkpoint (training-form tensors, final masks, zero momentum, a fresh state). */
export function importedCheckpointContent(params: NetworkParams, source: string): Required<Omit<CheckpointContent, 'ema'>> {
  const cfg = params.config;
  const model = new Map<string, Float32Array>();
  const masks = new Map<string, Uint8Array>();
  const bn = (name: string, b: NetworkParams['head']['bn']): void => {
    model.set(`${name}.gamma`, b.gamma); model.set(`${name}.beta`, b.beta); model.set(`${name}.mean`, b.mean); model.set(`${name}.variance`, b.variance);
  };
  model.set('stem.weight', oihwToHwio(params.stem.weight, cfg.stemChannels, cfg.input.channels, 3));
  params.blocks.forEach((layers, b) => layers.forEach((l, i) => {
    const p = `b${b}.l${i}`;
    const mid = l.lgc.weight.length / l.inChannels;
    bn(`${p}.lgc.bn`, l.lgc.bn);
    model.set(`${p}.lgc.weight`, transpose(l.lgc.weight, mid, l.inChannels) as Float32Array);
    masks.set(`${p}.lgc.mask`, transpose(l.lgc.mask, mid, l.inChannels) as Uint8Array);
    bn(`${p}.conv.bn`, l.conv.bn);
    model.set(`${p}.conv.weight`, oihwToHwio(l.conv.weight, l.growth, mid / cfg.group3x3, 3));
    if (l.se) {
      model.set(`${p}.se.w1`, transpose(l.se.w1, l.se.hidden, l.growth) as Float32Array);
      model.set(`${p}.se.w2`, transpose(l.se.w2, l.growth, l.se.hidden) as Float32Array);
    }
    if (l.sfr) {
      bn(`${p}.sfr.bn`, l.sfr.bn);
      model.set(`${p}.sfr.weight`, transpose(l.sfr.weight, l.inChannels, l.growth) as Float32Array);
      masks.set(`${p}.sfr.mask`, transpose(l.sfr.mask, l.inChannels, l.growth) as Uint8Array);
    }
  }));
  const h = params.head;
  const C = h.bn.gamma.length;
  bn('head.bn', h.bn);
  if (h.se) {
    model.set('head.se.w1', transpose(h.se.w1, h.se.hidden, C) as Float32Array);
    model.set('head.se.w2', transpose(h.se.w2, C, h.se.hidden) as Float32Array);
  }
  let feat = C;
  if (h.fc) {
    model.set('head.fc.weight', transpose(h.fc.weight, cfg.fcChannels, C) as Float32Array);
    model.set('head.fc.bias', h.fc.bias);
    feat = cfg.fcChannels;
  }
  model.set('head.classifier.weight', transpose(h.classifier.weight, cfg.classes, feat) as Float32Array);
  model.set('head.classifier.bias', h.classifier.bias);

  const inv = tensorInventory(cfg, params.sfr);
  for (const t of inv) {
    const v = model.get(t.name);
    if (!v || v.length !== t.shape.reduce((a, b) => a * b, 1)) throw new Error(`internal: checkpoint tensor ${t.name} does not match ${cfg.name}`);
  }
  for (const m of maskInventory(cfg, params.sfr)) if (!masks.has(m.name)) throw new Error(`internal: mask ${m.name} missing`);
  const momentum = new Map(inv.filter((t) => t.kind === 'param').map((t) => [t.name, new Float32Array(model.get(t.name)!.length)]));
  const tr = cfg.train;
  const state: CheckpointState = {
    config: cfg,
    options: {
      arch: cfg.name, dataset: 'imported', epochs: 0, batch: tr.batch, lr: tr.lr, warmupEpochs: tr.warmupEpochs, warmupLr: tr.warmupLr,
      weightDecay: tr.weightDecay, momentum: tr.momentum, labelSmoothing: tr.labelSmoothing, ema: tr.ema, groupLasso: 0,
      sfr: params.sfr, seed: 0, augment: false,
    },
    epochsDone: 0, iteration: 0, itersPerEpoch: 1, totalIterations: 0,
    // Imported masks are final (checked on import): past the last condensation stage.
    stage: { lgc: cfg.condenseFactor - 1, sfr: cfg.sfrFactor - 1 },
    history: [], stages: [], rng: [], backend: `imported from PyTorch (${source})`, date: new Date().toISOString(), trainCount: 0,
  };
  return { state, model, masks, momentum };
}
