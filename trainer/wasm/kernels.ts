// Host side of the training kernels (build/cdnv2-train*.wasm): one shared memory with an exact-size block
// allocator (tensors made by the kernels live there), and the kernels over pointers into it, split over two
// threads when the work is large enough to pay for it. Array-in/array-out wrappers serve tests and benchmarks.
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import v8 from 'node:v8';

import { HelperThread } from './threads.js';

export type Activation = 'none' | 'relu' | 'hardswish';
const ACT_CODE: Record<Activation, number> = { none: 0, relu: 1, hardswish: 2 };

interface Exports {
  heap_base(): number;
  gemm(a: number, sAi: number, sAk: number, b: number, c: number, K: number, N: number, acc: number, kc: number, m0: number, m1: number): void;
  transpose(src: number, rows: number, cols: number, dst: number): void;
  plane_stride(N: number, H: number, W: number): number;
  pack_padded(x: number, N: number, H: number, W: number, C: number, dst: number, j0: number, j1: number): void;
  unpack_padded(src: number, N: number, H: number, W: number, C: number, y: number, acc: number, n0: number, n1: number): void;
  conv3x3_planes(input: number, cin: number, w: number, cout: number, groups: number, out: number, N: number, H: number, W: number, o0: number, o1: number): void;
  conv3x3_filter_grad(input: number, cin: number, dy: number, cout: number, groups: number, dw: number, N: number, H: number, W: number, o0: number, o1: number): void;
  bn_part_floats(C: number): number;
  bn_sums(x: number, C: number, mean: number, mode: number, tot: number, part: number, r0: number, r1: number): void;
  bn_mean(totA: number, totB: number, P: number, C: number, mean: number): void;
  bn_scale_shift(totA: number, totB: number, P: number, C: number, gamma: number, beta: number, eps: number, mean: number, variance: number, rstd: number, scale: number, shift: number): void;
  bn_affine(gamma: number, beta: number, mean: number, rstd: number, C: number, scale: number, shift: number): void;
  bn_grad_sums(x: number, dy: number, C: number, scale: number, shift: number, mean: number, rstd: number, act: number, tot0: number, tot1: number, part0: number, part1: number, r0: number, r1: number): void;
  bn_grad_finish(a0: number, a1: number, b0: number, b1: number, P: number, C: number, dbeta: number, dgamma: number, mg: number, mgx: number): void;
  bn_grad_dx(x: number, dy: number, C: number, scale: number, shift: number, mean: number, rstd: number, mg: number, mgx: number, act: number, dx: number, r0: number, r1: number): void;
  binary_bcast(op: number, a: number, b: number, out: number, mid: number, inner: number, r0: number, r1: number): void;
  affine_act(x: number, C: number, scale: number, shift: number, act: number, y: number, r0: number, r1: number): void;
  avgpool_tiled(x: number, H: number, W: number, C: number, fh: number, fw: number, out: number, n0: number, n1: number): void;
  avgpool_tiled_grad(dy: number, H: number, W: number, C: number, fh: number, fw: number, dx: number, n0: number, n1: number): void;
  copy_columns(x: number, cols: number, c0: number, out: number, outCols: number, dstCol: number, dstCols: number, r0: number, r1: number): void;
  dw_pad(x: number, H: number, W: number, C: number, pt: number, pl: number, Hp: number, Wp: number, dst: number, n0: number, n1: number): void;
  dw_crop(src: number, Hp: number, Wp: number, C: number, pt: number, pl: number, H: number, W: number, dst: number, n0: number, n1: number): void;
  dw_forward(xp: number, Hp: number, Wp: number, C: number, w: number, s: number, OH: number, OW: number, y: number, r0: number, r1: number): void;
  dw_input_grad_scatter(dy: number, OH: number, OW: number, C: number, w: number, s: number, dxp: number, Hp: number, Wp: number, n0: number, n1: number): void;
  dw_filter_grad(xp: number, Hp: number, Wp: number, C: number, dy: number, s: number, OH: number, OW: number, dw: number, r0: number, r1: number): void;
  maxpool_fwd(x: number, H: number, W: number, C: number, fh: number, fw: number, sh: number, sw: number, pt: number, pl: number, OH: number, OW: number, y: number, r0: number, r1: number): void;
  maxpool_grad(x: number, H: number, W: number, C: number, fh: number, fw: number, sh: number, sw: number, pt: number, pl: number, OH: number, OW: number, dy: number, dx: number, n0: number, n1: number): void;
}

