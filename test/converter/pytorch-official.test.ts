// The PyTorch bridge against PyTorch itself, when torch and the official code are at hand: CondenseNetV2-A, -B
// and -C in full (random weights, random final masks) written by scripts/pytorch-fixtures.py from the official
// model code, imported in both formats and both forms; our logits in every build and under wasmtime; the FLOPs and
// params of our own configuration; and export-pytorch loaded strictly into the official model.
// Needs /usr/bin/python3 with torch and a checkout of github:jianghaojun/CondenseNetV2 (CDNV2_OFFICIAL_REPO: a
// checkout or a bare git directory); skipped otherwise (test/converter/pytorch-import.test.ts covers the committed fixtures).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';

import { CONFIGS } from '../../base/arch/configs.js';
import { condense } from '../../converter/condense.js';
import { analyze } from '../../converter/flops.js';
import { writeModel } from '../../base/cnv2/format.js';
import { importTorchCheckpoint } from '../../converter/pytorch/import.js';
import { randomNetworkParams } from '../../converter/random.js';
import { cdnv2, root } from '../helpers/cli.js';
import { argmax, FIXTURES, ISAS, maxRelDiff, modelLogits, readFixtureLogits, softmax } from '../helpers/pytorch.js';
import { runWasmtime, wasmtimeOrSkip } from '../helpers/wasmtime.js';

