// Squeeze-and-excitation, in place: the per-channel gate from the channel means through two small FC layers.
import { ACT_NONE, ACT_RELU } from './activation';
import { plane_mean } from './pool';
import { fully_connected } from './fc';

/**
 * s = mean over hw; h = relu(w1 s + b1) (w1 f32[hidden][channels]); g = sigmoid(w2 h + b2) (w2 f32[channels][hidden]);
 * x[c] *= g[c]. b1/b2 optional. scratch: channels + hidden floats (s, then h; z = w2 h + b2 reuses s).
 */
export function squeeze_excite(x: usize, channels: i32, hw: i32, hidden: i32, w1: usize, b1: usize, w2: usize, b2: usize, scratch: usize): void {
  const plane = <usize>hw << 2;
  const s = scratch, hbuf = scratch + (<usize>channels << 2);
  for (let c = 0; c < channels; c++) store<f32>(s + (<usize>c << 2), <f32>plane_mean(x + <usize>c * plane, hw, 1, 0, ACT_NONE));
  fully_connected(s, channels, w1, b1, hidden, ACT_RELU, hbuf);
  fully_connected(hbuf, hidden, w2, b2, channels, ACT_NONE, s);
  for (let c = 0; c < channels; c++) {
    const z = <f64>load<f32>(s + (<usize>c << 2));
    const g = <f32>(1.0 / (1.0 + Math.exp(-z)));
    scale_plane(x + <usize>c * plane, hw, g);
  }
}

@inline function scale_plane(p: usize, hw: i32, g: f32): void {
  let q = 0;
  if (ASC_FEATURE_SIMD) {
    const vg = f32x4.splat(g);
    for (; q + 4 <= hw; q += 4) {
      const r = p + (<usize>q << 2);
      v128.store(r, f32x4.mul(v128.load(r), vg));
    }
  }
  for (; q < hw; q++) {
    const r = p + (<usize>q << 2);
    store<f32>(r, load<f32>(r) * g);
  }
}