/** A max pool on NHWC tensors: input [N,H,W,C], output [N,OH,OW,C], window fh x fw, strides, top/left padding. */
export interface PoolShape { N: number; H: number; W: number; C: number; OH: number; OW: number; fh: number; fw: number; sh: number; sw: number; padTop: number; padLeft: number }

/**
 * A 3x3 depthwise convolution with channel multiplier 1 on NHWC tensors: input [N,H,W,C], output [N,OH,OW,C],
 * the same stride both ways and the zero padding TF.js computed (top/left; the bottom/right ones follow from the
 * sizes). The host checks the pads are at most 2, which the input gradient's transposed convolution relies on.
 */
export interface DepthwiseShape { N: number; H: number; W: number; C: number; OH: number; OW: number; stride: number; padTop: number; padLeft: number }

/** Kernels whose last two arguments are a range [start, end) that two threads can share. */
const SPLIT_KERNELS = ['gemm', 'bn_sums', 'bn_grad_sums', 'bn_grad_dx', 'conv3x3_planes', 'conv3x3_filter_grad', 'binary_bcast', 'copy_columns', 'pack_padded', 'unpack_padded',
  'affine_act', 'avgpool_tiled', 'avgpool_tiled_grad', 'dw_pad', 'dw_crop', 'dw_forward', 'dw_input_grad_scatter', 'dw_filter_grad', 'maxpool_fwd', 'maxpool_grad'] as const;
type SplitKernel = (typeof SPLIT_KERNELS)[number];
const PAGE = 65536;
const MAX_PAGES = 32768; // must match scripts/build-wasm.mjs
/** Below this many multiply-adds a kernel runs on one thread: waking the helper costs tens of microseconds. */
const SPLIT_MIN_MADDS = 1 << 18;
/**
 * gemm's K panel (rows of B per pass). 256 keeps C traffic low for NN/NT; for Aᵀ·B (filter gradients, K = all
 * pixels) a 4-row A tile reads 16 bytes per k from rows M floats apart, and 64-row panels of A and B stay in L1
 * (measured ~5% faster on those shapes). The panel size never changes the summation order.
 */
const KC = 256, KC_TN = 64;
/** Batch norm reductions cut the rows at a multiple of their 64-row summation block. */
const BN_ROW_BLOCK = 64;

/** Where two threads split [0, total): near the middle, on a multiple of align; total itself when too small to split. */
function cutPoint(total: number, align: number): number {
  return total < 2 * align ? total : Math.max(align, Math.min(total - 1, Math.round(total / 2 / align) * align));
}

function trainWasmPath(isa: 'simd' | 'relaxed'): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const file = isa === 'simd' ? 'cdnv2-train.wasm' : 'cdnv2-train-relaxed.wasm';
  for (const dir of [path.join(here, '..', '..', 'build'), path.join(here, '..', '..', '..', 'build')]) {
    if (existsSync(path.join(dir, file))) return path.join(dir, file);
  }
  throw new Error(`build/${file} not found: run \`npm run build\` first`);
}

const compiled = new Map<string, WebAssembly.Module>();

function compileTrainModule(want: 'auto' | 'simd' | 'relaxed'): { isa: 'simd' | 'relaxed'; module: WebAssembly.Module } {
  const order: ('simd' | 'relaxed')[] = want === 'auto' ? ['relaxed', 'simd'] : [want];
  let error: unknown;
  for (const isa of order) {
    try {
      let module = compiled.get(isa);
      if (!module) {
        // Node 20's V8 ships relaxed SIMD behind a flag; later versions accept the flag as a no-op.
        if (isa === 'relaxed') v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
        module = new WebAssembly.Module(readFileSync(trainWasmPath(isa)));
        compiled.set(isa, module);
      }
      return { isa, module };
    } catch (e) {
      error = e;
    }
  }
  throw error;
}

