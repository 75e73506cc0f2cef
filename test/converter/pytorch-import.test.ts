// `cdnv2 import` and `cdnv2 export-pytorch` against fixtures PyTorch wrote from the official CondenseNetV2 code
// (scripts/pytorch-fixtures.py, cdnv2-tiny): both torch.save formats, both forms, logits from PyTorch itself.
// No torch needed; test/converter/pytorch-official.test.ts covers A/B/C and loading our export into PyTorch when it is there.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { unzipSync, zipSync } from 'fflate';

import { CONFIGS } from '../../base/arch/configs.js';
import { writeModel } from '../../base/cnv2/format.js';
import { importTorchCheckpoint } from '../../converter/pytorch/import.js';
import { readTorchFile, TorchTensor } from '../../converter/pytorch/torch-file.js';
import { torchSaveStateDict, type SaveTensor } from '../../converter/pytorch/torch-save.js';
import { cdnv2, root } from '../helpers/cli.js';
import { argmax, FIXTURES, ISAS, maxRelDiff, modelLogits, readFixtureLogits, softmax } from '../helpers/pytorch.js';
import { runWasmtime, wasmtimeOrSkip } from '../helpers/wasmtime.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'cdnv2-pt-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const fx = (f: string): string => path.join(FIXTURES, f);
const { ref, inputs } = readFixtureLogits(FIXTURES, 'tiny');
const TINY = CONFIGS['cdnv2-tiny']!;

t.test('the official checkpoints import in both formats and both forms and give PyTorch\'s logits', async (t) => {
  // The comparison can fail: the EMA and the plain weights give clearly different logits.
  t.ok(maxRelDiff(ref.plain, ref.ema) > 0.05, 'EMA and plain logits differ');
  t.ok(new Set(ref.ema.map(argmax)).size > 1, 'the inputs have different top-1 classes');
  const cases: [string, string[], 'ema' | 'converted' | 'plain', RegExp][] = [
    ['tiny-train.pth.tar', [], 'ema', /from state_dict_ema \(training form\)/],
    ['tiny-train-legacy.pth.tar', [], 'ema', /from state_dict_ema \(training form\)/],
    ['tiny-converted.pth.tar', [], 'converted', /from state_dict \(converted form\)/],
    ['tiny-converted-legacy.pth', [], 'converted', /from bare state dict \(converted form\)/],
    ['tiny-train.pth.tar', ['--no-ema'], 'plain', /from state_dict \(training form\)/],
  ];
  const spawned = new Set(['tiny-train.pth.tar', 'tiny-converted-legacy.pth']); // the CLI as users run it; the rest in-process
  for (const [file, extra, key, says] of cases) {
    const out = path.join(tmp, `${file}${extra.join('')}.cnv2`);
    if (spawned.has(file) && !extra.length) {
      const r = cdnv2('import', fx(file), '--arch', 'cdnv2-tiny', '-o', out, ...extra);
      t.equal(r.code, 0, `${file}: exit 0 ${r.stderr}`);
      t.match(r.stdout, says, `${file}: reports what it read`);
    } else {
      const imp = importTorchCheckpoint(new Uint8Array(readFileSync(fx(file))), TINY, { noEma: extra.includes('--no-ema') });
      t.match(`from ${imp.source} (${imp.form} form)`, says, `${file} ${extra.join(' ')}: reads the expected state dict`);
      writeFileSync(out, writeModel(imp.model));
    }
    for (const isa of ISAS) {
      const got = await modelLogits(out, inputs, isa);
      const d = maxRelDiff(got, ref[key]);
      t.ok(d < 1e-4, `${file} ${extra.join(' ')} [${isa}]: max relative logit difference ${d.toExponential(2)} < 1e-4`);
      t.same(got.map(argmax), ref[key].map(argmax), `${file} [${isa}]: same top-1 on every input`);
    }
  }
});

