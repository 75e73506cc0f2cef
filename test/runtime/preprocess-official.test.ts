// The official evaluation preprocessing of CondenseNetV2-A/B/C (convert_and_eval.py: Resize(256), bicubic for A
// and B, bilinear for C, CenterCrop(224), ImageNet mean/std) and the 1000 ImageNet class names travel in the
// model's metadata; the runtime applies them in the CLI, the JS API and the WASI command alike.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';

import { CONFIGS, IMAGENET_LABELS } from '../../base/arch/configs.js';
import { condense } from '../../converter/condense.js';
import { getMeta, writeModel } from '../../base/cnv2/format.js';
import { Rng, randomNetworkParams } from '../../converter/random.js';
import { loadModel } from '../../runtime/index.js';
import { cdnv2, root } from '../helpers/cli.js';
import { argmax, ISAS, maxRelDiff } from '../helpers/pytorch.js';
import { officialPreprocess } from '../reference/resize.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'cdnv2-pre-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

t.test('the ImageNet class names are the standard 1000 in synset order', async (t) => {
  t.equal(IMAGENET_LABELS.length, 1000);
  // Distinct but for 'crane', the name of two synsets (134 the bird, 517 the machine), as in the standard list.
  t.same(IMAGENET_LABELS.flatMap((l, i) => (IMAGENET_LABELS.indexOf(l) !== i ? [[IMAGENET_LABELS.indexOf(l), i, l]] : [])), [[134, 517, 'crane']]);
  // Fixed points of the ILSVRC-2012 order (n01440764 first, n15075141 last), as torchvision's ImageFolder indexes it.
  t.same([0, 1, 207, 281, 409, 999].map((i) => IMAGENET_LABELS[i]!.split(',')[0]),
    ['tench', 'goldfish', 'golden retriever', 'tabby', 'analog clock', 'toilet tissue']);
});

const models = new Map<string, Uint8Array>();
function modelBytes(name: string): Uint8Array {
  if (!models.has(name)) models.set(name, writeModel(condense(randomNetworkParams(CONFIGS[name]!, 3), { weights: 'f32' })));
  return models.get(name)!;
}

t.test('A/B/C models carry the official preprocessing and the class names', async (t) => {
  for (const [name, resize] of [['cdnv2-a', 'bicubic'], ['cdnv2-b', 'bicubic'], ['cdnv2-c', 'bilinear']] as const) {
    const m = condense(randomNetworkParams(CONFIGS[name]!, 1), { weights: 'f16' });
    t.equal(getMeta(m, 'input.resize'), resize, `${name}: ${resize}`);
    t.same(Array.from(getMeta(m, 'input.resize_shorter') as Uint32Array), [256], `${name}: shorter side 256`);
    t.same(Array.from(getMeta(m, 'input.mean') as Float32Array).map((v) => +v.toFixed(3)), [0.485, 0.456, 0.406], `${name}: ImageNet mean`);
    t.same(getMeta(m, 'labels'), IMAGENET_LABELS, `${name}: the 1000 names`);
  }
});

function randomImage(w: number, h: number, ch: number, seed: number): Uint8Array {
  // Smooth gradients plus noise: bicubic overshoot at the noise edges exercises the clamping.
  const r = new Rng(seed);
  return Uint8Array.from({ length: w * h * ch }, (_, i) => {
    const p = Math.floor(i / ch), x = p % w, y = Math.floor(p / w);
    return Math.max(0, Math.min(255, Math.round(128 + 90 * Math.sin(x / 7 + (i % ch)) * Math.cos(y / 11) + 40 * r.normal())));
  });
}

const IMAGES: [number, number, number][] = [[300, 200, 3], [199, 513, 1], [100, 90, 4], [256, 256, 3], [257, 1031, 3]];

t.test('the runtime resizes as PIL does: shorter side 256, centre crop 224, against a plain reference', async (t) => {
  for (const [name, cubic] of [['cdnv2-a', true], ['cdnv2-c', false]] as const) {
    for (const isa of ISAS) {
      const model = await loadModel(modelBytes(name), { isa });
      for (const [w, h, ch] of IMAGES) {
        const data = randomImage(w, h, ch, w + h);
        const got = model.preprocess({ width: w, height: h, channels: ch, data });
        // The reference works on the pixels the model sees: gray is repeated, alpha dropped.
        const rgb = new Float64Array(w * h * 3);
        for (let p = 0; p < w * h; p++) for (let c = 0; c < 3; c++) rgb[p * 3 + c] = data[p * ch + (ch === 1 ? 0 : c)]! / 255;
        const want = officialPreprocess(rgb, w, h, 3, 256, cubic, 224, CONFIGS[name]!.mean, CONFIGS[name]!.std);
        let err = 0;
        for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i]! - want[i]!));
        t.ok(err < 1e-4, `${name} [${isa}] ${w}x${h}x${ch}: max difference ${err.toExponential(2)} < 1e-4`);
      }
      model.dispose();
    }
  }
});

const hasPil = spawnSync('/usr/bin/python3', ['-c', 'import PIL'], { stdio: 'ignore' }).status === 0;

