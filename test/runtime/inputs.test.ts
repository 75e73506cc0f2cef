// Inputs of `cdnv2 classify` and the JS API (issue 6): images of the wrong size against a plain resize + crop +
// normalise reference, gray/RGB/RGBA, 16-bit PNG and PGM, truncated or corrupt PNG/JPEG/PPM, empty files,
// directories and raw tensors of the wrong length; and the CLI's exit codes (1 bad file, 2 bad usage).
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { condense } from '../../converter/condense.js';
import { randomNetworkParams } from '../../converter/random.js';
import { writeModel } from '../../base/cnv2/format.js';
import { ACT, type Op } from '../../base/cnv2/model.js';
import { Cdnv2Error, loadModel, type Cdnv2Model, type ImageData } from '../../runtime/index.js';
import { readImageFile } from '../../runtime/image.js';
import { TINY_A } from '../../testkit/tiny-configs.js';
import { buildModel, rng } from '../../testkit/models.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-inputs-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, bytes: Uint8Array | string): string => { const p = path.join(dir, name); writeFileSync(p, bytes); return p; };

// RGB model 3x11x11 (bilinear), and a 1-channel 6x5 model (nearest) to see channel conversion and both resizes.
const rgbBytes = writeModel(condense(randomNetworkParams(TINY_A, 41), { weights: 'f32' }));
function grayModelBytes(): Uint8Array {
  const r = rng(3);
  const ops = [
    { kind: 'global_avgpool', inBuffer: 0, inChannel: 0, channels: 1, outBuffer: 1, outChannel: 0, inAct: ACT.none, inScale: null, inShift: null },
    { kind: 'fc', inBuffer: 1, inChannel: 0, cin: 1, outBuffer: 2, outChannel: 0, cout: 3, outAct: ACT.none, weight: 0, bias: null },
  ] as Op[];
  const m = buildModel([{ channels: 1, height: 6, width: 5 }, { channels: 1, height: 1, width: 1 }, { channels: 3, height: 1, width: 1 }],
    ops, [{ dtype: 'f32', shape: [3, 1], data: Float32Array.from([1, -1, r()]) }], 2);
  m.meta.push({ key: 'input.resize', type: 'string', value: 'nearest' });
  return writeModel(m);
}
const rgbFile = file('rgb.cnv2', rgbBytes);
file('gray.cnv2', grayModelBytes());

/** Plain reference: shorter side scaled to the input, centre crop, bilinear or nearest (half-pixel centres,
 *  edge clamp), gray<->RGB (BT.601 luma), then (v - mean) / std. Pixels HWC in [0, 1], computed in f64. */
function reference(px: Float64Array, w: number, h: number, ch: number, m: Cdnv2Model): Float64Array {
  const [oc, oh, ow] = m.meta.inputShape;
  const scale = Math.max(ow / w, oh / h);
  const ox = (w * scale - ow) / 2, oy = (h * scale - oh) / 2;
  const at = (x: number, y: number, c: number): number => {
    x = Math.min(w - 1, Math.max(0, x)); y = Math.min(h - 1, Math.max(0, y));
    const p = (y * w + x) * ch;
    if (ch === 1) return px[p]!;
    if (oc === 1) return 0.299 * px[p]! + 0.587 * px[p + 1]! + 0.114 * px[p + 2]!;
    return px[p + c]!;
  };
  const out = new Float64Array(oc * oh * ow);
  for (let c = 0; c < oc; c++) {
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        const fx = (x + ox + 0.5) / scale - 0.5, fy = (y + oy + 0.5) / scale - 0.5;
        let v: number;
        if (m.meta.resize === 'nearest') {
          v = at(Math.floor(fx + 0.5), Math.floor(fy + 0.5), c);
        } else {
          const x0 = Math.floor(fx), y0 = Math.floor(fy), ax = fx - x0, ay = fy - y0;
          v = (at(x0, y0, c) * (1 - ax) + at(x0 + 1, y0, c) * ax) * (1 - ay) + (at(x0, y0 + 1, c) * (1 - ax) + at(x0 + 1, y0 + 1, c) * ax) * ay;
        }
        out[(c * oh + y) * ow + x] = (v - m.meta.mean[c]!) / m.meta.std[c]!;
      }
    }
  }
  return out;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

function rgbaPng(w: number, h: number, f: (x: number, y: number, c: number) => number): Buffer {
  const png = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 4; c++) png.data[(y * w + x) * 4 + c] = f(x, y, c);
  return PNG.sync.write(png);
}
const pattern = (x: number, y: number, c: number): number => (c === 3 ? 255 : (x * 37 + y * 91 + c * 53) % 256);

