// Deterministic random training-form parameters with final (fully sparsified) masks, for `cdnv2 arch`,
// tests and benchmarks. Weights are scaled by the condensed fan-in so activations stay O(1) in deep nets.
import { activationOfBlock, blockChannels, type ArchConfig } from '../base/arch/configs.js';
import type { BatchNormParams, DenseLayerParams, LinearParams, NetworkParams, SeParams } from '../base/arch/params.js';

/** Small seeded PRNG (mulberry32) with Box-Muller normals. */
export class Rng {
  private state: number;
  private spare: number | null = null;
  constructor(seed: number) {
    this.state = (Math.floor(seed) ^ 0x9e3779b9) >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  normal(): number {
    if (this.spare !== null) { const s = this.spare; this.spare = null; return s; }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
  normals(n: number, std: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal() * std;
    return out;
  }
  /** `count` distinct integers of [0, n), sorted ascending. */
  choose(n: number, count: number): number[] {
    const pool = Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < count; i++) {
      const j = i + Math.floor(this.next() * (n - i));
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    }
    return pool.slice(0, count).sort((a, b) => a - b);
  }
}

function randomBn(rng: Rng, n: number): BatchNormParams {
  const gamma = new Float32Array(n);
  const beta = new Float32Array(n);
  const mean = new Float32Array(n);
  const variance = new Float32Array(n);
  for (let c = 0; c < n; c++) {
    gamma[c] = rng.uniform(0.5, 1.5);
    beta[c] = 0.1 * rng.normal();
    mean[c] = 0.1 * rng.normal();
    variance[c] = rng.uniform(0.5, 1.5);
  }
  return { gamma, beta, mean, variance, eps: 1e-5 };
}

function randomSe(rng: Rng, channels: number, reduction: number): SeParams {
  const hidden = Math.max(1, Math.floor(channels / reduction));
  return { hidden, w1: rng.normals(hidden * channels, Math.sqrt(2 / channels)), w2: rng.normals(channels * hidden, Math.sqrt(1 / hidden)) };
}

function randomLinear(rng: Rng, cin: number, cout: number): LinearParams {
  return { weight: rng.normals(cout * cin, Math.sqrt(1 / cin)), bias: rng.normals(cout, 0.1) };
}

function randomLayer(rng: Rng, cfg: ArchConfig, block: number, inC: number, sfr: boolean, depth: number): DenseLayerParams {
  const G = cfg.group1x1;
  const G3 = cfg.group3x3;
  const k = cfg.growth[block]!;
  const bk = cfg.bottleneck * k;
  const keepIn = inC / cfg.condenseFactor;
  if (!Number.isInteger(keepIn) || bk % G || bk % G3 || k % G3 || k % cfg.groupTrans) {
    throw new Error(`${cfg.name} block ${block}: channel counts (${inC}, ${k}, ${bk}) do not divide by C=${cfg.condenseFactor} / ` +
      `group_1x1=${G} / group_3x3=${G3} / group_trans=${cfg.groupTrans}`);
  }
  // LGC: every weight is random (masked-out ones too, so condensation must really drop them).
  const lgcMask = new Uint8Array(bk * inC);
  for (let g = 0; g < G; g++) {
    const keep = rng.choose(inC, keepIn);
    for (let o = g; o < bk; o += G) for (const i of keep) lgcMask[o * inC + i] = 1;
  }
  const layer: DenseLayerParams = {
    inChannels: inC,
    growth: k,
    activation: activationOfBlock(cfg, block),
    lgc: { bn: randomBn(rng, inC), weight: rng.normals(bk * inC, Math.sqrt(2 / keepIn)), mask: lgcMask },
    conv: { bn: randomBn(rng, bk), weight: rng.normals(k * (bk / G3) * 9, Math.sqrt(2 / ((bk / G3) * 9))) },
  };
  if (block >= cfg.seStartBlock) layer.se = randomSe(rng, k, cfg.seReduction);
  if (sfr) {
    const keepOut = inC / cfg.sfrFactor;
    if (!Number.isInteger(keepOut)) throw new Error(`${cfg.name} block ${block}: ${inC} channels do not divide by S=${cfg.sfrFactor}`);
    const mask = new Uint8Array(inC * k);
    const GT = cfg.groupTrans;
    for (let g = 0; g < GT; g++) {
      const keep = rng.choose(inC, keepOut);
      for (let j = g; j < k; j += GT) for (const o of keep) mask[o * k + j] = 1;
    }
    // Eval-mode BN with random statistics does not renormalise, and every SFR adds to old features, so the
    // variance would grow geometrically with depth. Each kept output sums ~k/S activated inputs (E[a^2] ~ var/2);
    // this gain makes each addition ~1/depth of the variance, so the total growth stays below e.
    layer.sfr = { bn: randomBn(rng, k), weight: rng.normals(inC * k, Math.sqrt((2 * cfg.sfrFactor) / (depth * k))), mask };
  }
  return layer;
}

/** Random parameters for `cfg` with final masks; the same (cfg, seed, sfr) always gives the same values. */
export function randomNetworkParams(cfg: ArchConfig, seed: number, opts: { sfr?: boolean } = {}): NetworkParams {
  const sfr = opts.sfr ?? true;
  const rng = new Rng(seed);
  const blocks = blockChannels(cfg);
  const depth = cfg.layers.reduce((a, b) => a + b, 0);
  const stemFanIn = cfg.input.channels * 9;
  const params: NetworkParams = {
    config: cfg,
    sfr,
    stem: { weight: rng.normals(cfg.stemChannels * stemFanIn, Math.sqrt(1 / stemFanIn)) },
    blocks: blocks.map((bl, b) => {
      const layers: DenseLayerParams[] = [];
      for (let l = 0; l < cfg.layers[b]!; l++) layers.push(randomLayer(rng, cfg, b, bl.in + l * cfg.growth[b]!, sfr, depth));
      return layers;
    }),
    head: { bn: randomBn(rng, blocks[blocks.length - 1]!.out), classifier: { weight: new Float32Array(), bias: new Float32Array() } },
    provenance: { source: 'arch', seed, sfr },
  };
  const cFinal = blocks[blocks.length - 1]!.out;
  if (cfg.headSeReduction > 0) params.head.se = randomSe(rng, cFinal, cfg.headSeReduction);
  let last = cFinal;
  if (cfg.fcChannels > 0) {
    params.head.fc = randomLinear(rng, cFinal, cfg.fcChannels);
    last = cfg.fcChannels;
  }
  params.head.classifier = randomLinear(rng, last, cfg.classes);
  return params;
}
