// The memory planner's properties over random op lists (issue 26), whatever the planning algorithm: two buffers
// alive at the same op never share bytes, every buffer lies inside the arena, and the arena is no larger than the
// sum of the (64-byte aligned) buffer sizes. Lifetimes are computed here from the op list: a buffer lives from the
// first to the last op that touches it, the input from before op 0 and the output until after the last op.
import t, { type Test } from 'tap';
import { writeModel } from '../../../base/cnv2/format.js';
import { ACT, type BufferShape, type Op, type Tensor } from '../../../base/cnv2/model.js';
import { loadModel, type Cdnv2Model, type Isa } from '../../../runtime/index.js';
import { buildModel, rng } from '../../../testkit/models.js';

interface Plan { ptr: number[]; bytes: number[]; arenaBytes: number }

/** Each buffer's address (cdnv2_buffer_ptr) and byte size, read through the JS API's instance. */
function planOf(m: Cdnv2Model, n: number): Plan {
  const inner = m as unknown as { exports: { cdnv2_buffer_ptr(h: number, i: number): number; cdnv2_buffer_length(h: number, i: number): number }; handle: number };
  const ptr: number[] = [], bytes: number[] = [];
  for (let i = 0; i < n; i++) {
    ptr.push(inner.exports.cdnv2_buffer_ptr(inner.handle, i));
    bytes.push(inner.exports.cdnv2_buffer_length(inner.handle, i) * 4);
  }
  return { ptr, bytes, arenaBytes: m.arenaBytes };
}

interface Case { bytes: Uint8Array; buffers: BufferShape[]; life: [number, number][] }

/**
 * A random network of scratch-free ops (1x1 convs without input transforms, 2x2 average pools, shuffles), each
 * reading a random buffer already written (often an old one, so lifetimes overlap in many ways) and writing a new
 * one; then a global pool and a classifier.
 */
function randomCase(seed: number): Case {
  const r = rng(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
  const side = 2 * int(2, 6);
  const buffers: BufferShape[] = [{ channels: int(1, 4), height: side, width: side }];
  const ops: Op[] = [];
  const tensors: Tensor[] = [];
  const weight = (shape: number[]): number => {
    tensors.push({ dtype: 'f32', shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r() - 0.5) });
    return tensors.length - 1;
  };
  const nOps = int(1, 24);
  for (let k = 0; k < nOps; k++) {
    // Mostly recent buffers, sometimes any earlier one: long and short lifetimes mixed.
    const src = r() < 0.6 ? buffers.length - 1 - Math.min(buffers.length - 1, int(0, 2)) : int(0, buffers.length - 1);
    const b = buffers[src]!;
    const kind = r();
    if (kind < 0.15 && b.height % 2 === 0 && b.height >= 4) {
      buffers.push({ channels: b.channels, height: b.height / 2, width: b.width / 2 });
      ops.push({ kind: 'avgpool', inBuffer: src, inChannel: 0, channels: b.channels, outBuffer: buffers.length - 1, outChannel: 0, kernel: 2, stride: 2 });
    } else if (kind < 0.25 && b.channels % 2 === 0) {
      buffers.push({ ...b });
      ops.push({ kind: 'channel_shuffle', inBuffer: src, inChannel: 0, channels: b.channels, outBuffer: buffers.length - 1, outChannel: 0, groups: 2 });
    } else {
      const cout = int(1, 40);
      buffers.push({ channels: cout, height: b.height, width: b.width });
      ops.push({ kind: 'conv2d', inBuffer: src, inChannel: 0, cin: b.channels, outBuffer: buffers.length - 1, outChannel: 0, cout, kernel: 1, stride: 1,
        pad: 0, groups: 1, inAct: ACT.none, outAct: ACT.relu, accumulate: 0, weight: weight([cout, b.channels, 1, 1]), bias: null, inIndex: null,
        inScale: null, inShift: null, outIndex: null });
    }
  }
  const last = buffers.length - 1, c = buffers[last]!.channels, classes = int(2, 5);
  buffers.push({ channels: c, height: 1, width: 1 }, { channels: classes, height: 1, width: 1 });
  ops.push({ kind: 'global_avgpool', inBuffer: last, inChannel: 0, channels: c, outBuffer: last + 1, outChannel: 0, inAct: ACT.none, inScale: null, inShift: null });
  ops.push({ kind: 'fc', inBuffer: last + 1, inChannel: 0, cin: c, outBuffer: last + 2, outChannel: 0, cout: classes, outAct: ACT.none, weight: weight([classes, c]), bias: null });
  // Lifetimes from the op list. Buffers no op reads after writing them still live at their writing op.
  const life = buffers.map((): [number, number] => [Infinity, -Infinity]);
  const touch = (b: number, i: number): void => { life[b]![0] = Math.min(life[b]![0], i); life[b]![1] = Math.max(life[b]![1], i); };
  ops.forEach((op, i) => { const o = op as { inBuffer: number; outBuffer: number }; touch(o.inBuffer, i); touch(o.outBuffer, i); });
  life[0]![0] = 0;
  life[last + 2]![1] = ops.length;
  return { bytes: writeModel(buildModel(buffers, ops, tensors, last + 2)), buffers, life };
}

