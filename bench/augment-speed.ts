// Time of the official folder augmentation per image (base/data/augment.ts), decoding excluded: 32 random
// 500x375 RGB images (a typical photo size) to the 224x224 input of cdnv2-a, the official pipeline against the
// crop and flip alone, 5 batches each; prints the median per image.
//   npx tsx bench/augment-speed.ts
import { getConfig } from '../base/arch/configs.js';
import { assembleAugmentedBatch, OFFICIAL_FOLDER_AUGMENT, type FolderAugment } from '../base/data/augment.js';
import type { ImageSource } from '../base/data/source.js';
import { Rng } from '../base/rng.js';

const cfg = getConfig('cdnv2-a');
const rng = new Rng(1);
const [W, H, N] = [500, 375, 32];
const images = Array.from({ length: N }, () => ({ width: W, height: H, channels: 3, data: Uint8Array.from({ length: W * H * 3 }, () => rng.int(256)) }));
const src: ImageSource = {
  name: 'random', count: N, height: 224, width: 224, channels: 3, classes: 1000,
  read: () => { throw new Error('unused'); }, readOriginal: (i) => images[i]!, label: () => 0, close: () => {},
};
const out = new Float32Array(N * 224 * 224 * 3), labels = new Int32Array(N);
const indices = Array.from({ length: N }, (_, i) => i);
const variants: [string, FolderAugment][] = [
  ['official (crop, flip, RandAugment, erasing)', OFFICIAL_FOLDER_AUGMENT],
  ['crop and flip only', { ...OFFICIAL_FOLDER_AUGMENT, randAugment: null, colorJitter: 0, randomErasing: 0 }],
];
for (const [name, aug] of variants) {
  const perImage: number[] = [];
  for (let epoch = 0; epoch < 5; epoch++) {
    const t0 = performance.now();
    assembleAugmentedBatch(src, cfg, indices, out, labels, aug, 1, epoch);
    perImage.push((performance.now() - t0) / N);
  }
  perImage.sort((a, b) => a - b);
  console.log(`${name}: median ${perImage[2]!.toFixed(1)} ms per ${W}x${H} image -> 224x224 (5 batches of ${N})`);
}
