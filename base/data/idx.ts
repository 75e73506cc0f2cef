// MNIST / Fashion-MNIST IDX files (gzip'd or plain). Images stay uint8 (60k x 784 bytes is small).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';

import { DataError, type ImageSource } from './source.js';

function readMaybeGz(file: string): Buffer {
  const raw = readFileSync(file);
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return gunzipSync(raw);
    } catch (e) {
      throw new DataError(`${file}: corrupt gzip data (${(e as Error).message})`);
    }
  }
  return raw;
}

function findFile(dir: string, base: string): string {
  for (const cand of [base, `${base}.gz`, base.replace(/-idx(\d)-/, '.idx$1-'), `${base.replace(/-idx(\d)-/, '.idx$1-')}.gz`]) {
    const p = path.join(dir, cand);
    if (existsSync(p)) return p;
  }
  throw new DataError(`${dir}: missing ${base}[.gz]`);
}

/** Parses an IDX file header; returns dims and the data offset. */
export function parseIdx(buf: Buffer, file: string, expectDims: number): { dims: number[]; offset: number } {
  if (buf.length < 4) throw new DataError(`${file}: too short for an IDX header (${buf.length} bytes)`);
  if (buf[0] !== 0 || buf[1] !== 0) throw new DataError(`${file}: not an IDX file (bad magic)`);
  if (buf[2] !== 0x08) throw new DataError(`${file}: IDX element type 0x${buf[2]!.toString(16)} is not unsigned byte`);
  const nd = buf[3]!;
  if (nd !== expectDims) throw new DataError(`${file}: expected ${expectDims} dimensions, found ${nd}`);
  if (buf.length < 4 + 4 * nd) throw new DataError(`${file}: truncated IDX header`);
  const dims: number[] = [];
  for (let i = 0; i < nd; i++) dims.push(buf.readUInt32BE(4 + 4 * i));
  const offset = 4 + 4 * nd;
  const need = dims.reduce((a, b) => a * b, 1);
  if (buf.length - offset !== need) {
    throw new DataError(`${file}: IDX data has ${buf.length - offset} bytes, header says ${need} (${dims.join('x')})`);
  }
  return { dims, offset };
}

export function openIdx(dir: string, split: 'train' | 'test', name: string, classes = 10): ImageSource {
  const prefix = split === 'train' ? 'train' : 't10k';
  const imgFile = findFile(dir, `${prefix}-images-idx3-ubyte`);
  const lblFile = findFile(dir, `${prefix}-labels-idx1-ubyte`);
  const img = readMaybeGz(imgFile);
  const lbl = readMaybeGz(lblFile);
  const ih = parseIdx(img, imgFile, 3);
  const lh = parseIdx(lbl, lblFile, 1);
  const [n, h, w] = ih.dims as [number, number, number];
  if (lh.dims[0] !== n) throw new DataError(`${lblFile}: ${lh.dims[0]} labels for ${n} images in ${imgFile}`);
  const labels = lbl.subarray(lh.offset);
  for (let i = 0; i < n; i++) {
    if (labels[i]! >= classes) throw new DataError(`${lblFile}: label ${labels[i]} at index ${i} is not below ${classes}`);
  }
  const pixels = img.subarray(ih.offset);
  const size = h * w;
  return {
    name: `${name}/${split}`, count: n, height: h, width: w, channels: 1, classes,
    read: (i, out) => { out.set(pixels.subarray(i * size, (i + 1) * size)); },
    label: (i) => labels[i]!,
    close: () => {},
  };
}
