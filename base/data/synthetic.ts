// A small deterministic, learnable synthetic set: each class is an oriented stripe pattern at a class-specific
// frequency plus a bright square at a class-specific position, with pixel noise. Image i depends only on (seed, i).
import { Rng } from '../rng.js';
import type { ImageSource } from './source.js';

export function openSynthetic(opts: { split: 'train' | 'test'; count: number; height: number; width: number; channels: number; classes: number; seed?: number }): ImageSource {
  const { count, height, width, channels, classes } = opts;
  const seed = (opts.seed ?? 7) + (opts.split === 'train' ? 0 : 0x5eed);
  const labelOf = (i: number): number => Rng.derive(seed, i, 1).int(classes);
  return {
    name: `synthetic/${opts.split}`, count, height, width, channels, classes,
    read: (i, out) => {
      const c = labelOf(i);
      const rng = Rng.derive(seed, i, 2);
      const angle = (Math.PI * c) / classes;
      const freq = 2 * Math.PI * (1 + (c % 3)) / Math.max(4, width / 2);
      const phase = rng.next() * 2 * Math.PI;
      const bs = Math.max(2, Math.floor(Math.min(height, width) / 4));
      const by = (c * 3) % Math.max(1, height - bs);
      const bx = (c * 5) % Math.max(1, width - bs);
      const ca = Math.cos(angle), sa = Math.sin(angle);
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const stripe = 0.35 + 0.2 * Math.sin((x * ca + y * sa) * freq + phase);
          const inBox = y >= by && y < by + bs && x >= bx && x < bx + bs ? 0.45 : 0;
          for (let ch = 0; ch < channels; ch++) {
            const v = stripe + inBox + 0.1 * rng.normal() + (ch === c % channels ? 0.05 : 0);
            out[(y * width + x) * channels + ch] = Math.max(0, Math.min(255, Math.round(v * 200)));
          }
        }
      }
    },
    label: labelOf,
    close: () => {},
  };
}
