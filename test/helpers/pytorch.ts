// Shared by the PyTorch bridge tests: fixture paths, logits of a model file in each build, the comparison.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { loadModelFile, type Isa } from '../../runtime/index.js';
import { root } from './cli.js';

export const FIXTURES = path.join(root, 'test/fixtures/pytorch');

export interface TorchLogits { config: string; inputs: number; shape: number[]; ema: number[][]; plain: number[][]; converted: number[][] }

export function readFixtureLogits(dir: string, name: string): { ref: TorchLogits; inputs: Float32Array[] } {
  const ref = JSON.parse(readFileSync(path.join(dir, `${name}-logits.json`), 'utf8')) as TorchLogits;
  const raw = readFileSync(path.join(dir, `${name}-inputs.f32`));
  const all = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const per = ref.shape.reduce((a, b) => a * b, 1);
  return { ref, inputs: Array.from({ length: ref.inputs }, (_, i) => all.subarray(i * per, (i + 1) * per)) };
}

export async function modelLogits(file: string, inputs: Float32Array[], isa: Isa): Promise<Float32Array[]> {
  const m = await loadModelFile(file, { isa });
  try {
    return inputs.map((x) => m.run(x));
  } finally {
    m.dispose();
  }
}

/** Largest |got - want| over an input, relative to that input's largest |want|; the worst input counts. */
export function maxRelDiff(got: ArrayLike<number>[], want: ArrayLike<number>[]): number {
  let worst = 0;
  got.forEach((g, i) => {
    const w = want[i]!;
    let scale = 0, err = 0;
    for (let j = 0; j < w.length; j++) { scale = Math.max(scale, Math.abs(w[j]!)); err = Math.max(err, Math.abs(g[j]! - w[j]!)); }
    worst = Math.max(worst, err / scale);
  });
  return worst;
}

export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}

export const ISAS: Isa[] = ['simd', 'relaxed', 'scalar'];

export function softmax(v: ArrayLike<number>): number[] {
  const a = Array.from(v);
  const m = Math.max(...a);
  const e = a.map((x) => Math.exp(x - m));
  const s = e.reduce((x, y) => x + y, 0);
  return e.map((x) => x / s);
}