export interface TrainKernelOptions {
  /** 1 or 2 (default: 2 when the machine has at least 2 CPUs). */
  threads?: number;
  /**
   * 'auto' (default): the relaxed-SIMD build (fused multiply-add, ~1.4x faster matmul) where the engine compiles it,
   * else plain SIMD128. Relaxed rounding may differ between CPUs, never between runs on one machine.
   */
  isa?: 'auto' | 'simd' | 'relaxed';
}

/**
 * Blocks of the shared memory, reused by exact size: a training step allocates the same shapes every iteration,
 * so after the first step every request is met from a free list. Views on a shared memory stay valid when it
 * grows, so a block can back a tensor for as long as the tensor lives.
 */
class BlockAllocator {
  private readonly free = new Map<number, number[]>();
  private readonly sizes = new Map<number, number>();
  constructor(private readonly memory: WebAssembly.Memory, private top: number) {}

  alloc(bytes: number): number {
    const size = Math.max(16, (bytes + 15) & ~15);
    const list = this.free.get(size);
    const reused = list?.pop();
    if (reused !== undefined) { this.sizes.set(reused, size); return reused; }
    const ptr = this.top;
    const end = ptr + size;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE);
      if (have / PAGE + pages > MAX_PAGES) {
        throw new Error(`training kernels need more than the 2 GiB of wasm memory (${(end / 2 ** 20).toFixed(0)} MiB); use a smaller --batch`);
      }
      this.memory.grow(pages);
    }
    this.top = end;
    this.sizes.set(ptr, size);
    return ptr;
  }

  release(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) throw new Error(`training kernels: block ${ptr} freed twice or never allocated`);
    this.sizes.delete(ptr);
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(ptr);
  }
}

export class TrainKernels {
  readonly threads: number;
  readonly isa: 'simd' | 'relaxed';
  readonly memory: WebAssembly.Memory;
  private readonly ex: Exports;
  private readonly blocks: BlockAllocator;
  private helper?: HelperThread;

