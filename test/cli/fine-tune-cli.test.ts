// Fine-tuning as a user does it (issue 24), through the real CLI: a network trained on some Fashion-MNIST classes
// (a short run the test makes: no training form of the shipped model is shipped, only its condensed file) is
// fine-tuned with a new head to 3 other classes stored as PNG files in a folder tree, converted, and the converted
// model, in the wasm runtime, must classify the folder's held-out images well above chance and better than the
// same steps from random initialisation. The images are 28x28 gray, the network's input 32x32 RGB: the data
// pipeline resizes them. Also: an official PyTorch file as the source, and the bad inputs' exit codes (the
// messages of the others: test/trainer/fine-tune.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';

import { openFolder } from '../../base/data/folder.js';
import { loadModelFile } from '../../runtime/index.js';
import { evaluateModel } from '../../runtime/evaluate.js';
import { writeFashionFolder } from '../../scripts/fmnist-folder.js';
import { cdnv2, root } from '../helpers/cli.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'cdnv2-ft-cli-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

// (--limit-test: the runs' own per-epoch evaluation is only logged; the assertions evaluate the converted files.
// --crop 4: the padded crop and flips, not the official ImageNet augmentation, for 28x28 images in a few steps.)
const RUN = ['--backend', 'wasm', '--workers', '1', '--threads', '1', '--no-progress', '--limit-test', '20', '--crop', '4'];
const SOURCE_CLASSES = [0, 1, 2, 3, 4, 6, 8];  // T-shirt/top, Trouser, Pullover, Dress, Coat, Shirt, Bag
const TARGET_CLASSES = [5, 7, 9];              // Sandal, Sneaker, Ankle boot: never seen by the source
// The same schedule for both runs (the new head at the schedule's rate too, so that only the start differs).
const STEPS = ['--epochs', '3', '--batch', '16', '--lr', '0.05', '--warmup-epochs', '0.2', '--warmup-lr', '0.005', '--seed', '3'];

/** The converted model in the wasm runtime (as `cdnv2 eval model.cnv2 --dataset folder` does, without a process). */
async function evaluate(file: string, data: string): Promise<{ accuracy: number; labels: string[]; classes: number }> {
  const model = await loadModelFile(file);
  const [channels, height, width] = model.meta.inputShape;
  const src = openFolder(data, 'test', { channels: channels!, height: height!, width: width! });
  try {
    return { accuracy: evaluateModel(model, src).accuracy, labels: model.meta.labels, classes: model.outputLength };
  } finally {
    model.dispose();
  }
}

