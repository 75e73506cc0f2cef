// The folder augmentation's Pillow operations against Pillow itself (when /usr/bin/python3 has PIL; the official
// pipeline runs them on PIL images): the crop's resize, the affine ops of RandAugment, the ImageEnhance blends and
// the ImageOps look-up tables, on one 8-bit RGB image.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';

import {
  autoContrast, brightness, color, contrast, cropImage, equalize, invert, posterize, rotate, sharpness, shearX, shearY, solarize,
  solarizeAdd, translateX, translateY,
} from '../../base/data/augment.js';
import { resizeBox, type Image8 } from '../../base/data/resample.js';
import { Rng } from '../../base/rng.js';

const hasPil = spawnSync('/usr/bin/python3', ['-c', 'import PIL'], { stdio: 'ignore' }).status === 0;

const SCRIPT = `
import sys, json
from PIL import Image, ImageOps, ImageEnhance
w, h = int(sys.argv[1]), int(sys.argv[2])
img = Image.frombytes('RGB', (w, h), open(sys.argv[3], 'rb').read())
fill = (124, 116, 104)
B, C = Image.BILINEAR, Image.BICUBIC
out = {
  'crop-resize-bilinear': img.crop((5, 3, 5 + 21, 3 + 17)).resize((13, 9), B),
  'crop-resize-bicubic': img.crop((2, 4, 2 + 19, 4 + 23)).resize((8, 11), C),
  'upsize-bicubic': img.crop((1, 1, 9, 7)).resize((17, 13), C),
  'rotate-bilinear': img.rotate(23.5, resample=B, fillcolor=fill),
  'rotate-bicubic': img.rotate(-17, resample=C, fillcolor=fill),
  'shearx-bicubic': img.transform(img.size, Image.AFFINE, (1, 0.21, 0, 0, 1, 0), resample=C, fillcolor=fill),
  'sheary-bilinear': img.transform(img.size, Image.AFFINE, (1, 0, 0, -0.27, 1, 0), resample=B, fillcolor=fill),
  'translatex-bilinear': img.transform(img.size, Image.AFFINE, (1, 0, 3.7, 0, 1, 0), resample=B, fillcolor=fill),
  'translatey-bicubic': img.transform(img.size, Image.AFFINE, (1, 0, 0, 0, 1, -2.2), resample=C, fillcolor=fill),
  'color': ImageEnhance.Color(img).enhance(1.72),
  'contrast': ImageEnhance.Contrast(img).enhance(0.4),
  'brightness': ImageEnhance.Brightness(img).enhance(1.3),
  'sharpness-up': ImageEnhance.Sharpness(img).enhance(1.72),
  'sharpness-down': ImageEnhance.Sharpness(img).enhance(0.3),
  'autocontrast': ImageOps.autocontrast(img),
  'equalize': ImageOps.equalize(img),
  'posterize': ImageOps.posterize(img, 3),
  'solarize': ImageOps.solarize(img, 100),
  'invert': ImageOps.invert(img),
  'solarizeadd': img.point([min(255, i + 60) if i < 128 else i for i in range(256)] * 3),
}
sys.stdout.write(json.dumps({k: [v.size[0], v.size[1], list(v.tobytes())] for k, v in out.items()}))
`;

t.test('against Pillow', { skip: hasPil ? false : 'no PIL for /usr/bin/python3' }, async (t) => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-pil-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const [w, h] = [31, 29];
  const rng = new Rng(6);
  const data = Uint8Array.from({ length: w * h * 3 }, (_, i) => {
    const p = Math.floor(i / 3), x = p % w, y = Math.floor(p / w);
    return Math.max(0, Math.min(255, Math.round(120 + 80 * Math.sin(x / 4 + (i % 3)) * Math.cos(y / 6) + 30 * rng.normal())));
  });
  const img: Image8 = { width: w, height: h, channels: 3, data };
  const file = path.join(tmp, 'img.raw');
  writeFileSync(file, data);
  const r = spawnSync('/usr/bin/python3', ['-c', SCRIPT, String(w), String(h), file], { encoding: 'utf8', maxBuffer: 1 << 26 });
  t.equal(r.status, 0, `PIL ran ${r.stderr}`);
  const pil = JSON.parse(r.stdout) as Record<string, [number, number, number[]]>;
  const fill = [124, 116, 104];
  const crop = (l: number, tp: number, cw: number, ch: number): Image8 => cropImage(img, { left: l, top: tp, width: cw, height: ch });
  const full = (i: Image8) => ({ left: 0, top: 0, width: i.width, height: i.height });
  const ours: Record<string, [Image8, number]> = {
    // [our result, the largest difference allowed in 8-bit levels]
    'crop-resize-bilinear': [resizeBox(crop(5, 3, 21, 17), full(crop(5, 3, 21, 17)), 13, 9, 'bilinear'), 1],
    'crop-resize-bicubic': [resizeBox(crop(2, 4, 19, 23), full(crop(2, 4, 19, 23)), 8, 11, 'bicubic'), 1],
    'upsize-bicubic': [resizeBox(crop(1, 1, 8, 6), full(crop(1, 1, 8, 6)), 17, 13, 'bicubic'), 1],
    'rotate-bilinear': [rotate(img, 23.5, 'bilinear', fill), 1],
    'rotate-bicubic': [rotate(img, -17, 'bicubic', fill), 1],
    'shearx-bicubic': [shearX(img, 0.21, 'bicubic', fill), 1],
    'sheary-bilinear': [shearY(img, -0.27, 'bilinear', fill), 1],
    'translatex-bilinear': [translateX(img, 3.7, 'bilinear', fill), 1],
    'translatey-bicubic': [translateY(img, -2.2, 'bicubic', fill), 1],
    color: [color(img, 1.72), 1],
    contrast: [contrast(img, 0.4), 1],
    brightness: [brightness(img, 1.3), 1],
    'sharpness-up': [sharpness(img, 1.72), 1],
    'sharpness-down': [sharpness(img, 0.3), 1],
    autocontrast: [autoContrast(img), 0],
    equalize: [equalize(img), 0],
    posterize: [posterize(img, 3), 0],
    solarize: [solarize(img, 100), 0],
    invert: [invert(img), 0],
    solarizeadd: [solarizeAdd(img, 60), 0],
  };
  for (const [name, [mine, tolerance]] of Object.entries(ours)) {
    const [pw, ph, bytes] = pil[name]!;
    t.same([mine.width, mine.height], [pw, ph], `${name}: size`);
    let worst = 0, off = 0;
    bytes.forEach((v, i) => { const d = Math.abs(v - mine.data[i]!); worst = Math.max(worst, d); if (d) off++; });
    t.ok(worst <= tolerance, `${name}: at most ${worst} level(s) from Pillow (${off} of ${bytes.length} values differ; allowed ${tolerance})`);
  }
});
