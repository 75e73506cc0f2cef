// Kernel micro-benchmark: the wasm multiply-add peak (peak_madd) of the SIMD, relaxed-SIMD and scalar builds, then the
// two target kernels (and other CondenseNetV2 shapes) in multiply-adds per second and percent of that peak, measured
// in the same run. Each run takes the fastest call of a ~80 ms burst per kernel; the table shows medians of N runs.
//   npx tsx bench/kernels.ts [--runs N] [--out DIR] [--against DIR]     (default 7 runs)
// Prints the table; with --out, also writes DIR/kernels.json (bench/results/ holds the tracked one).
// --against DIR: another build of the harness (DIR/kernels{,-relaxed,-scalar}.wasm, e.g. a copy of build/test made
// before a change); every kernel call of it is timed right after the same call of this build (interleaved, same
// load), and the table adds its Gmadd/s and the ratio this/other.
// Build first: node scripts/build-wasm.mjs test/kernels
import { writeFileSync, renameSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kernels, rng, randomF32, type BuildName } from '../testkit/kernels.js';

/** One table row: medians over the runs, plus the best run's percentage (the least disturbed by other load). */
interface Row {
  build: BuildName; kernel: string; shape: string; madds: number; ms: number; gmadds: number; peakPct: number; bestPct: number;
  /** with --against: the other build's median Gmadd/s */
  againstGmadds?: number;
}

function parseRuns(argv: string[]): number {
  const i = argv.indexOf('--runs');
  if (i < 0) return 7;
  const n = Number(argv[i + 1]);
  if (!Number.isInteger(n) || n < 1 || n > 1000) {
    console.error(`--runs needs an integer 1..1000, got ${argv[i + 1] ?? '(nothing)'}`);
    process.exit(2);
  }
  return n;
}

/** --out DIR: where kernels.json goes; none: print only (tracked results change only when asked). */
function parseDir(argv: string[], flag: '--out' | '--against'): string | undefined {
  const i = argv.indexOf(flag);
  if (i < 0) return undefined;
  if (!argv[i + 1] || argv[i + 1]!.startsWith('--')) {
    console.error(`${flag} needs a directory`);
    process.exit(2);
  }
  return argv[i + 1];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Seconds per call in one run: the fastest of back-to-back calls over about `burstMs`. The minimum filters out
 * preemption and steal time on shared machines (the 2-vCPU CI VM varies up to 2x per call otherwise).
 */
function fastest(fn: () => void, burstMs = 80): number {
  let best = Infinity;
  const start = performance.now();
  for (let n = 0; n < 5 || performance.now() - start < burstMs; n++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, performance.now() - t0);
  }
  return best / 1000;
}

// peak_madd iterations per call: ~1.5 ms, about as long as one target-kernel call, so both are equally likely to be
// measured without an interruption.
const PEAK_ITERATIONS = 500_000;

interface ConvShape {
  name: string; cin: number; h: number; w: number; cout: number; groups: number; k: number; s: number; p: number;
  /** a depthwise or stem shape run through the general group path instead of its own kernel (for comparison) */
  general?: boolean;
  /** not a convolution: max pooling (k x k, stride s, padding p; "madds" counts window taps) or a fully connected
   * layer (cin -> cout on 1x1) */
  op?: 'maxpool' | 'fc';
}