async function expectInputError(t: Test, what: string, fn: () => unknown | Promise<unknown>, message: RegExp): Promise<void> {
  try {
    await fn();
    t.fail(`${what}: accepted`);
  } catch (err) {
    t.ok(err instanceof Cdnv2Error && (err.code === 'input' || err.code === 'io'), `${what}: Cdnv2Error ${(err as Cdnv2Error).code}`);
    t.match((err as Error).message, message, `${what}: ${(err as Error).message}`);
  }
}

t.test('wrong-size images are resized and cropped as the reference does', async (t) => {
  const m = await loadModel(rgbBytes);
  t.equal(m.meta.resize, 'bilinear');
  for (const [w, h] of [[13, 9], [5, 17], [11, 11], [40, 23], [1, 1]] as const) {
    const png = await readImageFile(file(`p${w}x${h}.png`, rgbaPng(w, h, pattern)));
    t.equal(png.kind, 'pixels');
    if (png.kind !== 'pixels') continue;
    const px = Float64Array.from(png.image.data as Uint8Array, (v) => v / 255);
    const d = maxDiff(m.preprocess(png.image), reference(px, w, h, 4, m));
    t.ok(d < 1e-4, `PNG ${w}x${h}: max difference from the reference ${d.toExponential(2)}`);
    // The same pixels as a binary PPM, decoded by the runtime itself.
    const rgb = Buffer.alloc(w * h * 3);
    for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = (png.image.data as Uint8Array)[i * 4 + c]!;
    const ppm = Buffer.concat([Buffer.from(`P6\n# comment\n${w} ${h}\n255\n`), rgb]);
    t.ok(maxDiff(m.preprocessPnm(ppm), m.preprocess(png.image)) < 1e-6, `PPM ${w}x${h} gives the same input as the PNG`);
    const logits = m.runImage(png.image);
    t.ok(logits.every(Number.isFinite), 'finite logits');
  }
  const g = await loadModel(grayModelBytes());
  t.equal(g.meta.resize, 'nearest');
  const img: ImageData = { width: 9, height: 4, channels: 3, data: Uint8Array.from({ length: 108 }, (_, i) => (i * 71) % 256) };
  const d = maxDiff(g.preprocess(img), reference(Float64Array.from(img.data, (v) => v / 255), 9, 4, 3, g));
  t.ok(d < 1e-4, `RGB into a 1-channel nearest-resize model (luma): ${d.toExponential(2)}`);
  m.dispose(); g.dispose();
});

t.test('gray, RGB, RGBA and 16-bit images of the same picture give the same input', async (t) => {
  const m = await loadModel(rgbBytes);
  const w = 7, h = 6;
  const gray = (x: number, y: number): number => (x * 29 + y * 47) % 256;
  const rgb = await readImageFile(file('gray-as-rgb.png', rgbaPng(w, h, (x, y, c) => (c === 3 ? 255 : gray(x, y)))));
  const rgba = await readImageFile(file('gray-alpha.png', rgbaPng(w, h, (x, y, c) => (c === 3 ? (x * 40) % 256 : gray(x, y)))));
  // A real 1-channel 8-bit PNG and a 16-bit one (v * 257 is the same value at 16 bits).
  const g8 = new PNG({ width: w, height: h, colorType: 0, inputColorType: 0, inputHasAlpha: false });
  g8.data = Buffer.from(Array.from({ length: w * h }, (_, i) => gray(i % w, Math.floor(i / w))));
  const g8file = file('gray8.png', PNG.sync.write(g8, { colorType: 0, inputColorType: 0, inputHasAlpha: false }));
  const g16 = new PNG({ width: w, height: h, bitDepth: 16, colorType: 0, inputColorType: 0, inputHasAlpha: false });
  g16.data = Buffer.from(Uint16Array.from({ length: w * h }, (_, i) => gray(i % w, Math.floor(i / w)) * 257).buffer);
  const g16file = file('gray16.png', PNG.sync.write(g16, { bitDepth: 16, colorType: 0, inputColorType: 0, inputHasAlpha: false }));
  const pgm16 = Buffer.alloc(w * h * 2);
  for (let i = 0; i < w * h; i++) pgm16.writeUInt16BE(gray(i % w, Math.floor(i / w)) * 257, i * 2);
  const pgm8 = Buffer.from(Array.from({ length: w * h }, (_, i) => gray(i % w, Math.floor(i / w))));
  const base = rgb.kind === 'pixels' ? m.preprocess(rgb.image) : new Float32Array();
  const variants: [string, Float32Array][] = [];
  for (const [name, f] of [['RGBA with varying alpha', rgba], ['8-bit gray PNG', await readImageFile(g8file)], ['16-bit gray PNG', await readImageFile(g16file)]] as const) {
    if (f.kind !== 'pixels') { t.fail(name); continue; }
    if (name === '16-bit gray PNG') t.ok(f.image.data instanceof Uint16Array && f.image.maxValue === 65535, '16-bit samples kept at 16 bits');
    if (name !== 'RGBA with varying alpha') {
      t.equal(f.image.channels, 1, `${name}: decoded to one channel`);
      t.same(Array.from(f.image.data), Array.from({ length: w * h }, (_, i) => gray(i % w, Math.floor(i / w)) * (name === '8-bit gray PNG' ? 1 : 257)), `${name}: samples exact`);
    }
    variants.push([name, m.preprocess(f.image)]);
  }
  variants.push(['16-bit PGM', m.preprocessPnm(Buffer.concat([Buffer.from(`P5 ${w} ${h} 65535\n`), pgm16]))]);
  variants.push(['8-bit PGM', m.preprocessPnm(Buffer.concat([Buffer.from(`P5\n${w} ${h}\n255\n`), pgm8]))]);
  variants.push(['gray pixels, 1 channel', m.preprocess({ width: w, height: h, channels: 1, data: pgm8 })]);
  for (const [name, x] of variants) t.ok(maxDiff(x, base) < 1e-5, `${name} = gray as RGB (${maxDiff(x, base).toExponential(2)})`);
  // 16-bit precision survives: a value between two 8-bit levels moves the input.
  const fine = m.preprocess({ width: 1, height: 1, channels: 1, data: Uint16Array.from([32896 + 100]) });
  const coarse = m.preprocess({ width: 1, height: 1, channels: 1, data: Uint16Array.from([32896]) });
  t.ok(Math.abs(fine[0]! - coarse[0]! - 100 / 65535 / m.meta.std[0]!) < 1e-5, '16-bit steps reach the input');
  m.dispose();
});

