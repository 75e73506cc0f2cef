// The official CondenseNetV2 state dicts (github:jianghaojun/CondenseNetV2) <-> our training-form parameters.
// Training form (model/condensenetv2.py): dense LGC/SFR 1x1 weights with `_mask`, `_count`, `_stage` buffers.
// Converted form (model/converted_condensenetv2.py): CondenseLGC with an `index` buffer of gathered inputs and a
// gathered BN, a grouped 1x1 conv whose outputs ShuffleLayer interleaves; CondenseSFR with a grouped 1x1 conv over
// ShuffleLayerTrans-regrouped inputs and a 0/1 `index` matrix [rows, out] scattering its rows into output channels.
// Both become the same NetworkParams (the converted one expanded back to masked dense weights), so condense() and
// everything after it is shared with our own training.
import { activationOfBlock, blockChannels, type ArchConfig } from '../../base/arch/configs.js';
import type { BatchNormParams, DenseLayerParams, LinearParams, NetworkParams, SeParams } from '../../base/arch/params.js';
import { lgcGroups, sfrGroups } from '../condense.js';
import type { TorchTensor } from './torch-file.js';

export class StateDictError extends Error {
  override name = 'StateDictError';
}

export type OfficialForm = 'training' | 'converted';
const BN_EPS = 1e-5; // nn.BatchNorm2d default, used throughout the official model

type Kind = 'float' | 'int' | 'count';
interface KeySpec { key: string; shape: number[]; kind: Kind }

interface LayerNames { prefix: string; b: number; l: number; inC: number; k: number; mid: number; se: boolean }

function layerNames(cfg: ArchConfig): LayerNames[] {
  const out: LayerNames[] = [];
  blockChannels(cfg).forEach((bl, b) => {
    const k = cfg.growth[b]!;
    for (let l = 0; l < cfg.layers[b]!; l++) {
      out.push({ prefix: `features.denseblock_${b + 1}.denselayer_${l + 1}`, b, l, inC: bl.in + l * k, k, mid: cfg.bottleneck * k, se: b >= cfg.seStartBlock });
    }
  });
  return out;
}

function finalWidth(cfg: ArchConfig): number {
  const b = blockChannels(cfg);
  return b[b.length - 1]!.out;
}

/** Every key of the official state dict of `cfg` in `form`, in the official order, with its shape. */
export function officialKeys(cfg: ArchConfig, form: OfficialForm): KeySpec[] {
  if (cfg.fcChannels <= 0 || cfg.headSeReduction <= 0) throw new StateDictError(`${cfg.name} has no hidden FC or head SE: not an official CondenseNetV2 layout`);
  const keys: KeySpec[] = [];
  const f = (key: string, shape: number[]): void => { keys.push({ key, shape, kind: 'float' }); };
  const bn = (p: string, c: number): void => {
    f(`${p}.weight`, [c]); f(`${p}.bias`, [c]); f(`${p}.running_mean`, [c]); f(`${p}.running_var`, [c]);
    keys.push({ key: `${p}.num_batches_tracked`, shape: [], kind: 'count' });
  };
  const G1 = cfg.group1x1, G3 = cfg.group3x3, GT = cfg.groupTrans;
  f('features.init_conv.weight', [cfg.stemChannels, cfg.input.channels, 3, 3]);
  for (const s of layerNames(cfg)) {
    const p = s.prefix;
    if (form === 'training') {
      f(`${p}.conv_1._count`, [1]); f(`${p}.conv_1._stage`, [1]); f(`${p}.conv_1._mask`, [s.mid, s.inC, 1, 1]);
      bn(`${p}.conv_1.norm`, s.inC);
      f(`${p}.conv_1.conv.weight`, [s.mid, s.inC, 1, 1]);
    } else {
      const cin = (s.inC * G1) / cfg.condenseFactor;
      keys.push({ key: `${p}.conv_1.index`, shape: [cin], kind: 'int' });
      bn(`${p}.conv_1.norm`, cin);
      f(`${p}.conv_1.conv.weight`, [s.mid, cin / G1, 1, 1]);
    }
    bn(`${p}.conv_2.norm`, s.mid);
    f(`${p}.conv_2.conv.weight`, [s.k, s.mid / G3, 3, 3]);
    if (form === 'training') {
      f(`${p}.sfr._count`, [1]); f(`${p}.sfr._stage`, [1]); f(`${p}.sfr._mask`, [s.inC, s.k, 1, 1]);
      bn(`${p}.sfr.norm`, s.k);
      f(`${p}.sfr.conv.weight`, [s.inC, s.k, 1, 1]);
    } else {
      const rows = (s.inC * GT) / cfg.sfrFactor;
      f(`${p}.sfr.index`, [rows, rows]);
      bn(`${p}.sfr.norm`, s.k);
      f(`${p}.sfr.conv.weight`, [rows, s.k / GT, 1, 1]);
    }
    if (s.se) { f(`${p}.se.fc.0.weight`, [s.k, s.k]); f(`${p}.se.fc.2.weight`, [s.k, s.k]); }
  }
  const C = finalWidth(cfg);
  const hs = Math.floor(C / cfg.headSeReduction);
  bn('features.norm_last', C);
  f('features.se_last.fc.0.weight', [hs, C]);
  f('features.se_last.fc.2.weight', [C, hs]);
  f('fc.weight', [cfg.fcChannels, C]); f('fc.bias', [cfg.fcChannels]);
  f('classifier.weight', [cfg.classes, cfg.fcChannels]); f('classifier.bias', [cfg.classes]);
  return keys;
}