const align64 = (n: number): number => Math.ceil(n / 64) * 64;

async function checkPlans(t: Test, seeds: number[], isa: Isa): Promise<{ packed: number }> {
  let packed = 0;
  for (const seed of seeds) {
    const c = randomCase(seed);
    const m = await loadModel(c.bytes, { isa });
    const p = planOf(m, c.buffers.length);
    m.dispose();
    const problems: string[] = [];
    const n = c.buffers.length;
    for (let i = 0; i < n; i++) {
      const want = c.buffers[i]!.channels * c.buffers[i]!.height * c.buffers[i]!.width * 4;
      if (p.bytes[i] !== want) problems.push(`buffer ${i}: ${p.bytes[i]} bytes, expected ${want}`);
      if (p.ptr[i]! % 16 !== 0) problems.push(`buffer ${i} at ${p.ptr[i]} is not 16-byte aligned`);
    }
    // The arena starts at the lowest placed buffer (every planner puts one at offset 0).
    const base = Math.min(...p.ptr);
    for (let i = 0; i < n; i++) {
      if (p.ptr[i]! - base + p.bytes[i]! > p.arenaBytes) problems.push(`buffer ${i} [${p.ptr[i]! - base}, +${p.bytes[i]}) outside the ${p.arenaBytes}-byte arena`);
      for (let j = 0; j < i; j++) {
        const [a0, a1] = c.life[i]!, [b0, b1] = c.life[j]!;
        if (a0 > b1 || b0 > a1) continue; // never alive at the same op
        if (p.ptr[i]! < p.ptr[j]! + p.bytes[j]! && p.ptr[j]! < p.ptr[i]! + p.bytes[i]!) {
          problems.push(`buffers ${j} (ops ${b0}..${b1}) and ${i} (ops ${a0}..${a1}) overlap: [${p.ptr[j]}, +${p.bytes[j]}) and [${p.ptr[i]}, +${p.bytes[i]})`);
        }
      }
    }
    const sum = c.buffers.reduce((s, b) => s + align64(b.channels * b.height * b.width * 4), 0);
    if (p.arenaBytes > sum) problems.push(`arena ${p.arenaBytes} bytes is larger than the sum of the buffers, ${sum}`);
    if (p.arenaBytes < sum) packed++;
    if (problems.length) t.fail(`${isa} seed ${seed} (${n} buffers): ${problems.slice(0, 3).join('; ')}`);
  }
  t.pass(`${isa}: ${seeds.length} random op lists planned without overlap, inside the arena, no larger than the sum`);
  return { packed };
}

t.test('random op lists: no live overlap, inside the arena, arena <= sum of sizes', async (t) => {
  const seeds = Array.from({ length: 300 }, (_, i) => 1000 + i);
  const { packed } = await checkPlans(t, seeds, 'simd');
  t.ok(packed > seeds.length / 2, `the planner reuses memory in ${packed} of ${seeds.length} cases (the property is not vacuous)`);
  // The planner is the same source in every build; a few cases in the others guard against build differences.
  await checkPlans(t, seeds.slice(0, 30), 'scalar');
  await checkPlans(t, seeds.slice(0, 30), 'relaxed');
});
