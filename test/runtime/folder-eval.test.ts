// Evaluation of an image folder uses the model's own preprocessing, as the runtime's metadata says: for a model
// with the official resize (shorter side to input.resize_shorter, bicubic, centre crop) the folder's test images
// (TF.js side, base/data/folder.ts + resample.ts) equal the runtime's own preprocessing of the original file, and
// `evaluateModel` (cdnv2 eval model.cnv2) hands the runtime the original image rather than a resized copy.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import t from 'tap';

import { decodeImage, openFolder, toChannels } from '../../base/data/folder.js';
import { Rng } from '../../base/rng.js';
import { condense } from '../../converter/condense.js';
import { writeModel } from '../../base/cnv2/format.js';
import { randomNetworkParams } from '../../converter/random.js';
import { loadModel } from '../../runtime/index.js';
import { evaluateModel } from '../../runtime/evaluate.js';
import { tinyConfig } from '../../trainer/tiny.js';
import { officialPreprocess } from '../reference/resize.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-folder-eval-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

const mean = [0.5, 0.45, 0.4], std = [0.25, 0.24, 0.26];
const root = path.join(tmp, 'images');
const rng = new Rng(3);
for (const cls of ['a', 'b']) {
  mkdirSync(path.join(root, 'test', cls), { recursive: true });
  mkdirSync(path.join(root, 'train', cls), { recursive: true });
  for (let i = 0; i < 3; i++) {
    const png = new PNG({ width: 23 + 7 * i, height: 17 + 5 * i });
    for (let k = 0; k < png.data.length; k++) png.data[k] = k % 4 === 3 ? 255 : Math.round(128 + 100 * Math.sin(k / 37)) + rng.int(20);
    writeFileSync(path.join(root, 'test', cls, `${i}.png`), PNG.sync.write(png));
  }
}

for (const [resize, resizeShorter] of [['bicubic', 11], ['bilinear', 12]] as const) {
  t.test(`a model with the official resize (${resize}, shorter side ${resizeShorter}, crop 8): folder = runtime = reference`, async (t) => {
    const cfg = tinyConfig({ input: { channels: 3, height: 8, width: 8 }, mean, std, resize, resizeShorter });
    const model = await loadModel(writeModel(condense(randomNetworkParams(cfg, 2), { weights: 'f32' })));
    const src = openFolder(root, 'test', cfg.input, { resize, resizeShorter });
    t.equal(src.count, 6);
    const px = new Uint8Array(8 * 8 * 3);
    for (let i = 0; i < src.count; i++) {
      src.read(i, px);
      const orig = src.readOriginal!(i);
      const runtime = model.preprocess(orig); // CHW, normalised
      const ref = officialPreprocess(Float64Array.from(orig.data, (v) => v / 255), orig.width, orig.height, 3, resizeShorter, resize === 'bicubic', 8, mean, std);
      let vsRuntime = 0, vsRef = 0;
      for (let c = 0; c < 3; c++) for (let p = 0; p < 64; p++) {
        const ours = (px[p * 3 + c]! / 255 - mean[c]!) / std[c]!;
        vsRuntime = Math.max(vsRuntime, Math.abs(ours - runtime[c * 64 + p]!) * std[c]! * 255);
        vsRef = Math.max(vsRef, Math.abs(ours - ref[c * 64 + p]!) * std[c]! * 255);
      }
      // 8-bit rounding after each pass on our side: within 1.5 levels.
      t.ok(vsRuntime <= 1.5 && vsRef <= 1.5, `image ${i} (${orig.width}x${orig.height}): ${vsRuntime.toFixed(2)} levels from the runtime, ${vsRef.toFixed(2)} from the reference`);
    }
    const r = evaluateModel(model, src, { keepLogits: true });
    for (let i = 0; i < src.count; i++) {
      const want = model.runImage(toChannels(decodeImage(path.join(root, 'test', i < 3 ? 'a' : 'b', `${i % 3}.png`)), 3));
      t.same(Array.from(r.logits!.subarray(i * 4, i * 4 + 4)), Array.from(want), `eval image ${i}: the runtime's logits of the original file`);
    }
    model.dispose();
  });
}
