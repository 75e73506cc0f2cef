// The CIFAR-10/100 binary readers against hand-made files, and each augmentation (random crop with zero padding,
// horizontal flip) against its definition (issue 26). The CIFAR binary format: one record per image, the label
// byte(s) first (CIFAR-10: the class; CIFAR-100: coarse then fine, the fine label is the class), then 1024 red,
// 1024 green and 1024 blue bytes, rows top to bottom.
import t, { type Test } from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openCifar } from '../../base/data/cifar.js';
import { assembleBatch, type ImageSource } from '../../base/data/index.js';
import { Rng } from '../../base/rng.js';
import { tinyConfig } from '../../trainer/tiny.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-cifar-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

/** The pixel value of image `id` at (y, x), channel c: distinct per image, position and channel. */
const pixel = (id: number, y: number, x: number, c: number): number => (id * 31 + y * 7 + x * 3 + c * 101) % 256;

/** One CIFAR record of image `id`: label bytes, then the three planes. */
function record(id: number, labels: number[]): Buffer {
  const b = Buffer.alloc(labels.length + 3072);
  labels.forEach((l, i) => { b[i] = l; });
  for (let c = 0; c < 3; c++) for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) b[labels.length + c * 1024 + y * 32 + x] = pixel(id, y, x, c);
  return b;
}

function dir(name: string, files: Record<string, Buffer>): string {
  const d = path.join(tmp, name);
  mkdirSync(d);
  for (const [f, b] of Object.entries(files)) writeFileSync(path.join(d, f), b);
  return d;
}

/** Every image of a source equals its definition: HWC bytes, and its label. */
function checkImages(t: Test, s: ImageSource, ids: number[], labels: number[]): void {
  t.equal(s.count, ids.length, `${s.name}: ${ids.length} images`);
  t.same([s.height, s.width, s.channels], [32, 32, 3]);
  const out = new Uint8Array(3072);
  ids.forEach((id, i) => {
    s.read(i, out);
    let wrong = 0;
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) if (out[(y * 32 + x) * 3 + c] !== pixel(id, y, x, c)) wrong++;
    t.equal(wrong, 0, `${s.name} image ${i}: every pixel in HWC order`);
    t.equal(s.label(i), labels[i], `${s.name} image ${i}: label ${labels[i]}`);
  });
}

t.test('CIFAR-10: five training files read as one set in order, the test file, labels', async (t) => {
  const counts = [2, 1, 3, 1, 2];
  const files: Record<string, Buffer> = {};
  const ids: number[] = [], labels: number[] = [];
  let id = 0;
  counts.forEach((n, f) => {
    const recs: Buffer[] = [];
    for (let k = 0; k < n; k++, id++) { ids.push(id); labels.push((id * 3) % 10); recs.push(record(id, [(id * 3) % 10])); }
    files[`data_batch_${f + 1}.bin`] = Buffer.concat(recs);
  });
  files['test_batch.bin'] = Buffer.concat([record(100, [9]), record(101, [0])]);
  const d = dir('c10', files);
  const train = openCifar(d, 'train', 10);
  checkImages(t, train, ids, labels);
  t.equal(train.classes, 10);
  train.close();
  const test = openCifar(d, 'test', 10);
  checkImages(t, test, [100, 101], [9, 0]);
  t.throws(() => test.label(2), /out of range/, 'past the last record');
  test.close();
  t.throws(() => openCifar(dir('c10-no-batch-3', Object.fromEntries(Object.entries(files).filter(([f]) => f !== 'data_batch_3.bin'))), 'train', 10), /missing CIFAR-10 file data_batch_3\.bin/);
  t.throws(() => openCifar(dir('c10-short', { ...files, 'data_batch_2.bin': files['data_batch_2.bin']!.subarray(1) }), 'train', 10), /not a multiple of the 3073-byte CIFAR-10 record/);
});

t.test('CIFAR-100: the fine label is the class, the coarse one is skipped', async (t) => {
  const d = dir('c100', {
    'train.bin': Buffer.concat([record(7, [19, 5]), record(8, [0, 99]), record(9, [3, 0])]),
    'test.bin': Buffer.concat([record(10, [1, 42])]),
  });
  checkImages(t, openCifar(d, 'train', 100), [7, 8, 9], [5, 99, 0]);
  checkImages(t, openCifar(d, 'test', 100), [10], [42]);
  const bad = openCifar(dir('c100-bad', { 'test.bin': record(11, [2, 100]) }), 'test', 100);
  t.throws(() => bad.label(0), /label 100 of record 0 is not below 100/);
});