/** Prepares a convolution of shape c in m; returns its multiply-add count and a function running it once. */
function setupConv(m: Kernels, c: ConvShape): { madds: number; run: () => void } {
  const r = rng(42);
  const oh = Math.floor((c.h + 2 * c.p - c.k) / c.s) + 1, ow = Math.floor((c.w + 2 * c.p - c.k) / c.s) + 1;
  const input = m.put(randomF32(r, c.cin * c.h * c.w));
  const weight = m.put(randomF32(r, c.cout * (c.cin / c.groups) * c.k * c.k, -0.1, 0.1));
  const bias = m.put(randomF32(r, c.cout));
  const out = m.allocF32(c.cout * oh * ow);
  const madds = oh * ow * c.cout * (c.cin / c.groups) * c.k * c.k;
  if (c.op === 'maxpool') {
    // What the MAXPOOL operator picks (assembly/runtime/ops/maxpool.ts). A harness without the split kernel (an
    // older build, compared against) takes maxpool.
    const taps = oh * ow * c.cin * c.k * c.k;
    if (m.build !== 'scalar' && m.k.maxpool3x3s2p1_split && c.k === 3 && c.s === 2 && c.p === 1) {
      const sp = m.k.alloc(m.k.maxpool3x3s2p1_split_scratch_bytes(c.h, c.w));
      return { madds: taps, run: () => m.k.maxpool3x3s2p1_split(input, c.cin, c.h, c.w, out, oh, ow, sp) };
    }
    const sp = m.k.alloc(m.k.maxpool_scratch_bytes(c.h, c.w, c.p));
    return { madds: taps, run: () => m.k.maxpool(input, c.cin, c.h, c.w, c.k, c.s, c.p, out, oh, ow, sp) };
  }
  if (c.op === 'fc') return { madds, run: () => m.k.fully_connected(input, c.cin, weight, bias, c.cout, 0, out) };
  if (c.k === 1 && c.s === 1 && c.p === 0) {
    return { madds, run: () => m.k.conv1x1_group(input, c.cin, c.h * c.w, weight, bias, c.cout, c.groups, out, 0, 1, 0) };
  }
  if (c.groups === c.cin && c.cin === c.cout && c.k === 3 && c.p === 1 && c.s <= 2 && !c.general) {
    // What the CONV2D operator picks for a depthwise 3x3 (assembly/runtime/ops/conv2d.ts), without an output
    // activation, as ShuffleNetV2's depthwise convs (BN only).
    const dwScratch = m.k.alloc(m.k.depthwise3x3_scratch_bytes(c.h, c.w));
    return { madds, run: () => m.k.depthwise3x3(input, c.cin, c.h, c.w, weight, bias, c.s, out, oh, ow, 0, 0, 0, dwScratch) };
  }
  if (!c.general && m.build !== 'scalar' && m.k.conv3x3s2p1_split && c.groups === 1 && c.k === 3 && c.s === 2 && c.p === 1
      && c.cout % 4 === 0) {
    // What the CONV2D operator picks for the image stems in SIMD builds (kernels/conv3x3s2p1-split.ts),
    // with the ReLU the stems have.
    const sp = m.k.alloc(m.k.conv3x3s2p1_split_scratch_bytes(c.cin, c.h, c.w));
    return { madds, run: () => m.k.conv3x3s2p1_split(input, c.cin, c.h, c.w, weight, bias, c.cout, out, oh, ow, 0, 1, 0, sp) };
  }
  const bytes = m.k.conv2d_scratch_bytes(c.cin, c.h, c.w, c.k, c.s, c.p);
  const scratch = bytes ? m.k.alloc(bytes) : 0;
  if (c.general) {
    return { madds, run: () => m.k.conv2d_group(input, c.cin, c.h, c.w, weight, bias, c.cout, c.groups, c.k, c.s, c.p, out, oh, ow,
      0, 0, 0, scratch) };
  }
  // Includes the padded copy into scratch: that is part of the kernel's cost.
  return { madds, run: () => m.k.conv2d_group(input, c.cin, c.h, c.w, weight, bias, c.cout, c.groups, c.k, c.s, c.p, out, oh, ow,
    0, 1, 0, scratch) };
}