/** Which form a state dict is in, from its keys. */
export function detectForm(keys: Iterable<string>): OfficialForm {
  let training = false, converted = false;
  for (const k of keys) {
    if (k.endsWith('conv_1._mask') || k.endsWith('sfr._mask')) training = true;
    if (k.endsWith('conv_1.index') || k.endsWith('sfr.index')) converted = true;
  }
  if (training && converted) throw new StateDictError('the state dict mixes training-form (_mask) and converted-form (index) layers');
  if (!training && !converted) throw new StateDictError('no LGC layer found (no conv_1._mask or conv_1.index key): not a CondenseNetV2 state dict');
  return training ? 'training' : 'converted';
}

/**
 * Checks keys and shapes against `cfg` (missing, unexpected, wrong shape: the first problem names the tensor) and
 * returns the values of each key. `num_batches_tracked` may be absent (state dicts of PyTorch < 0.4.1).
 */
function checkedValues(sd: Map<string, TorchTensor>, cfg: ArchConfig, form: OfficialForm): Map<string, Float64Array> {
  const specs = officialKeys(cfg, form);
  const want = new Set(specs.map((s) => s.key));
  const extra = [...sd.keys()].filter((k) => !want.has(k));
  if (extra.length) throw new StateDictError(`unexpected key ${extra[0]} for ${cfg.name} (${form} form)${extra.length > 1 ? ` and ${extra.length - 1} more` : ''}: is --arch right?`);
  const out = new Map<string, Float64Array>();
  for (const s of specs) {
    const t = sd.get(s.key);
    if (!t) {
      if (s.kind === 'count') continue;
      throw new StateDictError(`missing key ${s.key} for ${cfg.name} (${form} form): is --arch right?`);
    }
    const shape = s.kind === 'count' && t.shape.length === 1 ? [] : t.shape; // scalar in some torch versions
    if (shape.join(',') !== s.shape.join(',')) {
      throw new StateDictError(`${s.key}: shape [${t.shape.join(', ')}], ${cfg.name} has [${s.shape.join(', ')}]: is --arch right?`);
    }
    const isFloat = t.dtype.startsWith('float') || t.dtype === 'bfloat16';
    if (s.kind === 'float' && !isFloat) throw new StateDictError(`${s.key}: ${t.dtype}, expected a floating-point tensor`);
    if (s.kind !== 'float' && isFloat) throw new StateDictError(`${s.key}: ${t.dtype}, expected an integer tensor`);
    const v = t.values();
    if (s.kind === 'float' && !v.every(Number.isFinite)) throw new StateDictError(`${s.key}: holds NaN or infinite values`);
    out.set(s.key, v);
  }
  return out;
}

function f32(v: Float64Array): Float32Array { return Float32Array.from(v); }

function binary(key: string, v: Float64Array): Uint8Array {
  const m = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) {
    if (v[i] !== 0 && v[i] !== 1) throw new StateDictError(`${key}: value ${v[i]} at ${i}, a mask holds only 0 and 1`);
    m[i] = v[i]!;
  }
  return m;
}

