// Image-folder data set: DIR/<class>/<image> (PNG, JPEG, PPM/PGM), decoded on demand and resized to the model
// input (shorter side to the input size, bilinear, then centre crop). With DIR/train and DIR/test (or DIR/val)
// those are the splits; otherwise every 10th image of each class (sorted by name) is held out for testing.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

import { resizeShorterCenterCrop } from './resample.js';
import { DataError, type ImageSource } from './source.js';

const EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.ppm', '.pgm']);

export interface DecodedImage { width: number; height: number; channels: number; data: Uint8Array }

/** Parses binary (P5/P6) or ASCII (P2/P3) PGM/PPM with maxval <= 65535. */
export function decodePnm(buf: Buffer, file: string): DecodedImage {
  let pos = 0;
  const token = (): string => {
    for (;;) {
      while (pos < buf.length && /\s/.test(String.fromCharCode(buf[pos]!))) pos++;
      if (buf[pos] === 0x23) { while (pos < buf.length && buf[pos] !== 0x0a) pos++; continue; }
      break;
    }
    const start = pos;
    while (pos < buf.length && !/\s/.test(String.fromCharCode(buf[pos]!))) pos++;
    if (start === pos) throw new DataError(`${file}: truncated PNM header`);
    return buf.toString('latin1', start, pos);
  };
  const magic = token();
  if (!['P2', 'P3', 'P5', 'P6'].includes(magic)) throw new DataError(`${file}: not a PGM/PPM file (magic ${JSON.stringify(magic.slice(0, 4))})`);
  const width = Number(token()), height = Number(token()), maxval = Number(token());
  if (!(width > 0 && height > 0 && Number.isInteger(width) && Number.isInteger(height) && width * height <= 1 << 26)) {
    throw new DataError(`${file}: bad PNM size ${width}x${height}`);
  }
  if (!(maxval > 0 && maxval < 65536)) throw new DataError(`${file}: bad PNM maxval ${maxval}`);
  const channels = magic === 'P3' || magic === 'P6' ? 3 : 1;
  const n = width * height * channels;
  const data = new Uint8Array(n);
  if (magic === 'P5' || magic === 'P6') {
    pos++; // single whitespace after maxval
    const bps = maxval < 256 ? 1 : 2;
    if (buf.length - pos < n * bps) throw new DataError(`${file}: truncated PNM pixel data`);
    for (let i = 0; i < n; i++) {
      const v = bps === 1 ? buf[pos + i]! : buf.readUInt16BE(pos + 2 * i);
      data[i] = Math.round((v * 255) / maxval);
    }
  } else {
    for (let i = 0; i < n; i++) {
      const v = Number(token());
      if (!Number.isFinite(v)) throw new DataError(`${file}: bad PNM sample`);
      data[i] = Math.round((Math.min(v, maxval) * 255) / maxval);
    }
  }
  return { width, height, channels, data };
}

export function decodeImage(file: string): DecodedImage {
  const buf = readFileSync(file);
  const ext = path.extname(file).toLowerCase();
  try {
    if (ext === '.png') {
      const png = PNG.sync.read(buf);
      return { width: png.width, height: png.height, channels: 4, data: new Uint8Array(png.data) };
    }
    if (ext === '.jpg' || ext === '.jpeg') {
      const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 512 });
      return { width: img.width, height: img.height, channels: 4, data: img.data };
    }
    return decodePnm(buf, file);
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`${file}: cannot decode image (${(e as Error).message})`);
  }
}

/**
 * Resizes (shorter side to the target, or to `resizeShorter` as a model's metadata says, bilinear, centre crop)
 * and converts to the wanted channel count (HWC).
 */
