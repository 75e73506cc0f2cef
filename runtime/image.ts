// Host-side image decoding for `cdnv2 classify`: PNG (pngjs) and JPEG (jpeg-js) to HWC pixels; PGM/PPM and raw
// tensors go to the runtime as they are. Every failure is a Cdnv2Error('input', ...) naming the file.
import { readFile, stat } from 'node:fs/promises';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { Cdnv2Error, type ImageData } from './engine.js';

export type ImageInput =
  | { kind: 'pixels'; image: ImageData }
  | { kind: 'pnm'; bytes: Uint8Array }
  | { kind: 'tensor'; data: Float32Array };

const MAX_FILE_BYTES = 256 << 20;
// Checked on the header before any decoder allocates: the runtime takes sides up to 16384, and 40 MP of RGBA
// floats (640 MB) still fit in wasm memory.
const MAX_SIDE = 16384;
const MAX_PIXELS = 40e6; // as jpeg-js's maxResolutionInMP below

function checkSize(w: number, h: number): void {
  if (w > MAX_SIDE || h > MAX_SIDE || w * h > MAX_PIXELS) {
    throw new Error(`${w}x${h} pixels, above ${MAX_SIDE} a side or ${MAX_PIXELS / 1e6} MP`);
  }
}

/** Width and height from a JPEG's first start-of-frame segment, or null when there is none. */
export function jpegSize(b: Uint8Array): [number, number] | null {
  let p = 2;
  while (p + 9 < b.length) {
    if (b[p] !== 0xff) return null;
    const marker = b[p + 1]!;
    if (marker === 0xff) { p++; continue; } // fill byte
    const len = (b[p + 2]! << 8) | b[p + 3]!;
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC)
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return [(b[p + 7]! << 8) | b[p + 8]!, (b[p + 5]! << 8) | b[p + 6]!];
    }
    p += 2 + len;
  }
  return null;
}

function isPng(b: Uint8Array): boolean {
  return b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
}
function isJpeg(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
}
function isPnm(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x50 && (b[1] === 0x35 || b[1] === 0x36);
}

/** Reads an image or raw tensor file; the kind is decided by content (magic bytes), raw tensors by extension. */
export async function readImageFile(file: string): Promise<ImageInput> {
  let info;
  try {
    info = await stat(file);
  } catch {
    throw new Cdnv2Error('io', `${file}: no such file`);
  }
  // By type before opening: a FIFO would block the read, a device would never end it.
  if (!info.isFile()) throw new Cdnv2Error('input', `${file}: ${info.isDirectory() ? 'is a directory, not an image' : 'not a regular file'}`);
  if (info.size > MAX_FILE_BYTES) throw new Cdnv2Error('input', `${file}: larger than 256 MiB`);
  const bytes = new Uint8Array(await readFile(file));
  if (bytes.length === 0) throw new Cdnv2Error('input', `${file}: empty file`);
  if (/\.(f32|raw|bin)$/i.test(file)) {
    if (bytes.length % 4 !== 0) throw new Cdnv2Error('input', `${file}: raw float32 tensor length ${bytes.length} is not a multiple of 4`);
    const copy = new Uint8Array(bytes); // aligned copy
    return { kind: 'tensor', data: new Float32Array(copy.buffer, 0, copy.length / 4) };
  }
  try {
    if (isPng(bytes)) {
      // IHDR comes first: refuse absurd sizes before pngjs allocates width*height*4 samples for them.
      if (bytes.length >= 24) {
        const ihdr = new DataView(bytes.buffer, bytes.byteOffset);
        checkSize(ihdr.getUint32(16), ihdr.getUint32(20));
      }
      // skipRescale keeps 16-bit samples (and 1/2/4-bit ones) at their own scale; maxValue tells the runtime.
      const png = PNG.sync.read(Buffer.from(bytes), { skipRescale: true });
      const depth = (png.colorType as number) === 3 ? 8 : png.depth; // palette images expand to 8-bit RGBA
      const data = png.data as unknown instanceof Uint16Array ? png.data as unknown as Uint16Array : new Uint8Array(png.data);
      const maxValue = 2 ** depth - 1;
      // pngjs expands every image to RGBA. A plain gray one (colour type 0) goes back to one channel, so a gray
      // picture reaches a gray model exactly (no luma weights rounding) and with a quarter of the samples.
      if ((png.colorType as number) === 0) {
        const gray = data instanceof Uint16Array ? new Uint16Array(png.width * png.height) : new Uint8Array(png.width * png.height);
        for (let i = 0; i < gray.length; i++) gray[i] = data[4 * i]!;
        return { kind: 'pixels', image: { width: png.width, height: png.height, channels: 1, data: gray, maxValue } };
      }
      return { kind: 'pixels', image: { width: png.width, height: png.height, channels: 4, data, maxValue } };
    }
    if (isJpeg(bytes)) {
      const size = jpegSize(bytes);
      if (size) checkSize(...size);
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: MAX_PIXELS / 1e6, maxMemoryUsageInMB: 1024 });
      const channels = img.data.length / (img.width * img.height);
      if (channels !== 3 && channels !== 4 && channels !== 1) throw new Error(`unexpected ${channels} channels`);
      return { kind: 'pixels', image: { width: img.width, height: img.height, channels, data: new Uint8Array(img.data) } };
    }
  } catch (err) {
    throw new Cdnv2Error('input', `${file}: corrupt image (${(err as Error).message})`);
  }
  if (isPnm(bytes)) return { kind: 'pnm', bytes };
  throw new Cdnv2Error('input', `${file}: not a PNG, JPEG, binary PGM/PPM or raw .f32 tensor`);
}