const PY = '/usr/bin/python3';
const hasTorch = spawnSync(PY, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
// Opt-in: the full A/B/C run takes many minutes on 2 cores, more than a test file's time limit in the suite.
const repoSetting = process.env.CDNV2_OFFICIAL_REPO ?? '';
const skip = !hasTorch ? 'torch is not installed for /usr/bin/python3'
  : !repoSetting ? 'CDNV2_OFFICIAL_REPO is not set (a checkout or bare git dir of the official code)'
  : !existsSync(repoSetting) ? `no official code at ${repoSetting}` : false;

const tmp = mkdtempSync(path.join(tmpdir(), 'cdnv2-pt-official-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

/** A checkout of the official code: the setting itself, or extracted (once) from a bare git directory. */
function officialCheckout(): string {
  if (existsSync(path.join(repoSetting, 'model', 'condensenetv2.py'))) return repoSetting;
  const dir = path.join(tmp, 'official');
  if (existsSync(dir)) return dir;
  mkdirSync(dir);
  const archive = execFileSync('git', [`--git-dir=${repoSetting}`, 'archive', 'HEAD'], { maxBuffer: 1 << 28 });
  execFileSync('tar', ['-x', '-C', dir], { input: archive });
  return dir;
}

const measured: string[] = [];
t.teardown(() => { if (measured.length) console.log(`# measured differences (max relative logit difference):\n# ${measured.join('\n# ')}`); });

t.test('CondenseNetV2-A/B/C from the official code', { skip }, async (t) => {
  const official = officialCheckout();
  const fx = path.join(tmp, 'fixtures');
  const gen = spawnSync(PY, [path.join(root, 'scripts/pytorch-fixtures.py'), '--official', official, '--out', fx, '--configs', 'a,b,c', '--inputs', '2'],
    { encoding: 'utf8', timeout: 1_800_000 });
  t.equal(gen.status, 0, `fixtures written ${gen.stderr.slice(-500)}`);
  const w = wasmtimeOrSkip(t);
  for (const name of ['a', 'b', 'c']) {
    const cfg = CONFIGS[`cdnv2-${name}`]!;
    const { ref, inputs } = readFixtureLogits(fx, name);
    const own = analyze(condense(randomNetworkParams(cfg, 1), { weights: 'f32' })).totals;
    // A: all four files; B and C (up to 200 MB each): one per format and form, both formats and forms covered.
    const files: [string, 'ema' | 'converted'][] = name === 'a'
      ? [[`${name}-train.pth.tar`, 'ema'], [`${name}-train-legacy.pth.tar`, 'ema'], [`${name}-converted.pth.tar`, 'converted'], [`${name}-converted-legacy.pth`, 'converted']]
      : [[`${name}-train-legacy.pth.tar`, 'ema'], [`${name}-converted.pth.tar`, 'converted']];
    for (const [file, key] of files) {
      const imp = importTorchCheckpoint(new Uint8Array(readFileSync(path.join(fx, file))), cfg);
      const model = path.join(tmp, `${file}.cnv2`);
      writeFileSync(model, writeModel(imp.model));
      const a = analyze(imp.model).totals;
      t.same([a.flops, a.params], [own.flops, own.params], `${file}: the FLOPs and params of our ${cfg.name} (${a.flops}, ${a.params})`);
      for (const isa of ISAS) {
        const got = await modelLogits(model, inputs, isa);
        const d = maxRelDiff(got, ref[key]);
        measured.push(`${file} [${isa}]: ${d.toExponential(2)}`);
        t.ok(d < 1e-4, `${file} [${isa}]: max relative logit difference ${d.toExponential(2)} < 1e-4`);
        t.same(got.map(argmax), ref[key].map(argmax), `${file} [${isa}]: same top-1 on every input`);
      }
      if (w && file.endsWith('converted.pth.tar')) {
        // The WASI command prints softmax probabilities with 6 decimals: compare those for every class.
        const input = path.join(tmp, `${name}-input0.f32`);
        writeFileSync(input, inputs[0]!);
        const r = runWasmtime(w, path.join(root, 'build/cdnv2.wasm'), ['classify', model, input, '--top', String(cfg.classes)], { dirs: [tmp] });
        t.equal(r.code, 0, `wasmtime classify exits 0 ${r.stderr}`);
        const rows = r.stdout.split('\n').map((l) => /^\s*([\d.]+)\s+(\d+)\s/.exec(l)).filter((m) => m) as RegExpExecArray[];
        const want = softmax(ref[key][0]!);
        let worst = 0;
        for (const m of rows) worst = Math.max(worst, Math.abs(Number(m[1]) - want[Number(m[2])]!));
        t.equal(rows.length, cfg.classes, 'every class printed');
        t.equal(Number(rows[0]![2]), argmax(ref[key][0]!), 'wasmtime: same top-1');
        measured.push(`${file} [wasmtime]: max probability difference ${worst.toExponential(2)}`);
        t.ok(worst <= 1e-5, `wasmtime: max probability difference ${worst.toExponential(2)} <= 1e-5 (6 printed decimals)`);
      }
    }
  }
  // What `cdnv2 info` reports for an imported model and for our own configuration.
  const infoOf = (f: string): number[] => { const r = cdnv2('info', f, '--json'); const j = JSON.parse(r.stdout) as { flops: number; params: number }; return [j.flops, j.params]; };
  const arch = path.join(tmp, 'own-a.cnv2');
  t.equal(cdnv2('arch', 'cdnv2-a', '-o', arch).code, 0);
  t.same(infoOf(path.join(tmp, 'a-converted.pth.tar.cnv2')), infoOf(arch), 'cdnv2 info: imported A = our cdnv2-a');
});

t.test('export-pytorch loads strictly into the official model and gives our logits', { skip }, async (t) => {
  const official = officialCheckout();
  const fx = path.join(tmp, 'fixtures');
  for (const name of ['tiny', 'a']) {
    const dir = name === 'tiny' ? FIXTURES : fx;
    if (!existsSync(path.join(dir, `${name}-train.pth.tar`))) { t.fail(`no ${name} fixtures`); continue; }
    const { inputs } = readFixtureLogits(dir, name);
    const run = path.join(tmp, `run-${name}`);
    const ours = path.join(tmp, `ours-${name}.cnv2`);
    t.equal(cdnv2('import', path.join(dir, `${name}-train.pth.tar`), '--arch', `cdnv2-${name}`, '-o', ours, '--checkpoint', run).code, 0, `${name}: import --checkpoint`);
    const pth = path.join(tmp, `exported-${name}.pth`);
    t.equal(cdnv2('export-pytorch', run, '-o', pth).code, 0, `${name}: export-pytorch`);
    const inputFile = path.join(tmp, `${name}-inputs.f32`);
    writeFileSync(inputFile, Buffer.concat(inputs.map((x) => Buffer.from(x.buffer, x.byteOffset, x.byteLength))));
    const r = spawnSync(PY, [path.join(root, 'scripts/pytorch-fixtures.py'), '--official', official, '--eval-export', pth, '--config', name,
      '--inputs-file', inputFile, '--inputs', String(inputs.length)], { encoding: 'utf8', timeout: 600_000 });
    t.equal(r.status, 0, `${name}: load_state_dict(strict=True) and eval in PyTorch ${r.stderr.slice(-800)}`);
    const torchLogits = (JSON.parse(r.stdout) as { logits: number[][] }).logits;
    const got = await modelLogits(ours, inputs, 'simd');
    const d = maxRelDiff(got, torchLogits);
    measured.push(`export-pytorch ${name} -> PyTorch vs ours: ${d.toExponential(2)}`);
    t.ok(d < 1e-4, `${name}: PyTorch on our export vs our logits: ${d.toExponential(2)} < 1e-4`);
  }
});