// Targets first; the rest are other CondenseNetV2 shapes, for information.
const shapes: (ConvShape & { target: boolean })[] = [
  { target: true, name: 'conv1x1 g4 (target)', cin: 128, h: 56, w: 56, cout: 128, groups: 4, k: 1, s: 1, p: 0 },
  { target: true, name: 'conv3x3 g8 (target)', cin: 128, h: 56, w: 56, cout: 32, groups: 8, k: 3, s: 1, p: 1 },
  // ShuffleNetV2 1.0x, first stage (116/2 = 58 channels at 28x28): the depthwise 3x3 target (issue 25), its stride-2
  // form (the stage-2 entry unit on 56x56) and the same stride-1 layer through the general group path.
  { target: true, name: 'dw3x3 s1 (target)', cin: 58, h: 28, w: 28, cout: 58, groups: 58, k: 3, s: 1, p: 1 },
  { target: true, name: 'dw3x3 s2', cin: 58, h: 56, w: 56, cout: 58, groups: 58, k: 3, s: 2, p: 1 },
  { target: false, name: 'dw3x3 s1 general path', cin: 58, h: 28, w: 28, cout: 58, groups: 58, k: 3, s: 1, p: 1, general: true },
  { target: false, name: 'dw3x3 s2 general path', cin: 58, h: 56, w: 56, cout: 58, groups: 58, k: 3, s: 2, p: 1, general: true },
  { target: false, name: 'LGC 1x1 cdnv2-c st3', cin: 400, h: 28, w: 28, cout: 128, groups: 8, k: 1, s: 1, p: 0 },
  // ShuffleNetV2 1.0x dense 1x1 convs (issue 25) and cdnv2-cifar-110's grouped 1x1 convs at 16x16 and 8x8 (issue 20).
  { target: false, name: '1x1 shufflenet 28x28', cin: 58, h: 28, w: 28, cout: 58, groups: 1, k: 1, s: 1, p: 0 },
  { target: false, name: '1x1 shufflenet 14x14', cin: 116, h: 14, w: 14, cout: 116, groups: 1, k: 1, s: 1, p: 0 },
  { target: false, name: '1x1 shufflenet 7x7', cin: 232, h: 7, w: 7, cout: 232, groups: 1, k: 1, s: 1, p: 0 },
  { target: false, name: '1x1 shufflenet conv5', cin: 464, h: 7, w: 7, cout: 1024, groups: 1, k: 1, s: 1, p: 0 },
  { target: false, name: 'LGC 1x1 cifar-110 16', cin: 224, h: 16, w: 16, cout: 64, groups: 4, k: 1, s: 1, p: 0 },
  { target: false, name: 'LGC 1x1 cifar-110 8', cin: 528, h: 8, w: 8, cout: 128, groups: 4, k: 1, s: 1, p: 0 },
  { target: false, name: '3x3 cdnv2-c st3', cin: 128, h: 28, w: 28, cout: 32, groups: 8, k: 3, s: 1, p: 1 },
  { target: false, name: '3x3 cdnv2-a st2', cin: 32, h: 56, w: 56, cout: 8, groups: 8, k: 3, s: 1, p: 1 },
  { target: false, name: 'stem 3x3 s2', cin: 3, h: 224, w: 224, cout: 16, groups: 1, k: 3, s: 2, p: 1 },
  // ShuffleNetV2 1.0x (issue 25): the stem (and through the general path), the stride-2 depthwise convs of the
  // stage 3 and 4 entry units, the max pool after the stem and the classifier.
  { target: false, name: 'stem 3x3 s2 shufflenet', cin: 3, h: 224, w: 224, cout: 24, groups: 1, k: 3, s: 2, p: 1 },
  { target: false, name: 'stem shufflenet general', cin: 3, h: 224, w: 224, cout: 24, groups: 1, k: 3, s: 2, p: 1, general: true },
  { target: false, name: 'dw3x3 s2 28->14', cin: 116, h: 28, w: 28, cout: 116, groups: 116, k: 3, s: 2, p: 1 },
  { target: false, name: 'dw3x3 s2 14->7', cin: 232, h: 14, w: 14, cout: 232, groups: 232, k: 3, s: 2, p: 1 },
  { target: false, name: 'dw3x3 s2 56->28 24ch', cin: 24, h: 56, w: 56, cout: 24, groups: 24, k: 3, s: 2, p: 1 },
  { target: false, name: 'maxpool 3x3 s2 (taps)', cin: 24, h: 112, w: 112, cout: 24, groups: 24, k: 3, s: 2, p: 1, op: 'maxpool' },
  { target: false, name: 'fc 1024->1000', cin: 1024, h: 1, w: 1, cout: 1000, groups: 1, k: 1, s: 1, p: 0, op: 'fc' },
];

