// Trainer checkpoints written without training, for the tests of `cdnv2 convert`.
import type { ArchConfig } from '../../base/arch/configs.js';
import type { BatchNormParams, NetworkParams } from '../../base/arch/params.js';
import { saveCheckpoint, type CheckpointState } from '../../trainer/checkpoint.js';
import { maskInventory, tensorInventory } from '../../trainer/model.js';

/** [rows, cols] row-major -> [cols, rows] (written here, not taken from the trainer). */
function transposed(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
  return out;
}
/** PyTorch OIHW [o, i, kh, kw] -> TF.js HWIO [kh, kw, i, o]. */
function hwio(a: Float32Array, o: number, i: number, k: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let co = 0; co < o; co++) for (let ci = 0; ci < i; ci++) for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) {
    out[((y * k + x) * i + ci) * o + co] = a[((co * i + ci) * k + y) * k + x]!;
  }
  return out;
}

/** The reference network's weights in the trainer's TF.js layouts (docs/checkpoint.md, "Tensor names"). */
function trainingFormWeights(cfg: ArchConfig, reference: NetworkParams): Map<string, Float32Array> {
  const model = new Map<string, Float32Array>();
  const bn = (p: string, b: BatchNormParams): void => {
    model.set(`${p}.gamma`, b.gamma); model.set(`${p}.beta`, b.beta); model.set(`${p}.mean`, b.mean); model.set(`${p}.variance`, b.variance);
  };
  model.set('stem.weight', hwio(reference.stem.weight, cfg.stemChannels, cfg.input.channels, 3));
  reference.blocks.forEach((block, i) => block.forEach((l, j) => {
    const p = `b${i}.l${j}`, mid = cfg.bottleneck * l.growth;
    bn(`${p}.lgc.bn`, l.lgc.bn);
    model.set(`${p}.lgc.weight`, transposed(l.lgc.weight, mid, l.inChannels));
    bn(`${p}.conv.bn`, l.conv.bn);
    model.set(`${p}.conv.weight`, hwio(l.conv.weight, l.growth, mid / cfg.group3x3, 3));
    if (l.se) { model.set(`${p}.se.w1`, transposed(l.se.w1, l.se.hidden, l.growth)); model.set(`${p}.se.w2`, transposed(l.se.w2, l.growth, l.se.hidden)); }
    if (l.sfr) { bn(`${p}.sfr.bn`, l.sfr.bn); model.set(`${p}.sfr.weight`, transposed(l.sfr.weight, l.inChannels, l.growth)); }
  }));
  const h = reference.head;
  bn('head.bn', h.bn);
  const C = h.bn.gamma.length;
  if (h.se) { model.set('head.se.w1', transposed(h.se.w1, h.se.hidden, C)); model.set('head.se.w2', transposed(h.se.w2, C, h.se.hidden)); }
  if (h.fc) { model.set('head.fc.weight', transposed(h.fc.weight, cfg.fcChannels, C)); model.set('head.fc.bias', h.fc.bias); }
  model.set('head.classifier.weight', transposed(h.classifier.weight, cfg.classes, cfg.fcChannels > 0 ? cfg.fcChannels : C));
  model.set('head.classifier.bias', h.classifier.bias);
  for (const info of tensorInventory(cfg, true)) {
    const v = model.get(info.name);
    if (!v || v.length !== info.shape.reduce((x, y) => x * y, 1)) throw new Error(`test setup: tensor ${info.name} missing or mis-sized`);
  }
  return model;
}

/**
 * A trainer checkpoint of `cfg` at LGC stage `stageLgc` (the last stage: final masks) whose masks are those of
 * `reference` (the converter's own generator) in the trainer's [in, out] layout, and whose weights and BN
 * statistics are `reference`'s, put into the trainer's layouts by this file (not by the code under test). With
 * `emaReference`, the checkpoint also holds EMA weights: those of `emaReference` (same masks as `reference`).
 */
export function writeTinyCheckpoint(runDir: string, cfg: ArchConfig, reference: NetworkParams, stageLgc: number, emaReference?: NetworkParams): string {
  const model = trainingFormWeights(cfg, reference);
  const ours: Uint8Array[] = [];
  const dims: [number, number][] = [];
  for (const layer of reference.blocks.flat()) {
    ours.push(layer.lgc.mask); dims.push([layer.inChannels, cfg.bottleneck * layer.growth]);
    if (layer.sfr) { ours.push(layer.sfr.mask); dims.push([layer.growth, layer.inChannels]); }
  }
  const masks = new Map<string, Uint8Array>();
  maskInventory(cfg, true).forEach((m, k) => {
    const [inCh, outCh] = dims[k]!;
    if (m.inCh !== inCh || m.outCh !== outCh) throw new Error(`mask ${m.name}: ${m.inCh}x${m.outCh} vs ${inCh}x${outCh}`);
    const mine = ours[k]!; // [out, in]
    const theirs = new Uint8Array(inCh * outCh);
    for (let i = 0; i < inCh; i++) for (let o = 0; o < outCh; o++) theirs[i * outCh + o] = mine[o * inCh + i]!;
    masks.set(m.name, theirs);
  });
  const momentum = new Map<string, Float32Array>();
  for (const info of tensorInventory(cfg, true)) if (info.kind === 'param') momentum.set(info.name, new Float32Array(model.get(info.name)!.length));
  const state: CheckpointState = {
    config: cfg,
    options: {
      arch: 'tiny', dataset: 'fmnist', epochs: 4, batch: 8, lr: 0.1, warmupEpochs: 0, warmupLr: 0.1, weightDecay: 0,
      momentum: 0.9, labelSmoothing: 0, ema: emaReference ? 0.999 : 0, groupLasso: 0, sfr: true, seed: 1, augment: false,
    },
    epochsDone: 4, iteration: 40, itersPerEpoch: 10, totalIterations: 40,
    stage: { lgc: stageLgc, sfr: cfg.sfrFactor - 1 }, history: [], stages: [], rng: [], backend: 'cpu',
    date: '2026-01-01T00:00:00Z', trainCount: 80,
  };
  const ema = emaReference ? trainingFormWeights(cfg, emaReference) : undefined;
  return saveCheckpoint(runDir, { state, model, masks, momentum, ema });
}
