// Fully connected layer on 1x1 buffers (the head), also used by squeeze-excite.
import { act_f32 } from './activation';

/** out[o] = outAct(bias[o] + sum_i weight[o][i] * input[i]); weight f32[cout][cin], bias optional. out must not overlap input. */
export function fully_connected(input: usize, cin: i32, weight: usize, bias: usize, cout: i32, outAct: i32, out: usize): void {
  const rowBytes = <usize>cin << 2;
  for (let o = 0; o < cout; o++) {
    const w = weight + <usize>o * rowBytes;
    let i = 0;
    let s: f32 = bias ? load<f32>(bias + (<usize>o << 2)) : 0;
    if (ASC_FEATURE_SIMD) {
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
      for (; i + 8 <= cin; i += 8) {
        const q = <usize>i << 2;
        a0 = f32x4.add(a0, f32x4.mul(v128.load(w + q), v128.load(input + q)));
        a1 = f32x4.add(a1, f32x4.mul(v128.load(w + q, 16), v128.load(input + q, 16)));
      }
      a0 = f32x4.add(a0, a1);
      s += (f32x4.extract_lane(a0, 0) + f32x4.extract_lane(a0, 1)) + (f32x4.extract_lane(a0, 2) + f32x4.extract_lane(a0, 3));
    }
    for (; i < cin; i++) s += load<f32>(w + (<usize>i << 2)) * load<f32>(input + (<usize>i << 2));
    store<f32>(out + (<usize>o << 2), act_f32(s, outAct));
  }
}