/** Official state dict -> training-form parameters of `cfg` (the converted form expanded to masked dense weights). */
export function stateDictToParams(sd: Map<string, TorchTensor>, cfg: ArchConfig, provenance: Record<string, unknown>): { params: NetworkParams; form: OfficialForm } {
  const form = detectForm(sd.keys());
  const v = checkedValues(sd, cfg, form);
  const t = (k: string): Float64Array => v.get(k)!;
  const bn = (p: string): BatchNormParams => ({
    gamma: f32(t(`${p}.weight`)), beta: f32(t(`${p}.bias`)), mean: f32(t(`${p}.running_mean`)), variance: f32(t(`${p}.running_var`)), eps: BN_EPS,
  });
  const se = (p: string, c: number, hidden: number): SeParams => ({ hidden, w1: f32(t(`${p}.fc.0.weight`)), w2: f32(t(`${p}.fc.2.weight`)) });
  const linear = (p: string): LinearParams => ({ weight: f32(t(`${p}.weight`)), bias: f32(t(`${p}.bias`)) });
  const blocks: DenseLayerParams[][] = cfg.layers.map(() => []);
  for (const s of layerNames(cfg)) {
    const p = s.prefix;
    const layer: DenseLayerParams = {
      inChannels: s.inC, growth: s.k, activation: activationOfBlock(cfg, s.b),
      lgc: form === 'training'
        ? trainingLgc(p, t, s, cfg)
        : convertedLgc(p, t, s, cfg),
      conv: { bn: bn(`${p}.conv_2.norm`), weight: f32(t(`${p}.conv_2.conv.weight`)) },
    };
    if (s.se) layer.se = se(`${p}.se`, s.k, s.k);
    layer.sfr = form === 'training' ? trainingSfr(p, t, s, cfg) : convertedSfr(p, t, s, cfg);
    blocks[s.b]!.push(layer);
  }
  const C = finalWidth(cfg);
  const params: NetworkParams = {
    config: cfg, sfr: true,
    stem: { weight: f32(t('features.init_conv.weight')) },
    blocks,
    head: {
      bn: bn('features.norm_last'),
      se: se('features.se_last', C, Math.floor(C / cfg.headSeReduction)),
      fc: linear('fc'),
      classifier: linear('classifier'),
    },
    provenance: { ...provenance, form },
  };
  return { params, form };

  function trainingLgc(p: string, tt: typeof t, s: LayerNames, c: ArchConfig): DenseLayerParams['lgc'] {
    const key = `${p}.conv_1._mask`;
    const mask = binary(key, tt(key));
    // Final masks only: every group keeps in/C inputs, the same for all its outputs (names the tensor otherwise).
    try { lgcGroups(mask, s.mid, s.inC, c.group1x1, s.inC / c.condenseFactor, key); } catch (e) { throw new StateDictError((e as Error).message); }
    return { bn: bn(`${p}.conv_1.norm`), weight: f32(tt(`${p}.conv_1.conv.weight`)), mask };
  }

  function trainingSfr(p: string, tt: typeof t, s: LayerNames, c: ArchConfig): DenseLayerParams['sfr'] {
    const key = `${p}.sfr._mask`;
    const mask = binary(key, tt(key));
    try { sfrGroups(mask, s.inC, s.k, c.groupTrans, s.inC / c.sfrFactor, key); } catch (e) { throw new StateDictError((e as Error).message); }
    return { bn: bn(`${p}.sfr.norm`), weight: f32(tt(`${p}.sfr.conv.weight`)), mask };
  }

  function convertedLgc(p: string, tt: typeof t, s: LayerNames, c: ArchConfig): DenseLayerParams['lgc'] {
    const G = c.group1x1;
    const keep = s.inC / c.condenseFactor;
    const opg = s.mid / G;
    const index = tt(`${p}.conv_1.index`);
    const w = tt(`${p}.conv_1.conv.weight`);
    const gathered = bn(`${p}.conv_1.norm`);
    const weight = new Float32Array(s.mid * s.inC);
    const mask = new Uint8Array(s.mid * s.inC);
    const norm: BatchNormParams = {
      gamma: new Float32Array(s.inC).fill(1), beta: new Float32Array(s.inC), mean: new Float32Array(s.inC), variance: new Float32Array(s.inC).fill(1), eps: BN_EPS,
    };
    const seen = new Int32Array(s.inC).fill(-1);
    for (let g = 0; g < G; g++) {
      for (let u = 0; u < keep; u++) {
        const pos = g * keep + u;
        const j = index[pos]!;
        if (!Number.isInteger(j) || j < 0 || j >= s.inC) throw new StateDictError(`${p}.conv_1.index: entry ${pos} is ${j}, outside 0..${s.inC - 1}`);
        // The converted BN is the training BN gathered by index: a channel read by several groups has one BN.
        if (seen[j]! >= 0) {
          const q = seen[j]!;
          for (const f of ['gamma', 'beta', 'mean', 'variance'] as const) {
            if (gathered[f][q] !== gathered[f][pos]) throw new StateDictError(`${p}.conv_1.norm: channel ${j} is gathered twice (entries ${q}, ${pos}) with different batch-norm values`);
          }
        }
        seen[j] = pos;
        for (const f of ['gamma', 'beta', 'mean', 'variance'] as const) norm[f][j] = gathered[f][pos]!;
        for (let r = 0; r < opg; r++) {
          const o = r * G + g; // ShuffleLayer: row g*opg + r of the grouped conv is training output r*G + g
          if (mask[o * s.inC + j]) throw new StateDictError(`${p}.conv_1.index: group ${g} gathers channel ${j} twice`);
          mask[o * s.inC + j] = 1;
          weight[o * s.inC + j] = w[(g * opg + r) * keep + u]!;
        }
      }
    }
    return { bn: norm, weight, mask };
  }

  function convertedSfr(p: string, tt: typeof t, s: LayerNames, c: ArchConfig): DenseLayerParams['sfr'] {
    const G = c.groupTrans;
    const rows = (s.inC * G) / c.sfrFactor;
    const perGroup = rows / G;
    const ipg = s.k / G;
    const index = tt(`${p}.sfr.index`);
    const w = tt(`${p}.sfr.conv.weight`);
    const weight = new Float32Array(s.inC * s.k);
    const mask = new Uint8Array(s.inC * s.k);
    for (let r = 0; r < rows; r++) {
      // Row r of the grouped conv (group floor(r / perGroup)) adds into the one output channel its index row marks.
      let target = -1;
      for (let o = 0; o < rows; o++) {
        const x = index[r * rows + o]!;
        if (x === 0) continue;
        if (x !== 1 || target >= 0) throw new StateDictError(`${p}.sfr.index: row ${r} must hold a single 1 (found ${x} at column ${o}${target >= 0 ? `, another at ${target}` : ''})`);
        target = o;
      }
      if (target < 0 || target >= s.inC) throw new StateDictError(`${p}.sfr.index: row ${r} selects no output channel of 0..${s.inC - 1}`);
      const g = Math.floor(r / perGroup);
      for (let u = 0; u < ipg; u++) {
        const j = u * G + g; // ShuffleLayerTrans: group g reads the new features g, g+G, g+2G, ...
        if (mask[target * s.k + j]) throw new StateDictError(`${p}.sfr.index: group ${g} selects output ${target} twice`);
        mask[target * s.k + j] = 1;
        weight[target * s.k + j] = w[r * ipg + u]!;
      }
    }
    return { bn: bn(`${p}.sfr.norm`), weight, mask };
  }
}

