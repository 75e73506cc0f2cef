import t from 'tap';

import { condenseStage, lgcDrop, sfrDrop } from '../../trainer/masks.js';
import { CdnModel, initialValues } from '../../trainer/model.js';
import { Rng } from '../../base/rng.js';
import { tinyConfig } from '../../trainer/tiny.js';

// Plain reference in PyTorch layout [out, in]: per output group (o mod G), drop the `delta` connected inputs with
// the smallest L1 norm over the group's outputs.
function refLgc(wPt: Float32Array, mPt: Uint8Array, out: number, inn: number, G: number, C: number): Uint8Array {
  const m = mPt.slice();
  const delta = Math.floor(inn / C);
  for (let g = 0; g < G; g++) {
    const cand: { i: number; s: number }[] = [];
    for (let i = 0; i < inn; i++) {
      let s = 0, on = false;
      for (let o = 0; o < out; o++) if (o % G === g && m[o * inn + i]) { on = true; s += Math.abs(wPt[o * inn + i]!); }
      if (on) cand.push({ i, s });
    }
    cand.sort((a, b) => a.s - b.s || a.i - b.i);
    for (const { i } of cand.slice(0, delta)) for (let o = g; o < out; o += G) m[o * inn + i] = 0;
  }
  return m;
}

// Counts written here from the definitions (not the trainer's counters). Masks are [in, out] (TF.js layout).
/** LGC: per output group g (outputs o = g mod G), the inputs connected to any of its outputs. */
function lgcKept(mask: Uint8Array, inCh: number, outCh: number, G: number): number[] {
  return Array.from({ length: G }, (_, g) => new Set(
    Array.from({ length: inCh * outCh }, (_, k) => k).filter((k) => mask[k] === 1 && (k % outCh) % G === g).map((k) => Math.floor(k / outCh)),
  ).size);
}
/** SFR: per input group g (inputs j = g mod G), the outputs any of its inputs reaches. */
function sfrKept(mask: Uint8Array, inCh: number, outCh: number, G: number): number[] {
  return Array.from({ length: G }, (_, g) => new Set(
    Array.from({ length: inCh * outCh }, (_, k) => k).filter((k) => mask[k] === 1 && Math.floor(k / outCh) % G === g).map((k) => k % outCh),
  ).size);
}

t.test('condensation stage schedule', async (t) => {
  t.equal(condenseStage(0, 4), 0);
  t.equal(condenseStage(1 / 6 - 1e-9, 4), 0);
  t.equal(condenseStage(1 / 6, 4), 1);
  t.equal(condenseStage(2 / 6, 4), 2);
  t.equal(condenseStage(0.4999, 4), 2);
  t.equal(condenseStage(0.5, 4), 3);
  t.equal(condenseStage(0.99, 4), 3);
  t.equal(condenseStage(0.3, 1), 0);
  // C = 8: drops at p = i / 14.
  for (let i = 1; i <= 7; i++) t.equal(condenseStage(i / 14 + 1e-9, 8), i);
});

t.test('LGC drop matches a plain reference on an awkward shape, stage by stage', async (t) => {
  const inn = 23, out = 15, G = 3, C = 4;
  const rng = new Rng(5);
  const wTf = new Float32Array(inn * out).map(() => rng.normal());
  const mTf = new Uint8Array(inn * out).fill(1);
  let wPt = new Float32Array(inn * out), mPt: Uint8Array = new Uint8Array(inn * out).fill(1);
  for (let i = 0; i < inn; i++) for (let o = 0; o < out; o++) wPt[o * inn + i] = wTf[i * out + o]!;
  for (let s = 1; s <= C - 1; s++) {
    lgcDrop(wTf, mTf, inn, out, G, C);
    mPt = refLgc(wPt, mPt, out, inn, G, C);
    let same = true;
    for (let i = 0; i < inn; i++) for (let o = 0; o < out; o++) if (mTf[i * out + o] !== mPt[o * inn + i]) same = false;
    t.ok(same, `stage ${s} masks agree`);
    const want = [18, 13, 8][s - 1]!; // 23 inputs, floor(23/4) = 5 dropped per stage
    t.same(lgcKept(mTf, inn, out, G), Array(G).fill(want), `stage ${s} keeps ${want} per group`);
  }
  wPt = new Float32Array(0);
});

t.test('SFR drop keeps out - s*floor(out/S) outputs per input group', async (t) => {
  const k = 6, out = 22, G = 3, S = 4;
  const rng = new Rng(9);
  const w = new Float32Array(k * out).map(() => rng.normal());
  const m = new Uint8Array(k * out).fill(1);
  for (let s = 1; s < S; s++) {
    // The outputs about to go are the smallest-L1 connected ones of each group.
    const before = m.slice();
    sfrDrop(w, m, k, out, G, S);
    for (let g = 0; g < G; g++) {
      const l1 = (o: number): number => { let a = 0; for (let j = g; j < k; j += G) a += Math.abs(w[j * out + o]!); return a; };
      const dropped: number[] = [], kept: number[] = [];
      for (let o = 0; o < out; o++) {
        if (!before[g * out + o]) continue;
        (m[g * out + o] ? kept : dropped).push(o);
      }
      t.equal(dropped.length, Math.floor(out / S));
      t.ok(Math.max(...dropped.map(l1)) <= Math.min(...kept.map(l1)), `group ${g} drops its weakest outputs`);
    }
    t.same(sfrKept(m, k, out, G), Array(G).fill([17, 12, 7][s - 1]), `stage ${s}: 22 outputs, floor(22/4) = 5 dropped per stage`);
  }
});

t.test('model schedule over iterations: kept connections per group and stage', async (t) => {
  const cfg = tinyConfig();
  const model = new CdnModel(cfg, true, initialValues(cfg, true, 3));
  const total = 24;
  const seen: string[] = [];
  for (let it = 0; it < total; it++) {
    const p = it / total;
    model.updateMasks(p);
    const lgcStage = condenseStage(p, cfg.condenseFactor), sfrStage = condenseStage(p, cfg.sfrFactor);
    t.equal(model.stage.lgc, lgcStage);
    t.equal(model.stage.sfr, sfrStage);
    for (const m of model.maskList) {
      const mask = model.masks.get(m.name)!;
      if (m.kind === 'lgc') {
        t.same(lgcKept(mask, m.inCh, m.outCh, cfg.group1x1), Array(cfg.group1x1).fill(m.inCh - lgcStage * Math.floor(m.inCh / m.factor)));
      } else {
        t.same(sfrKept(mask, m.inCh, m.outCh, cfg.groupTrans), Array(cfg.groupTrans).fill(m.outCh - sfrStage * Math.floor(m.outCh / m.factor)));
      }
    }
    seen.push(`${model.stage.lgc}/${model.stage.sfr}`);
  }
  // C = 4: drops at p = 1/6, 2/6, 3/6; S = 2: one drop at p = 1/2.
  t.same([...new Set(seen)], ['0/0', '1/0', '2/0', '3/1']);
  model.dispose();
});
