// The depthwise 3x3 and max-pool kernels (assembly/kernels/depthwise.ts, maxpool.ts) in the three builds against the
// plain references of test/reference/ops.ts (convGroupRef with groups = channels, maxpoolRef) on awkward shapes: odd
// sizes, 1x1 and 2x2 maps, channel counts not a multiple of 4, row tails of 1-3 pixels, every output mode of CONV2D
// (plain, permuted outIndex, repeated outIndex with accumulate, accumulate) and activation. Guards: sentinels around
// the output, and input, weights or scratch at the very end of memory (an over-read traps). Tolerance as in
// kernels.test.ts.
import t from 'tap';
import { BUILDS, Kernels, rng, randomF32, relError } from '../../testkit/kernels.js';
import * as ref from '../reference/ops.js';

const TOL = 1e-5;
const ACTS = [ref.ACT_NONE, ref.ACT_RELU, ref.ACT_HARDSWISH];

// [channels, h, w, stride]
const dwCases: [number, number, number, number][] = [
  [58, 28, 28, 1], [58, 28, 28, 2], [1, 1, 1, 1], [3, 1, 1, 2], [5, 2, 2, 1], [7, 2, 2, 2], [6, 3, 3, 1], [9, 3, 3, 2],
  [13, 7, 7, 1], [13, 7, 7, 2], [4, 5, 9, 1], [11, 9, 5, 2], [2, 13, 14, 1], [24, 14, 15, 2], [3, 1, 17, 1],
  [3, 17, 1, 2], [10, 6, 11, 1], [116, 14, 14, 2], [17, 4, 4, 2], [1, 33, 35, 1],
  // stride 2 (SIMD: the even/odd split copy): ShuffleNetV2's 56 -> 28 and 7x7, even and odd widths, 8k +- 1 rows
  [24, 56, 56, 2], [5, 7, 8, 2], [3, 2, 9, 2], [2, 15, 17, 2], [6, 8, 7, 2],
];

type Mode = 'plain' | 'perm' | 'repeat' | 'accumulate';
const MODES: Mode[] = ['plain', 'perm', 'repeat', 'accumulate'];

