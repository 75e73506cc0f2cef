// `cdnv2 arch`, `cdnv2 info`, `cdnv2 convert` through the real entry point: outputs, atomic writes, exit codes.
import t from 'tap';
import { cdnv2 } from '../helpers/cli.js';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { analyze } from '../../converter/flops.js';
import { readModel } from '../../base/cnv2/format.js';

const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('arch writes a valid, deterministic model atomically', async (t) => {
  const out = path.join(dir, 'f.cnv2');
  const r = cdnv2('arch', 'cdnv2-fmnist', '-o', out, '--seed', '7');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^wrote .*f\.cnv2: cdnv2-fmnist, 13\.60M FLOPs, 187\.4K params, \d+ bytes \(f32 weights, seed 7\)\n$/, 'one-line summary');
  const bytes = readFileSync(out);
  const m = readModel(bytes);
  t.equal(analyze(m).totals.flops, 13597722, 'FLOPs of the written model');
  t.same(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left behind');
  t.equal(cdnv2('arch', 'cdnv2-fmnist', '-o', path.join(dir, 'g.cnv2'), '--seed', '7').code, 0);
  t.ok(readFileSync(path.join(dir, 'g.cnv2')).equals(bytes), 'same seed gives identical bytes');
  t.equal(cdnv2('arch', 'cdnv2-fmnist', '-o', path.join(dir, 'h.cnv2'), '--seed', '8').code, 0);
  t.notOk(readFileSync(path.join(dir, 'h.cnv2')).equals(bytes), 'another seed gives other weights');
  const prov = JSON.parse(m.meta.find((e) => e.key === 'provenance')!.value as string);
  t.match(prov, { source: 'arch', seed: 7, sfr: true, weights: 'f32', tool: 'cdnv2' }, 'provenance');
});

t.test('arch options', async (t) => {
  const f16 = path.join(dir, 'c16.cnv2');
  t.equal(cdnv2('arch', 'cdnv2-cifar-110', '-o', f16, '--weights', 'f16').code, 0);
  const m = readModel(readFileSync(f16));
  t.ok(m.tensors.some((x) => x.dtype === 'f16') && !m.tensors.some((x) => x.dtype === 'f32'), 'f16 weights');
  const nosfr = path.join(dir, 'nosfr.cnv2');
  t.equal(cdnv2('arch', 'cdnv2-fmnist', '-o', nosfr, '--no-sfr').code, 0);
  const n = readModel(readFileSync(nosfr));
  t.notOk(n.ops.some((o) => o.kind === 'conv2d' && o.accumulate === 1), 'no SFR ops with --no-sfr');
});

t.test('usage errors exit 2', async (t) => {
  const bad = cdnv2('arch', 'cdnv2-z', '-o', path.join(dir, 'z.cnv2'));
  t.equal(bad.code, 2, 'unknown config');
  t.match(bad.stderr, /unknown configuration 'cdnv2-z' \(known: cdnv2-a, cdnv2-b, cdnv2-c, cdnv2-cifar-110, cdnv2-cifar-146, cdnv2-cifar100-110, cdnv2-cifar100-146, cdnv2-fmnist, cdnv2-fmnist-w, cdnv2-tiny, shufflenetv2-0\.5x, .*, sfr-shufflenetv2-cifar\)/);
  t.notOk(existsSync(path.join(dir, 'z.cnv2')), 'nothing written');
  t.equal(cdnv2('arch', 'cdnv2-a', '-o', path.join(dir, 'z.cnv2'), '--weights', 'f64').code, 2, 'bad --weights');
  t.equal(cdnv2('arch', 'cdnv2-a', '-o', path.join(dir, 'z.cnv2'), '--seed', 'x1').code, 2, 'bad --seed');
  t.equal(cdnv2('arch', 'cdnv2-a').code, 2, 'missing -o');
});

t.test('failures exit 1 with a message', async (t) => {
  const missing = cdnv2('info', path.join(dir, 'nope.cnv2'));
  t.equal(missing.code, 1, 'missing model file');
  t.match(missing.stderr, /cannot read '.*nope\.cnv2': no such file/);
  const corrupt = path.join(dir, 'corrupt.cnv2');
  const b = readFileSync(path.join(dir, 'f.cnv2')); // written by the first subtest
  b[b.length - 5] ^= 0xff;
  writeFileSync(corrupt, b);
  const r = cdnv2('info', corrupt);
  t.equal(r.code, 1, 'corrupt model');
  t.match(r.stderr, /invalid model \(checksum\): section "DATA" CRC mismatch/);
  t.notMatch(r.stderr, /at .*\.ts:\d+/, 'no stack trace');
  const noDir = cdnv2('arch', 'cdnv2-fmnist', '-o', path.join(dir, 'no', 'such', 'dir', 'x.cnv2'));
  t.equal(noDir.code, 1, 'unwritable output');
  t.match(noDir.stderr, /cannot write/);
  const conv = cdnv2('convert', path.join(dir, 'no-checkpoint'), '-o', path.join(dir, 'conv.cnv2'));
  t.equal(conv.code, 1, 'convert of a missing checkpoint');
  t.ok(conv.stderr.length > 0, `message: ${conv.stderr.trim()}`);
  t.notOk(existsSync(path.join(dir, 'conv.cnv2')), 'nothing written');
});

t.test('info', async (t) => {
  const file = path.join(dir, 'f.cnv2'); // written by the first subtest
  const bytes = readFileSync(file);
  const want = analyze(readModel(bytes), bytes.length);
  const r = cdnv2('info', file, '--json');
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.same([j.flops, j.params, j.bytes], [want.totals.flops, want.totals.params, bytes.length], 'totals');
  t.equal(j.layers.length, want.layers.length, 'one row per op');
  t.same(j.layers[0], want.layers[0], 'row content');
  if (j.arenaBytes === undefined) {
    t.match(r.stderr, /arenaBytes left out/, 'says why arenaBytes is missing');
  } else {
    const m = readModel(bytes);
    const sizes = m.buffers.map((b) => 4 * b.channels * b.height * b.width);
    t.ok(j.arenaBytes >= Math.max(...sizes), `arena ${j.arenaBytes} holds the largest buffer`);
    t.ok(j.arenaBytes <= sizes.reduce((a, b) => a + b, 0) + 64 * sizes.length, 'arena no larger than all buffers at once');
  }
  const text = cdnv2('info', file);
  t.equal(text.code, 0);
  t.match(text.stdout, /model +cdnv2-fmnist/);
  t.match(text.stdout, new RegExp(`total +${want.totals.flops} FLOPs`));
  t.match(text.stdout, /#\s+op\s+input\s+output\s+groups\s+MACs\s+FLOPs\s+params/);
});