export function fitImage(img: DecodedImage, height: number, width: number, channels: number, out: Uint8Array, resizeShorter?: number): void {
  const fit = Math.max(height / img.height, width / img.width);
  const scale = resizeShorter ? Math.max(fit, resizeShorter / Math.min(img.height, img.width)) : fit;
  const oy = (img.height * scale - height) / 2, ox = (img.width * scale - width) / 2;
  const src = (y: number, x: number, c: number): number => {
    const base = (y * img.width + x) * img.channels;
    if (img.channels === 1) return img.data[base]!;
    if (channels === 1) return 0.299 * img.data[base]! + 0.587 * img.data[base + 1]! + 0.114 * img.data[base + 2]!;
    return img.data[base + c]!;
  };
  for (let y = 0; y < height; y++) {
    const sy = Math.min(img.height - 1, Math.max(0, (y + oy + 0.5) / scale - 0.5));
    const y0 = Math.floor(sy), y1 = Math.min(img.height - 1, y0 + 1), fy = sy - y0;
    for (let x = 0; x < width; x++) {
      const sx = Math.min(img.width - 1, Math.max(0, (x + ox + 0.5) / scale - 0.5));
      const x0 = Math.floor(sx), x1 = Math.min(img.width - 1, x0 + 1), fx = sx - x0;
      for (let c = 0; c < channels; c++) {
        const v = (src(y0, x0, c) * (1 - fx) + src(y0, x1, c) * fx) * (1 - fy) + (src(y1, x0, c) * (1 - fx) + src(y1, x1, c) * fx) * fy;
        out[(y * width + x) * channels + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
}

/** The image with `channels` channels at its own size: alpha dropped, gray repeated, RGB to luma (BT.601). */
export function toChannels(img: DecodedImage, channels: number): DecodedImage {
  if (img.channels === channels) return img;
  const n = img.width * img.height, C = img.channels;
  const data = new Uint8Array(n * channels);
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < channels; c++) {
      let v: number;
      if (C === 1) v = img.data[p]!;
      else if (channels === 1) v = Math.round(0.299 * img.data[p * C]! + 0.587 * img.data[p * C + 1]! + 0.114 * img.data[p * C + 2]!);
      else v = img.data[p * C + Math.min(c, C - 1)]!;
      data[p * channels + c] = v;
    }
  }
  return { width: img.width, height: img.height, channels, data };
}

/** How a model wants its images brought to the input size (its configuration, as the runtime's metadata says). */
export interface FitSpec { resize?: 'bilinear' | 'bicubic' | 'nearest'; resizeShorter?: number }

/**
 * The model's own preprocessing, as the wasm runtime applies it: with `resizeShorter` or bicubic, the official
 * evaluation resize (Pillow's antialiased filter, shorter side to resizeShorter or the input size, centre crop);
 * otherwise the shorter side to the input, bilinear, centre crop (fitImage).
 */
export function fitForModel(img: DecodedImage, height: number, width: number, channels: number, spec: FitSpec, out: Uint8Array): void {
  if (spec.resizeShorter || spec.resize === 'bicubic') {
    const r = resizeShorterCenterCrop(toChannels(img, channels), spec.resizeShorter ?? Math.max(height, width), height, width, spec.resize === 'bicubic' ? 'bicubic' : 'bilinear');
    out.set(r.data);
  } else {
    fitImage(img, height, width, channels, out);
  }
}

function listClasses(dir: string): { classes: string[]; files: { file: string; label: number }[][] } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new DataError(`${dir}: not a directory`);
  const classes = readdirSync(dir).filter((d) => statSync(path.join(dir, d)).isDirectory()).sort();
  if (classes.length < 2) {
    throw new DataError(`${dir}: expected one sub-directory per class, at least 2 (found ${classes.length}${classes.length ? `: ${classes[0]}` : ''})`);
  }
  const files = classes.map((c, label) => readdirSync(path.join(dir, c))
    .filter((f) => EXTENSIONS.has(path.extname(f).toLowerCase())).sort()
    .map((f) => ({ file: path.join(dir, c, f), label })));
  return { classes, files };
}

/**
 * The class names of a folder data set (its sub-directories, sorted: label i is the i-th), from DIR/train when the
 * splits are explicit (the test split must have the same classes).
 */
export function folderClassNames(dir: string): string[] {
  const train = path.join(dir, 'train');
  if (!existsSync(train)) return listClasses(dir).classes;
  const names = listClasses(train).classes;
  const test = ['test', 'val'].map((d) => path.join(dir, d)).find((d) => existsSync(d));
  if (test) {
    const other = listClasses(test).classes;
    if (other.join('\n') !== names.join('\n')) {
      throw new DataError(`${dir}: train and ${path.basename(test)} have different classes (${names.join(', ')} vs ${other.join(', ')})`);
    }
  }
  return names;
}

export function openFolder(dir: string, split: 'train' | 'test', shape: { height: number; width: number; channels: number }, fit: FitSpec = {}): ImageSource & { classNames: string[] } {
  let items: { file: string; label: number }[];
  let classes: string[];
  const splitDir = split === 'train' ? ['train'] : ['test', 'val'];
  const explicit = splitDir.map((d) => path.join(dir, d)).find((d) => existsSync(d));
  if (explicit) {
    ({ classes, files: items = [] } = (() => { const r = listClasses(explicit); return { classes: r.classes, files: r.files.flat() }; })());
  } else {
    const r = listClasses(dir);
    classes = r.classes;
    items = r.files.flatMap((list) => list.filter((_, i) => (i % 10 === 9) === (split === 'test')));
  }
  if (items.length === 0) throw new DataError(`${dir}: no ${split} images (PNG, JPEG, PPM or PGM) found`);
  return {
    name: `folder/${split}`, count: items.length, classNames: classes, classes: classes.length, ...shape,
    read: (i, out) => fitForModel(decodeImage(items[i]!.file), shape.height, shape.width, shape.channels, fit, out),
    readOriginal: (i) => toChannels(decodeImage(items[i]!.file), shape.channels),
    label: (i) => items[i]!.label,
    close: () => {},
  };
}