// ---------------------------------------------------------------------------------------------------------------
// Augmentations. Definition: the image is mirrored left-right (if flipped), then the H x W window at offset
// (dy, dx) of it, padded with black, is taken: out(y, x) = img'(y + dy, x + dx), black outside the image. Pixels are
// then normalised, (v / 255 - mean_c) / std_c, black giving (0 - mean_c) / std_c.

const H = 5, W = 7, C = 3;
const cfg = tinyConfig({ input: { channels: C, height: H, width: W }, mean: [0.5, 0.25, 0.1], std: [0.2, 0.3, 0.4] });
const source: ImageSource = {
  name: 'hand-made', count: 1, height: H, width: W, channels: C, classes: 4,
  read: (_i, out) => { for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) out[(y * W + x) * C + c] = 10 + y * 40 + x * 5 + c; },
  label: () => 2,
  close: () => {},
};
const value = (y: number, x: number, c: number): number => 10 + y * 40 + x * 5 + c;

function expected(dy: number, dx: number, flip: boolean): Float32Array {
  const out = new Float32Array(H * W * C);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) {
    const sy = y + dy, sx = x + dx;
    const inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
    const v = inside ? value(sy, flip ? W - 1 - sx : sx, c) : 0;
    out[(y * W + x) * C + c] = Math.fround((v / 255 - cfg.mean[c]!) / cfg.std[c]!);
  }
  return out;
}

/** A generator that hands out the draws a test wants: int() for the shifts, next() for the flip. */
function scripted(ints: number[], flip: boolean): Rng {
  return { int: (n: number) => { const v = ints.shift()!; if (v >= n) throw new Error(`draw ${v} out of [0, ${n})`); return v; }, next: () => (flip ? 0.25 : 0.75) } as unknown as Rng;
}

t.test('crop and flip equal their definition for every shift', async (t) => {
  const crop = 2;
  for (let dy = -crop; dy <= crop; dy++) for (let dx = -crop; dx <= crop; dx++) for (const flip of [false, true]) {
    const out = new Float32Array(H * W * C), labels = new Int32Array(1);
    assembleBatch(source, cfg, [0], out, labels, { crop, flip: true }, scripted([dy + crop, dx + crop], flip));
    t.same(out, expected(dy, dx, flip), `dy ${dy}, dx ${dx}${flip ? ', flipped' : ''}`);
    t.equal(labels[0], 2);
  }
  // Without augmentation the image is only normalised; with flip disabled no draw flips it.
  const plain = new Float32Array(H * W * C);
  assembleBatch(source, cfg, [0], plain, new Int32Array(1));
  t.same(plain, expected(0, 0, false), 'no augmentation');
  const noFlip = new Float32Array(H * W * C);
  assembleBatch(source, cfg, [0], noFlip, new Int32Array(1), { crop: 1, flip: false }, scripted([1, 1], true));
  t.same(noFlip, expected(0, 0, false), 'flip: false never flips');
});

t.test('with the real generator: shifts uniform over [-crop, crop], flips about half the time', async (t) => {
  const crop = 2, n = 600;
  const rng = new Rng(123);
  const shifts = new Map<string, number>();
  let flips = 0, unexplained = 0;
  const out = new Float32Array(H * W * C);
  const all: [number, number, boolean, Float32Array][] = [];
  for (let dy = -crop - 1; dy <= crop + 1; dy++) for (let dx = -crop - 1; dx <= crop + 1; dx++) for (const f of [false, true]) all.push([dy, dx, f, expected(dy, dx, f)]);
  for (let k = 0; k < n; k++) {
    assembleBatch(source, cfg, [0], out, new Int32Array(1), { crop, flip: true }, rng);
    const hit = all.find(([, , , e]) => e.every((v, i) => v === out[i]));
    if (!hit) { unexplained++; continue; }
    const [dy, dx, f] = hit;
    shifts.set(`${dy},${dx}`, (shifts.get(`${dy},${dx}`) ?? 0) + 1);
    if (f) flips++;
  }
  t.equal(unexplained, 0, 'every batch is the definition at some shift and flip');
  const seen = [...shifts.keys()].map((k) => k.split(',').map(Number));
  t.ok(seen.every(([dy, dx]) => Math.abs(dy!) <= crop && Math.abs(dx!) <= crop), 'no shift beyond the crop');
  t.equal(shifts.size, (2 * crop + 1) ** 2, `all ${(2 * crop + 1) ** 2} shifts occur`);
  t.ok(flips > n * 0.4 && flips < n * 0.6, `${flips} of ${n} flipped`);
});
