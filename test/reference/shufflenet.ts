// Eval-mode forward pass of a ShuffleNetV2 / SFR-ShuffleNetV2 in TRAINING FORM (the checkpoint's tensors in their
// TF.js layouts, and the SFR masks), float64, channel-planar, written directly from docs/shufflenet.md and sharing
// no code with the trainer or the converter: the ground truth both are checked against.
import type { ShuffleNetConfig } from '../../base/arch/shufflenet.js';

type Planes = Float64Array[]; // one H*W plane per channel
interface Map3 { x: Planes; h: number; w: number }

const EPS = 1e-5;

export function referenceShuffleForward(cfg: ShuffleNetConfig, t: Map<string, Float32Array>, masks: Map<string, Uint8Array>,
  chw: Float64Array): Float64Array {
  const get = (n: string): Float32Array => { const v = t.get(n); if (!v) throw new Error(`missing ${n}`); return v; };
  const bn = (m: Map3, name: string, relu: boolean): Map3 => ({
    h: m.h, w: m.w,
    x: m.x.map((p, c) => p.map((v) => {
      const y = ((v - get(`${name}.mean`)[c]!) / Math.sqrt(get(`${name}.variance`)[c]! + EPS)) * get(`${name}.gamma`)[c]! + get(`${name}.beta`)[c]!;
      return relu ? Math.max(y, 0) : y;
    })),
  });
  // 3x3, padding 1, HWIO weight [3, 3, cin, cout] (depthwise: [3, 3, C, 1], channel c to c), optional [cin, cout] mask.
  const conv3 = (m: Map3, wt: Float32Array, cout: number, stride: number, depthwise: boolean, mask?: Uint8Array): Map3 => {
    const cin = m.x.length;
    const ho = Math.floor((m.h - 1) / stride) + 1, wo = Math.floor((m.w - 1) / stride) + 1;
    const y: Planes = Array.from({ length: cout }, () => new Float64Array(ho * wo));
    for (let o = 0; o < cout; o++) {
      for (const i of depthwise ? [o] : Array.from({ length: cin }, (_, k) => k)) {
        if (mask && !mask[i * cout + o]) continue;
        for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) {
          const wv = depthwise ? wt[(ky * 3 + kx) * cin + o]! : wt[((ky * 3 + kx) * cin + i) * cout + o]!;
          for (let oy = 0; oy < ho; oy++) {
            const iy = oy * stride + ky - 1;
            if (iy < 0 || iy >= m.h) continue;
            for (let ox = 0; ox < wo; ox++) {
              const ix = ox * stride + kx - 1;
              if (ix < 0 || ix >= m.w) continue;
              y[o]![oy * wo + ox] += wv * m.x[i]![iy * m.w + ix]!;
            }
          }
        }
      }
    }
    return { x: y, h: ho, w: wo };
  };
  const conv1 = (m: Map3, wt: Float32Array, cout: number): Map3 => {
    const cin = m.x.length;
    const y: Planes = Array.from({ length: cout }, () => new Float64Array(m.h * m.w));
    for (let o = 0; o < cout; o++) for (let i = 0; i < cin; i++) {
      const wv = wt[i * cout + o]!;
      const src = m.x[i]!, dst = y[o]!;
      for (let p = 0; p < dst.length; p++) dst[p] += wv * src[p]!;
    }
    return { x: y, h: m.h, w: m.w };
  };
  const maxPool = (m: Map3): Map3 => {
    const ho = Math.floor((m.h - 1) / 2) + 1, wo = Math.floor((m.w - 1) / 2) + 1;
    return {
      h: ho, w: wo,
      x: m.x.map((p) => {
        const out = new Float64Array(ho * wo);
        for (let oy = 0; oy < ho; oy++) for (let ox = 0; ox < wo; ox++) {
          let best = -Infinity;
          for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) {
            const iy = oy * 2 + ky - 1, ix = ox * 2 + kx - 1;
            if (iy >= 0 && iy < m.h && ix >= 0 && ix < m.w) best = Math.max(best, p[iy * m.w + ix]!);
          }
          out[oy * wo + ox] = best;
        }
        return out;
      }),
    };
  };
  const pw = (m: Map3, name: string, cout: number): Map3 => bn(conv1(m, get(`${name}.weight`), cout), `${name}.bn`, true);
  const dw = (m: Map3, name: string, stride: number): Map3 =>
    bn(conv3(m, get(`${name}.weight`), m.x.length, stride, true), `${name}.bn`, false);
  // out[2k] = a[k], out[2k+1] = b[k]
  const shuffleConcat = (a: Map3, b: Map3): Map3 => ({ h: a.h, w: a.w, x: a.x.flatMap((p, k) => [p, b.x[k]!]) });

  const H = cfg.input.height, W = cfg.input.width;
  let f: Map3 = { h: H, w: W, x: Array.from({ length: cfg.input.channels }, (_, c) => chw.slice(c * H * W, (c + 1) * H * W)) };
  f = bn(conv3(f, get('stem.weight'), cfg.stemChannels, cfg.stemStride, false), 'stem.bn', true);
  if (cfg.maxPool) f = maxPool(f);
  cfg.stageChannels.forEach((c, si) => {
    const b = c / 2;
    for (let u = 0; u < cfg.stageUnits[si]!; u++) {
      const p = `s${si}.u${u}`;
      if (u === 0) {
        const proj = pw(dw(f, `${p}.proj.dw`, 2), `${p}.proj.pw`, b);
        const main = pw(dw(pw(f, `${p}.main.pw1`, b), `${p}.main.dw`, 2), `${p}.main.pw2`, b);
        f = shuffleConcat(proj, main);
        continue;
      }
      const x1: Map3 = { h: f.h, w: f.w, x: f.x.slice(0, b) };
      const x2: Map3 = { h: f.h, w: f.w, x: f.x.slice(b) };
      const main = pw(dw(pw(x2, `${p}.main.pw1`, b), `${p}.main.dw`, 1), `${p}.main.pw2`, b);
      let kept = x1;
      if (cfg.sfr) {
        const r = conv3(bn(main, `${p}.sfr.bn`, true), get(`${p}.sfr.weight`), b, 1, false, masks.get(`${p}.sfr.mask`)!);
        kept = { h: f.h, w: f.w, x: x1.x.map((plane, o) => plane.map((v, i) => v + r.x[o]![i]!)) };
      }
      f = shuffleConcat(kept, main);
    }
  });
  const head = pw(f, 'head.conv', cfg.lastChannels);
  const pooled = head.x.map((p) => p.reduce((a, v) => a + v, 0) / p.length);
  const wc = get('head.classifier.weight'), bc = get('head.classifier.bias');
  const logits = new Float64Array(cfg.classes);
  for (let k = 0; k < cfg.classes; k++) {
    let s = bc[k]!;
    for (let i = 0; i < cfg.lastChannels; i++) s += pooled[i]! * wc[i * cfg.classes + k]!;
    logits[k] = s;
  }
  return logits;
}
