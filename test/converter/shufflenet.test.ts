// ShuffleNetV2 / SFR-ShuffleNetV2 condensed (converter/shufflenet.ts) against an independent float64 forward of the
// training form written here from docs/shufflenet.md (real split, concat and shuffle; BN in eval mode; the SFR's
// masked 3x3 conv added onto the untouched half), on random weights with non-trivial BN statistics and final
// (trained-looking: each input keeps b/S random outputs) masks: logits within 1e-4 and the same top-1 in every build.
import t from 'tap';
import { SHUFFLENET_CONFIGS, shuffleTensorInventory, type ShuffleNetConfig } from '../../base/arch/shufflenet.js';
import { readModel, writeModel } from '../../base/cnv2/format.js';
import { condenseShuffleNet, randomShuffleNetParams, type ShuffleNetParams } from '../../converter/shufflenet.js';
import { loadModel, type Isa } from '../../runtime/index.js';

type Map3 = { c: number; h: number; w: number; d: Float64Array };

function conv(x: Map3, w: (o: number, i: number, ky: number, kx: number) => number, cout: number, k: number, stride: number,
  groups: number): Map3 {
  const pad = k >> 1, oh = Math.floor((x.h + 2 * pad - k) / stride) + 1, ow = Math.floor((x.w + 2 * pad - k) / stride) + 1;
  const d = new Float64Array(cout * oh * ow), cinG = x.c / groups, coutG = cout / groups;
  for (let o = 0; o < cout; o++) {
    const g = Math.floor(o / coutG);
    for (let y = 0; y < oh; y++) for (let xx = 0; xx < ow; xx++) {
      let s = 0;
      for (let i = 0; i < cinG; i++) for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) {
        const iy = y * stride + ky - pad, ix = xx * stride + kx - pad;
        if (iy >= 0 && iy < x.h && ix >= 0 && ix < x.w) s += w(o, i, ky, kx) * x.d[((g * cinG + i) * x.h + iy) * x.w + ix]!;
      }
      d[(o * oh + y) * ow + xx] = s;
    }
  }
  return { c: cout, h: oh, w: ow, d };
}

function forward(p: ShuffleNetParams, input: Float32Array): Float64Array {
  const cfg = p.config, T = (n: string) => p.tensors.get(n)!;
  const bn = (x: Map3, name: string, relu: boolean): Map3 => {
    const g = T(`${name}.gamma`), b = T(`${name}.beta`), m = T(`${name}.mean`), v = T(`${name}.variance`);
    const hw = x.h * x.w, d = new Float64Array(x.d.length);
    for (let c = 0; c < x.c; c++) for (let q = 0; q < hw; q++) {
      const y = (x.d[c * hw + q]! - m[c]!) / Math.sqrt(v[c]! + 1e-5) * g[c]! + b[c]!;
      d[c * hw + q] = relu ? Math.max(0, y) : y;
    }
    return { ...x, d };
  };
  const pw = (x: Map3, name: string, cout: number) => bn(conv(x, (o, i) => T(`${name}.weight`)[i * cout + o]!, cout, 1, 1, 1), `${name}.bn`, true);
  const dw = (x: Map3, name: string, s: number) => bn(conv(x, (o, _i, ky, kx) => T(`${name}.weight`)[(ky * 3 + kx) * x.c + o]!, x.c, 3, s, x.c), `${name}.bn`, false);
  const slice = (x: Map3, a: number, b: number): Map3 => ({ c: b - a, h: x.h, w: x.w, d: x.d.slice(a * x.h * x.w, b * x.h * x.w) });
  const shuffleConcat = (a: Map3, b: Map3): Map3 => {
    const hw = a.h * a.w, d = new Float64Array(2 * a.d.length);
    for (let k = 0; k < a.c; k++) { d.set(a.d.subarray(k * hw, (k + 1) * hw), 2 * k * hw); d.set(b.d.subarray(k * hw, (k + 1) * hw), (2 * k + 1) * hw); }
    return { c: 2 * a.c, h: a.h, w: a.w, d };
  };
  let x: Map3 = { c: cfg.input.channels, h: cfg.input.height, w: cfg.input.width, d: Float64Array.from(input) };
  const ci = cfg.input.channels, sc = cfg.stemChannels;
  x = bn(conv(x, (o, i, ky, kx) => T('stem.weight')[((ky * 3 + kx) * ci + i) * sc + o]!, sc, 3, cfg.stemStride, 1), 'stem.bn', true);
  if (cfg.maxPool) {
    const oh = Math.floor((x.h - 1) / 2) + 1, ow = Math.floor((x.w - 1) / 2) + 1, d = new Float64Array(x.c * oh * ow);
    for (let c = 0; c < x.c; c++) for (let y = 0; y < oh; y++) for (let xx = 0; xx < ow; xx++) {
      let m = -Infinity;
      for (let ky = -1; ky <= 1; ky++) for (let kx = -1; kx <= 1; kx++) {
        const iy = 2 * y + ky, ix = 2 * xx + kx;
        if (iy >= 0 && iy < x.h && ix >= 0 && ix < x.w) m = Math.max(m, x.d[(c * x.h + iy) * x.w + ix]!);
      }
      d[(c * oh + y) * ow + xx] = m;
    }
    x = { c: x.c, h: oh, w: ow, d };
  }
  cfg.stageChannels.forEach((c, si) => {
    const b = c / 2;
    for (let u = 0; u < cfg.stageUnits[si]!; u++) {
      const pre = `s${si}.u${u}`;
      if (u === 0) {
        const P = pw(dw(x, `${pre}.proj.dw`, 2), `${pre}.proj.pw`, b);
        const M = pw(dw(pw(x, `${pre}.main.pw1`, b), `${pre}.main.dw`, 2), `${pre}.main.pw2`, b);
        x = shuffleConcat(P, M);
      } else {
        let x1 = slice(x, 0, b);
        const M = pw(dw(pw(slice(x, b, 2 * b), `${pre}.main.pw1`, b), `${pre}.main.dw`, 1), `${pre}.main.pw2`, b);
        if (cfg.sfr) {
          const mask = p.masks.get(`${pre}.sfr.mask`)!, W = T(`${pre}.sfr.weight`);
          const upd = conv(bn(M, `${pre}.sfr.bn`, true), (o, j, ky, kx) => W[((ky * 3 + kx) * b + j) * b + o]! * mask[j * b + o]!, b, 3, 1, 1);
          x1 = { ...x1, d: x1.d.map((v, q) => v + upd.d[q]!) };
        }
        x = shuffleConcat(x1, M);
      }
    }
  });
  const h = pw(x, 'head.conv', cfg.lastChannels);
  const hw = h.h * h.w, k = cfg.classes, L = cfg.lastChannels;
  const pooled = Array.from({ length: L }, (_, c) => h.d.subarray(c * hw, (c + 1) * hw).reduce((a, v) => a + v, 0) / hw);
  const W = T('head.classifier.weight'), B = T('head.classifier.bias');
  return Float64Array.from({ length: k }, (_, o) => B[o]! + pooled.reduce((s, v, i) => s + v * W[i * k + o]!, 0));
}

