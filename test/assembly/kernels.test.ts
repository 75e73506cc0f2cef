// Every kernel of assembly/kernels in the three builds (SIMD, scalar, relaxed SIMD) against test/reference/ops.ts on
// awkward shapes, plus guard tests: sentinels around every output (no write outside it) and inputs/scratch/weights
// placed at the very end of linear memory (a read past their end traps).
//
// Tolerance: max|a - b| / max(1e-6, max|ref|) < 1e-5. The kernels accumulate in f32 in a different order than the
// f64 reference (and FMA in the relaxed build); with at most a few thousand terms of magnitude <= 1 the rounding
// error is ~sqrt(terms) * 2^-24 relative to the output scale, well below 1e-5, while any indexing, tail or padding
// bug changes values by O(1) relative to that scale.
import t from 'tap';
import { readFileSync } from 'node:fs';
import binaryen from 'binaryen';
import { BUILDS, Kernels, rng, randomF32, relError, wasmPath } from '../../testkit/kernels.js';
import * as ref from '../reference/ops.js';

const TOL = 1e-5;
const ACTS = [ref.ACT_NONE, ref.ACT_RELU, ref.ACT_HARDSWISH];

function permutation(r: () => number, n: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

interface ConvCase {
  cin: number; h: number; w: number; cout: number; groups: number; k: number; s: number; p: number;
}
type OutMode = 'plain' | 'perm' | 'repeat' | 'accumulate';
const OUT_MODES: OutMode[] = ['plain', 'perm', 'repeat', 'accumulate'];

// Shapes: stems, the 3x3 group conv with 1, 3, 4 and more outputs per group, odd sizes, all kernel sizes, strides 1-4.
const conv2dCases: ConvCase[] = [
  { cin: 3, h: 13, w: 13, cout: 16, groups: 1, k: 3, s: 2, p: 1 },
  { cin: 3, h: 28, w: 28, cout: 12, groups: 1, k: 3, s: 1, p: 1 },
  { cin: 12, h: 5, w: 9, cout: 8, groups: 4, k: 3, s: 1, p: 1 },
  { cin: 16, h: 14, w: 14, cout: 8, groups: 8, k: 3, s: 1, p: 1 },
  { cin: 32, h: 14, w: 14, cout: 8, groups: 2, k: 3, s: 1, p: 1 },
  { cin: 32, h: 28, w: 28, cout: 32, groups: 8, k: 3, s: 1, p: 1 },
  { cin: 8, h: 7, w: 7, cout: 12, groups: 4, k: 3, s: 1, p: 1 },
  { cin: 17, h: 7, w: 7, cout: 5, groups: 1, k: 5, s: 1, p: 2 },
  { cin: 8, h: 7, w: 7, cout: 12, groups: 4, k: 7, s: 1, p: 3 },
  { cin: 6, h: 13, w: 13, cout: 6, groups: 2, k: 3, s: 2, p: 1 },
  { cin: 4, h: 13, w: 11, cout: 8, groups: 2, k: 5, s: 2, p: 2 },
  { cin: 5, h: 9, w: 10, cout: 5, groups: 5, k: 3, s: 2, p: 0 },
  { cin: 4, h: 9, w: 9, cout: 4, groups: 1, k: 3, s: 1, p: 0 },
  { cin: 12, h: 14, w: 14, cout: 4, groups: 4, k: 1, s: 2, p: 0 },
  { cin: 6, h: 11, w: 11, cout: 9, groups: 3, k: 3, s: 3, p: 1 },
  { cin: 3, h: 17, w: 17, cout: 4, groups: 1, k: 7, s: 4, p: 3 },
  { cin: 4, h: 1, w: 1, cout: 8, groups: 2, k: 3, s: 1, p: 1 },
  { cin: 2, h: 1, w: 1, cout: 3, groups: 1, k: 1, s: 1, p: 0 },
  { cin: 8, h: 3, w: 21, cout: 8, groups: 1, k: 3, s: 1, p: 1 },
  { cin: 16, h: 9, w: 19, cout: 8, groups: 2, k: 3, s: 2, p: 1 },
];

// Pointwise shapes: hw from 1 to 784 (pixel chunks and 8/4/scalar tails), 1..6 outputs per group, many groups.
const conv1x1Cases = [
  { cin: 3, hw: 1, cout: 5, groups: 1 },
  { cin: 12, hw: 45, cout: 8, groups: 4 },
  { cin: 17, hw: 49, cout: 17, groups: 1 },
  { cin: 16, hw: 196, cout: 16, groups: 8 },
  { cin: 32, hw: 169, cout: 32, groups: 4 },
  { cin: 8, hw: 7, cout: 12, groups: 4 },
  { cin: 20, hw: 100, cout: 12, groups: 2 },
  { cin: 64, hw: 203, cout: 8, groups: 1 },
  { cin: 128, hw: 784, cout: 32, groups: 4 },
  { cin: 5, hw: 3, cout: 5, groups: 5 },
  { cin: 24, hw: 12, cout: 48, groups: 8 },
  // Quad panels too big to pack whole (over 64 KiB per group): each quad packed once for the whole plane; cin not a
  // multiple of 4 (the packing's input tail), 1- and 49-pixel planes, groups > 1.
  { cin: 116, hw: 196, cout: 116, groups: 1 },
  { cin: 233, hw: 49, cout: 230, groups: 1 },
  { cin: 135, hw: 1, cout: 130, groups: 1 },
  { cin: 270, hw: 13, cout: 68, groups: 2 },
];

/** Output plane targets, initial output and accumulate flag for one mode. */
function outputSetup(r: () => number, mode: OutMode, cout: number, planeSize: number) {
  let outIndex: number[] | null = null, planes = cout, accumulate = false;
  if (mode === 'perm') outIndex = permutation(r, cout);
  if (mode === 'repeat') {
    planes = Math.max(1, Math.floor(cout / 2) + 1);
    outIndex = Array.from({ length: cout }, () => Math.floor(r() * planes));
    if (cout > 1) outIndex[cout - 1] = outIndex[0]; // at least one repeated target
    accumulate = true;
  }
  if (mode === 'accumulate') accumulate = true;
  const init = accumulate ? randomF32(r, planes * planeSize) : new Float32Array(planes * planeSize);
  return { outIndex, planes, accumulate, init };
}

for (const build of BUILDS) {
  t.test(`${build}: conv2d_group`, async (t) => {
    let n = 0;
    for (const [ci, c] of conv2dCases.entries()) {
      for (let variant = 0; variant < 2; variant++) {
        const r = rng(1000 + ci * 7 + variant);
        const mode = OUT_MODES[(ci + variant) % OUT_MODES.length];
        const act = ACTS[(ci + 2 * variant) % 3];
        const withBias = (ci + variant) % 2 === 0;
        const oh = ref.outSize(c.h, c.k, c.s, c.p), ow = ref.outSize(c.w, c.k, c.s, c.p);
        const input = randomF32(r, c.cin * c.h * c.w);
        const weight = randomF32(r, c.cout * (c.cin / c.groups) * c.k * c.k, -0.5, 0.5);
        const bias = withBias ? randomF32(r, c.cout) : null;
        const o = outputSetup(r, mode, c.cout, oh * ow);
        const expected = ref.convGroupRef({ input, cin: c.cin, h: c.h, w: c.w, weight, bias, cout: c.cout, groups: c.groups,
          kernel: c.k, stride: c.s, pad: c.p, outAct: act, outIndex: o.outIndex, accumulate: o.accumulate, out: o.init, outPlanes: o.planes });

        const m = new Kernels(build);
        const scratchBytes = m.k.conv2d_scratch_bytes(c.cin, c.h, c.w, c.k, c.s, c.p);
        t.ok(scratchBytes >= 0, 'scratch size fits');
        // One of input / scratch / weight sits at the end of memory: an over-read traps.
        const atEnd = (ci + variant) % 3;
        const outPtr = m.putGuarded(o.init, (ci + variant) % 4);
        const biasPtr = bias ? m.put(bias) : 0;
        const idxPtr = o.outIndex ? m.putI32(o.outIndex) : 0;
        let inPtr = atEnd === 0 ? 0 : m.put(input);
        let wPtr = atEnd === 2 ? 0 : m.put(weight);
        let scratch = atEnd === 1 || scratchBytes === 0 ? 0 : m.k.alloc(scratchBytes);
        if (atEnd === 0) inPtr = m.putAtEnd(input);
        if (atEnd === 2) wPtr = m.putAtEnd(weight);
        if (atEnd === 1 && scratchBytes > 0) scratch = m.reserveAtEnd(scratchBytes);
        const what = `${JSON.stringify(c)} ${mode} act=${act} bias=${withBias} atEnd=${['input', 'scratch', 'weight'][atEnd]}`;
        m.k.conv2d_group(inPtr, c.cin, c.h, c.w, wPtr, biasPtr, c.cout, c.groups, c.k, c.s, c.p, outPtr, oh, ow, idxPtr,
          act, o.accumulate ? 1 : 0, scratch);
        const err = relError(m.getF32(outPtr, o.init.length), expected);
        if (!(err < TOL)) t.fail(`${what}: relative error ${err}`);
        if (m.damagedGuards() !== 0) t.fail(`${what}: wrote outside the output`);
        n++;
      }
    }
    t.pass(`${n} conv2d cases within ${TOL}`);
  });

  // The stems' kernel (kernels/conv3x3s2p1-split.ts): 3x3, stride 2, padding 1, groups 1, cout a
  // multiple of 4, SIMD builds only (the scalar harness exports a no-op). Even and odd widths (the split rows' right
  // border lands in the even or the odd half), 1x1, 2x2 and 7x7 maps, row tails of 1-7 outputs, every output mode
  // (accumulate without an activation: the op layer sends accumulate + activation to conv2d_group).
  if (build !== 'scalar') t.test(`${build}: conv3x3s2p1_split`, async (t) => {
    const cases: [number, number, number, number][] = [[3, 32, 32, 16], [3, 1, 1, 4], [3, 2, 2, 8], [3, 7, 7, 12],
      [1, 9, 13, 4], [5, 15, 8, 8], [3, 16, 17, 24], [4, 3, 30, 4], [2, 33, 7, 4], [3, 29, 27, 12], [7, 6, 5, 16]];
    let n = 0;
    for (const [ci, [cin, h, w, cout]] of cases.entries()) {
      for (let variant = 0; variant < 2; variant++) {
        const r = rng(5000 + ci * 7 + variant);
        const mode = OUT_MODES[(ci + variant) % OUT_MODES.length];
        const withBias = (ci + variant) % 2 === 0;
        const oh = ref.outSize(h, 3, 2, 1), ow = ref.outSize(w, 3, 2, 1);
        const input = randomF32(r, cin * h * w);
        const weight = randomF32(r, cout * cin * 9, -0.5, 0.5);
        const bias = withBias ? randomF32(r, cout) : null;
        const o = outputSetup(r, mode, cout, oh * ow);
        const act = o.accumulate ? ref.ACT_NONE : ACTS[(ci + 2 * variant) % 3];
        const expected = ref.convGroupRef({ input, cin, h, w, weight, bias, cout, groups: 1, kernel: 3, stride: 2, pad: 1,
          outAct: act, outIndex: o.outIndex, accumulate: o.accumulate, out: o.init, outPlanes: o.planes });
        const m = new Kernels(build);
        const scratchBytes = m.k.conv3x3s2p1_split_scratch_bytes(cin, h, w);
        t.ok(scratchBytes > 0, 'scratch size fits');
        const atEnd = (ci + variant) % 3;
        const outPtr = m.putGuarded(o.init, (ci + variant) % 4);
        const biasPtr = bias ? m.put(bias) : 0;
        const idxPtr = o.outIndex ? m.putI32(o.outIndex) : 0;
        const inPtr = atEnd === 0 ? m.putAtEnd(input) : m.put(input);
        const wPtr = atEnd === 2 ? m.putAtEnd(weight) : m.put(weight);
        const scratch = atEnd === 1 ? m.reserveAtEnd(scratchBytes) : m.k.alloc(scratchBytes);
        const what = `${cin}x${h}x${w} -> ${cout} ${mode} act=${act} bias=${withBias} atEnd=${['input', 'scratch', 'weight'][atEnd]}`;
        m.k.conv3x3s2p1_split(inPtr, cin, h, w, wPtr, biasPtr, cout, outPtr, oh, ow, idxPtr, act, o.accumulate ? 1 : 0, scratch);
        const err = relError(m.getF32(outPtr, o.init.length), expected);
        if (!(err < TOL)) t.fail(`${what}: relative error ${err}`);
        if (m.damagedGuards() !== 0) t.fail(`${what}: wrote outside the output`);
        n++;
      }
    }
    t.equal(n, cases.length * 2, `${n} conv3x3s2p1_split cases within ${TOL}`);
  });

  t.test(`${build}: conv1x1_group`, async (t) => {
    let n = 0;
    for (const [ci, c] of conv1x1Cases.entries()) {
      for (let variant = 0; variant < 4; variant++) {
        const r = rng(5000 + ci * 11 + variant);
        const mode = OUT_MODES[variant];
        const act = ACTS[(ci + variant) % 3];
        const withBias = (ci + variant) % 2 === 1;
        const input = randomF32(r, c.cin * c.hw);
        const weight = randomF32(r, c.cout * (c.cin / c.groups), -0.5, 0.5);
        const bias = withBias ? randomF32(r, c.cout) : null;
        const o = outputSetup(r, mode, c.cout, c.hw);
        const expected = ref.convGroupRef({ input, cin: c.cin, h: 1, w: c.hw, weight, bias, cout: c.cout, groups: c.groups,
          kernel: 1, stride: 1, pad: 0, outAct: act, outIndex: o.outIndex, accumulate: o.accumulate, out: o.init, outPlanes: o.planes });
        const m = new Kernels(build);
        const outPtr = m.putGuarded(o.init, variant);
        const biasPtr = bias ? m.put(bias) : 0;
        const idxPtr = o.outIndex ? m.putI32(o.outIndex) : 0;
        const wPtr = variant % 2 ? m.put(weight) : 0;
        const inPtr = variant % 2 ? m.putAtEnd(input) : m.put(input);
        const wFinal = variant % 2 ? wPtr : m.putAtEnd(weight);
        m.k.conv1x1_group(inPtr, c.cin, c.hw, wFinal, biasPtr, c.cout, c.groups, outPtr, idxPtr, act, o.accumulate ? 1 : 0);
        const what = `${JSON.stringify(c)} ${mode} act=${act} bias=${withBias}`;
        const err = relError(m.getF32(outPtr, o.init.length), expected);
        if (!(err < TOL)) t.fail(`${what}: relative error ${err}`);
        if (m.damagedGuards() !== 0) t.fail(`${what}: wrote outside the output`);
        // The same layer through conv2d_group (1x1 stride 1 delegates to conv1x1_group, needs no scratch).
        t.equal(m.k.conv2d_scratch_bytes(c.cin, 1, c.hw, 1, 1, 0), 0);
        n++;
      }
    }
    t.pass(`${n} conv1x1 cases within ${TOL}`);
  });

  t.test(`${build}: activate_inplace`, async (t) => {
    for (const n of [1, 3, 4, 5, 8, 17, 33]) {
      for (const act of ACTS) {
        const r = rng(n * 3 + act);
        const x = randomF32(r, n, -5, 5);
        const m = new Kernels(build);
        const p = m.putGuarded(x, n % 4);
        m.k.activate_inplace(p, n, act);
        t.ok(relError(m.getF32(p, n), ref.activateRef(x, act)) < TOL, `n=${n} act=${act}`);
        t.equal(m.damagedGuards(), 0, 'guards intact');
      }
    }
  });

  t.test(`${build}: prepare_channels`, async (t) => {
    let i = 0;
    for (const hw of [1, 5, 7, 45, 49, 196]) {
      for (const n of [1, 3, 5, 17]) {
        const r = rng(hw * 31 + n);
        const srcPlanes = n + 3;
        const src = randomF32(r, srcPlanes * hw, -4, 4);
        const useIndex = i % 2 === 0, useScale = i % 3 !== 0, useShift = i % 4 !== 1;
        const index = useIndex ? Array.from({ length: n }, () => Math.floor(r() * srcPlanes)) : null;
        if (index) index[0] = srcPlanes - 1; // the last source plane: its tail must not be read past
        const scale = useScale ? randomF32(r, n, 0.5, 2) : null, shift = useShift ? randomF32(r, n) : null;
        const act = ACTS[i % 3];
        const expected = ref.prepareChannelsRef({ src: useIndex ? src : src.subarray(0, n * hw), hw, n, act, index, scale, shift });
        const m = new Kernels(build);
        const dst = m.putGuarded(new Float32Array(n * hw), i % 4);
        const ip = index ? m.putI32(index) : 0, sp = scale ? m.put(scale) : 0, bp = shift ? m.put(shift) : 0;
        const srcPtr = m.putAtEnd(useIndex ? src : src.slice(0, n * hw));
        m.k.prepare_channels(srcPtr, hw, ip, sp, bp, act, n, dst);
        const err = relError(m.getF32(dst, n * hw), expected);
        if (!(err < TOL)) t.fail(`hw=${hw} n=${n} index=${useIndex} scale=${useScale} shift=${useShift} act=${act}: ${err}`);
        if (m.damagedGuards() !== 0) t.fail(`hw=${hw} n=${n}: wrote outside dst`);
        i++;
      }
    }
    t.pass(`${i} prepare cases`);
  });

  t.test(`${build}: avgpool`, async (t) => {
    const cases = [[3, 14, 14, 2, 2], [5, 13, 13, 2, 2], [2, 7, 7, 7, 7], [4, 9, 5, 3, 2], [3, 8, 8, 2, 2], [2, 30, 30, 2, 2],
      [1, 1, 1, 1, 1], [3, 12, 12, 3, 3], [2, 17, 9, 2, 1], [6, 10, 18, 2, 2], [2, 16, 16, 16, 16]];
    for (const [ch, h, w, k, s] of cases) {
      const r = rng(ch * 1000 + h * 10 + k);
      const input = randomF32(r, ch * h * w);
      const oh = ref.outSize(h, k, s, 0), ow = ref.outSize(w, k, s, 0);
      const m = new Kernels(build);
      const out = m.putGuarded(new Float32Array(ch * oh * ow), (h + w) % 4);
      const ip = m.putAtEnd(input);
      m.k.avgpool(ip, ch, h, w, k, s, out, oh, ow);
      const err = relError(m.getF32(out, ch * oh * ow), ref.avgpoolRef({ input, channels: ch, h, w, kernel: k, stride: s }));
      t.ok(err < TOL, `${ch}x${h}x${w} k${k} s${s}: ${err}`);
      t.equal(m.damagedGuards(), 0, 'guards intact');
    }
  });

  t.test(`${build}: global_avgpool`, async (t) => {
    let i = 0;
    for (const hw of [1, 7, 49, 196, 12544]) {
      for (const ch of [3, 17]) {
        const r = rng(hw + ch);
        const input = randomF32(r, ch * hw, -3, 3);
        const withBn = i % 2 === 0;
        const scale = withBn ? randomF32(r, ch, 0.5, 2) : null, shift = withBn ? randomF32(r, ch) : null;
        const act = ACTS[i % 3];
        const m = new Kernels(build);
        const out = m.putGuarded(new Float32Array(ch), i % 4);
        const sp = scale ? m.put(scale) : 0, bp = shift ? m.put(shift) : 0;
        const ip = m.putAtEnd(input);
        m.k.global_avgpool(ip, ch, hw, sp, bp, act, out);
        const err = relError(m.getF32(out, ch), ref.globalAvgpoolRef({ input, channels: ch, hw, act, scale, shift }));
        t.ok(err < TOL, `hw=${hw} ch=${ch} bn=${withBn} act=${act}: ${err}`);
        t.equal(m.damagedGuards(), 0, 'guards intact');
        i++;
      }
    }
  });

  t.test(`${build}: squeeze_excite`, async (t) => {
    let i = 0;
    for (const [ch, hidden] of [[5, 5], [17, 2], [32, 32], [8, 1], [64, 4]]) {
      for (const hw of [1, 49, 196]) {
        const r = rng(ch * 100 + hidden + hw);
        const x = randomF32(r, ch * hw, -2, 2);
        const w1 = randomF32(r, hidden * ch), w2 = randomF32(r, ch * hidden);
        const withBias = i % 2 === 1;
        const b1 = withBias ? randomF32(r, hidden) : null, b2 = withBias ? randomF32(r, ch) : null;
        const m = new Kernels(build);
        const xp = m.putGuarded(x, i % 4);
        const scratch = m.putGuarded(new Float32Array(ch + hidden));
        const w1p = m.put(w1), b1p = b1 ? m.put(b1) : 0, b2p = b2 ? m.put(b2) : 0;
        const w2p = m.putAtEnd(w2);
        m.k.squeeze_excite(xp, ch, hw, hidden, w1p, b1p, w2p, b2p, scratch);
        const err = relError(m.getF32(xp, ch * hw), ref.squeezeExciteRef({ x, channels: ch, hw, hidden, w1, b1, w2, b2 }));
        t.ok(err < TOL, `C=${ch} hidden=${hidden} hw=${hw} bias=${withBias}: ${err}`);
        t.equal(m.damagedGuards(), 0, 'guards intact (x and scratch)');
        i++;
      }
    }
  });

  t.test(`${build}: fully_connected`, async (t) => {
    let i = 0;
    for (const cin of [1, 3, 7, 8, 17, 100, 1024]) {
      for (const cout of [1, 5, 33]) {
        const r = rng(cin * 7 + cout);
        const input = randomF32(r, cin), weight = randomF32(r, cout * cin);
        const bias = i % 2 ? randomF32(r, cout) : null;
        const act = ACTS[i % 3];
        const m = new Kernels(build);
        const out = m.putGuarded(new Float32Array(cout), i % 4);
        const bp = bias ? m.put(bias) : 0, wp = m.put(weight);
        const ip = m.putAtEnd(input);
        m.k.fully_connected(ip, cin, wp, bp, cout, act, out);
        const err = relError(m.getF32(out, cout), ref.fullyConnectedRef({ input, cin, weight, bias, cout, outAct: act }));
        t.ok(err < TOL, `cin=${cin} cout=${cout} act=${act}: ${err}`);
        t.equal(m.damagedGuards(), 0, 'guards intact');
        i++;
      }
    }
  });

  t.test(`${build}: channel_shuffle`, async (t) => {
    for (const [ch, groups] of [[12, 4], [8, 2], [6, 3], [5, 1], [16, 8], [7, 7]]) {
      for (const hw of [1, 7, 49]) {
        const input = randomF32(rng(ch * hw + groups), ch * hw);
        const m = new Kernels(build);
        const out = m.putGuarded(new Float32Array(ch * hw), hw % 4);
        const ip = m.putAtEnd(input);
        m.k.channel_shuffle(ip, ch, hw, groups, out);
        t.same(Array.from(m.getF32(out, ch * hw)), Array.from(ref.channelShuffleRef(input, ch, hw, groups)), `C=${ch} g=${groups} hw=${hw}`);
        t.equal(m.damagedGuards(), 0, 'guards intact');
      }
    }
  });

  t.test(`${build}: softmax`, async (t) => {
    for (const [n, lo, hi] of [[1, -1, 1], [2, -1, 1], [10, -20, 20], [1000, -5, 5], [37, 900, 1000], [5, -1000, -990]]) {
      const x = randomF32(rng(n + lo), n, lo, hi);
      const m = new Kernels(build);
      const out = m.putGuarded(new Float32Array(n), n % 4);
      const ip = m.putAtEnd(x);
      m.k.softmax(ip, n, out);
      const y = m.getF32(out, n);
      t.ok(relError(y, ref.softmaxRef(x)) < TOL, `n=${n} in [${lo}, ${hi})`);
      t.ok(Math.abs(y.reduce((a, b) => a + b, 0) - 1) < 1e-5, 'sums to 1');
      t.equal(m.damagedGuards(), 0, 'guards intact');
      // In place (out == input) is allowed.
      const xp = m.put(x);
      m.k.softmax(xp, n, xp);
      t.ok(relError(m.getF32(xp, n), ref.softmaxRef(x)) < TOL, 'in place');
    }
  });

  t.test(`${build}: top_k`, async (t) => {
    for (const [n, k, levels] of [[10, 3, 4], [1, 1, 1], [100, 5, 7], [1000, 10, 50], [20, 20, 3], [6, 2, 0]]) {
      const r = rng(n * 13 + k);
      // Few distinct levels force ties; levels 0 means continuous values. A NaN is mixed in when n > 3.
      const x = Float32Array.from({ length: n }, () => (levels ? Math.floor(r() * levels) : r()));
      if (n > 3) x[1] = NaN;
      const m = new Kernels(build);
      const out = m.putGuarded(new Float32Array(k), 1);
      const ip = m.putAtEnd(x);
      m.k.top_k(ip, n, k, out);
      t.same(Array.from(m.getI32(out, k)), ref.topKRef(x, k), `n=${n} k=${k} levels=${levels}`);
      t.equal(m.damagedGuards(), 0, 'guards intact');
    }
  });

  t.test(`${build}: peak_madd`, async (t) => {
    const m = new Kernels(build);
    t.equal(m.k.peak_madds_per_iteration(), build === 'scalar' ? 12 : 48);
    const v = m.k.peak_madd(1000);
    t.ok(Number.isFinite(v) && v > 0, `checksum ${v} finite`);
    // v converges to c/(1-m) = 1 per lane, so the checksum approaches the number of lanes summed.
    t.ok(Math.abs(m.k.peak_madd(100000) - m.k.peak_madds_per_iteration()) < 0.1, 'converged checksum');
  });
}

// The whole-op composition the engine uses for CONV2D (prepare_channels into a temporary, then conv2d_group into the
// output buffer at outChannel) against conv2dOpRef, with every optional field.
t.test('CONV2D op = prepare_channels + conv2d_group (all builds)', async (t) => {
  const cases = [
    { cin: 12, h: 9, w: 9, cout: 8, groups: 4, kernel: 1, stride: 1, pad: 0, inAct: 2, outAct: 0, repeat: true },
    { cin: 16, h: 7, w: 11, cout: 4, groups: 4, kernel: 3, stride: 1, pad: 1, inAct: 1, outAct: 0, repeat: false },
    { cin: 3, h: 15, w: 15, cout: 6, groups: 1, kernel: 3, stride: 2, pad: 1, inAct: 0, outAct: 2, repeat: false },
  ];
  for (const build of BUILDS) {
    for (const [ci, c] of cases.entries()) {
      const r = rng(77 + ci);
      const inBufC = c.cin + 5, outBufC = c.cout + 6, inChannel = 2, outChannel = 3;
      const oh = ref.outSize(c.h, c.kernel, c.stride, c.pad), ow = ref.outSize(c.w, c.kernel, c.stride, c.pad);
      const inIndex = Array.from({ length: c.cin }, () => Math.floor(r() * (inBufC - inChannel)));
      const outIndex = c.repeat ? Array.from({ length: c.cout }, () => Math.floor(r() * 3)) : permutation(r, c.cout);
      const op: ref.Conv2dOp = {
        inBuffer: 0, inChannel, cin: c.cin, outBuffer: 1, outChannel, cout: c.cout, kernel: c.kernel, stride: c.stride,
        pad: c.pad, groups: c.groups, inAct: c.inAct, outAct: c.outAct, accumulate: c.repeat,
        weight: randomF32(r, c.cout * (c.cin / c.groups) * c.kernel ** 2), bias: randomF32(r, c.cout), inIndex,
        inScale: randomF32(r, c.cin, 0.5, 1.5), inShift: randomF32(r, c.cin), outIndex,
      };
      const inBuf = ref.makeBuffer(inBufC, c.h, c.w, randomF32(r, inBufC * c.h * c.w));
      const outInit = randomF32(r, outBufC * oh * ow);
      const bufs = [inBuf, ref.makeBuffer(outBufC, oh, ow, outInit.slice())];
      ref.conv2dOpRef(bufs, op);

      const m = new Kernels(build);
      const hw = c.h * c.w;
      const inPtr = m.put(inBuf.data), outPtr = m.putGuarded(outInit);
      const tmp = m.allocF32(c.cin * hw);
      const scratchBytes = m.k.conv2d_scratch_bytes(c.cin, c.h, c.w, c.kernel, c.stride, c.pad);
      const scratch = scratchBytes ? m.k.alloc(scratchBytes) : 0;
      m.k.prepare_channels(inPtr + inChannel * hw * 4, hw, m.putI32(inIndex), m.put(op.inScale!), m.put(op.inShift!), c.inAct, c.cin, tmp);
      m.k.conv2d_group(tmp, c.cin, c.h, c.w, m.put(op.weight), m.put(op.bias!), c.cout, c.groups, c.kernel, c.stride, c.pad,
        outPtr + outChannel * oh * ow * 4, oh, ow, m.putI32(outIndex), c.outAct, c.repeat ? 1 : 0, scratch);
      const err = relError(m.getF32(outPtr, outBufC * oh * ow), bufs[1].data);
      t.ok(err < TOL, `${build} case ${ci}: ${err}`);
      t.equal(m.damagedGuards(), 0, 'guards intact');
    }
  }
});

// Hand-computed values: the references themselves (not derived from any code under test).
t.test('reference sanity (hand-computed)', async (t) => {
  t.equal(ref.act(-3, 2), 0);
  t.equal(ref.act(3, 2), 3);
  t.equal(ref.act(1, 2), 4 / 6);
  t.equal(ref.act(-1, 1), 0);
  // 3x3 input 1..9, 3x3 all-ones kernel, pad 1: centre = 45, corner (0,0) = 1+2+4+5 = 12.
  const input = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const y = ref.convGroupRef({ input, cin: 1, h: 3, w: 3, weight: new Float32Array(9).fill(1), cout: 1, groups: 1, kernel: 3,
    stride: 1, pad: 1, outAct: 0, accumulate: false });
  t.same(Array.from(y), [12, 21, 16, 27, 45, 33, 24, 39, 28]);
  // Stride 2 on the same input: outputs at (0,0), (0,2), (2,0), (2,2).
  const y2 = ref.convGroupRef({ input, cin: 1, h: 3, w: 3, weight: new Float32Array(9).fill(1), cout: 1, groups: 1, kernel: 3,
    stride: 2, pad: 1, outAct: 0, accumulate: false });
  t.same(Array.from(y2), [12, 16, 24, 28]);
  // SFR-style accumulate: two outputs into plane 0 sum; groups=2 means output 1 reads input 1 only.
  const sfr = ref.convGroupRef({ input: Float32Array.from([2, 3]), cin: 2, h: 1, w: 1, weight: Float32Array.from([10, 100]), cout: 2,
    groups: 2, kernel: 1, stride: 1, pad: 0, outAct: 0, outIndex: [0, 0], accumulate: true, out: Float32Array.from([1, 7]), outPlanes: 2 });
  t.same(Array.from(sfr), [1 + 20 + 300, 7]);
  t.same(Array.from(ref.channelShuffleRef(Float32Array.from([0, 1, 2, 3, 4, 5]), 6, 1, 2)), [0, 3, 1, 4, 2, 5]);
  t.same(ref.topKRef(Float32Array.from([1, 3, 3, NaN, 2]), 4), [1, 2, 4, 0]);
  // Padding is applied after the input transform: a shifted zero input contributes act(shift) inside, 0 outside.
  const bufs = [ref.makeBuffer(1, 1, 1, Float32Array.from([0])), ref.makeBuffer(1, 1, 1)];
  ref.conv2dOpRef(bufs, { inBuffer: 0, inChannel: 0, cin: 1, outBuffer: 1, outChannel: 0, cout: 1, kernel: 3, stride: 1, pad: 1,
    groups: 1, inAct: 1, outAct: 0, accumulate: false, weight: new Float32Array(9).fill(1), bias: null, inIndex: null,
    inScale: Float32Array.from([1]), inShift: Float32Array.from([5]), outIndex: null });
  t.same(Array.from(bufs[1].data), [5]);
});

// ASC_FEATURE_SIMD false must leave plain f32 code: the scalar build validates with SIMD disabled.
t.test('scalar build contains no SIMD instruction', async (t) => {
  const mod = binaryen.readBinary(new Uint8Array(readFileSync(wasmPath('scalar'))));
  mod.setFeatures(binaryen.Features.All & ~binaryen.Features.SIMD128 & ~binaryen.Features.RelaxedSIMD);
  t.ok(mod.validate(), 'valid without SIMD128');
  mod.dispose();
});
