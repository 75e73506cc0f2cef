// `cdnv2 convert`: a trainer checkpoint (TF.js layouts, [in, out] masks) becomes a model that computes what the
// checkpoint's training-form network computes; unfinished masks and missing checkpoints fail with exit 1.
import t from 'tap';
import { cdnv2 } from '../helpers/cli.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { Conv2dOp } from '../../base/cnv2/format.js';
import { readModel } from '../../base/cnv2/format.js';
import { randomNetworkParams, Rng } from '../../converter/random.js';
import { tinyConfig } from '../../trainer/tiny.js';
import { writeTinyCheckpoint } from '../helpers/checkpoint.js';
import { interpretLogits } from '../reference/interpreter.js';
import { referenceForward } from '../reference/network.js';

const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-convert-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const cfg = tinyConfig();
const reference = randomNetworkParams(cfg, 5);
const makeCheckpoint = (runDir: string, stageLgc: number): string => writeTinyCheckpoint(runDir, cfg, reference, stageLgc);

t.test('convert a checkpoint with final masks', async (t) => {
  const ckptDir = makeCheckpoint(path.join(dir, 'run'), cfg.condenseFactor - 1);
  const out = path.join(dir, 'tiny.cnv2');
  const r = cdnv2('convert', ckptDir, '-o', out, '--weights', 'f32');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^wrote .*tiny\.cnv2: tiny, /, 'summary');
  const model = readModel(readFileSync(out));
  // The kept LGC inputs are the ones the masks chose (checks the [in, out] -> [out, in] layout contract): group g
  // holds outputs o = g mod G (G = group1x1), and keeps, in ascending order, the inputs its mask rows have set.
  const lgc = model.ops[1] as Conv2dOp;
  const l0 = reference.blocks[0]![0]!;
  const mid = cfg.bottleneck * l0.growth;
  const kept: number[] = [];
  for (let g = 0; g < cfg.group1x1; g++) {
    for (let i = 0; i < l0.inChannels; i++) if (l0.lgc.mask[g * l0.inChannels + i]) kept.push(i);
  }
  t.equal(kept.length, (l0.inChannels / cfg.condenseFactor) * cfg.group1x1, 'test setup: in/C inputs per group');
  t.same(Array.from(model.tensors[lgc.inIndex!]!.data), kept, 'first LGC keeps the masked-in channels');
  t.ok(mid > cfg.group1x1, 'several outputs per group');
  // Expected logits: the float64 reference network (test/reference) run on the parameters the checkpoint was made from.
  const rng = new Rng(2);
  const x = Float64Array.from({ length: cfg.input.channels * cfg.input.height * cfg.input.width }, () => rng.normal());
  const want = referenceForward(reference, x);
  const got = interpretLogits(model, x);
  t.equal(got.length, want.length, `${want.length} logits`);
  let err = 0, scale = 1;
  want.forEach((v, i) => { err = Math.max(err, Math.abs(v - got[i]!)); scale = Math.max(scale, Math.abs(v)); });
  t.ok(err / scale < 1e-5, `converted model equals the reference network (relative error ${(err / scale).toExponential(2)})`);
  const prov = JSON.parse(model.meta.find((e) => e.key === 'provenance')!.value as string);
  t.match(prov, { checkpoint: ckptDir, epochsDone: 4, weights: 'f32', masksFinal: true }, 'provenance from the checkpoint');
});

t.test('convert refuses unfinished masks and missing checkpoints', async (t) => {
  const early = makeCheckpoint(path.join(dir, 'early'), 0);
  const r = cdnv2('convert', early, '-o', path.join(dir, 'early.cnv2'));
  t.equal(r.code, 1, 'exit 1');
  t.match(r.stderr, /masks are not final yet: condensation stage lgc 0\/3 after 4 of 4 epochs/);
  const missing = cdnv2('convert', path.join(dir, 'nothing-here'), '-o', path.join(dir, 'x.cnv2'));
  t.equal(missing.code, 1, 'missing checkpoint: exit 1');
  t.match(missing.stderr, /nothing-here/, 'names the directory');
});

/** `p` with every float tensor scaled by 0.8 (BN variances stay positive), masks and index lists shared. */
function scaled(p: unknown): unknown {
  if (p instanceof Float32Array) return p.map((v) => v * 0.8);
  if (p instanceof Float64Array) return p.map((v) => v * 0.8);
  if (ArrayBuffer.isView(p) || p === null || typeof p !== 'object') return p;
  if (Array.isArray(p)) return p.map(scaled);
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [k, scaled(v)]));
}

t.test('convert takes the EMA weights by default and the raw ones with --no-ema (official --wo_ema_weight)', async (t) => {
  const emaReference = scaled(reference) as typeof reference;
  const ckptDir = writeTinyCheckpoint(path.join(dir, 'ema-run'), cfg, reference, cfg.condenseFactor - 1, emaReference);
  const rng = new Rng(3);
  const x = Float64Array.from({ length: cfg.input.channels * cfg.input.height * cfg.input.width }, () => rng.normal());
  const relErr = (want: Float64Array | number[], got: ArrayLike<number>): number => {
    let err = 0, scale = 1;
    Array.from(want).forEach((v, i) => { err = Math.max(err, Math.abs(v - got[i]!)); scale = Math.max(scale, Math.abs(v)); });
    return err / scale;
  };
  const logitsOf = (...args: string[]): ArrayLike<number> => {
    const out = path.join(dir, `ema-${args.length}.cnv2`);
    const r = cdnv2('convert', ckptDir, '-o', out, ...args);
    t.equal(r.code, 0, r.stderr);
    return interpretLogits(readModel(readFileSync(out)), x);
  };
  const withEma = logitsOf();
  const raw = logitsOf('--no-ema');
  const wantEma = referenceForward(emaReference, x), wantRaw = referenceForward(reference, x);
  t.ok(relErr(wantRaw, wantEma) > 1e-2, 'test setup: the EMA and raw networks differ');
  t.ok(relErr(wantEma, withEma) < 1e-5, 'default: the EMA network');
  t.ok(relErr(wantRaw, raw) < 1e-5, '--no-ema: the raw network');
  // Without EMA weights the flag changes nothing: a note, exit 0, the same model.
  const plainDir = makeCheckpoint(path.join(dir, 'no-ema-run'), cfg.condenseFactor - 1);
  const a = path.join(dir, 'plain.cnv2'), b = path.join(dir, 'plain-no-ema.cnv2');
  t.equal(cdnv2('convert', plainDir, '-o', a).code, 0);
  const r = cdnv2('convert', plainDir, '-o', b, '--no-ema');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /has no EMA weights .*--no-ema changes nothing/, 'a note says the flag changed nothing');
  t.same(readFileSync(b).length, readFileSync(a).length);
  t.ok(relErr(Array.from(interpretLogits(readModel(readFileSync(a)), x)), interpretLogits(readModel(readFileSync(b)), x)) === 0, 'the same model');
});
