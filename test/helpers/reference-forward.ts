// Plain reference forward of a NetworkParams (PyTorch layouts, NCHW, one image) used to check the trainer's
// parameter export independently of TF.js.
import type { BatchNormParams, NetworkParams, SeParams } from '../../arch/params.js';

type Map3 = { c: number; h: number; w: number; d: Float64Array };

const act = (x: number, a: string): number => (a === 'relu' ? Math.max(0, x) : (x * Math.min(6, Math.max(0, x + 3))) / 6);

function bnAct(x: Map3, bn: BatchNormParams, a: string): Map3 {
  const d = new Float64Array(x.d.length);
  const hw = x.h * x.w;
  for (let c = 0; c < x.c; c++) {
    const s = bn.gamma[c]! / Math.sqrt(bn.variance[c]! + bn.eps);
    for (let i = 0; i < hw; i++) d[c * hw + i] = act((x.d[c * hw + i]! - bn.mean[c]!) * s + bn.beta[c]!, a);
  }
  return { ...x, d };
}

function conv(x: Map3, w: Float32Array, cout: number, k: number, stride: number, groups: number, mask?: Uint8Array): Map3 {
  const pad = k === 3 ? 1 : 0;
  const ho = Math.floor((x.h + 2 * pad - k) / stride) + 1, wo = Math.floor((x.w + 2 * pad - k) / stride) + 1;
  const cin = x.c / groups, opg = cout / groups;
  const d = new Float64Array(cout * ho * wo);
  for (let o = 0; o < cout; o++) {
    const g = Math.floor(o / opg);
    for (let y = 0; y < ho; y++) for (let xx = 0; xx < wo; xx++) {
      let s = 0;
      for (let i = 0; i < cin; i++) {
        if (mask && !mask[o * cin + i]) continue;
        for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) {
          const iy = y * stride + ky - pad, ix = xx * stride + kx - pad;
          if (iy < 0 || ix < 0 || iy >= x.h || ix >= x.w) continue;
          s += w[((o * cin + i) * k + ky) * k + kx]! * x.d[((g * cin + i) * x.h + iy) * x.w + ix]!;
        }
      }
      d[(o * ho + y) * wo + xx] = s;
    }
  }
  return { c: cout, h: ho, w: wo, d };
}

function seVec(v: Float64Array, se: SeParams): Float64Array {
  const c = v.length;
  const h = new Float64Array(se.hidden);
  for (let j = 0; j < se.hidden; j++) { let s = 0; for (let i = 0; i < c; i++) s += se.w1[j * c + i]! * v[i]!; h[j] = Math.max(0, s); }
  const out = new Float64Array(c);
  for (let i = 0; i < c; i++) { let s = 0; for (let j = 0; j < se.hidden; j++) s += se.w2[i * se.hidden + j]! * h[j]!; out[i] = 1 / (1 + Math.exp(-s)); }
  return out;
}

function gap(x: Map3): Float64Array {
  const v = new Float64Array(x.c), hw = x.h * x.w;
  for (let c = 0; c < x.c; c++) { let s = 0; for (let i = 0; i < hw; i++) s += x.d[c * hw + i]!; v[c] = s / hw; }
  return v;
}

/** image: one image, HWC normalised floats. Returns logits. */
export function referenceForward(p: NetworkParams, image: Float32Array): Float64Array {
  const cfg = p.config;
  const { channels: C, height: H, width: W } = cfg.input;
  let x: Map3 = { c: C, h: H, w: W, d: new Float64Array(C * H * W) };
  for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) x.d[c * H * W + i] = image[i * C + c]!;
  x = conv(x, p.stem.weight, cfg.stemChannels, 3, cfg.stemStride, 1);
  p.blocks.forEach((block, b) => {
    if (b > 0) {
      const h = Math.floor(x.h / 2), w = Math.floor(x.w / 2), d = new Float64Array(x.c * h * w);
      for (let c = 0; c < x.c; c++) for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) {
        let s = 0;
        for (let a = 0; a < 2; a++) for (let bb = 0; bb < 2; bb++) s += x.d[(c * x.h + 2 * y + a) * x.w + 2 * xx + bb]!;
        d[(c * h + y) * w + xx] = s / 4;
      }
      x = { c: x.c, h, w, d };
    }
    for (const L of block) {
      const mid = L.lgc.weight.length / L.inChannels;
      let h = conv(bnAct(x, L.lgc.bn, L.activation), L.lgc.weight, mid, 1, 1, 1, L.lgc.mask);
      let nf = conv(bnAct(h, L.conv.bn, L.activation), L.conv.weight, L.growth, 3, 1, cfg.groups);
      if (L.se) {
        const s = seVec(gap(nf), L.se);
        const hw = nf.h * nf.w;
        for (let c = 0; c < nf.c; c++) for (let i = 0; i < hw; i++) nf.d[c * hw + i] *= s[c]!;
      }
      let base = x;
      if (L.sfr) {
        const y = conv(bnAct(nf, L.sfr.bn, L.activation), L.sfr.weight, L.inChannels, 1, 1, 1, L.sfr.mask);
        base = { ...x, d: x.d.map((v, i) => v + y.d[i]!) };
      }
      const d = new Float64Array((x.c + nf.c) * x.h * x.w);
      d.set(base.d, 0);
      d.set(nf.d, base.d.length);
      x = { c: x.c + nf.c, h: x.h, w: x.w, d };
      h = x;
    }
  });
  let v = gap(bnAct(x, p.head.bn, 'relu'));
  if (p.head.se) { const s = seVec(v, p.head.se); v = v.map((a, i) => a * s[i]!); }
  const lin = (vec: Float64Array, l: { weight: Float32Array; bias: Float32Array }): Float64Array => {
    const o = l.bias.length, n = vec.length, r = new Float64Array(o);
    for (let j = 0; j < o; j++) { let s = l.bias[j]!; for (let i = 0; i < n; i++) s += l.weight[j * n + i]! * vec[i]!; r[j] = s; }
    return r;
  };
  if (p.head.fc) v = lin(v, p.head.fc).map((a) => act(a, 'hardswish'));
  return lin(v, p.head.classifier);
}