t.test('fine-tuned from other classes beats the same steps from scratch, after conversion', async (t) => {
  const srcData = path.join(tmp, 'source-data'), data = path.join(tmp, 'target-data');
  writeFashionFolder(srcData, { classes: SOURCE_CLASSES, trainPerClass: 200, testPerClass: 20 });
  const names = writeFashionFolder(data, { classes: TARGET_CLASSES, trainPerClass: 100, testPerClass: 60 });
  t.same(names, ['Ankle-boot', 'Sandal', 'Sneaker']);

  const source = path.join(tmp, 'source');
  const s = cdnv2('train', '--arch', 'cdnv2-tiny', '--dataset', 'folder', '--data', srcData, '--epochs', '3', '--batch', '16', '--lr', '0.05',
    '--warmup-epochs', '0.2', '--warmup-lr', '0.005', ...RUN, '--out', source);
  t.equal(s.code, 0, s.stderr.slice(-400));

  const tuned = path.join(tmp, 'tuned'), scratch = path.join(tmp, 'scratch');
  const f = cdnv2('train', '--init-from', source, '--dataset', 'folder', '--data', data, ...STEPS, '--head-lr-scale', '1', ...RUN, '--out', tuned);
  t.equal(f.code, 0, f.stderr.slice(-400));
  t.match(f.stderr, /new classifier for 3 classes \(Ankle-boot, Sandal, Sneaker\)/);
  t.notMatch(f.stderr, /stage \d -> \d/, 'no condensation stage in the fine-tuning run: the source\'s masks are final');
  const r = cdnv2('train', '--arch', 'cdnv2-tiny', '--dataset', 'folder', '--data', data, ...STEPS, ...RUN, '--out', scratch);
  t.equal(r.code, 0, r.stderr.slice(-400));

  const tunedModel = path.join(tmp, 'tuned.cnv2'), scratchModel = path.join(tmp, 'scratch.cnv2');
  t.equal(cdnv2('convert', tuned, '-o', tunedModel).code, 0, 'the fine-tuned run converts');
  t.equal(cdnv2('convert', scratch, '-o', scratchModel).code, 0);
  const tunedEval = await evaluate(tunedModel, data), scratchEval = await evaluate(scratchModel, data);
  t.match(tunedEval, { classes: 3, labels: ['Ankle-boot', 'Sandal', 'Sneaker'] }, 'the folder names are the model\'s labels');
  const accTuned = tunedEval.accuracy, accScratch = scratchEval.accuracy;
  t.comment(`held-out accuracy (180 images, chance 0.33): fine-tuned ${accTuned.toFixed(3)}, from scratch ${accScratch.toFixed(3)}`);
  t.ok(accTuned > 0.6, `fine-tuned: ${accTuned.toFixed(3)} well above chance (0.33)`);
  t.ok(accTuned > accScratch + 0.05, `fine-tuned ${accTuned.toFixed(3)} > from scratch ${accScratch.toFixed(3)} + 0.05, same steps`);
});

t.test('an official PyTorch file as the source; bad inputs exit as documented', async (t) => {
  const data = path.join(tmp, 'target-data');
  const pth = path.join(root, 'test/fixtures/pytorch/tiny-train.pth.tar');
  const out = path.join(tmp, 'from-pth');
  const p = cdnv2('train', '--init-from', pth, '--arch', 'cdnv2-tiny', '--dataset', 'folder', '--data', data, '--epochs', '1', '--limit-train', '32',
    '--batch', '16', '--freeze', 'head-only', ...RUN, '--out', out);
  t.equal(p.code, 0, p.stderr.slice(-400));
  t.match(p.stderr, /starting from .*tiny-train\.pth\.tar \(cdnv2-tiny after 0 epochs, mask stage 3\/3\); new classifier for 3 classes/);
  t.equal(cdnv2('convert', out, '-o', path.join(tmp, 'pth.cnv2')).code, 0, 'converts');

  const wrongArch = cdnv2('train', '--init-from', pth, '--arch', 'cdnv2-fmnist', '--dataset', 'folder', '--data', data, ...RUN, '--out', path.join(tmp, 'e1'));
  t.equal(wrongArch.code, 1, 'a source of another architecture than --arch: the work failed');
  t.match(wrongArch.stderr, /--init-from .*tiny-train\.pth\.tar as cdnv2-fmnist: /);
  const noArch = cdnv2('train', '--init-from', pth, '--dataset', 'folder', '--data', data, ...RUN, '--out', path.join(tmp, 'e2'));
  t.equal(noArch.code, 2, 'a PyTorch file without --arch: usage error');
  t.match(noArch.stderr, /a PyTorch file needs --arch/);
  const src = path.join(tmp, 'source');
  const one = path.join(tmp, 'one-class');
  writeFashionFolder(one, { classes: [5], trainPerClass: 4, testPerClass: 2 });
  const oneR = cdnv2('train', '--init-from', src, '--dataset', 'folder', '--data', one, ...RUN, '--out', path.join(tmp, 'e4'));
  t.equal(oneR.code, 1);
  t.match(oneR.stderr, /at least 2 \(found 1: Sandal\)/);
  const freeze = cdnv2('train', '--arch', 'cdnv2-tiny', '--dataset', 'folder', '--data', data, '--freeze', 'stages', ...RUN, '--out', path.join(tmp, 'e6'));
  t.equal(freeze.code, 2, '--freeze without --init-from: usage error');
});
