import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import t from 'tap';

import { CONFIGS } from '../../base/arch/configs.js';
import { openCifar } from '../../base/data/cifar.js';
import { decodePnm, openFolder } from '../../base/data/folder.js';
import { openIdx } from '../../base/data/idx.js';
import { assembleBatch, DataError, openDataset } from '../../base/data/index.js';
import { openSynthetic } from '../../base/data/synthetic.js';
import { Rng } from '../../base/rng.js';
import { tinyConfig } from '../../trainer/tiny.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-data-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

function idxImages(n: number, h: number, w: number, fill: (i: number, p: number) => number): Buffer {
  const b = Buffer.alloc(16 + n * h * w);
  b.writeUInt32BE(0x00000803, 0); b.writeUInt32BE(n, 4); b.writeUInt32BE(h, 8); b.writeUInt32BE(w, 12);
  for (let i = 0; i < n; i++) for (let p = 0; p < h * w; p++) b[16 + i * h * w + p] = fill(i, p);
  return b;
}
function idxLabels(labels: number[]): Buffer {
  const b = Buffer.alloc(8 + labels.length);
  b.writeUInt32BE(0x00000801, 0); b.writeUInt32BE(labels.length, 4);
  labels.forEach((l, i) => { b[8 + i] = l; });
  return b;
}
function dir(name: string, files: Record<string, Buffer>): string {
  const d = path.join(tmp, name);
  mkdirSync(d, { recursive: true });
  for (const [f, b] of Object.entries(files)) writeFileSync(path.join(d, f), b);
  return d;
}

t.test('IDX: gzip and plain files read back exactly', async (t) => {
  const img = idxImages(3, 4, 5, (i, p) => (i * 31 + p * 7) % 256);
  const d1 = dir('idx-gz', { 't10k-images-idx3-ubyte.gz': gzipSync(img), 't10k-labels-idx1-ubyte.gz': gzipSync(idxLabels([1, 9, 0])) });
  const d2 = dir('idx-plain', { 't10k-images-idx3-ubyte': img, 't10k-labels-idx1-ubyte': idxLabels([1, 9, 0]) });
  for (const d of [d1, d2]) {
    const s = openIdx(d, 'test', 'x');
    t.equal(s.count, 3); t.equal(s.height, 4); t.equal(s.width, 5);
    const out = new Uint8Array(20);
    s.read(1, out);
    t.same(Array.from(out), Array.from({ length: 20 }, (_, p) => (31 + p * 7) % 256));
    t.same([0, 1, 2].map((i) => s.label(i)), [1, 9, 0]);
  }
});

t.test('IDX: malformed files give clear errors', async (t) => {
  const good = idxImages(2, 2, 2, () => 1);
  const lbl = idxLabels([0, 1]);
  const bad = (name: string, files: Record<string, Buffer>, re: RegExp) =>
    t.test(name, async (t) => { t.throws(() => openIdx(dir(name, files), 'train', 'x'), re); });
  const trainFiles = (img: Buffer, l: Buffer) => ({ 'train-images-idx3-ubyte': img, 'train-labels-idx1-ubyte': l });
  await bad('missing', { 'train-images-idx3-ubyte': good }, /missing train-labels-idx1-ubyte/);
  await bad('magic', trainFiles(Buffer.from('hello world, not idx'), lbl), /bad magic/);
  await bad('truncated', trainFiles(good.subarray(0, good.length - 3), lbl), /IDX data has 5 bytes, header says 8/);
  await bad('count', trainFiles(good, idxLabels([0, 1, 2])), /3 labels for 2 images/);
  await bad('label', trainFiles(good, idxLabels([0, 12])), /label 12 at index 1/);
  await bad('gzip', { 'train-images-idx3-ubyte.gz': Buffer.concat([gzipSync(good).subarray(0, 20)]), 'train-labels-idx1-ubyte': lbl }, /corrupt gzip/);
  await bad('dims', trainFiles(lbl, lbl), /expected 3 dimensions, found 1/);
  // Shape mismatch with the configuration.
  const d = dir('shape', { 'train-images-idx3-ubyte': good, 'train-labels-idx1-ubyte': lbl });
  t.throws(() => openDataset('mnist', 'train', CONFIGS['cdnv2-fmnist']!, d), /1x2x2 images but cdnv2-fmnist expects 1x28x28/);
});