t.test('under wasmtime, in all three builds, the imported model gives PyTorch\'s answers', async (t) => {
  const w = wasmtimeOrSkip(t);
  if (!w) return;
  const model = path.join(tmp, 'wasmtime-tiny.cnv2');
  writeFileSync(model, writeModel(importTorchCheckpoint(new Uint8Array(readFileSync(fx('tiny-converted.pth.tar'))), TINY).model));
  const files = inputs.map((x, i) => { const f = path.join(tmp, `in${i}.f32`); writeFileSync(f, x); return f; });
  for (const [build, relaxedSimd] of [['cdnv2.wasm', false], ['cdnv2-relaxed.wasm', true], ['cdnv2-scalar.wasm', false]] as const) {
    const r = runWasmtime(w, path.join(root, 'build', build), ['classify', model, ...files, '--top', String(TINY.classes)], { dirs: [tmp], relaxedSimd });
    t.equal(r.code, 0, `${build}: exit 0 ${r.stderr}`);
    // One block per input ('# file'), every class as '<probability, 6 decimals> <index> <label>'.
    const blocks = r.stdout.split(/^# .*$/m).slice(1).map((b) => b.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number)));
    t.equal(blocks.length, inputs.length, `${build}: one answer per input`);
    let worst = 0;
    blocks.forEach((rows, i) => {
      const want = softmax(ref.converted[i]!);
      t.equal(rows[0]![1], argmax(ref.converted[i]!), `${build} input ${i}: same top-1 as PyTorch`);
      for (const [p, c] of rows) worst = Math.max(worst, Math.abs(p! - want[c!]!));
    });
    t.ok(worst <= 1e-5, `${build}: max probability difference ${worst.toExponential(2)} <= 1e-5 (printed to 6 decimals)`);
  }
});

function stateDictOf(file: string): Map<string, TorchTensor> {
  const obj = readTorchFile(readFileSync(fx(file))) as Map<string, unknown>;
  return obj.get('state_dict_ema') as Map<string, TorchTensor>;
}

function asSaveTensors(sd: Map<string, TorchTensor>): SaveTensor[] {
  return [...sd].map(([key, v]) => v.dtype === 'int64'
    ? { key, dtype: 'int64', shape: v.shape, data: BigInt64Array.from(v.values(), (x) => BigInt(x)) }
    : { key, dtype: 'float32', shape: v.shape, data: Float32Array.from(v.values()) });
}

function importFails(t: Tap.Test, name: string, tensors: SaveTensor[], message: RegExp, arch = 'cdnv2-tiny'): void {
  t.throws(() => importTorchCheckpoint(torchSaveStateDict(tensors), CONFIGS[arch]!), message, name);
}

t.test('mismatches fail with exit 1 and name the tensor', async (t) => {
  const base = asSaveTensors(stateDictOf('tiny-train.pth.tar'));
  // Our writer round-trips the official state dict: it imports cleanly (the failures below are the edits).
  t.doesNotThrow(() => importTorchCheckpoint(torchSaveStateDict(base), TINY), 'unedited copy imports');
  // The CLI: exit 1, the message on stderr, no model file.
  const wrong = path.join(tmp, 'wrong-arch.cnv2');
  const r = cdnv2('import', fx('tiny-train.pth.tar'), '--arch', 'cdnv2-a', '-o', wrong);
  t.equal(r.code, 1, 'wrong --arch: exit 1');
  t.match(r.stderr, /(unexpected key|missing key|shape).*features\.\S+.*--arch/, `wrong --arch: ${r.stderr.trim()}`);
  t.notOk(existsSync(wrong), 'no model written');
  const edit = (f: (ts: SaveTensor[]) => SaveTensor[]): SaveTensor[] => f(base.map((x) => ({ ...x, data: x.data.slice() } as SaveTensor)));
  importFails(t, 'wrong-arch', base, /(unexpected key|missing key|shape).*features\.\S+.*--arch/, 'cdnv2-b');
  importFails(t, 'not an official layout', base, /cdnv2-fmnist has no hidden FC or head SE/, 'cdnv2-fmnist');
  importFails(t, 'missing', edit((ts) => ts.filter((x) => x.key !== 'classifier.bias')), /missing key classifier\.bias/);
  importFails(t, 'extra', edit((ts) => [...ts, { key: 'features.extra.weight', dtype: 'float32', shape: [1], data: Float32Array.of(1) }]), /unexpected key features\.extra\.weight/);
  importFails(t, 'shape', edit((ts) => ts.map((x) => (x.key === 'fc.bias' ? { ...x, shape: [17], data: new Float32Array(17) } : x))), /fc\.bias: shape \[17\], cdnv2-tiny has \[16\]/);
  const maskKey = 'features.denseblock_2.denselayer_1.conv_1._mask';
  importFails(t, 'mask-not-final', edit((ts) => { ts.find((x) => x.key === maskKey)!.data.fill(1 as never); return ts; }),
    new RegExp(`masks not final: ${maskKey.replace(/\./g, '\\.')}`));
  importFails(t, 'mask-not-binary', edit((ts) => { (ts.find((x) => x.key === maskKey)!.data as Float32Array)[3] = 0.5; return ts; }),
    new RegExp(`${maskKey.replace(/\./g, '\\.')}: value 0\\.5`));
  const sfrMask = 'features.denseblock_3.denselayer_1.sfr._mask';
  importFails(t, 'sfr-mask-not-final', edit((ts) => { ts.find((x) => x.key === sfrMask)!.data.fill(0 as never); return ts; }),
    new RegExp(`masks not final: ${sfrMask.replace(/\./g, '\\.')}`));
  importFails(t, 'nan', edit((ts) => { (ts.find((x) => x.key === 'fc.weight')!.data as Float32Array)[0] = NaN; return ts; }), /fc\.weight: holds NaN/);
});

function pickleZip(pickle: number[]): Uint8Array {
  return zipSync({ 'archive/data.pkl': Uint8Array.from(pickle), 'archive/version': new TextEncoder().encode('3\n') }, { level: 0 });
}
const ascii = (s: string): number[] => [...new TextEncoder().encode(s)];

t.test('the unpickler runs nothing: a global a state dict does not need is refused by name', async (t) => {
  const sentinel = path.join(tmp, 'pwned');
  const cmd = `touch ${sentinel}`;
  const cases: [string, number[], RegExp][] = [
    // GLOBAL os.system, ('touch ...',), REDUCE
    ['os.system', [0x80, 2, ...ascii('cos\nsystem\n'), 0x58, cmd.length, 0, 0, 0, ...ascii(cmd), 0x85, 0x52, 0x2e], /refusing the Python global 'os\.system'/],
    // protocol 4 STACK_GLOBAL builtins.eval
    ['builtins.eval', [0x80, 4, 0x8c, 8, ...ascii('builtins'), 0x8c, 4, ...ascii('eval'), 0x93, 0x8c, 1, ...ascii('1'), 0x85, 0x52, 0x2e], /refusing the Python global 'builtins\.eval'/],
    // an allowed name called the wrong way: torch.FloatStorage is a type tag, never a function to call
    ['call a storage type', [0x80, 2, ...ascii('ctorch\nFloatStorage\n'), 0x29, 0x52, 0x2e], /torch\.FloatStorage/],
  ];
  for (const [name, pickle, message] of cases) {
    if (name === 'os.system') {
      const file = path.join(tmp, `${name}.pth`);
      writeFileSync(file, pickleZip(pickle));
      const r = cdnv2('import', file, '--arch', 'cdnv2-tiny', '-o', path.join(tmp, 'x.cnv2'));
      t.equal(r.code, 1, `${name}: exit 1`);
      t.match(r.stderr, message, `${name}: ${r.stderr.trim()}`);
    } else {
      t.throws(() => readTorchFile(pickleZip(pickle)), message, name);
    }
  }
  t.notOk(existsSync(sentinel), 'nothing was executed');
});

t.test('sizes are checked against the file before anything is allocated', async (t) => {
  const fail = (name: string, bytes: Uint8Array, message: RegExp): void => {
    t.throws(() => readTorchFile(bytes), message, name);
  };
  const legacy = new Uint8Array(readFileSync(fx('tiny-converted-legacy.pth')));
  fail('truncated legacy', legacy.subarray(0, legacy.length - 100), /legacy storage \S+: \d+ bytes do not fit in the file/);
  // The storage list follows the object pickle; the first storage's 8-byte element count comes right after it.
  // Claim 2^40 elements there: refused by comparison with the pickle and the file, not by trying to allocate.
  const huge = legacy.slice();
  const view = new DataView(huge.buffer);
  const firstCount = findFirstStorageCount(huge);
  view.setBigUint64(firstCount, 1n << 40n, true);
  fail('huge legacy count', huge, /legacy storage \S+: 1099511627776 elements, the pickle says \d+/);
  const zipped = unzipSync(new Uint8Array(readFileSync(fx('tiny-converted.pth.tar'))));
  const record = Object.keys(zipped).find((n) => /\/data\/\d+$/.test(n))!;
  zipped[record] = zipped[record]!.subarray(0, 4);
  fail('short zip record', zipSync(zipped, { level: 0 }), /storage \S+: 4 bytes, expected \d+/);
  fail('not a torch file', new TextEncoder().encode('hello, this is not a checkpoint at all'), /neither a torch\.save zip archive nor a legacy torch\.save file/);
  fail('empty', new Uint8Array(0), /too short/);
});

/** Offset of the first storage's element count in a legacy file: after the storage-key list pickle. */
function findFirstStorageCount(b: Uint8Array): number {
  // The key list is the last pickle before the raw data: a list of short unicode strings ending in '.'. Every
  // storage then starts with its count; the fixture's first storage is the first LGC index (8 int64 values).
  for (let i = 0; i + 16 < b.length; i++) {
    if (b[i] === 0x2e && b[i + 1] === 8 && b.subarray(i + 2, i + 9).every((x) => x === 0)) return i + 1;
  }
  throw new Error('no storage count found');
}

t.test('export-pytorch writes the official training-form state dict; import brings it back', async (t) => {
  const run = path.join(tmp, 'run');
  const first = path.join(tmp, 'first.cnv2');
  const r1 = cdnv2('import', fx('tiny-train.pth.tar'), '--arch', 'cdnv2-tiny', '-o', first, '--checkpoint', run);
  t.equal(r1.code, 0, `import --checkpoint: exit 0 ${r1.stderr}`);
  t.match(r1.stdout, /wrote checkpoint .*epoch-0000/);
  const pth = path.join(tmp, 'exported.pth');
  const r2 = cdnv2('export-pytorch', run, '-o', pth);
  t.equal(r2.code, 0, `export-pytorch: exit 0 ${r2.stderr}`);
  // Same keys, order, shapes and values as the state dict the official model itself saved.
  const official = stateDictOf('tiny-train.pth.tar');
  const ours = readTorchFile(new Uint8Array(readFileSync(pth))) as Map<string, TorchTensor>;
  t.ok(ours instanceof Map, 'a bare state dict');
  t.same([...ours.keys()], [...official.keys()], 'the official keys in the official order');
  let mismatch = '';
  for (const [k, v] of official) {
    const o = ours.get(k)!;
    if (o.shape.join() !== v.shape.join()) { mismatch ||= `${k} shape`; continue; }
    if (k.endsWith('num_batches_tracked')) continue; // a count of training batches, not a weight
    const a = o.values(), b = v.values();
    if (a.some((x, i) => x !== b[i])) mismatch ||= `${k} values`;
  }
  t.equal(mismatch, '', 'every tensor, masks, _count and _stage included, equals the official one');
  const second = path.join(tmp, 'second.cnv2');
  t.equal(cdnv2('import', pth, '--arch', 'cdnv2-tiny', '-o', second).code, 0, 're-import exits 0');
  const d = maxRelDiff(await modelLogits(second, inputs, 'simd'), ref.ema);
  t.ok(d < 1e-4, `after the round trip: max relative logit difference ${d.toExponential(2)} < 1e-4`);
});

t.test('an imported training-form checkpoint seeds `cdnv2 train --init-from`', async (t) => {
  const run = path.join(tmp, 'seed-run');
  t.equal(cdnv2('import', fx('tiny-train-legacy.pth.tar'), '--arch', 'cdnv2-tiny', '-o', path.join(tmp, 's.cnv2'), '--checkpoint', run).code, 0);
  const out = path.join(tmp, 'fine-tune');
  const r = cdnv2('train', '--arch', 'cdnv2-tiny', '--dataset', 'synthetic', '--epochs', '1', '--batch', '16', '--limit-train', '32',
    '--limit-test', '16', '--workers', '1', '--init-from', run, '--out', out);
  t.equal(r.code, 0, `train --init-from exits 0 ${r.stderr.slice(-400)}`);
  t.match(r.stderr + r.stdout, /starting from .*cdnv2-tiny after 0 epochs, mask stage 3\/3/, 'starts from the imported weights with final masks');
  t.equal(cdnv2('convert', out, '-o', path.join(tmp, 'ft.cnv2')).code, 0, 'the fine-tuned run converts (masks still final)');
});

t.test('strided and offset tensor views read the right elements', async (t) => {
  const bytes = new Uint8Array(Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]).buffer);
  const storage = { kind: 'storage' as const, dtype: 'float32' as const, key: '0', numel: 8, bytes };
  t.same(Array.from(new TorchTensor(storage, 0, [2, 3], [3, 1]).values()), [0, 1, 2, 3, 4, 5], 'contiguous');
  t.same(Array.from(new TorchTensor(storage, 1, [3, 2], [1, 3]).values()), [1, 4, 2, 5, 3, 6], 'transposed view at offset 1');
  t.same(Array.from(new TorchTensor(storage, 2, [2, 1, 2], [4, 9, 1]).values()), [2, 3, 6, 7], 'size-1 dimension with any stride');
});
