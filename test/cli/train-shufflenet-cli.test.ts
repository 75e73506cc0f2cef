// The CLI user's whole path on (SFR-)ShuffleNetV2 for Fashion-MNIST (issue 25), through the real entry point:
// `cdnv2 train` on real images (cdnv2-wasm backend) -> `cdnv2 convert` -> `cdnv2 info` -> `cdnv2 eval` of the model
// (wasm runtime) and of the run (TF.js) on the same held-out images, which must agree image by image -> one of those
// images classified by the WASI command under real wasmtime (directly, and by `cdnv2 classify --engine wasmtime`),
// which must agree with the JS API. The runs are a few
// iterations: ShuffleNetV2 from scratch stays near chance for longer than a test may take (768 images: 19% on 200
// held-out), so the accuracies are checked against the labels read here, not against a threshold.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import t from 'tap';

import { SHUFFLENET_CONFIGS } from '../../base/arch/shufflenet.js';
import { classifyFile, loadModelFile, wasmPath } from '../../runtime/index.js';
import { loadCheckpoint, masksAreFinal } from '../../trainer/checkpoint.js';
import { cdnv2 } from '../helpers/cli.js';
import { runWasmtime, wasmtimeOrSkip } from '../helpers/wasmtime.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-shuffle-cli-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const data = '/usr/share/datasets/fashion-mnist';
const HELD_OUT = 48; // the first test images: never seen by the --limit-train runs, which draw from the training file

/** The first n test images (28x28 bytes each) and labels, read from the IDX files here, not by the data pipeline. */
function testSet(n: number): { images: Buffer[]; labels: number[] } {
  const img = gunzipSync(readFileSync(path.join(data, 't10k-images-idx3-ubyte.gz')));
  const lab = gunzipSync(readFileSync(path.join(data, 't10k-labels-idx1-ubyte.gz')));
  if (img.readUInt32BE(0) !== 2051 || lab.readUInt32BE(0) !== 2049) throw new Error('not IDX image/label files');
  return { images: Array.from({ length: n }, (_, i) => img.subarray(16 + i * 784, 16 + (i + 1) * 784)),
    labels: Array.from(lab.subarray(8, 8 + n)) };
}

const argmax = (row: number[]): number => row.reduce((best, v, i) => (v > row[best]! ? i : best), 0);

interface Layer { op: string; input: number[]; output: number[]; groups?: number; macs: number }