for (const build of BUILDS) {
  t.test(`${build}: depthwise3x3`, async (t) => {
    let n = 0;
    for (const [ci, [ch, h, w, s]] of dwCases.entries()) {
      for (let variant = 0; variant < 2; variant++) {
        const r = rng(7000 + ci * 13 + variant);
        const mode = MODES[(ci + variant) % 4];
        const act = ACTS[(ci + 2 * variant) % 3];
        const withBias = (ci + variant) % 2 === 0;
        const oh = ref.outSize(h, 3, s, 1), ow = ref.outSize(w, 3, s, 1);
        const input = randomF32(r, ch * h * w);
        const weight = randomF32(r, ch * 9, -0.5, 0.5);
        const bias = withBias ? randomF32(r, ch) : null;
        let outIndex: number[] | null = null, planes = ch;
        const accumulate = mode === 'repeat' || mode === 'accumulate';
        if (mode === 'perm') {
          outIndex = Array.from({ length: ch }, (_, i) => i);
          for (let i = ch - 1; i > 0; i--) { const j = Math.floor(r() * (i + 1)); [outIndex[i], outIndex[j]] = [outIndex[j]!, outIndex[i]!]; }
        }
        if (mode === 'repeat') {
          planes = Math.max(1, (ch >> 1) + 1);
          outIndex = Array.from({ length: ch }, () => Math.floor(r() * planes));
          if (ch > 1) outIndex[ch - 1] = outIndex[0];
        }
        const init = accumulate ? randomF32(r, planes * oh * ow) : new Float32Array(planes * oh * ow);
        const expected = ref.convGroupRef({ input, cin: ch, h, w, weight, bias, cout: ch, groups: ch, kernel: 3, stride: s,
          pad: 1, outAct: act, outIndex, accumulate, out: init, outPlanes: planes });
        const m = new Kernels(build);
        const bytes = m.k.depthwise3x3_scratch_bytes(h, w);
        t.ok(bytes > 0, 'scratch size fits');
        const atEnd = (ci + variant) % 3;
        const outPtr = m.putGuarded(init, (ci + variant) % 4);
        const biasPtr = bias ? m.put(bias) : 0;
        const idxPtr = outIndex ? m.putI32(outIndex) : 0;
        let inPtr = atEnd === 0 ? 0 : m.put(input);
        let wPtr = atEnd === 2 ? 0 : m.put(weight);
        let scratch = atEnd === 1 ? 0 : m.k.alloc(bytes);
        if (atEnd === 0) inPtr = m.putAtEnd(input);
        if (atEnd === 2) wPtr = m.putAtEnd(weight);
        if (atEnd === 1) scratch = m.reserveAtEnd(bytes);
        m.k.depthwise3x3(inPtr, ch, h, w, wPtr, biasPtr, s, outPtr, oh, ow, idxPtr, act, accumulate ? 1 : 0, scratch);
        const what = `${ch}x${h}x${w} s${s} ${mode} act=${act} bias=${withBias} atEnd=${['input', 'scratch', 'weight'][atEnd]}`;
        const err = relError(m.getF32(outPtr, init.length), expected);
        if (!(err < TOL)) t.fail(`${what}: relative error ${err}`);
        if (m.damagedGuards() !== 0) t.fail(`${what}: wrote outside the output`);
        n++;
      }
    }
    t.equal(n, dwCases.length * 2, `${n} depthwise cases within ${TOL}`);
  });

  t.test(`${build}: maxpool`, async (t) => {
    // [channels, h, w, kernel, stride, pad]: ShuffleNet's 3x3/2 pad 1 on even and odd maps, windows larger than the
    // map with padding, stride 1 and > 2 (the plain path), 1x1 and 2x2 maps.
    const cases = [[24, 112, 112, 3, 2, 1], [5, 13, 13, 3, 2, 1], [3, 14, 15, 3, 2, 1], [2, 1, 1, 1, 1, 0], [3, 1, 1, 3, 1, 1],
      [4, 2, 2, 3, 2, 1], [2, 2, 2, 2, 2, 0], [6, 9, 7, 3, 1, 1], [3, 10, 10, 2, 2, 1], [2, 11, 11, 5, 3, 2],
      [7, 8, 9, 4, 1, 2], [1, 17, 3, 3, 2, 0], [3, 16, 16, 16, 16, 8], [5, 6, 21, 3, 2, 1]];
    for (const [i, [ch, h, w, k, s, p]] of cases.entries()) {
      const r = rng(9000 + i);
      // Negative values: a padding zero would win if the kernel padded with zeros.
      const input = randomF32(r, ch * h * w, -3, -0.5);
      const oh = ref.outSize(h, k, s, p), ow = ref.outSize(w, k, s, p);
      const m = new Kernels(build);
      const bytes = m.k.maxpool_scratch_bytes(h, w, p);
      const out = m.putGuarded(new Float32Array(ch * oh * ow), (h + w) % 4);
      const scratch = i % 2 ? m.k.alloc(bytes) : 0;
      const ip = i % 2 ? m.putAtEnd(input) : m.put(input);
      const sp = i % 2 ? scratch : m.reserveAtEnd(bytes);
      m.k.maxpool(ip, ch, h, w, k, s, p, out, oh, ow, sp);
      const expected = ref.maxpoolRef({ input, channels: ch, h, w, kernel: k, stride: s, pad: p });
      t.ok(relError(m.getF32(out, ch * oh * ow), expected) === 0, `${ch}x${h}x${w} k${k} s${s} p${p}: exact`);
      t.equal(m.damagedGuards(), 0, 'guards intact');
    }
  });

  // ukernels/f32-maxpool3x3s2p1-split, the SIMD builds' choice for 3x3/2 padding 1 (the scalar harness exports a
  // no-op): exact against the reference on even and odd sizes, 1x1, 2x2 and 7x7 maps, rows of 1-3 tail outputs.
  if (build !== 'scalar') t.test(`${build}: maxpool3x3s2p1_split`, async (t) => {
    const cases = [[24, 112, 112], [5, 13, 13], [3, 14, 15], [3, 1, 1], [4, 2, 2], [2, 7, 7], [1, 17, 3], [5, 6, 21],
      [3, 9, 16], [2, 3, 31]];
    for (const [i, [ch, h, w]] of cases.entries()) {
      const r = rng(9500 + i);
      const input = randomF32(r, ch * h * w, -3, -0.5); // a padding zero would win
      const oh = ref.outSize(h, 3, 2, 1), ow = ref.outSize(w, 3, 2, 1);
      const m = new Kernels(build);
      const bytes = m.k.maxpool3x3s2p1_split_scratch_bytes(h, w);
      const out = m.putGuarded(new Float32Array(ch * oh * ow), (h + w) % 4);
      const ip = i % 2 ? m.putAtEnd(input) : m.put(input);
      const sp = i % 2 ? m.k.alloc(bytes) : m.reserveAtEnd(bytes);
      m.k.maxpool3x3s2p1_split(ip, ch, h, w, out, oh, ow, sp);
      const expected = ref.maxpoolRef({ input, channels: ch, h, w, kernel: 3, stride: 2, pad: 1 });
      t.ok(relError(m.getF32(out, ch * oh * ow), expected) === 0, `${ch}x${h}x${w}: exact`);
      t.equal(m.damagedGuards(), 0, 'guards intact');
    }
  });
}
