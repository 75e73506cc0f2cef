// The shipped default model (models/cdnv2-fmnist.cnv2): its card tells the truth (accuracy on the whole Fashion-MNIST
// test set in the wasm runtime, FLOPs, parameters, size), and the README's main command (`npm run demo`) classifies
// the shipped sample images with it exactly as the evaluation does.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';

import { CONFIGS, FASHION_MNIST_LABELS } from '../../base/arch/configs.js';
import { readModel } from '../../base/cnv2/format.js';
import { analyze } from '../../converter/flops.js';
import { evaluateModel } from '../../runtime/evaluate.js';
import { readImageFile } from '../../runtime/image.js';
import { loadModelFile } from '../../runtime/index.js';
import { DEFAULT_DATA_DIRS, openDataset } from '../../base/data/index.js';

const root = path.resolve(import.meta.dirname, '../..');
const modelFile = path.join(root, 'models/cdnv2-fmnist.cnv2');
const card = readFileSync(path.join(root, 'models/README.md'), 'utf8');
const samplesDir = path.join(root, 'models/samples');
const DATA_DIR = DEFAULT_DATA_DIRS['fashion-mnist']!;
// The configuration of the shipped model: the wider cdnv2-fmnist-w (cdnv2-fmnist itself stopped near 91%).
const SHIPPED_ARCH = 'cdnv2-fmnist-w';
// The project's accuracy target (issue 5), which the shipped model must clear: it also catches a broken conversion or
// a worse file shipped by mistake. The accuracy claimed is checked exactly, against the card.
const FLOOR_ACCURACY = 0.935;

/** Whether the test set is installed; in CI its absence is a failure, elsewhere a skip. */
function datasetPresent(t: Test): boolean {
  if (existsSync(DATA_DIR)) return true;
  const why = `${DATA_DIR} is missing (Debian package dataset-fashion-mnist)`;
  if (process.env.CI) t.fail(why);
  else t.skip(why);
  return false;
}

const claim = /\{"accuracy":([0-9.]+),"count":(\d+)\}/.exec(card);

t.test(`the file is a small, valid ${SHIPPED_ARCH} model whose card states its size, FLOPs and parameters`, async (t) => {
  const bytes = readFileSync(modelFile);
  t.ok(bytes.length < 1 << 20, `${bytes.length} bytes, well under 1 MB`);
  const info = analyze(readModel(new Uint8Array(bytes)), bytes.length);
  const loaded = await loadModelFile(modelFile);
  t.teardown(() => loaded.dispose());
  t.equal(loaded.meta.arch, SHIPPED_ARCH, 'configuration name in the metadata');
  t.same(loaded.meta.labels, FASHION_MNIST_LABELS, 'Fashion-MNIST labels in class order');
  t.same(loaded.meta.inputShape, [1, 28, 28]);
  t.ok(card.includes(`${bytes.length.toLocaleString('en')} bytes`), 'card states the file size');
  t.ok(card.includes(`(${info.totals.flops.toLocaleString('en')}) per image`), 'card states the FLOPs');
  t.ok(card.includes(`(${info.totals.params.toLocaleString('en')})`), 'card states the parameters');
});

t.test('accuracy on the whole Fashion-MNIST test set, in the wasm runtime, is what the card says', async (t) => {
  if (!datasetPresent(t)) return;
  t.ok(claim, 'the card prints the eval command\'s JSON');
  const model = await loadModelFile(modelFile);
  t.teardown(() => model.dispose());
  const src = openDataset('fashion-mnist', 'test', CONFIGS[SHIPPED_ARCH]!);
  let result;
  try {
    result = evaluateModel(model, src);
  } finally {
    src.close();
  }
  t.equal(result.count, 10000);
  t.equal(result.accuracy, Number(claim![1]), 'measured accuracy equals the card\'s');
  t.equal(result.count, Number(claim![2]));
  t.ok(result.accuracy >= FLOOR_ACCURACY, `top-1 ${result.accuracy} >= ${FLOOR_ACCURACY}`);
});