function main(): void {
  const runs = parseRuns(process.argv.slice(2));
  const outDir = parseDir(process.argv.slice(2), '--out');
  const againstDir = parseDir(process.argv.slice(2), '--against');
  const rows: Row[] = [];
  const peaks: Record<string, number> = {};
  for (const build of ['simd', 'relaxed', 'scalar'] as BuildName[]) {
    const m = new Kernels(build);
    const perIter = m.k.peak_madds_per_iteration();
    const chosen = shapes.filter((c) => build !== 'scalar' || c.target);
    const convs = chosen.map((c) => ({ c, ...setupConv(m, c) }));
    let other: { run: () => void }[] | undefined;
    if (againstDir) {
      try {
        const mo = new Kernels(build, againstDir);
        other = chosen.map((c) => setupConv(mo, c));
      } catch (e) {
        console.error(`--against: ${(e as Error).message}`);
        process.exit(2);
      }
    }
    // Every run measures the peak and then each kernel, so each percentage compares numbers taken moments apart.
    const peakRates: number[] = [];
    const rates = convs.map(() => [] as number[]), pcts = convs.map(() => [] as number[]), secs = convs.map(() => [] as number[]);
    const otherRates = convs.map(() => [] as number[]);
    for (let r = -1; r < runs; r++) { // run -1 warms up (tier-up, caches) and is discarded
      const pk = (PEAK_ITERATIONS * perIter) / fastest(() => m.k.peak_madd(PEAK_ITERATIONS));
      if (r >= 0) peakRates.push(pk);
      convs.forEach((cv, i) => {
        const s = fastest(cv.run);
        const so = other ? fastest(other[i]!.run) : 0;
        if (r < 0) return;
        secs[i].push(s); rates[i].push(cv.madds / s); pcts[i].push((100 * cv.madds) / s / pk);
        if (other) otherRates[i].push(cv.madds / so);
      });
    }
    const pk = median(peakRates);
    peaks[build] = pk;
    rows.push({ build, kernel: 'peak_madd', shape: `${perIter} madds/iteration`, madds: 0, ms: 0, gmadds: pk / 1e9, peakPct: 100, bestPct: 100 });
    convs.forEach((cv, i) => {
      const c = cv.c;
      rows.push({ build, kernel: c.name, shape: `${c.cin}->${c.cout} ${c.h}x${c.w} k${c.k} s${c.s} g${c.groups}`, madds: cv.madds,
        ms: median(secs[i]) * 1000, gmadds: median(rates[i]) / 1e9, peakPct: median(pcts[i]), bestPct: Math.max(...pcts[i]),
        ...(other ? { againstGmadds: median(otherRates[i]) / 1e9 } : {}) });
    });
  }
  const pad = (s: string, n: number) => s.padEnd(n);
  const ab = againstDir ? `${'other'.padStart(9)}${'ratio'.padStart(7)}` : '';
  console.log(`${pad('build', 8)}${pad('kernel', 22)}${pad('shape', 30)}${'ms'.padStart(9)}${'Gmadd/s'.padStart(10)}${'% peak'.padStart(8)}${'best %'.padStart(8)}${ab}`);
  for (const r of rows) {
    const abCols = r.againstGmadds !== undefined ? `${r.againstGmadds.toFixed(2).padStart(9)}${(r.gmadds / r.againstGmadds).toFixed(2).padStart(7)}` : '';
    console.log(`${pad(r.build, 8)}${pad(r.kernel, 22)}${pad(r.shape, 30)}${(r.ms ? r.ms.toFixed(3) : '').padStart(9)}` +
      `${r.gmadds.toFixed(2).padStart(10)}${r.peakPct.toFixed(1).padStart(8)}${r.bestPct.toFixed(1).padStart(8)}${abCols}`);
  }
  if (!outDir) return;
  const file = path.join(outDir, 'kernels.json');
  mkdirSync(outDir, { recursive: true });
  const json = {
    date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model ?? 'unknown', arch: process.arch, runs,
    unit: 'multiply-adds per second (one f32 multiply-add = 1)', peaks, rows, ...(againstDir ? { against: againstDir } : {}),
  };
  writeFileSync(file + '.tmp', JSON.stringify(json, null, 2) + '\n');
  renameSync(file + '.tmp', file);
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

main();
