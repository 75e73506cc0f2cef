// FLOPs/params of the condensed graphs against the paper/README numbers (reference §6, §7), against a closed-form
// count from the configuration alone, and file compactness.
import t from 'tap';

import { CONFIGS, blockChannels, type ArchConfig } from '../../base/arch/configs.js';
import { condense } from '../../converter/condense.js';
import { analyze } from '../../converter/flops.js';
import { writeModel, type Model } from '../../base/cnv2/format.js';
import { randomNetworkParams } from '../../converter/random.js';

const models = new Map<string, { f32: Model; f16: Model; b32: number; b16: number }>();
function get(name: string): { f32: Model; f16: Model; b32: number; b16: number } {
  let m = models.get(name);
  if (!m) {
    const p = randomNetworkParams(CONFIGS[name]!, 1);
    const f32 = condense(p, { weights: 'f32' });
    const f16 = condense(p, { weights: 'f16' });
    m = { f32, f16, b32: writeModel(f32).length, b16: writeModel(f16).length };
    models.set(name, m);
  }
  return m;
}

const within = (x: number, want: number, tol: number): boolean => Math.abs(x - want) <= tol * want;

t.test('ImageNet configs match the paper within 3%', async (t) => {
  const table: [string, number, number, number, number][] = [
    // name, README FLOPs, README params, replica FLOPs, replica params (reference §6)
    ['cdnv2-a', 46e6, 2.0e6, 45.87e6, 2.038e6],
    ['cdnv2-b', 146e6, 3.6e6, 146.47e6, 3.593e6],
    ['cdnv2-c', 309e6, 6.1e6, 309.74e6, 6.178e6],
  ];
  for (const [name, flops, params, rFlops, rParams] of table) {
    const { totals } = analyze(get(name).f32);
    t.ok(within(totals.flops, flops, 0.03), `${name}: ${(totals.flops / 1e6).toFixed(2)}M FLOPs vs ${flops / 1e6}M`);
    t.ok(within(totals.params, params, 0.03), `${name}: ${(totals.params / 1e6).toFixed(3)}M params vs ${params / 1e6}M`);
    t.ok(within(totals.flops, rFlops, 0.001), `${name}: FLOPs equal the reference replica ${rFlops / 1e6}M within 0.1%`);
    // Folding the 3x3 conv's BN into the LGC leaves bk biases where the official model has 2*bk BN parameters.
    t.ok(totals.params < rParams && within(totals.params, rParams, 0.01), `${name}: params ${totals.params} just below the replica (folded BN)`);
  }
});

t.test('CIFAR configs: params within 5% of the paper, FLOPs as measured (docs/flops.md)', async (t) => {
  for (const [name, params, flops] of [['cdnv2-cifar-110', 0.48e6, 59.0e6], ['cdnv2-cifar-146', 0.78e6, 93.6e6]] as const) {
    const { totals } = analyze(get(name).f32);
    t.ok(within(totals.params, params, 0.05), `${name}: ${(totals.params / 1e6).toFixed(3)}M params vs ${params / 1e6}M`);
    t.ok(within(totals.flops, flops, 0.01), `${name}: ${(totals.flops / 1e6).toFixed(2)}M FLOPs (reference replica ${flops / 1e6}M)`);
  }
});

/** The same convention computed from the configuration alone, without looking at any graph. */
function closedForm(cfg: ArchConfig): { flops: number; params: number } {
  let flops = 0, params = 0;
  const blocks = blockChannels(cfg);
  const s0 = blocks[0]!.size;
  flops += 9 * cfg.input.channels * cfg.stemChannels * s0 * s0;
  params += 9 * cfg.input.channels * cfg.stemChannels;
  blocks.forEach((bl, b) => {
    const hw = bl.size * bl.size;
    const k = cfg.growth[b]!, bk = cfg.bottleneck * k, G = cfg.group1x1, G3 = cfg.group3x3, GT = cfg.groupTrans;
    for (let l = 0; l < cfg.layers[b]!; l++) {
      const inC = bl.in + l * k;
      const cin = (G * inC) / cfg.condenseFactor;
      flops += cin * hw + (cin / G) * bk * hw + bk * hw;           // act, LGC conv, act (3x3 input)
      params += 2 * cin + (cin / G) * bk + bk;                      // gathered BN, weight, folded bias
      flops += 9 * (bk / G3) * k * hw; params += 9 * (bk / G3) * k; // 3x3 group conv
      if (b >= cfg.seStartBlock) {
        const h = Math.floor(k / cfg.seReduction);
        flops += k * hw + 2 * k * h + h + 2 * k; params += 2 * k * h;
      }
      const cout = (GT * inC) / cfg.sfrFactor;
      flops += k * hw + (k / GT) * cout * hw; params += 2 * k + (k / GT) * cout; // SFR act + conv
    }
    if (b < blocks.length - 1) { const n = blocks[b + 1]!.size; flops += 4 * bl.out * n * n; }
  });
  const last = blocks[blocks.length - 1]!;
  const C = last.out;
  flops += 2 * C * last.size * last.size; params += 2 * C;           // BN-ReLU + global pool
  if (cfg.headSeReduction) { const h = Math.floor(C / cfg.headSeReduction); flops += C + 2 * C * h + h + 2 * C; params += 2 * C * h; }
  let v = C;
  if (cfg.fcChannels) { flops += C * cfg.fcChannels + cfg.fcChannels; params += C * cfg.fcChannels + cfg.fcChannels; v = cfg.fcChannels; }
  flops += v * cfg.classes; params += v * cfg.classes + cfg.classes;
  return { flops, params };
}