t.test('the shipped samples are the first test images, and the PNG path gives the same logits as the data set path', async (t) => {
  if (!datasetPresent(t)) return;
  const files = readdirSync(samplesDir).filter((f) => f.endsWith('.png')).sort();
  t.ok(files.length >= 4, `${files.length} samples`);
  const model = await loadModelFile(modelFile);
  t.teardown(() => model.dispose());
  const src = openDataset('fashion-mnist', 'test', CONFIGS[SHIPPED_ARCH]!);
  t.teardown(() => src.close());
  const pixels = new Uint8Array(28 * 28);
  for (const [i, f] of files.entries()) {
    const m = /^(\d+)-(.+)\.png$/.exec(f)!;
    t.equal(Number(m[1]), i, `${f}: numbered in test-set order`);
    src.read(i, pixels);
    const slug = FASHION_MNIST_LABELS[src.label(i)]!.toLowerCase().replace(/[^a-z]+/g, '-');
    t.equal(m[2], slug, `${f}: named after its true label`);
    const img = await readImageFile(path.join(samplesDir, f));
    if (img.kind !== 'pixels') { t.fail(`${f}: decoded as ${img.kind}`); continue; }
    t.equal(img.image.channels, 1, `${f}: a gray PNG`);
    t.same(Array.from(img.image.data), Array.from(pixels), `${f}: PNG pixels are the data set's, losslessly`);
    const viaPng = model.runImage(img.image);
    const viaData = model.runImage({ width: 28, height: 28, channels: 1, data: pixels });
    t.same(Array.from(viaPng), Array.from(viaData), `${f}: identical logits`);
  }
});

t.test('the README main command (npm run demo) classifies the samples with the shipped model', async (t) => {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const demo = pkg.scripts.demo!;
  t.match(demo, /models\/cdnv2-fmnist\.cnv2/, 'the demo uses the shipped model');
  t.ok(card.includes('`cdnv2-fmnist.cnv2`: the default model'), 'the card names it the default');
  if (!existsSync(path.join(root, 'dist/cli/cdnv2.js')) || statSync(path.join(root, 'dist/cli/cdnv2.js')).size === 0) {
    t.fail('dist/cli/cdnv2.js is missing: npm test builds it first');
    return;
  }
  const out = execFileSync('sh', ['-c', demo], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  const model = await loadModelFile(modelFile);
  t.teardown(() => model.dispose());
  // Each image is reported as "<file>  (<ms> ms, <engine>)" followed by its top-K "<score> <index> <label>" lines.
  const blocks = out.split(/\n(?=\S)/).filter((b) => b.trim());
  t.ok(blocks.length >= 4, `${blocks.length} images reported`);
  for (const block of blocks) {
    const [head, ...rows] = block.trim().split('\n');
    const h = /^(\S+\.png)\s+\(([0-9.]+) ms, (\w+)\)$/.exec(head!);
    t.ok(h, `header with latency: ${head}`);
    if (!h) continue;
    t.ok(Number(h[2]) > 0, 'a positive latency');
    const img = await readImageFile(path.join(root, h[1]!));
    if (img.kind !== 'pixels') { t.fail(`${h[1]} decoded as ${img.kind}`); continue; }
    const y = model.runImage(img.image);
    let best = 0;
    for (let c = 1; c < y.length; c++) if (y[c]! > y[best]!) best = c;
    const first = /^\s*([0-9.]+)\s+(\d+)\s+(.+)$/.exec(rows[0] ?? '');
    t.ok(first, `a top-1 row for ${h[1]}`);
    if (!first) continue;
    t.equal(Number(first[2]), best, `${h[1]}: the demo's top-1 is the runtime's argmax`);
    t.equal(first[3], FASHION_MNIST_LABELS[best], `${h[1]}: printed with its label`);
  }
});
