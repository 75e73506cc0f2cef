// Mask learning for LGC and SFR (CondenseNet V1 / V2): the condensation schedule and L1-norm pruning.
// Weights here are in the trainer's matmul layout: LGC weight [in, out] (element i*out + o), SFR weight
// [k, out] (element j*out + o, j = SFR input = new feature, o = reactivated input feature). Masks share the layout.

/**
 * Condensation stage at training progress p in [0, 1] for factor C (reference §2): floor(2p(C-1)) while 2p < 1,
 * C-1 afterwards. Stage s means s drops have happened. Unlike the official code (which drops at most once per
 * call and only inside the window 2p < 1.001) a jump of several stages drops several times, so short runs still
 * end with final masks.
 */
export function condenseStage(p: number, factor: number): number {
  if (factor <= 1) return 0;
  if (2 * p >= 1) return factor - 1;
  return Math.min(factor - 1, Math.floor(2 * p * (factor - 1)));
}

/** Inputs kept per LGC group after `stage` drops of floor(in/C). */
export function lgcKeptAt(inChannels: number, factor: number, stage: number): number {
  return inChannels - stage * Math.floor(inChannels / factor);
}

/** Outputs kept per SFR input group after `stage` drops of floor(out/S). */
export function sfrKeptAt(outChannels: number, factor: number, stage: number): number {
  return outChannels - stage * Math.floor(outChannels / factor);
}

/** Indices of the `count` smallest scores among candidates (ties broken by lower index first). */
function smallest(scores: Float64Array, candidates: number[], count: number): number[] {
  const sorted = candidates.slice().sort((a, b) => (scores[a]! - scores[b]!) || (a - b));
  return sorted.slice(0, count);
}

/**
 * One LGC condensation step: for every output group g (outputs o with o mod G == g) drop the floor(in/C) still
 * connected inputs with the smallest L1 norm of the masked weights over the group's outputs.
 */
export function lgcDrop(weight: Float32Array, mask: Uint8Array, inCh: number, outCh: number, groups: number, factor: number): void {
  const delta = Math.floor(inCh / factor);
  if (delta === 0) return;
  for (let g = 0; g < groups; g++) {
    const score = new Float64Array(inCh);
    const kept: number[] = [];
    for (let i = 0; i < inCh; i++) {
      let s = 0;
      let connected = false;
      for (let o = g; o < outCh; o += groups) {
        const e = i * outCh + o;
        if (mask[e]) { connected = true; s += Math.abs(weight[e]!); }
      }
      score[i] = s;
      if (connected) kept.push(i);
    }
    for (const i of smallest(score, kept, Math.min(delta, kept.length))) {
      for (let o = g; o < outCh; o += groups) mask[i * outCh + o] = 0;
    }
  }
}

/**
 * One SFR sparsification step: for every input group g (SFR inputs j with j mod G == g) drop the floor(out/S)
 * still connected outputs with the smallest L1 norm of the masked weights over the group's inputs.
 */
export function sfrDrop(weight: Float32Array, mask: Uint8Array, inCh: number, outCh: number, groups: number, factor: number): void {
  const delta = Math.floor(outCh / factor);
  if (delta === 0) return;
  for (let g = 0; g < groups; g++) {
    const score = new Float64Array(outCh);
    const kept: number[] = [];
    for (let o = 0; o < outCh; o++) {
      let s = 0;
      let connected = false;
      for (let j = g; j < inCh; j += groups) {
        const e = j * outCh + o;
        if (mask[e]) { connected = true; s += Math.abs(weight[e]!); }
      }
      score[o] = s;
      if (connected) kept.push(o);
    }
    for (const o of smallest(score, kept, Math.min(delta, kept.length))) {
      for (let j = g; j < inCh; j += groups) mask[j * outCh + o] = 0;
    }
  }
}

/** Per LGC group, the number of connected inputs (an input is connected if any of the group's outputs uses it). */
export function lgcKeptPerGroup(mask: Uint8Array, inCh: number, outCh: number, groups: number): number[] {
  const res: number[] = [];
  for (let g = 0; g < groups; g++) {
    let n = 0;
    for (let i = 0; i < inCh; i++) {
      let c = false;
      for (let o = g; o < outCh && !c; o += groups) c = mask[i * outCh + o] === 1;
      if (c) n++;
    }
    res.push(n);
  }
  return res;
}

/** Per SFR input group, the number of connected outputs. */
export function sfrKeptPerGroup(mask: Uint8Array, inCh: number, outCh: number, groups: number): number[] {
  const res: number[] = [];
  for (let g = 0; g < groups; g++) {
    let n = 0;
    for (let o = 0; o < outCh; o++) {
      let c = false;
      for (let j = g; j < inCh && !c; j += groups) c = mask[j * outCh + o] === 1;
      if (c) n++;
    }
    res.push(n);
  }
  return res;
}

/** True when the mask is a union of whole (group, input) rows for LGC: inside a group all outputs agree. */
export function lgcMaskIsGroupwise(mask: Uint8Array, inCh: number, outCh: number, groups: number): boolean {
  for (let g = 0; g < groups; g++) {
    for (let i = 0; i < inCh; i++) {
      const v = mask[i * outCh + g];
      for (let o = g; o < outCh; o += groups) if (mask[i * outCh + o] !== v) return false;
    }
  }
  return true;
}

export function sfrMaskIsGroupwise(mask: Uint8Array, inCh: number, outCh: number, groups: number): boolean {
  for (let g = 0; g < groups; g++) {
    for (let o = 0; o < outCh; o++) {
      const v = mask[g * outCh + o];
      for (let j = g; j < inCh; j += groups) if (mask[j * outCh + o] !== v) return false;
    }
  }
  return true;
}