  constructor(opts: TrainKernelOptions = {}) {
    const { isa, module } = compileTrainModule(opts.isa ?? 'auto');
    this.isa = isa;
    this.memory = new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES, shared: true });
    const instance = new WebAssembly.Instance(module, { env: { memory: this.memory, abort: () => { throw new Error('training kernel abort'); } } });
    this.ex = instance.exports as unknown as Exports;
    this.blocks = new BlockAllocator(this.memory, this.ex.heap_base());
    this.threads = Math.max(1, Math.min(2, opts.threads ?? 2));
    if (this.threads > 1) this.helper = new HelperThread(module, this.memory, [...SPLIT_KERNELS]);
  }

  dispose(): void {
    this.helper?.terminate();
    this.helper = undefined;
  }

  // ---- memory ----

  /** A block of n floats in wasm memory (contents undefined). */
  alloc(n: number): number { return this.blocks.alloc(n * 4); }
  free(ptr: number): void { this.blocks.release(ptr); }
  view(ptr: number, n: number): Float32Array { return new Float32Array(this.memory.buffer, ptr, n); }

  private put(data: ArrayLike<number>): number {
    const p = this.alloc(data.length);
    this.view(p, data.length).set(data as Float32Array);
    return p;
  }

  /** Runs fn with temporary blocks that are freed afterwards. */
  private scoped<T>(fn: (tmp: (n: number) => number, put: (d: ArrayLike<number>) => number) => T): T {
    const temps: number[] = [];
    try {
      return fn((n) => { const p = this.alloc(n); temps.push(p); return p; }, (d) => { const p = this.put(d); temps.push(p); return p; });
    } finally {
      for (const p of temps) this.free(p);
    }
  }

  /** Runs a range-splittable kernel: args end with (start, end); the helper takes the first part. */
  private split(fn: SplitKernel, args: number[], total: number, madds: number, align: number): void {
    const f = this.ex[fn] as (...a: number[]) => void;
    const mid = cutPoint(total, align);
    if (!this.helper || madds < SPLIT_MIN_MADDS || mid === total) {
      f(...args, 0, total);
      return;
    }
    this.helper.start(fn, [...args, 0, mid]);
    try {
      f(...args, mid, total);
    } finally {
      this.helper.finish();
    }
  }

  /**
   * Runs a reduction over rows [0, total) as two parts, [0, mid) and [mid, total), each with its own arguments
   * (its own totals): on both threads when the work pays for it, else one after the other here. The cut does not
   * depend on the thread count, so neither do the results.
   */
  private splitParts(fn: SplitKernel, argsOf: (part: 0 | 1) => number[], total: number, madds: number, align: number): void {
    const f = this.ex[fn] as (...a: number[]) => void;
    const mid = cutPoint(total, align);
    if (!this.helper || madds < SPLIT_MIN_MADDS || mid === total) {
      f(...argsOf(0), 0, mid);
      f(...argsOf(1), mid, total);
      return;
    }
    this.helper.start(fn, [...argsOf(0), 0, mid]);
    try {
      f(...argsOf(1), mid, total);
    } finally {
      this.helper.finish();
    }
  }

  // ---- kernels on blocks (pointers into wasm memory) ----

  /** c[M,N] = op(a)·op(b); a is [M,K] ([K,M] if transA), b is [K,N] ([N,K] if transB), all row-major. */
  matmulP(pa: number, pb: number, pc: number, M: number, K: number, N: number, transA: boolean, transB: boolean): void {
    this.scoped((tmp) => {
      let b = pb;
      if (transB) {
        b = tmp(K * N);
        this.ex.transpose(pb, N, K, b);
      }
      this.split('gemm', [pa, transA ? 1 : K, transA ? M : 1, b, pc, K, N, 0, transA ? KC_TN : KC], M, M * K * N, 4);
    });
  }

  /** NHWC x[N,H,W,C] -> C padded planes at dst (both threads, by channel blocks of 4). */
  private pack(px: number, N: number, H: number, W: number, C: number, dst: number): void {
    this.split('pack_padded', [px, N, H, W, C, dst], C, N * H * W * C, 4);
  }

  /** C padded planes at src -> NHWC y[N,H,W,C] (both threads, by images). */
  private unpack(src: number, N: number, H: number, W: number, C: number, py: number): void {
    this.split('unpack_padded', [src, N, H, W, C, py, 0], N, N * H * W * C, 1);
  }

  /**
   * NHWC x[N,H,W,cin] -> NHWC y[N,H,W,cout] through padded planes: pack, group convolution with weights
   * taps[cout][cin/groups][9], unpack. `madds` is the work, for the thread split.
   */
  private convThroughPlanes(px: number, cin: number, taps: Float32Array, cout: number, groups: number, py: number,
    N: number, H: number, W: number, madds: number): void {
    const stride = this.ex.plane_stride(N, H, W);
    this.scoped((tmp, put) => {
      const planes = tmp(cin * stride);
      this.pack(px, N, H, W, cin, planes);
      const pw = put(taps);
      const out = tmp(cout * stride);
      this.split('conv3x3_planes', [planes, cin, pw, cout, groups, out, N, H, W], cout, madds, 4);
      this.unpack(out, N, H, W, cout, py);
    });
  }

  /** 3x3 stride-1 padding-1 group convolution: NHWC x -> NHWC y; filter HWIO [3,3,cin/groups,cout] (JS values). */
  conv3x3P(px: number, filter: Float32Array, py: number, N: number, H: number, W: number, cin: number, cout: number, groups: number): void {
    const cinG = cin / groups;
    this.convThroughPlanes(px, cin, hwioToTaps(filter, cinG, cout), cout, groups, py, N, H, W, N * H * W * cinG * 9 * cout);
  }

  /** Input gradient of conv3x3P: NHWC dy -> NHWC dx, the same convolution with flipped, transposed weights. */
  conv3x3BackpropInputP(pdy: number, filter: Float32Array, pdx: number, N: number, H: number, W: number, cin: number, cout: number, groups: number): void {
    const cinG = cin / groups;
    this.convThroughPlanes(pdy, cout, transposedFlippedTaps(filter, cinG, cout, groups), cin, groups, pdx, N, H, W, N * H * W * cinG * 9 * cout);
  }

  /** Filter gradient of conv3x3P, HWIO (JS values). */
  conv3x3BackpropFilterP(px: number, pdy: number, N: number, H: number, W: number, cin: number, cout: number, groups: number): Float32Array {
    const cinG = cin / groups;
    const stride = this.ex.plane_stride(N, H, W);
    return this.scoped((tmp) => {
      const xPlanes = tmp(cin * stride), dyPlanes = tmp(cout * stride);
      this.pack(px, N, H, W, cin, xPlanes);
      this.pack(pdy, N, H, W, cout, dyPlanes);
      const pdw = tmp(cout * cinG * 9);
      this.split('conv3x3_filter_grad', [xPlanes, cin, dyPlanes, cout, groups, pdw, N, H, W], cout, N * H * W * cinG * 9 * cout, 1);
      return tapsToHwio(this.view(pdw, cout * cinG * 9), cinG, cout);
    });
  }

  /**
   * Training-mode batch norm over the rows of x[P,C] fused with an activation; y is [P,C], stats are JS arrays.
   * Both passes over x (sum, then squared deviations) and the output pass split the rows over the threads.
   */
  batchNormActP(px: number, py: number, P: number, C: number, gamma: Float32Array, beta: Float32Array, eps: number, act: Activation):
    { mean: Float32Array; variance: Float32Array; rstd: Float32Array } {
    return this.scoped((tmp, put) => {
      const pg = put(gamma), pb = put(beta), pm = tmp(C), pv = tmp(C), pr = tmp(C), scale = tmp(C), shift = tmp(C);
      const tot = [tmp(2 * C), tmp(2 * C)], part = [tmp(this.ex.bn_part_floats(C)), tmp(this.ex.bn_part_floats(C))];
      this.splitParts('bn_sums', (i) => [px, C, 0, 0, tot[i]!, part[i]!], P, P * C, BN_ROW_BLOCK);
      this.ex.bn_mean(tot[0]!, tot[1]!, P, C, pm);
      this.splitParts('bn_sums', (i) => [px, C, pm, 1, tot[i]!, part[i]!], P, P * C, BN_ROW_BLOCK);
      this.ex.bn_scale_shift(tot[0]!, tot[1]!, P, C, pg, pb, eps, pm, pv, pr, scale, shift);
      this.split('affine_act', [px, C, scale, shift, ACT_CODE[act], py], P, P * C, 1);
      return { mean: this.view(pm, C).slice(), variance: this.view(pv, C).slice(), rstd: this.view(pr, C).slice() };
    });
  }

  batchNormActGradP(px: number, pdy: number, pdx: number, P: number, C: number, gamma: Float32Array, beta: Float32Array,
    mean: Float32Array, rstd: Float32Array, act: Activation): { dgamma: Float32Array; dbeta: Float32Array } {
    return this.scoped((tmp, put) => {
      const pg = put(gamma), pb = put(beta), pm = put(mean), pr = put(rstd);
      const pdg = tmp(C), pdb = tmp(C), scale = tmp(C), shift = tmp(C), mg = tmp(C), mgx = tmp(C);
      const tot = [[tmp(2 * C), tmp(2 * C)], [tmp(2 * C), tmp(2 * C)]];
      const pf = this.ex.bn_part_floats(C);
      const part = [[tmp(pf), tmp(pf)], [tmp(pf), tmp(pf)]];
      this.ex.bn_affine(pg, pb, pm, pr, C, scale, shift);
      const code = ACT_CODE[act];
      this.splitParts('bn_grad_sums', (i) => [px, pdy, C, scale, shift, pm, pr, code, tot[i]![0]!, tot[i]![1]!, part[i]![0]!, part[i]![1]!],
        P, P * C, BN_ROW_BLOCK);
      this.ex.bn_grad_finish(tot[0]![0]!, tot[0]![1]!, tot[1]![0]!, tot[1]![1]!, P, C, pdb, pdg, mg, mgx);
      this.split('bn_grad_dx', [px, pdy, C, scale, shift, pm, pr, mg, mgx, code, pdx], P, P * C, 1);
      return { dgamma: this.view(pdg, C).slice(), dbeta: this.view(pdb, C).slice() };
    });
  }

  /** y[P,C] = act(x * scale + shift): inference-mode batch norm and its activation in one pass. */
  affineActP(px: number, py: number, P: number, C: number, scale: Float32Array, shift: Float32Array, act: Activation): void {
    this.scoped((_tmp, put) => {
      this.split('affine_act', [px, C, put(scale), put(shift), ACT_CODE[act], py], P, P * C, 1);
    });
  }

  /** Average pool of NHWC x[N,H,W,C] over fh x fw windows that tile it exactly (both threads, by images). */
  avgPoolP(px: number, N: number, H: number, W: number, C: number, fh: number, fw: number, pout: number): void {
    this.split('avgpool_tiled', [px, H, W, C, fh, fw, pout], N, N * H * W * C, 1);
  }

  avgPoolGradP(pdy: number, N: number, H: number, W: number, C: number, fh: number, fw: number, pdx: number): void {
    this.split('avgpool_tiled_grad', [pdy, H, W, C, fh, fw, pdx], N, N * H * W * C, 1);
  }

  /** out[o, m, i] = a[o, m, i] op b[o, i]; op 0 add, 1 sub, 2 mul, 3 div. */
  binaryP(op: number, pa: number, pb: number, pout: number, outer: number, mid: number, inner: number): void {
    const rows = outer * mid;
    this.split('binary_bcast', [op, pa, pb, pout, mid, inner], rows, rows * inner, 1);
  }

  /** Columns [c0, c0+n) of x[rows, cols] into columns [dstCol, dstCol+n) of out[rows, dstCols]. */
  copyColumnsP(px: number, cols: number, c0: number, pout: number, n: number, dstCol: number, dstCols: number, rows: number): void {
    this.split('copy_columns', [px, cols, c0, pout, n, dstCol, dstCols], rows, rows * n, 1);
  }

  /** The zero-padded copy of a depthwise input the kernels read: [N,Hp,Wp,C], the input at row padTop, column padLeft. */
  private depthwisePadded(px: number, g: DepthwiseShape, tmp: (n: number) => number): { xp: number; Hp: number; Wp: number } {
    const { N, H, W, C, OH, OW, stride: s, padTop: pt, padLeft: pl } = g;
    const Hp = Math.max(pt + H, (OH - 1) * s + 3), Wp = Math.max(pl + W, (OW - 1) * s + 3);
    const xp = tmp(N * Hp * Wp * C);
    this.split('dw_pad', [px, H, W, C, pt, pl, Hp, Wp, xp], N, N * Hp * Wp * C, 1);
    return { xp, Hp, Wp };
  }

  /** 3x3 depthwise convolution: NHWC x -> NHWC y; filter [3,3,C] at pw (both threads, by output rows). */
  depthwiseP(px: number, pw: number, py: number, g: DepthwiseShape): void {
    this.scoped((tmp) => {
      const { xp, Hp, Wp } = this.depthwisePadded(px, g, tmp);
      this.split('dw_forward', [xp, Hp, Wp, g.C, pw, g.stride, g.OH, g.OW, py], g.N * g.OH, g.N * g.OH * g.OW * g.C * 9, 1);
    });
  }

  /**
   * Input gradient of depthwiseP: NHWC dy [N,OH,OW,C] -> dx [N,H,W,C]. Stride 1: the forward kernel on dy padded by
   * 2 - pad, with the taps flipped. Other strides: dy scattered into a padded dx (by images), then cropped.
   */
  depthwiseBackpropInputP(pdy: number, filter: Float32Array, pdx: number, g: DepthwiseShape): void {
    const { N, H, W, C, OH, OW, stride: s, padTop: pt, padLeft: pl } = g;
    this.scoped((tmp, put) => {
      if (s === 1) {
        const flipped = new Float32Array(9 * C);
        for (let t = 0; t < 9; t++) flipped.set(filter.subarray((8 - t) * C, (9 - t) * C), t * C);
        const dyp = tmp(N * (H + 2) * (W + 2) * C);
        this.split('dw_pad', [pdy, OH, OW, C, 2 - pt, 2 - pl, H + 2, W + 2, dyp], N, N * (H + 2) * (W + 2) * C, 1);
        this.split('dw_forward', [dyp, H + 2, W + 2, C, put(flipped), 1, H, W, pdx], N * H, N * H * W * C * 9, 1);
        return;
      }
      const Hp = Math.max(pt + H, (OH - 1) * s + 3), Wp = Math.max(pl + W, (OW - 1) * s + 3);
      const dxp = tmp(N * Hp * Wp * C);
      this.split('dw_input_grad_scatter', [pdy, OH, OW, C, put(filter), s, dxp, Hp, Wp], N, N * OH * OW * C * 9, 1);
      this.split('dw_crop', [dxp, Hp, Wp, C, pt, pl, H, W, pdx], N, N * H * W * C, 1);
    });
  }

  /**
   * Filter gradient of depthwiseP, [3,3,C] (JS values): two partial sums over the output rows, cut at the same row
   * whatever the thread count (so 1 and 2 threads agree bit for bit), added here.
   */
  depthwiseBackpropFilterP(px: number, pdy: number, g: DepthwiseShape): Float32Array {
    return this.scoped((tmp) => {
      const { xp, Hp, Wp } = this.depthwisePadded(px, g, tmp);
      const parts = [tmp(9 * g.C), tmp(9 * g.C)];
      this.splitParts('dw_filter_grad', (i) => [xp, Hp, Wp, g.C, pdy, g.stride, g.OH, g.OW, parts[i]!], g.N * g.OH, g.N * g.OH * g.OW * g.C * 9, 1);
      const a = this.view(parts[0]!, 9 * g.C), b = this.view(parts[1]!, 9 * g.C);
      const dw = new Float32Array(9 * g.C);
      for (let i = 0; i < dw.length; i++) dw[i] = a[i]! + b[i]!;
      return dw;
    });
  }

  private poolArgs(g: PoolShape): number[] {
    return [g.H, g.W, g.C, g.fh, g.fw, g.sh, g.sw, g.padTop, g.padLeft, g.OH, g.OW];
  }

  /** Max pool, NHWC x -> y (both threads, by output rows). */
  maxPoolP(px: number, py: number, g: PoolShape): void {
    this.split('maxpool_fwd', [px, ...this.poolArgs(g), py], g.N * g.OH, g.N * g.OH * g.OW * g.C * g.fh * g.fw, 1);
  }

  /** Gradient of maxPoolP: dy [N,OH,OW,C] -> dx [N,H,W,C] (both threads, by images). */
  maxPoolGradP(px: number, pdy: number, pdx: number, g: PoolShape): void {
    this.split('maxpool_grad', [px, ...this.poolArgs(g), pdy, pdx], g.N, g.N * g.OH * g.OW * g.C * g.fh * g.fw, 1);
  }

  // ---- the same on JS arrays (copies in and out; tests and benchmarks) ----

  private onArrays<T>(inputs: Float32Array[], outFloats: number[], fn: (ins: number[], outs: number[]) => T): { result: T; outs: Float32Array[] } {
    return this.scoped((tmp, put) => {
      const ins = inputs.map((a) => put(a));
      const outs = outFloats.map((n) => tmp(n));
      const result = fn(ins, outs);
      return { result, outs: outs.map((p, i) => this.view(p, outFloats[i]!).slice()) };
    });
  }

  matmul(a: Float32Array, b: Float32Array, M: number, K: number, N: number, transA: boolean, transB: boolean): Float32Array {
    return this.onArrays([a, b], [M * N], ([pa, pb], [pc]) => this.matmulP(pa!, pb!, pc!, M, K, N, transA, transB)).outs[0]!;
  }

  conv3x3(x: Float32Array, filter: Float32Array, N: number, H: number, W: number, cin: number, cout: number, groups: number): Float32Array {
    return this.onArrays([x], [N * H * W * cout], ([px], [py]) => this.conv3x3P(px!, filter, py!, N, H, W, cin, cout, groups)).outs[0]!;
  }

  conv3x3BackpropInput(dy: Float32Array, filter: Float32Array, N: number, H: number, W: number, cin: number, cout: number, groups: number): Float32Array {
    return this.onArrays([dy], [N * H * W * cin], ([pdy], [pdx]) => this.conv3x3BackpropInputP(pdy!, filter, pdx!, N, H, W, cin, cout, groups)).outs[0]!;
  }

  conv3x3BackpropFilter(x: Float32Array, dy: Float32Array, N: number, H: number, W: number, cin: number, cout: number, groups: number): Float32Array {
    return this.onArrays([x, dy], [], ([px, pdy]) => this.conv3x3BackpropFilterP(px!, pdy!, N, H, W, cin, cout, groups)).result;
  }

  depthwise(x: Float32Array, filter: Float32Array, g: DepthwiseShape): Float32Array {
    return this.onArrays([x, filter], [g.N * g.OH * g.OW * g.C], ([px, pw], [py]) => this.depthwiseP(px!, pw!, py!, g)).outs[0]!;
  }

  depthwiseBackpropInput(dy: Float32Array, filter: Float32Array, g: DepthwiseShape): Float32Array {
    return this.onArrays([dy], [g.N * g.H * g.W * g.C], ([pdy], [pdx]) => this.depthwiseBackpropInputP(pdy!, filter, pdx!, g)).outs[0]!;
  }

  depthwiseBackpropFilter(x: Float32Array, dy: Float32Array, g: DepthwiseShape): Float32Array {
    return this.onArrays([x, dy], [], ([px, pdy]) => this.depthwiseBackpropFilterP(px!, pdy!, g)).result;
  }

  maxPool(x: Float32Array, g: PoolShape): Float32Array {
    return this.onArrays([x], [g.N * g.OH * g.OW * g.C], ([px], [py]) => this.maxPoolP(px!, py!, g)).outs[0]!;
  }

  maxPoolGrad(x: Float32Array, dy: Float32Array, g: PoolShape): Float32Array {
    return this.onArrays([x, dy], [g.N * g.H * g.W * g.C], ([px, pdy], [pdx]) => this.maxPoolGradP(px!, pdy!, pdx!, g)).outs[0]!;
  }

  batchNormAct(x: Float32Array, P: number, C: number, gamma: Float32Array, beta: Float32Array, eps: number, act: Activation):
    { y: Float32Array; mean: Float32Array; variance: Float32Array; rstd: Float32Array } {
    const r = this.onArrays([x], [P * C], ([px], [py]) => this.batchNormActP(px!, py!, P, C, gamma, beta, eps, act));
    return { y: r.outs[0]!, ...r.result };
  }

  batchNormActGrad(x: Float32Array, dy: Float32Array, P: number, C: number, gamma: Float32Array, beta: Float32Array,
    mean: Float32Array, rstd: Float32Array, act: Activation): { dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array } {
    const r = this.onArrays([x, dy], [P * C], ([px, pdy], [pdx]) => this.batchNormActGradP(px!, pdy!, pdx!, P, C, gamma, beta, mean, rstd, act));
    return { dx: r.outs[0]!, ...r.result };
  }
}

