// Fine-tuning (issue 24): a finished run seeds a run on an image folder of other classes with a new classifier
// (labels from the folder names), its final masks kept; --freeze head-only leaves every other parameter untouched,
// --freeze stages unfreezes from the head down at documented iterations; a fine-tuning run stopped mid-epoch and
// resumed equals an uninterrupted one bit for bit; bad sources and folders are refused clearly.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import t from 'tap';

import { fitImage } from '../../base/data/folder.js';
import { openSynthetic } from '../../base/data/synthetic.js';
import { selectBackend } from '../../trainer/backend.js';
import { loadCheckpoint, masksAreFinal, saveCheckpoint } from '../../trainer/checkpoint.js';
import { freezeStageAt, trainableAt } from '../../trainer/fine-tune.js';
import { tensorInventory } from '../../base/arch/schema.js';
import { initialValues } from '../../trainer/model.js';
import { train } from '../../trainer/train.js';
import { tinyConfig } from '../../trainer/tiny.js';
import { TINY, tinyRun } from '../helpers/tiny-run.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-ft-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
t.before(async () => { await selectBackend('cpu'); });

/** DIR/train/<name>/*.png and DIR/test/<name>/*.png of TINY's input size, from the synthetic patterns of `classes`. */
function writeFolder(dir: string, names: string[], perClassTrain: number, perClassTest: number): void {
  const { height, width } = TINY.input;
  for (const [split, per] of [['train', perClassTrain], ['test', perClassTest]] as const) {
    const src = openSynthetic({ split, count: 4000, height, width, channels: 1, classes: names.length, seed: 3 });
    const px = new Uint8Array(height * width);
    const done = names.map(() => 0);
    for (const n of names) mkdirSync(path.join(dir, split, n), { recursive: true });
    for (let i = 0; done.some((d) => d < per); i++) {
      const c = src.label(i);
      if (done[c]! >= per) continue;
      src.read(i, px);
      const png = new PNG({ width, height, colorType: 0, inputColorType: 0, inputHasAlpha: false });
      png.data = Buffer.from(px);
      writeFileSync(path.join(dir, split, names[c]!, `${i}.png`), PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false }));
      done[c]!++;
    }
  }
}

const source = path.join(tmp, 'source');
const folder = path.join(tmp, 'folder');
const base = { dataset: 'folder', dataDir: folder, sources: undefined, epochs: 2, batch: 16, lr: 0.05, warmupEpochs: 0.2, warmupLr: 0.005, initFrom: source };

t.before(async () => {
  await train(tinyRun(source)); // 4 classes of synthetic patterns, 4 epochs: final masks
  writeFolder(folder, ['eel', 'cat', 'dog'], 40, 12); // sorted: cat, dog, eel
});

t.test('a new classifier for the folder\'s classes; head-only leaves every other parameter as the source\'s', async (t) => {
  const src = await loadCheckpoint(source);
  t.ok(masksAreFinal(src), 'the source ended with final masks');
  const out = path.join(tmp, 'head-only');
  const r = await train(tinyRun(out, { ...base, freeze: 'head-only', epochs: 1 }));
  t.same(r.stages, [], 'no mask stage changes');
  const c = await loadCheckpoint(out);
  t.equal(c.state.config.classes, 3);
  t.same(c.state.config.labels, ['cat', 'dog', 'eel'], 'labels are the folder names, sorted');
  t.equal(c.state.options.freeze, 'head-only');
  const feat = TINY.fcChannels;
  t.equal(c.model.get('head.classifier.weight')!.length, feat * 3, 'classifier [fc, 3]');
  t.equal(c.model.get('head.classifier.bias')!.length, 3);
  for (const [name, m] of src.masks) t.same(c.masks.get(name), m, `mask ${name} kept`);
  let same = 0, params = 0;
  for (const info of tensorInventory(TINY, true)) {
    if (info.kind !== 'param' || info.name.startsWith('head.classifier.')) continue;
    params++;
    if (Buffer.from(c.model.get(info.name)!.buffer).equals(Buffer.from(src.model.get(info.name)!.buffer))) same++;
  }
  t.equal(same, params, `all ${params} parameters but the classifier's are the source's bytes`);
  t.notSame(Array.from(c.model.get('head.bn.mean')!), Array.from(src.model.get('head.bn.mean')!), 'BN running statistics follow the new data');
});

