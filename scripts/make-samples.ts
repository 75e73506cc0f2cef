// Extracts the first Fashion-MNIST test images as PNG files for the README's demo (models/samples/).
// Usage: npx tsx scripts/make-samples.ts [count] [dataDir]
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import path from 'node:path';
import { PNG } from 'pngjs';
import { FASHION_MNIST_LABELS } from '../base/arch/configs.js';

const count = Number(process.argv[2] ?? 8);
const dir = process.argv[3] ?? '/usr/share/datasets/fashion-mnist';
const images = gunzipSync(readFileSync(path.join(dir, 't10k-images-idx3-ubyte.gz')));
const labels = gunzipSync(readFileSync(path.join(dir, 't10k-labels-idx1-ubyte.gz')));
const out = 'models/samples';
mkdirSync(out, { recursive: true });
for (let i = 0; i < count; i++) {
  const png = new PNG({ width: 28, height: 28, colorType: 0, inputColorType: 0, bitDepth: 8 });
  const px = images.subarray(16 + i * 784, 16 + (i + 1) * 784);
  png.data = Buffer.from(px);
  const label = FASHION_MNIST_LABELS[labels[8 + i]!]!.toLowerCase().replace(/[^a-z]+/g, '-');
  writeFileSync(path.join(out, `${String(i).padStart(2, '0')}-${label}.png`), PNG.sync.write(png, { colorType: 0, inputColorType: 0 }));
}
console.log(`wrote ${count} images to ${out}`);