/** Picks the state dict out of a torch.save object: state_dict_ema (unless noEma), state_dict, or a bare dict. */
export function pickStateDict(obj: unknown, opts: { noEma?: boolean }): { sd: Map<string, TorchTensor>; source: string } {
  if (!(obj instanceof Map)) throw new StateDictError('the file holds no dict');
  let source = 'bare state dict';
  let sd: unknown = obj;
  if (!opts.noEma && obj.has('state_dict_ema')) { sd = obj.get('state_dict_ema'); source = 'state_dict_ema'; }
  else if (obj.has('state_dict')) { sd = obj.get('state_dict'); source = 'state_dict'; }
  else if (opts.noEma && obj.has('state_dict_ema')) throw new StateDictError('--no-ema: the file has state_dict_ema but no state_dict');
  if (!(sd instanceof Map)) throw new StateDictError(`${source} is not a dict`);
  const out = new Map<string, TorchTensor>();
  for (const [k, v] of sd) {
    if (typeof k !== 'string') throw new StateDictError(`${source}: a key is not a string`);
    // DataParallel / DistributedDataParallel prefix every key with 'module.'.
    const key = k.startsWith('module.') ? k.slice(7) : k;
    if (!(v && typeof v === 'object' && 'storage' in v)) throw new StateDictError(`${source}: ${k} is not a tensor`);
    if (out.has(key)) throw new StateDictError(`${source}: ${key} appears twice (with and without 'module.')`);
    out.set(key, v as TorchTensor);
  }
  if (!out.size) throw new StateDictError(`${source} is empty`);
  return { sd: out, source };
}

