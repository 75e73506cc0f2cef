// 3x3 convolution, stride 2, padding 1, groups 1 (SIMD builds): the image stems (3 -> 24 at 224x224 in ShuffleNetV2,
// 3 -> 12/16 in CondenseNetV2). The general path (conv2d.ts) reads stride-2 taps as two loads and a shuffle per 4
// pixels, for every tap of every output quad. Here the padded copy splits each padded row into its even columns then
// its odd columns, once per run: output pixel ox then reads even[ox] (kx 0), odd[ox] (kx 1) and even[ox + 1] (kx 2),
// all contiguous, so the stride-1 4-output x 8-pixel tile of conv2d.ts runs it with one load per 4 pixels. The taps
// are summed in the same order with the same multiply-add as the general path: the outputs are the same bits.
import { conv_4oc_s1 } from './conv2d';
import { TAP_RECORD_BYTES } from './ukernels/f32-conv-4x8-taps-wasmsimd';
import { f32_packquad4__wasmsimd } from './ukernels/f32-packquad4-wasmsimd';
import { half_floats, split_pad } from './ukernels/x32-split-pad1-wasmsimd';

// Bytes after the last plane: tile tails read a few floats past a half row (lanes never stored).
const SLACK_BYTES: i64 = 64;

/** Scratch bytes conv3x3s2p1_split needs: the split padded planes, slack and panel; -1 when above i32. */
export function conv3x3s2p1_split_scratch_bytes(cin: i32, h: i32, w: i32): i32 {
  const bytes = <i64>cin * <i64>(h + 2) * <i64>(2 * half_floats(w)) * 4 + SLACK_BYTES + 16 + 64 + <i64>cin * 9 * <i64>TAP_RECORD_BYTES;
  return bytes > <i64>i32.MAX_VALUE ? -1 : <i32>bytes;
}

/**
 * conv2d_group for groups 1, kernel 3, stride 2, padding 1 and cout a multiple of 4, without accumulate together
 * with an activation (the caller checks): same arguments, scratch conv3x3s2p1_split_scratch_bytes(cin, h, w).
 */
export function conv3x3s2p1_split(input: usize, cin: i32, h: i32, w: i32, weight: usize, bias: usize, cout: i32,
                                  out: usize, outH: i32, outW: i32, outIndex: usize, outAct: i32, accumulate: i32,
                                  scratch: usize): void {
  if (ASC_FEATURE_SIMD) { // compiled only in the SIMD builds (the harness exports it from all three)
    const half = half_floats(w);
    const rowD = <usize>half << 3, planeD = <usize>(h + 2) * rowD;
    split_pad(input, cin, h, w, half, scratch, 0);
    const pan = (scratch + <usize>cin * planeD + <usize>SLACK_BYTES + 15) & ~<usize>15;
    for (let o = 0; o < cout; o += 4) {
      const panEnd = pack_split(weight, bias, o, cin, planeD, rowD, <usize>half << 2, pan);
      // An output row steps two padded rows.
      conv_4oc_s1(scratch, pan, panEnd, rowD << 1, outH, outW, o, out, outIndex, outAct, accumulate);
    }
  }
}

// conv2d.ts pack_taps for 4 outputs, with the split rows' tap offsets: kx 1 is in the odd half, kx 2 one float on.
function pack_split(weight: usize, bias: usize, o: i32, cin: i32, planeD: usize, rowD: usize, odd: usize, dst: usize): usize {
  f32_packquad4__wasmsimd(weight, bias, cin * 9, o, dst, TAP_RECORD_BYTES, 16);
  let d = dst + 64;
  for (let i = 0; i < cin; i++) {
    for (let ky = 0; ky < 3; ky++) {
      const row = <usize>i * planeD + <usize>ky * rowD;
      store<i32>(d, <i32>row); store<i32>(d + TAP_RECORD_BYTES, <i32>(row + odd));
      store<i32>(d + 2 * TAP_RECORD_BYTES, <i32>(row + 4));
      d += 3 * TAP_RECORD_BYTES;
    }
  }
  return d;
}
