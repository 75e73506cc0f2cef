// Writes some Fashion-MNIST classes as an image-folder data set (DIR/train/<class>/*.png, DIR/test/<class>/*.png),
// the form a user's own photos take: for the fine-tuning test and the demonstration in docs/training.md.
//   tsx scripts/fmnist-folder.ts -o DIR --classes 0,2,3,4,6 [--train N] [--test N] [--data DIR]
// Takes the first N training and N test images of each class (file order), so the result is deterministic.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PNG } from 'pngjs';

import { FASHION_MNIST_LABELS } from '../base/arch/configs.js';
import { DEFAULT_DATA_DIRS } from '../base/data/index.js';
import { openIdx } from '../base/data/idx.js';

/** A folder-safe class name: 'T-shirt/top' -> 'T-shirt-top'. */
export function folderName(label: string): string {
  return label.replace(/[^A-Za-z0-9_-]+/g, '-');
}

export interface FolderSpec {
  /** Fashion-MNIST class indices to write, each under its (folder-safe) name. */
  classes: number[];
  trainPerClass: number;
  testPerClass: number;
  /** IDX directory (default /usr/share/datasets/fashion-mnist). */
  data?: string;
}

/** Writes the folder tree into `out`; returns the class folder names in label order (sorted, as the loader sorts). */
export function writeFashionFolder(out: string, spec: FolderSpec): string[] {
  const dir = spec.data ?? DEFAULT_DATA_DIRS['fashion-mnist']!;
  const pixels = new Uint8Array(28 * 28);
  for (const [split, per] of [['train', spec.trainPerClass], ['test', spec.testPerClass]] as const) {
    const src = openIdx(dir, split, 'fashion-mnist');
    try {
      const written = new Map(spec.classes.map((c) => [c, 0]));
      for (const c of spec.classes) mkdirSync(path.join(out, split, folderName(FASHION_MNIST_LABELS[c]!)), { recursive: true });
      for (let i = 0; i < src.count && [...written.values()].some((n) => n < per); i++) {
        const c = src.label(i);
        const n = written.get(c);
        if (n === undefined || n >= per) continue;
        src.read(i, pixels);
        const png = new PNG({ width: 28, height: 28, colorType: 0, inputColorType: 0, inputHasAlpha: false });
        png.data = Buffer.from(pixels);
        writeFileSync(path.join(out, split, folderName(FASHION_MNIST_LABELS[c]!), `${String(i).padStart(5, '0')}.png`),
          PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false }));
        written.set(c, n + 1);
      }
    } finally {
      src.close();
    }
  }
  return spec.classes.map((c) => folderName(FASHION_MNIST_LABELS[c]!)).sort();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { out: { type: 'string', short: 'o' }, classes: { type: 'string' }, train: { type: 'string', default: '1000' },
    test: { type: 'string', default: '200' }, data: { type: 'string' } } });
  if (!values.out || !values.classes) {
    process.stderr.write('usage: tsx scripts/fmnist-folder.ts -o DIR --classes 0,2,3 [--train N] [--test N] [--data DIR]\n');
    process.exit(2);
  }
  const names = writeFashionFolder(values.out, {
    classes: values.classes.split(',').map(Number), trainPerClass: Number(values.train), testPerClass: Number(values.test), data: values.data,
  });
  process.stdout.write(`wrote ${values.out}: ${names.join(', ')}\n`);
}