t.test('CIFAR: planar records become HWC, labels checked, bad sizes rejected', async (t) => {
  const rec = Buffer.alloc(3074 * 2);
  for (let r = 0; r < 2; r++) {
    rec[r * 3074] = 3; rec[r * 3074 + 1] = 42 + r; // coarse, fine
    for (let p = 0; p < 3072; p++) rec[r * 3074 + 2 + p] = (p + r) % 251;
  }
  const d = dir('c100', { 'test.bin': rec });
  const s = openCifar(d, 'test', 100);
  t.equal(s.count, 2);
  t.equal(s.label(1), 43);
  const out = new Uint8Array(3072);
  s.read(1, out);
  t.equal(out[5 * 3 + 2], (2048 + 5 + 1) % 251, 'blue plane of pixel 5');
  t.equal(out[7 * 3 + 0], (7 + 1) % 251, 'red plane of pixel 7');
  s.close();
  t.throws(() => openCifar(dir('c100bad', { 'test.bin': rec.subarray(0, 5000) }), 'test', 100), /not a multiple of the 3074-byte/);
  t.throws(() => openCifar(dir('c10missing', {}), 'test', 10), /missing CIFAR-10 file test_batch.bin/);
  const bad = Buffer.alloc(3073); bad[0] = 10;
  const s2 = openCifar(dir('c10bad', { 'test_batch.bin': bad }), 'test', 10);
  t.throws(() => s2.label(0), /label 10 of record 0 is not below 10/);
  s2.close();
});

t.test('PNM and image folders', async (t) => {
  const pgm = Buffer.concat([Buffer.from('P5\n# comment\n2 2\n255\n'), Buffer.from([0, 64, 128, 255])]);
  const img = decodePnm(pgm, 'x.pgm');
  t.same(Array.from(img.data), [0, 64, 128, 255]);
  t.same(Array.from(decodePnm(Buffer.from('P3 1 1 15 15 0 5'), 'a.ppm').data), [255, 0, 85]);
  t.throws(() => decodePnm(Buffer.from('P6\n2 2\n255\n\x01'), 'b.ppm'), /truncated PNM pixel data/);
  t.throws(() => decodePnm(Buffer.from('GIF89a'), 'c.ppm'), /not a PGM\/PPM file/);
  const root = path.join(tmp, 'folder');
  for (const c of ['cat', 'dog']) {
    mkdirSync(path.join(root, c), { recursive: true });
    for (let i = 0; i < 10; i++) writeFileSync(path.join(root, c, `${i}.pgm`), Buffer.concat([Buffer.from('P5 4 4 255\n'), Buffer.alloc(16, c === 'cat' ? 10 : 200)]));
  }
  const tr = openFolder(root, 'train', { height: 2, width: 2, channels: 3 });
  const te = openFolder(root, 'test', { height: 2, width: 2, channels: 3 });
  t.equal(tr.count, 18); t.equal(te.count, 2);
  t.same(tr.classNames, ['cat', 'dog']);
  const out = new Uint8Array(12);
  te.read(1, out);
  t.same(Array.from(out), Array(12).fill(200));
  t.equal(te.label(1), 1);
  writeFileSync(path.join(root, 'dog', '3.pgm'), Buffer.from('P5 4 4 255\n'));
  t.throws(() => tr.read(12, out), /3\.pgm: truncated PNM pixel data/);
  t.throws(() => openFolder(path.join(tmp, 'nowhere'), 'train', { height: 2, width: 2, channels: 1 }), DataError);
});

t.test('synthetic set is deterministic; batches are normalised, cropped and flipped', async (t) => {
  const a = openSynthetic({ split: 'train', count: 10, height: 6, width: 6, channels: 1, classes: 3 });
  const b = openSynthetic({ split: 'train', count: 10, height: 6, width: 6, channels: 1, classes: 3 });
  const x = new Uint8Array(36), y = new Uint8Array(36);
  a.read(4, x); b.read(4, y);
  t.same(x, y);
  t.equal(a.label(4), b.label(4));
  const cfg = tinyConfig({ input: { channels: 1, height: 6, width: 6 }, mean: [0.5], std: [0.25] });
  const out = new Float32Array(36);
  assembleBatch(a, cfg, [4], out, new Int32Array(1));
  t.ok(Math.abs(out[7]! - (x[7]! / 255 - 0.5) / 0.25) < 1e-6);
  // Flip only (crop 0): mirrored rows.
  const flipped = new Float32Array(36);
  const rng = new Rng(1);
  let saw = false;
  for (let k = 0; k < 8 && !saw; k++) {
    assembleBatch(a, cfg, [4], flipped, new Int32Array(1), { crop: 0, flip: true }, rng);
    saw = flipped[0] !== out[0] || flipped[5] !== out[5];
    if (saw) for (let yy = 0; yy < 6; yy++) for (let xx = 0; xx < 6; xx++) t.equal(flipped[yy * 6 + xx], out[yy * 6 + 5 - xx]);
  }
  t.ok(saw, 'a flip happened');
});
