// Max pooling with padding (ShuffleNetV2's 3x3/2 pool after the stem): each plane is copied into a one-plane scratch
// bordered with -infinity, so a window is a plain max over its taps and padding never wins (every window holds at
// least one input pixel when pad <= kernel/2), as PyTorch's MaxPool2d. SIMD builds take 4 outputs per vector for
// stride 2 (the even lanes of two loads), other strides one output at a time.
import { copy_f32 } from './memory';

// Floats after the padded plane that tail vectors may read (their lanes are dropped): at most 7 past a row's end.
const SLACK_FLOATS: i32 = 8;

/** Scratch bytes maxpool needs: one padded plane and its slack; -1 when that does not fit in an i32. */
export function maxpool_scratch_bytes(h: i32, w: i32, pad: i32): i32 {
  const bytes = (<i64>(h + 2 * pad) * <i64>(w + 2 * pad) + SLACK_FLOATS) * 4;
  return bytes > <i64>i32.MAX_VALUE ? -1 : <i32>bytes;
}

/**
 * out[c][oy][ox] = max over the in-bounds pixels of the kernel x kernel window at (oy*stride - pad, ox*stride - pad).
 * scratch: maxpool_scratch_bytes(h, w, pad) bytes.
 */
export function maxpool(input: usize, channels: i32, h: i32, w: i32, kernel: i32, stride: i32, pad: i32, out: usize,
                        outH: i32, outW: i32, scratch: usize): void {
  const Wp = w + 2 * pad, rowPad = <usize>Wp << 2, rowBytes = <usize>w << 2;
  const n = (h + 2 * pad) * Wp + SLACK_FLOATS;
  for (let i = 0; i < n; i++) store<f32>(scratch + (<usize>i << 2), -Infinity);
  let src = input, dst = out;
  for (let c = 0; c < channels; c++) {
    let d = scratch + <usize>pad * rowPad + (<usize>pad << 2);
    for (let y = 0; y < h; y++) {
      copy_f32(d, src, w);
      d += rowPad; src += rowBytes;
    }
    for (let oy = 0; oy < outH; oy++) {
      const row = scratch + <usize>(oy * stride) * rowPad;
      let ox = 0;
      if (ASC_FEATURE_SIMD && stride == 2) {
        for (; ox + 4 <= outW; ox += 4) {
          let m = f32x4.splat(-Infinity);
          let r = row + (<usize>ox << 3);
          for (let ky = 0; ky < kernel; ky++) {
            for (let kx: usize = 0; kx < <usize>kernel << 2; kx += 4) {
              m = f32x4.pmax(m, v128.shuffle<f32>(v128.load(r + kx), v128.load(r + kx, 16), 0, 2, 4, 6));
            }
            r += rowPad;
          }
          v128.store(dst + (<usize>ox << 2), m);
        }
      }
      for (; ox < outW; ox++) {
        let m: f32 = -Infinity;
        let r = row + (<usize>(ox * stride) << 2);
        for (let ky = 0; ky < kernel; ky++) {
          for (let kx = 0; kx < kernel; kx++) m = max<f32>(m, load<f32>(r + (<usize>kx << 2)));
          r += rowPad;
        }
        store<f32>(dst + (<usize>ox << 2), m);
      }
      dst += <usize>outW << 2;
    }
  }
}