t.test('broken, empty and non-image files give a clear input error', async (t) => {
  const m = await loadModel(rgbBytes);
  const png = rgbaPng(13, 9, pattern);
  const jpg = Buffer.from(jpeg.encode({ width: 16, height: 12, data: Buffer.from(Array.from({ length: 16 * 12 * 4 }, (_, i) => (i * 13) % 256)) }, 90).data);
  const good = await readImageFile(file('good.jpg', jpg));
  t.ok(good.kind === 'pixels' && m.runImage(good.image).every(Number.isFinite), 'a valid JPEG classifies');
  const corruptPng = Buffer.from(png); corruptPng[png.length - 20] ^= 0xff;
  const corruptJpg = Buffer.from(jpg); corruptJpg.fill(0xff, 200, 260);
  const huge = Buffer.from(png); huge.writeUInt32BE(60000, 16); huge.writeUInt32BE(60000, 20);
  const cases: [string, Uint8Array | string, RegExp][] = [
    ['truncated.png', png.subarray(0, png.length - 30), /truncated\.png: corrupt image/],
    ['header-only.png', png.subarray(0, 40), /corrupt image/],
    ['corrupt.png', corruptPng, /corrupt image/],
    ['huge.png', huge, /corrupt image .*MP/],
    ['truncated.jpg', jpg.subarray(0, jpg.length >> 1), /corrupt image/],
    ['short.jpg', jpg.subarray(0, 10), /corrupt image/],
    ['corrupt.jpg', corruptJpg, /corrupt image/],
    ['empty.png', '', /empty file/],
    ['text.png', 'hello, world', /not a PNG, JPEG, binary PGM\/PPM/],
    ['ascii.ppm', 'P3\n1 1\n255\n1 2 3\n', /not a PNG, JPEG, binary PGM\/PPM/],
    ['odd.f32', new Uint8Array(10), /not a multiple of 4/],
  ];
  for (const [name, bytes, message] of cases) await expectInputError(t, name, () => readImageFile(file(name, bytes)), message);
  mkdirSync(path.join(dir, 'folder.png'));
  await expectInputError(t, 'a directory', () => readImageFile(path.join(dir, 'folder.png')), /is a directory/);
  await expectInputError(t, 'a missing file', () => readImageFile(path.join(dir, 'missing.png')), /no such file/);
  // PGM/PPM errors come from the runtime's own decoder.
  const pix = Buffer.alloc(16 * 13 * 3, 7);
  const pnm: [string, Buffer, RegExp][] = [
    ['truncated PPM', Buffer.concat([Buffer.from('P6\n16 13\n255\n'), pix.subarray(0, 100)]), /truncated image data/],
    ['zero-size PPM', Buffer.from('P6\n0 0\n255\n'), /image size/],
    ['PPM without maxval', Buffer.from('P6\n16 13\n'), /maxval/],
    ['PPM maxval 70000', Buffer.concat([Buffer.from('P6\n1 1\n70000\n'), Buffer.alloc(6)]), /maxval/],
    ['20000-wide PGM', Buffer.from('P5\n20000 1\n255\n'), /image size/],
    ['header ends without a space', Buffer.from('P5\n1 1\n255'), /truncated PNM header/],
  ];
  for (const [what, bytes, message] of pnm) await expectInputError(t, what, () => m.runPnm(bytes), message);
  // Raw tensors must have exactly the input's length.
  await expectInputError(t, 'raw tensor one value short', () => m.run(new Float32Array(m.inputLength - 1)), /Float32Array of 363 values/);
  await expectInputError(t, 'raw tensor with NaN', () => m.run(new Float32Array(m.inputLength).fill(NaN)), /not finite/);
  await expectInputError(t, 'image with 2 channels', () => m.runImage({ width: 2, height: 2, channels: 2, data: new Uint8Array(8) }), /1, 3 or 4 channels/);
  await expectInputError(t, 'image data too short', () => m.runImage({ width: 3, height: 3, channels: 3, data: new Uint8Array(26) }), /26 samples, expected 27/);
  t.ok(m.run(new Float32Array(m.inputLength)).every(Number.isFinite), 'the model still works after every error');
  m.dispose();
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'cli/cdnv2.ts'), ...args], { cwd: root });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