const ISAS: Isa[] = ['simd', 'scalar', 'relaxed'];

for (const name of ['shufflenetv2-fmnist', 'sfr-shufflenetv2-fmnist']) {
  t.test(`${name}: condensed logits equal the training form's float64 forward`, async (t) => {
    const cfg = SHUFFLENET_CONFIGS[name]!;
    // The fmnist widths with the ImageNet stem (stride 2 + max pool) on a 28x28 input: every op kind once.
    for (const c of [cfg, { ...cfg, name: `${name}-pooled`, stemStride: 2, maxPool: true } as ShuffleNetConfig]) {
      const params = randomShuffleNetParams(c, 7, shuffleTensorInventory(c));
      const bytes = writeModel(condenseShuffleNet(params, { weights: 'f32' }));
      const model = readModel(bytes);
      t.ok(model.ops.some((o) => o.kind === 'conv2d' && o.groups === o.cin && o.kernel === 3), 'depthwise convs are CONV2D groups = C');
      t.equal(model.ops.some((o) => o.kind === 'maxpool'), c.maxPool, 'a max pool exactly when the configuration has one');
      t.notOk(model.ops.some((o) => o.kind === 'channel_shuffle'), 'no shuffle op: the shuffles are folded into channel placement');
      t.equal(model.ops.some((o) => o.kind === 'conv2d' && o.accumulate === 1), c.sfr, 'the SFR is an accumulating CONV2D');
      for (let s = 0; s < 2; s++) {
        const input = Float32Array.from({ length: 28 * 28 }, (_, i) => Math.sin(i * 0.37 + s * 1.3) * 1.5);
        const want = forward(params, input);
        const top = want.indexOf(Math.max(...want));
        for (const isa of ISAS) {
          const m = await loadModel(bytes, { isa });
          const got = m.run(input);
          m.dispose();
          const err = Math.max(...Array.from(got, (v, i) => Math.abs(v - want[i]!)));
          t.ok(err < 1e-4, `${c.name} input ${s} [${isa}]: max |logit difference| ${err.toExponential(2)}`);
          t.equal(got.indexOf(Math.max(...got)), top, `${c.name} input ${s} [${isa}]: same top-1`);
        }
      }
    }
  });
}
