// The pre-activation input path of a reader: gather planes by index, apply the reader's BN (scale/shift), activate.
import { ACT_HARDSWISH, ACT_NONE, ACT_RELU, act_f32, act_v128 } from './activation';
import { copy_f32 } from './memory';

/**
 * for i < n: dst[i*hw + p] = act(src[(index ? index[i] : i)*hw + p] * (scale ? scale[i] : 1) + (shift ? shift[i] : 0)).
 * index is i32[n] (0 = identity), scale/shift f32[n] (0 = absent). dst must not overlap src.
 */
export function prepare_channels(src: usize, hw: i32, index: usize, scale: usize, shift: usize, act: i32, n: i32, dst: usize): void {
  // One function per activation, called through a function reference: the activation is a constant inside the loop,
  // and the kernel stays a function of its own (inlined into the executor's one large function, Cranelift
  // recomputed the addresses inside the loop).
  const fn = act == ACT_RELU ? prepare_relu : act == ACT_HARDSWISH ? prepare_hardswish : prepare_none;
  fn(src, hw, index, scale, shift, n, dst);
}

function prepare_none(src: usize, hw: i32, index: usize, scale: usize, shift: usize, n: i32, dst: usize): void {
  prepare_act(src, hw, index, scale, shift, ACT_NONE, n, dst);
}
function prepare_relu(src: usize, hw: i32, index: usize, scale: usize, shift: usize, n: i32, dst: usize): void {
  prepare_act(src, hw, index, scale, shift, ACT_RELU, n, dst);
}
function prepare_hardswish(src: usize, hw: i32, index: usize, scale: usize, shift: usize, n: i32, dst: usize): void {
  prepare_act(src, hw, index, scale, shift, ACT_HARDSWISH, n, dst);
}

@inline function prepare_act(src: usize, hw: i32, index: usize, scale: usize, shift: usize, act: i32, n: i32, dst: usize): void {
  const planeBytes = <usize>hw << 2;
  const vecEnd = <usize>(hw & ~7) << 2;
  let d = dst;
  for (let i = 0; i < n; i++) {
    const c = index ? load<i32>(index + (<usize>i << 2)) : i;
    const s = planeBytes * <usize>c + src;
    const a: f32 = scale ? load<f32>(scale + (<usize>i << 2)) : 1;
    const b: f32 = shift ? load<f32>(shift + (<usize>i << 2)) : 0;
    if (!scale && !shift && act == ACT_NONE) { copy_f32(d, s, hw); d += planeBytes; continue; }
    let o: usize = 0;
    if (ASC_FEATURE_SIMD) {
      const va = f32x4.splat(a), vb = f32x4.splat(b);
      for (; o < vecEnd; o += 32) {
        const x0 = v128.load(s + o), x1 = v128.load(s + o, 16);
        v128.store(d + o, act_v128(f32x4.add(f32x4.mul(x0, va), vb), act));
        v128.store(d + o, act_v128(f32x4.add(f32x4.mul(x1, va), vb), act), 16);
      }
    }
    for (; o < planeBytes; o += 4) store<f32>(d + o, act_f32(load<f32>(s + o) * a + b, act));
    d += planeBytes;
  }
}