function userPath(arch: 'shufflenetv2-fmnist' | 'sfr-shufflenetv2-fmnist'): void {
  t.test(`${arch}: train -> convert -> info -> eval model and run -> classify under wasmtime`, async (t) => {
    if (!existsSync(data)) return t.skip('dataset-fashion-mnist is not installed (.ci/run installs it)', () => {});
    const cfg = SHUFFLENET_CONFIGS[arch]!;
    const sfr = arch.startsWith('sfr-');
    const dir = path.join(tmp, arch);
    mkdirSync(dir);
    const run = path.join(dir, 'run'), model = path.join(dir, 'model.cnv2');

    const r = cdnv2('train', '--arch', arch, '--dataset', 'fashion-mnist', '--limit-train', '32', '--limit-test', '16',
      '--epochs', '2', '--batch', '16', '--backend', 'wasm', '--workers', '1', '--threads', '1', '--out', run, '--no-progress');
    t.equal(r.code, 0, r.code === 0 ? 'trained' : r.stderr.slice(-1000));
    t.match(r.stderr, /backend: cdnv2-wasm/);
    t.match(r.stderr, new RegExp(`training ${arch} .*on fashion-mnist/train \\(32 images, test 16\\)`));
    if (sfr) t.match(r.stderr, /sfr stage 0 -> \d+ at iteration 1/);
    else {
      t.notMatch(r.stderr, /stage \d+ -> /, 'no masks to condense without SFR');
      t.match(r.stderr, /\(no SFR: plain ShuffleNetV2\)/, 'the log names the plain network, not CondenseNet');
    }
    const ck = await loadCheckpoint(run);
    t.equal(ck.state.config.name, arch);
    t.equal(ck.state.options.sfr, sfr);
    t.ok(masksAreFinal(ck), 'masks final');

    const c = cdnv2('convert', run, '-o', model);
    t.equal(c.code, 0, c.code === 0 ? 'converted' : c.stderr);

    const info = cdnv2('info', model);
    t.equal(info.code, 0, info.code === 0 ? 'info' : info.stderr);
    t.match(info.stdout, new RegExp(`^model +${arch} \\(${arch}\\)\\n`), 'the architecture is named');
    const meta = JSON.parse(cdnv2('info', model, '--json').stdout) as { arch: string; inputShape: number[]; classes: number; labels: string[]; layers: Layer[] };
    t.match(meta, { arch, inputShape: [1, 28, 28], classes: 10, labels: cfg.labels });
    // 3x3 depthwise convolutions: one in each unit's right branch and one in each stride-2 unit's left branch
    // (stages of 4, 8 and 4 units, three stride-2 units): 19; with SFR one more in each of the 13 stride-1 units
    // (converter/shufflenet.ts: the reactivation keeps one output per input channel, a depthwise 3x3). Found by
    // shape: groups = input = output channels and 9 multiply-adds per output value.
    const depthwise = meta.layers.filter((l) => l.op === 'conv2d' && l.groups === l.input[0] && l.groups === l.output[0]
      && l.macs === 9 * l.output[0]! * l.output[1]! * l.output[2]!);
    const expectDepthwise = 19 + (sfr ? 13 : 0);
    t.equal(depthwise.length, expectDepthwise, `${expectDepthwise} depthwise 3x3 convolutions`);
    t.equal(meta.layers.filter((l) => l.op === 'maxpool').length, cfg.maxPool ? 1 : 0, 'a max pool only if the stem has one (not for 28x28)');
    t.same([meta.layers[0]!.op, meta.layers.at(-2)!.op, meta.layers.at(-1)!.op], ['conv2d', 'global_avgpool', 'fc']);

    // Both evaluations on the same held-out images, predictions compared image by image and with the labels.
    const limit = String(HELD_OUT);
    const logitsModel = path.join(dir, 'model-logits.json'), logitsRun = path.join(dir, 'run-logits.json');
    const em = cdnv2('eval', model, '--dataset', 'fashion-mnist', '--limit', limit, '--json', '--logits', logitsModel, '--no-progress');
    t.equal(em.code, 0, em.code === 0 ? 'eval of the model' : em.stderr.slice(-500));
    const er = cdnv2('eval', run, '--dataset', 'fashion-mnist', '--limit', limit, '--json', '--logits', logitsRun, '--backend', 'wasm', '--no-progress');
    t.equal(er.code, 0, er.code === 0 ? 'eval of the run' : er.stderr.slice(-500));
    const a = JSON.parse(em.stdout) as { accuracy: number; count: number }, b = JSON.parse(er.stdout) as { accuracy: number; count: number };
    t.equal(a.count, HELD_OUT);
    t.equal(b.count, HELD_OUT);
    t.equal(a.accuracy, b.accuracy, 'the model (wasm runtime) and the run (TF.js): the same accuracy');
    const la = (JSON.parse(readFileSync(logitsModel, 'utf8')) as { logits: number[][] }).logits;
    const lb = (JSON.parse(readFileSync(logitsRun, 'utf8')) as { logits: number[][] }).logits;
    t.equal(la.length, HELD_OUT);
    t.same(la.map(argmax), lb.map(argmax), 'the same prediction for every image');
    let maxDiff = 0, maxAbs = 0;
    la.forEach((row, i) => row.forEach((v, k) => { maxDiff = Math.max(maxDiff, Math.abs(v - lb[i]![k]!)); maxAbs = Math.max(maxAbs, Math.abs(v)); }));
    t.ok(maxDiff <= 1e-3 * Math.max(1, maxAbs), `logits agree: max |difference| ${maxDiff.toExponential(2)} (largest logit ${maxAbs.toFixed(2)})`);
    const { images, labels } = testSet(HELD_OUT);
    const correct = la.map(argmax).filter((p, i) => p === labels[i]).length;
    t.equal(a.accuracy, correct / HELD_OUT, `accuracy = predictions matching the IDX labels (${correct}/${HELD_OUT})`);

    // The first held-out image as a PGM file: the JS API, the WASI command under wasmtime and eval agree on it.
    const pgm = path.join(dir, 'image.pgm');
    writeFileSync(pgm, Buffer.concat([Buffer.from('P5\n28 28\n255\n'), images[0]!]));
    const m = await loadModelFile(model);
    let js: number;
    try { js = (await classifyFile(m, pgm, 1))[0]!.index; } finally { m.dispose(); }
    t.equal(js, argmax(la[0]!), 'JS API on the PGM file = eval on the data set\'s image');
    const w = wasmtimeOrSkip(t);
    if (!w) return;
    const wr = runWasmtime(w, wasmPath('command', 'simd'), ['classify', '/d/model.cnv2', '/d/image.pgm', '--top', '1'], { dirs: [`${dir}::/d`] });
    t.equal(wr.code, 0, wr.code === 0 ? 'classified under wasmtime' : wr.stderr);
    const [score, index] = wr.stdout.trim().split(' ');
    t.ok(Number(score) > 0 && Number(score) <= 1, 'a probability');
    t.equal(Number(index), js, 'WASI command under wasmtime: the same top-1 as the JS API');
    // And as the user asks for it: `cdnv2 classify --engine wasmtime` (the host decodes, the command runs the model).
    const cl = cdnv2('classify', model, pgm, '--engine', 'wasmtime', '--top', '1', '--json');
    t.equal(cl.code, 0, cl.code === 0 ? 'cdnv2 classify --engine wasmtime' : cl.stderr);
    const [res] = JSON.parse(cl.stdout) as { file: string; top: { index: number; label: string }[] }[];
    t.same(res!.top.map((p) => [p.index, p.label]), [[js, cfg.labels[js]]], 'cdnv2 classify under wasmtime: the same top-1, labelled');
  });
}

userPath('shufflenetv2-fmnist');
userPath('sfr-shufflenetv2-fmnist');

t.test('--no-sfr on an SFR-ShuffleNet configuration is a usage error', async (t) => {
  const r = cdnv2('train', '--arch', 'sfr-shufflenetv2-fmnist', '--dataset', 'synthetic', '--no-sfr', '--out', path.join(tmp, 'x'));
  t.equal(r.code, 2);
  t.match(r.stderr, /has SFR by definition \(train shufflenetv2-fmnist/);
});