t.test('and against PIL itself', { skip: hasPil ? false : 'no PIL for /usr/bin/python3' }, async (t) => {
  const script = `
import sys, json
from PIL import Image
w, h, mode, n, crop, f = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
img = Image.frombytes(mode, (w, h), open(sys.argv[7], 'rb').read()).convert('RGB')
# torchvision.transforms.Resize(n) and CenterCrop(crop) on a PIL image, spelled out
ow, oh = (n, int(n * h / w)) if w <= h else (int(n * w / h), n)
img = img.resize((ow, oh), Image.BICUBIC if f == 'bicubic' else Image.BILINEAR)
left, top = int(round((ow - crop) / 2.0)), int(round((oh - crop) / 2.0))
img = img.crop((left, top, left + crop, top + crop))
sys.stdout.write(json.dumps(list(img.tobytes())))
`;
  for (const [name, filterName] of [['cdnv2-a', 'bicubic'], ['cdnv2-c', 'bilinear']] as const) {
    const model = await loadModel(modelBytes(name));
    const cfg = CONFIGS[name]!;
    for (const [w, h, ch] of IMAGES.filter(([, , c]) => c !== 4)) {
      const data = randomImage(w, h, ch, w * h);
      const file = path.join(tmp, `img-${w}-${h}.raw`);
      writeFileSync(file, data);
      const r = spawnSync('/usr/bin/python3', ['-c', script, String(w), String(h), ch === 1 ? 'L' : 'RGB', '256', '224', filterName, file], { encoding: 'utf8', maxBuffer: 1 << 26 });
      t.equal(r.status, 0, `PIL ran ${r.stderr}`);
      const pil = JSON.parse(r.stdout) as number[]; // HWC uint8
      const got = model.preprocess({ width: w, height: h, channels: ch, data });
      let worst = 0, sum = 0;
      for (let c = 0; c < 3; c++) for (let p = 0; p < 224 * 224; p++) {
        const ours = (got[c * 224 * 224 + p]! * cfg.std[c]! + cfg.mean[c]!) * 255;
        const d = Math.abs(ours - pil[p * 3 + c]!);
        worst = Math.max(worst, d); sum += d;
      }
      const mean = sum / (3 * 224 * 224);
      // PIL works in 8-bit fixed point and rounds to 8 bits after each pass: up to ~1.5 levels apart.
      t.ok(worst <= 2 && mean < 0.5, `${name} ${filterName} ${w}x${h}x${ch}: max ${worst.toFixed(2)} levels (<= 2), mean ${mean.toFixed(3)} (< 0.5) from PIL`);
    }
    model.dispose();
  }
});

function ppm(w: number, h: number, data: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode(`P6\n${w} ${h}\n255\n`);
  const out = new Uint8Array(head.length + data.length);
  out.set(head); out.set(data, head.length);
  return out;
}

t.test('the CLI, the JS API and the WASI command apply it alike', async (t) => {
  const modelFile = path.join(tmp, 'a.cnv2');
  writeFileSync(modelFile, modelBytes('cdnv2-a'));
  const [w, h] = [331, 245];
  const pixels = randomImage(w, h, 3, 5);
  const imageFile = path.join(tmp, 'photo.ppm');
  writeFileSync(imageFile, ppm(w, h, pixels));
  const model = await loadModel(modelBytes('cdnv2-a'));
  const rgb = Float64Array.from(pixels, (v) => v / 255);
  const cfg = CONFIGS['cdnv2-a']!;
  const reference = model.run(Float32Array.from(officialPreprocess(rgb, w, h, 3, 256, true, 224, cfg.mean, cfg.std)));
  const api = model.runPnm(ppm(w, h, pixels));
  t.ok(maxRelDiff([api], [reference]) < 1e-4, 'JS API on the PPM: the logits of the reference preprocessing');
  const top = argmax(api);
  const label = IMAGENET_LABELS[top]!;
  const cli = cdnv2('classify', modelFile, imageFile, '--top', '1', '--json');
  t.equal(cli.code, 0, `cdnv2 classify exits 0 ${cli.stderr}`);
  t.match(cli.stdout, new RegExp(`"index":${top}\\b`), 'the CLI gives the same top-1');
  t.match(cli.stdout, label.split(',')[0]!, 'named by its ImageNet label');
  const wasi = spawnSync(process.execPath, [path.join(root, 'scripts/wasi-run.mjs'), `--dir=${tmp}`, path.join(root, 'build/cdnv2.wasm'),
    'classify', modelFile, imageFile], { encoding: 'utf8', timeout: 300_000 });
  t.equal(wasi.status, 0, `WASI command exits 0 ${wasi.stderr}`);
  const first = wasi.stdout.split('\n').find((l) => /^\s*[\d.]+\s+\d+\s/.test(l)) ?? '';
  t.match(first, new RegExp(`^\\s*[\\d.]+\\s+${top}\\s+${label.split(',')[0]}`), `the WASI command gives the same top-1: ${first.trim()}`);
  model.dispose();
});