/** HWIO [3,3,cinG,cout] -> [cout][cinG][9]. */
export function hwioToTaps(f: Float32Array, cinG: number, cout: number): Float32Array {
  const out = new Float32Array(cout * cinG * 9);
  for (let t = 0; t < 9; t++) {
    for (let c = 0; c < cinG; c++) {
      const row = (t * cinG + c) * cout;
      for (let o = 0; o < cout; o++) out[(o * cinG + c) * 9 + t] = f[row + o]!;
    }
  }
  return out;
}

/** [cout][cinG][9] -> HWIO [3,3,cinG,cout]. */
export function tapsToHwio(w: Float32Array, cinG: number, cout: number): Float32Array {
  const out = new Float32Array(cout * cinG * 9);
  for (let o = 0; o < cout; o++) {
    for (let c = 0; c < cinG; c++) {
      for (let t = 0; t < 9; t++) out[(t * cinG + c) * cout + o] = w[(o * cinG + c) * 9 + t]!;
    }
  }
  return out;
}

/**
 * Weights of the input gradient as a forward group convolution from the cout output channels to the cin input
 * channels: w'[g*cinG + c][o][8 - t] = w[g*coutG + o][c][t], from the HWIO filter.
 */
export function transposedFlippedTaps(f: Float32Array, cinG: number, cout: number, groups: number): Float32Array {
  const coutG = cout / groups;
  const out = new Float32Array(cinG * groups * coutG * 9);
  for (let g = 0; g < groups; g++) {
    for (let c = 0; c < cinG; c++) {
      for (let o = 0; o < coutG; o++) {
        for (let t = 0; t < 9; t++) {
          out[((g * cinG + c) * coutG + o) * 9 + (8 - t)] = f[(t * cinG + c) * cout + g * coutG + o]!;
        }
      }
    }
  }
  return out;
}