t.test('graph counts equal the closed-form count from the config', async (t) => {
  for (const name of Object.keys(CONFIGS)) {
    const { totals } = analyze(get(name).f32);
    const want = closedForm(CONFIGS[name]!);
    t.equal(totals.flops, want.flops, `${name} FLOPs`);
    t.equal(totals.params, want.params, `${name} params`);
  }
});

t.test('per-layer rows', async (t) => {
  const a = analyze(get('cdnv2-a').f32, get('cdnv2-a').b32);
  t.equal(a.totals.bytes, get('cdnv2-a').b32, 'bytes is the file size');
  const stem = a.layers[0]!;
  t.same([stem.op, stem.input, stem.output, stem.groups, stem.macs, stem.params], ['conv2d', [3, 224, 224], [16, 112, 112], 1, 27 * 16 * 112 * 112, 432], 'stem row');
  t.equal(a.layers.reduce((s, r) => s + r.flops, 0), a.totals.flops, 'rows sum to the total');
  const h = analyze(get('cdnv2-a').f16).totals;
  t.same([h.flops, h.macs, h.params], [a.totals.flops, a.totals.macs, a.totals.params], 'f16 storage does not change the counts');
  t.equal(h.bytes, get('cdnv2-a').b16, 'bytes computed when not given');
});

t.test('files are compact: at most 4 (f32) or 2 (f16) bytes a parameter + 64 KiB, index lists included (issue 4)', async (t) => {
  for (const name of Object.keys(CONFIGS)) {
    const { f32, f16, b32 } = get(name);
    let { b16 } = get(name);
    const params = analyze(f32).totals.params;
    // Class names are text the configuration brings (the 1000 ImageNet names take ~22 KB): not counted.
    const names = (f32.meta.find((e) => e.key === 'labels')?.value as string[] | undefined) ?? [];
    const nameBytes = names.reduce((n, l) => n + 4 + Buffer.byteLength(l), 0);
    const c32 = b32 - nameBytes;
    b16 -= nameBytes;
    t.ok(c32 <= 4 * params + 65536, `${name} f32: ${c32} <= 4*${params} + 64 KiB (${4 * params + 65536 - c32} to spare; ${nameBytes} bytes of class names aside)`);
    t.ok(b16 <= 2 * params + 65536, `${name} f16: ${b16} <= 2*${params} + 64 KiB (${2 * params + 65536 - b16} to spare; class names aside)`);
    // Index lists are stored rice-coded (sorted runs, docs/format.md), not as u8/u16/u32 arrays.
    t.ok(f32.tensors.every((x) => x.dtype !== 'u8' && x.dtype !== 'u16' && x.dtype !== 'u32'), `${name}: every index tensor is rice-coded`);
  }
  // A configuration without class names gets no placeholder labels in the file; ImageNet ones carry the 1000.
  t.notOk(get('cdnv2-tiny').f32.meta.some((e) => e.key === 'labels'), 'cdnv2-tiny carries no labels');
  t.equal((get('cdnv2-a').f32.meta.find((e) => e.key === 'labels')?.value as string[] | undefined)?.length, 1000, 'cdnv2-a carries the 1000 ImageNet names');
  t.ok(get('cdnv2-fmnist').f32.meta.some((e) => e.key === 'labels'), 'cdnv2-fmnist keeps its class names');
});
