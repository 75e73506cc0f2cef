// The pre-activation input path of a reader: gather planes by index, apply the reader's BN (scale/shift), activate.
import { ACT_NONE, act_f32, act_v128 } from './activation';
import { copy_f32 } from './memory';

/**
 * for i < n: dst[i*hw + p] = act(src[(index ? index[i] : i)*hw + p] * (scale ? scale[i] : 1) + (shift ? shift[i] : 0)).
 * index is i32[n] (0 = identity), scale/shift f32[n] (0 = absent). dst must not overlap src.
 */
export function prepare_channels(src: usize, hw: i32, index: usize, scale: usize, shift: usize, act: i32, n: i32, dst: usize): void {
  const planeBytes = <usize>hw << 2;
  for (let i = 0; i < n; i++) {
    const c = index ? load<i32>(index + (<usize>i << 2)) : i;
    const s = planeBytes * <usize>c + src;
    const d = planeBytes * <usize>i + dst;
    const a: f32 = scale ? load<f32>(scale + (<usize>i << 2)) : 1;
    const b: f32 = shift ? load<f32>(shift + (<usize>i << 2)) : 0;
    if (!scale && !shift && act == ACT_NONE) { copy_f32(d, s, hw); continue; }
    let p = 0;
    if (ASC_FEATURE_SIMD) {
      const va = f32x4.splat(a), vb = f32x4.splat(b);
      for (; p + 8 <= hw; p += 8) {
        const o = <usize>p << 2;
        const x0 = v128.load(s + o), x1 = v128.load(s + o, 16);
        v128.store(d + o, act_v128(f32x4.add(f32x4.mul(x0, va), vb), act));
        v128.store(d + o, act_v128(f32x4.add(f32x4.mul(x1, va), vb), act), 16);
      }
      for (; p + 4 <= hw; p += 4) {
        const o = <usize>p << 2;
        v128.store(d + o, act_v128(f32x4.add(f32x4.mul(v128.load(s + o), va), vb), act));
      }
    }
    for (; p < hw; p++) {
      const o = <usize>p << 2;
      store<f32>(d + o, act_f32(load<f32>(s + o) * a + b, act));
    }
  }
}
