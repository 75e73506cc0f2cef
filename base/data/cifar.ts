// CIFAR-10/100 binary version, read per record with positioned reads (never the whole file as floats).
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import path from 'node:path';

import { DataError, type ImageSource } from './source.js';

const PIXELS = 32 * 32 * 3;

export function openCifar(dir: string, split: 'train' | 'test', variant: 10 | 100): ImageSource {
  const labelBytes = variant === 10 ? 1 : 2; // CIFAR-100: coarse label byte, then fine label byte
  const rec = labelBytes + PIXELS;
  let files: string[];
  if (variant === 10) files = split === 'train' ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ['test_batch.bin'];
  else files = [split === 'train' ? 'train.bin' : 'test.bin'];
  const parts: { fd: number; file: string; count: number }[] = [];
  for (const f of files) {
    const p = path.join(dir, f);
    if (!existsSync(p)) throw new DataError(`${dir}: missing CIFAR-${variant} file ${f}`);
    const size = statSync(p).size;
    if (size === 0 || size % rec !== 0) {
      throw new DataError(`${p}: size ${size} is not a multiple of the ${rec}-byte CIFAR-${variant} record`);
    }
    parts.push({ fd: openSync(p, 'r'), file: p, count: size / rec });
  }
  const count = parts.reduce((a, b) => a + b.count, 0);
  const recBuf = Buffer.alloc(rec);
  let cached = -1;
  const load = (i: number): void => {
    if (i === cached) return;
    let k = i;
    for (const part of parts) {
      if (k < part.count) {
        const got = readSync(part.fd, recBuf, 0, rec, k * rec);
        if (got !== rec) throw new DataError(`${part.file}: short read at record ${k}`);
        const lbl = recBuf[labelBytes - 1]!;
        if (lbl >= variant) throw new DataError(`${part.file}: label ${lbl} of record ${k} is not below ${variant}`);
        cached = i;
        return;
      }
      k -= part.count;
    }
    throw new DataError(`CIFAR index ${i} out of range`);
  };
  return {
    name: `cifar${variant}/${split}`, count, height: 32, width: 32, channels: 3, classes: variant,
    read: (i, out) => {
      load(i);
      // Records are channel-planar (1024 R, 1024 G, 1024 B); the trainer works in HWC.
      for (let p = 0; p < 1024; p++) {
        out[p * 3] = recBuf[labelBytes + p]!;
        out[p * 3 + 1] = recBuf[labelBytes + 1024 + p]!;
        out[p * 3 + 2] = recBuf[labelBytes + 2048 + p]!;
      }
    },
    label: (i) => { load(i); return recBuf[labelBytes - 1]!; },
    close: () => { for (const p of parts) closeSync(p.fd); },
  };
}