export interface StateDictTensor { key: string; dtype: 'float32' | 'int64'; shape: number[]; data: Float32Array | BigInt64Array }

/**
 * Training-form parameters -> the official training-form state dict (model/condensenetv2.py), in its key order,
 * for load_state_dict(strict=True). `stage` is the condensation stage reached (official `_stage`); `_count` is the
 * number of connections each group has dropped, read off the masks.
 */
export function paramsToStateDict(params: NetworkParams, stage: { lgc: number; sfr: number }, batchesTracked = 0): StateDictTensor[] {
  const cfg = params.config;
  if (!params.sfr) throw new StateDictError('the official model always has SFR: a model trained with --no-sfr cannot be exported');
  const byLayer = new Map<string, DenseLayerParams>();
  layerNames(cfg).forEach((s) => byLayer.set(s.prefix, params.blocks[s.b]![s.l]!));
  const lookup = (key: string): Float32Array => {
    const m = /^(features\.denseblock_\d+\.denselayer_\d+)\.(.+)$/.exec(key);
    const bnOf = (bn: BatchNormParams, f: string): Float32Array =>
      ({ weight: bn.gamma, bias: bn.beta, running_mean: bn.mean, running_var: bn.variance } as Record<string, Float32Array>)[f]!;
    if (m) {
      const l = byLayer.get(m[1]!)!;
      const rest = m[2]!;
      const [part, ...tail] = rest.split('.');
      const field = tail.join('.');
      if (part === 'conv_1') {
        if (field === '_mask') return Float32Array.from(l.lgc.mask);
        if (field === 'conv.weight') return l.lgc.weight;
        if (field === '_stage') return Float32Array.of(stage.lgc);
        if (field === '_count') return Float32Array.of(dropped(l.lgc.mask, l.lgc.weight.length / l.inChannels, l.inChannels, 'lgc'));
        return bnOf(l.lgc.bn, field.slice(5));
      }
      if (part === 'conv_2') return field === 'conv.weight' ? l.conv.weight : bnOf(l.conv.bn, field.slice(5));
      if (part === 'se') return field === 'fc.0.weight' ? l.se!.w1 : l.se!.w2;
      const sfr = l.sfr!;
      if (field === '_mask') return Float32Array.from(sfr.mask);
      if (field === 'conv.weight') return sfr.weight;
      if (field === '_stage') return Float32Array.of(stage.sfr);
      if (field === '_count') return Float32Array.of(dropped(sfr.mask, l.inChannels, l.growth, 'sfr'));
      return bnOf(sfr.bn, field.slice(5));
    }
    const h = params.head;
    switch (key) {
      case 'features.init_conv.weight': return params.stem.weight;
      case 'features.se_last.fc.0.weight': return h.se!.w1;
      case 'features.se_last.fc.2.weight': return h.se!.w2;
      case 'fc.weight': return h.fc!.weight;
      case 'fc.bias': return h.fc!.bias;
      case 'classifier.weight': return h.classifier.weight;
      case 'classifier.bias': return h.classifier.bias;
    }
    if (key.startsWith('features.norm_last.')) return bnOf(h.bn, key.slice('features.norm_last.'.length));
    throw new StateDictError(`no value for ${key}`);
  };
  return officialKeys(cfg, 'training').map((s) => {
    if (s.kind === 'count') return { key: s.key, dtype: 'int64' as const, shape: [], data: BigInt64Array.of(BigInt(batchesTracked)) };
    const data = lookup(s.key);
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new StateDictError(`${s.key}: ${data.length} values, the official model has [${s.shape.join(', ')}]`);
    return { key: s.key, dtype: 'float32' as const, shape: s.shape, data };
  });
}

/** Connections dropped per group so far (official `_count`), from group 0 of the mask. */
function dropped(mask: Uint8Array, outputs: number, inputs: number, kind: 'lgc' | 'sfr'): number {
  let kept = 0;
  if (kind === 'lgc') { for (let i = 0; i < inputs; i++) kept += mask[i]!; return inputs - kept; }   // output 0's inputs
  for (let o = 0; o < outputs; o++) kept += mask[o * inputs]!; return outputs - kept;              // input 0's outputs
}