t.test('--freeze stages: which parameters train at which iteration', async (t) => {
  // TINY has 2 dense blocks: 3 stages of equal length.
  const names = tensorInventory(TINY, true).filter((i) => i.kind === 'param').map((i) => i.name);
  t.same([0, 29, 30, 59, 60, 89].map((i) => freezeStageAt(i, 90, 2)), [0, 0, 1, 1, 2, 2]);
  t.same(trainableAt('stages', names, 2, 0, 90), ['head.classifier.weight', 'head.classifier.bias']);
  const s1 = trainableAt('stages', names, 2, 30, 90)!;
  t.ok(s1.every((n) => n.startsWith('head.') || n.startsWith('b1.')), 'stage 1: the head and the last block');
  t.ok(s1.includes('head.bn.gamma') && s1.includes('b1.l0.lgc.weight') && s1.includes('head.fc.weight'));
  t.equal(trainableAt('stages', names, 2, 60, 90), undefined, 'stage 2: everything');
  t.equal(trainableAt('none', names, 2, 0, 90), undefined);
  t.same(trainableAt('head-only', names, 2, 89, 90), ['head.classifier.weight', 'head.classifier.bias']);
});

t.test('a fine-tuning run stopped mid-epoch resumes bit-identically (freeze stages crossing after the stop)', async (t) => {
  const full = path.join(tmp, 'stages-full'), cut = path.join(tmp, 'stages-cut');
  const opts = { ...base, freeze: 'stages' as const, epochs: 3, ema: 0.9 };
  const logs: string[] = [];
  const a = await train(tinyRun(full, { ...opts, log: (m) => logs.push(m) }));
  // 120 training images / 16 = 7 iterations per epoch, 21 in all: stages start at 7 and 14.
  t.same(logs.filter((l) => l.startsWith('unfreezing')), ['unfreezing: stage 1 from iteration 7', 'unfreezing: stage 2 from iteration 14']);
  const src = await loadCheckpoint(source), ca = await loadCheckpoint(full);
  t.notSame(Array.from(ca.model.get('stem.weight')!), Array.from(src.model.get('stem.weight')!), 'the stem trained in the last stage');
  await train(tinyRun(cut, { ...opts, stopAfterIterations: 5 }));
  await train(tinyRun(cut, { ...opts, resume: true }));
  const cc = await loadCheckpoint(cut);
  for (const group of ['model', 'momentum', 'ema'] as const) {
    const ma = ca[group]!, mc = cc[group]!;
    const diff = [...ma.keys()].filter((n) => !Buffer.from(ma.get(n)!.buffer).equals(Buffer.from(mc.get(n)!.buffer)));
    t.same(diff, [], `${group}: identical bytes`);
  }
  t.same(cc.state.history.map((h) => h.testAccuracy), a.history.map((h) => h.testAccuracy));
  await t.rejects(train(tinyRun(cut, { ...opts, freeze: 'none', resume: true, epochs: 4 })), /options differ.*freeze/, 'freeze is part of the resume check');
});