t.test('cdnv2 classify exit codes: 0 ok, 1 bad files, 2 bad usage', async (t) => {
  const ppm = file('ok.ppm', Buffer.concat([Buffer.from('P6\n5 4\n255\n'), Buffer.alloc(60, 99)]));
  const bad = file('bad.ppm', Buffer.from('P6\n5 4\n255\n'));
  const short = file('short.f32', new Uint8Array(8));
  const at = (name: string): string => path.join(dir, name);
  const runs = await Promise.all([
    cli(['classify', rgbFile, ppm, '--top', '2', '--json']),
    cli(['classify', rgbFile, ppm, bad, short, at('nope.png'), at('folder.png'), '--top', '3']),
    cli(['classify', rgbFile, ppm, '--top', '0']),
    cli(['classify', rgbFile, ppm, '--top', 'x']),
    cli(['classify', rgbFile, ppm, '--frobnicate']),
    cli(['classify', rgbFile]),
    cli(['classify', at('missing.cnv2'), ppm]),
    cli(['classify', ppm, ppm]),
    cli(['--help']),
  ]);
  const [ok, mixed, top0, topX, unknown, noImage, noModel, notModel, help] = runs;
  t.equal(ok!.code, 0, ok!.stderr);
  const json = JSON.parse(ok!.stdout) as { top: { score: number }[] }[];
  t.equal(json[0]!.top.length, 2);
  t.equal(mixed!.code, 1, 'some images failed: exit 1');
  t.match(mixed!.stdout, /ok\.ppm/, 'the good image is still classified');
  t.equal(mixed!.stdout.trim().split('\n').length, 4, 'one header and three classes for the good image');
  for (const m of [/truncated image data/, /Float32Array of 363 values/, /nope\.png: no such file/, /folder\.png: is a directory/]) t.match(mixed!.stderr, m);
  // Errors raised by the runtime after decoding must still say which file they are about.
  t.match(mixed!.stderr, /bad\.ppm: truncated image data/, 'runtime errors name the file');
  t.match(mixed!.stderr, /short\.f32: .*363/, 'raw tensor errors name the file');
  for (const [name, r] of [['--top 0', top0], ['--top x', topX], ['unknown option', unknown], ['missing image argument', noImage]] as const) {
    t.equal(r!.code, 2, `${name}: exit 2 (${r!.stderr.trim().split('\n')[0]})`);
    t.match(r!.stderr, /error|expected|usage|Usage/i, `${name}: says why`);
  }
  t.equal(noModel!.code, 1, 'missing model file: exit 1');
  t.match(noModel!.stderr, /missing\.cnv2: no such file/);
  t.equal(notModel!.code, 1, 'an image given as the model: exit 1');
  t.match(notModel!.stderr, /bad-magic|not a cdnv2 model/);
  t.equal(help!.code, 0);
  t.match(help!.stdout, /exit codes?/i, '--help documents the exit codes');
});
