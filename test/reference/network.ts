// Eval-mode forward pass of the TRAINING-FORM network (dense masked convs, BN, activations, SE, SFR add,
// concat, pools, head), float64, written as directly as possible from the paper / official code structure.
// It shares no code with the converter: it is the ground truth condensation is checked against.
import { blockChannels } from '../../base/arch/configs.js';
import type { BatchNormParams, NetworkParams, SeParams } from '../../base/arch/params.js';

type Planes = Float64Array[]; // one H*W plane per channel

function act(kind: 'relu' | 'hardswish', x: number): number {
  return kind === 'relu' ? Math.max(x, 0) : (x * Math.min(Math.max(x + 3, 0), 6)) / 6;
}

function bnAct(x: Planes, bn: BatchNormParams, kind: 'relu' | 'hardswish'): Planes {
  return x.map((plane, c) => plane.map((v) =>
    act(kind, ((v - bn.mean[c]!) / Math.sqrt(bn.variance[c]! + bn.eps)) * bn.gamma[c]! + bn.beta[c]!)));
}

/** Dense conv, PyTorch semantics: weight [cout, cin/groups, k, k], zero padding, contiguous groups. */
function conv(x: Planes, H: number, W: number, weight: Float32Array, cout: number, k: number, stride: number,
  pad: number, groups: number, mask?: Uint8Array): { y: Planes; H: number; W: number } {
  const cin = x.length;
  const cinG = cin / groups, coutG = cout / groups;
  const Ho = Math.floor((H + 2 * pad - k) / stride) + 1, Wo = Math.floor((W + 2 * pad - k) / stride) + 1;
  const y: Planes = [];
  for (let o = 0; o < cout; o++) {
    const g = Math.floor(o / coutG);
    const out = new Float64Array(Ho * Wo);
    for (let i = 0; i < cinG; i++) {
      const widx = o * cinG + i;
      if (mask && !mask[widx]) continue; // masked weight (1x1 only: mask is [cout, cin])
      const plane = x[g * cinG + i]!;
      for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) {
        const wv = weight[(widx * k + ky) * k + kx]!;
        for (let oy = 0; oy < Ho; oy++) {
          const iy = oy * stride + ky - pad;
          if (iy < 0 || iy >= H) continue;
          for (let ox = 0; ox < Wo; ox++) {
            const ix = ox * stride + kx - pad;
            if (ix < 0 || ix >= W) continue;
            out[oy * Wo + ox] += wv * plane[iy * W + ix]!;
          }
        }
      }
    }
    y.push(out);
  }
  return { y, H: Ho, W: Wo };
}

function se(x: Planes, p: SeParams): Planes {
  const C = x.length;
  const s = x.map((plane) => plane.reduce((a, b) => a + b, 0) / plane.length);
  const h = Array.from({ length: p.hidden }, (_, j) => Math.max(0, s.reduce((acc, v, c) => acc + p.w1[j * C + c]! * v, 0)));
  return x.map((plane, c) => {
    const z = h.reduce((acc, v, j) => acc + p.w2[c * p.hidden + j]! * v, 0);
    const gate = 1 / (1 + Math.exp(-z));
    return plane.map((v) => v * gate);
  });
}

function linear(x: number[], w: Float32Array, b: Float32Array): number[] {
  return Array.from({ length: b.length }, (_, o) => x.reduce((acc, v, i) => acc + w[o * x.length + i]! * v, b[o]!));
}

/** Logits of the training-form network for a normalised CHW input. */
export function referenceForward(p: NetworkParams, input: Float64Array): Float64Array {
  const cfg = p.config;
  const { height: H0, width: W0, channels: C0 } = cfg.input;
  const x0: Planes = Array.from({ length: C0 }, (_, c) => input.slice(c * H0 * W0, (c + 1) * H0 * W0));
  let { y: x, H, W } = conv(x0, H0, W0, p.stem.weight, cfg.stemChannels, 3, cfg.stemStride, 1, 1);
  const blocks = blockChannels(cfg);
  for (let b = 0; b < blocks.length; b++) {
    for (const layer of p.blocks[b]!) {
      const k = layer.growth;
      const bk = cfg.bottleneck * k;
      const a = layer.activation;
      const z = conv(bnAct(x, layer.lgc.bn, a), H, W, layer.lgc.weight, bk, 1, 1, 0, 1, layer.lgc.mask).y;
      let n = conv(bnAct(z, layer.conv.bn, a), H, W, layer.conv.weight, k, 3, 1, 1, cfg.group3x3).y;
      if (layer.se) n = se(n, layer.se);
      if (layer.sfr) {
        const r = conv(bnAct(n, layer.sfr.bn, a), H, W, layer.sfr.weight, x.length, 1, 1, 0, 1, layer.sfr.mask).y;
        x = x.map((plane, c) => plane.map((v, q) => v + r[c]![q]!));
      }
      x = [...x, ...n];
    }
    if (b < blocks.length - 1) {
      const Ho = Math.floor(H / 2), Wo = Math.floor(W / 2);
      x = x.map((plane) => {
        const out = new Float64Array(Ho * Wo);
        for (let oy = 0; oy < Ho; oy++) for (let ox = 0; ox < Wo; ox++) {
          out[oy * Wo + ox] = (plane[2 * oy * W + 2 * ox]! + plane[2 * oy * W + 2 * ox + 1]!
            + plane[(2 * oy + 1) * W + 2 * ox]! + plane[(2 * oy + 1) * W + 2 * ox + 1]!) / 4;
        }
        return out;
      });
      H = Ho; W = Wo;
    }
  }
  let pooled = bnAct(x, p.head.bn, 'relu').map((plane) => [plane.reduce((a, v) => a + v, 0) / plane.length]);
  if (p.head.se) pooled = se(pooled.map((v) => Float64Array.from(v)), p.head.se).map((v) => [v[0]!]);
  let vec = pooled.map((v) => v[0]!);
  if (p.head.fc) vec = linear(vec, p.head.fc.weight, p.head.fc.bias).map((v) => act('hardswish', v));
  return Float64Array.from(linear(vec, p.head.classifier.weight, p.head.classifier.bias));
}