t.test('bad sources and folders: clear errors', async (t) => {
  // Another architecture than the run's.
  await t.rejects(train(tinyRun(path.join(tmp, 'e1'), { ...base, config: tinyConfig({ growth: [4, 16] }) })), /--init-from: .* holds tiny, this run trains tiny \(same name, another structure\)/);
  // A source stopped before its last condensation stage.
  const src = await loadCheckpoint(source);
  const early = path.join(tmp, 'early');
  saveCheckpoint(early, { ...src, state: { ...src.state, stage: { lgc: 1, sfr: 0 } } });
  await t.rejects(train(tinyRun(path.join(tmp, 'e2'), { ...base, initFrom: early })), /masks are not final yet \(stage 1\/0\)/);
  // A folder of one class, an empty one.
  const one = path.join(tmp, 'one');
  writeFolder(one, ['cat'], 4, 2);
  await t.rejects(train(tinyRun(path.join(tmp, 'e3'), { ...base, dataDir: one })), /at least 2 \(found 1: cat\)/);
  const empty = path.join(tmp, 'empty');
  mkdirSync(path.join(empty, 'a'), { recursive: true });
  mkdirSync(path.join(empty, 'b'));
  await t.rejects(train(tinyRun(path.join(tmp, 'e4'), { ...base, dataDir: empty })), /no train images/);
  await t.rejects(train(tinyRun(path.join(tmp, 'e5'), { ...base, initFrom: undefined, freeze: 'head-only' })), /--freeze needs --init-from/);
  await t.rejects(train(tinyRun(path.join(tmp, 'e6'), { ...base, initFrom: path.join(tmp, 'nothing') })), /no such directory/);
});

t.test('folder images of another size: shorter side to the input, or to the model\'s resizeShorter, then centre crop', async (t) => {
  // 8 rows x 16 columns, gray, pixel = 10 * column + row.
  const img = { width: 16, height: 8, channels: 1, data: Uint8Array.from({ length: 128 }, (_, i) => 10 * (i % 16) + Math.floor(i / 16)) };
  const out = new Uint8Array(16);
  fitImage(img, 4, 4, 1, out, 8); // shorter side to 8: no scaling, rows 2-5 and columns 6-9
  t.same(Array.from(out), [62, 72, 82, 92, 63, 73, 83, 93, 64, 74, 84, 94, 65, 75, 85, 95]);
  fitImage(img, 4, 4, 1, out); // shorter side to 4: each output the mean of a 2x2 block, columns 4-11
  t.same(Array.from(out), [46, 66, 86, 106, 48, 68, 88, 108, 50, 70, 90, 110, 52, 72, 92, 112]);
});

t.test('--head-lr-scale: the new classifier steps at that multiple of the rate (default 10), the rest at the rate', async (t) => {
  const src = await loadCheckpoint(source);
  const delta = async (out: string, over: object): Promise<{ head: number; fc: number }> => {
    await train(tinyRun(out, { ...base, epochs: 1, limitTrain: 16, warmupEpochs: 0, lr: 0.01, weightDecay: 0, ...over }));
    const c = await loadCheckpoint(out);
    const d = (a: Float32Array, b: Float32Array): number => a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0);
    return { head: d(c.model.get('head.classifier.bias')!, initialBias), fc: d(c.model.get('head.fc.bias')!, src.model.get('head.fc.bias')!) };
  };
  // One step from the same start (the new classifier from the run's seed, 11): the update is rate x (1 + momentum) x
  // gradient, so the classifier moves 10x as far.
  const initialBias = initialValues({ ...TINY, classes: 3, labels: ['cat', 'dog', 'eel'] }, true, 11).get('head.classifier.bias')!;
  const one = await delta(path.join(tmp, 'scale-1'), { headLrScale: 1 });
  const ten = await delta(path.join(tmp, 'scale-default'), {});
  t.ok(Math.abs(ten.head / one.head - 10) < 1e-3, `classifier bias moved ${ten.head.toExponential(3)} vs ${one.head.toExponential(3)}: ratio 10`);
  t.ok(Math.abs(ten.fc / one.fc - 1) < 1e-6, 'the hidden fc layer moved the same');
  t.equal((await loadCheckpoint(path.join(tmp, 'scale-default'))).state.options.headLrScale, 10, 'the default is stored');
  await t.rejects(train(tinyRun(path.join(tmp, 'e7'), { headLrScale: 2, initFrom: source, epochs: 1 })), /--head-lr-scale applies to a new classifier/,
    'refused when the source\'s classifier is kept');
});
