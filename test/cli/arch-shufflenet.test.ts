// `cdnv2 arch` for the ShuffleNet family through the real entry point: the layer table and totals, the JSON form,
// the listing of both families, and the usage errors. Expected figures are typed from the paper (Tables 3, 5, 8).
import t from 'tap';

import { cdnv2 } from '../helpers/cli.js';

t.test('arch prints the layers, FLOPs and parameters of a ShuffleNet configuration', async (t) => {
  const r = cdnv2('arch', 'sfr-shufflenetv2-1.0x');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /layer\s+op\s+input\s+output\s+groups\s+MACs\s+FLOPs\s+params/);
  t.match(r.stdout, /^stem\.pool\s+maxpool\s+24x112x112\s+24x56x56/m);
  t.match(r.stdout, /^s0\.u1\.sfr\s+sfr\s+58x28x28\s+58x28x28\s+58\s/m, 'the SFR of the first basic unit, 58 groups');
  t.notMatch(r.stdout, /^s\d\.u0\.sfr/m, 'no SFR in a stride-2 unit');
  const total = /total\s+(\d+) FLOPs .*?, \d+ MACs, (\d+) params/.exec(r.stdout);
  t.ok(total, 'a total line');
  const flops = Number(total![1]);
  t.ok(Math.abs(flops - 150e6) <= 0.03 * 150e6, `${flops} FLOPs within 3% of the paper's 150M`);
  t.equal((r.stdout.match(/^s\d\.u\d+\.sfr /gm) ?? []).length, 13, '3 + 7 + 3 SFRs');

  const j = cdnv2('arch', 'shufflenetv2-0.5x', '--json');
  t.equal(j.code, 0, j.stderr);
  const parsed = JSON.parse(j.stdout) as { name: string; totals: { flops: number; params: number }; layers: { op: string }[] };
  t.equal(parsed.name, 'shufflenetv2-0.5x');
  t.ok(Math.abs(parsed.totals.flops - 41e6) <= 0.03 * 41e6, `${parsed.totals.flops} vs 41M`);
  t.ok(Math.abs(parsed.totals.params - 1.4e6) <= 0.05 * 1.4e6, `${parsed.totals.params} vs 1.4M`);
  t.equal(parsed.layers.filter((l) => l.op === 'dwconv').length, 3 * 2 + 13, 'two depthwise convs per stride-2 unit, one per basic unit');
});

t.test('arch --list names every configuration of both families', async (t) => {
  const r = cdnv2('arch', '--list');
  t.equal(r.code, 0, r.stderr);
  for (const n of ['cdnv2-a', 'cdnv2-fmnist', 'shufflenetv2-0.5x', 'shufflenetv2-1.5x', 'sfr-shufflenetv2-1.0x', 'sfr-shufflenetv2-fmnist', 'sfr-shufflenetv2-cifar']) {
    t.match(r.stdout, new RegExp(`^${n.replace(/\./g, '\\.')}\\s`, 'm'), n);
  }
  t.match(r.stdout, /^sfr-shufflenetv2-fmnist\s+shufflenetv2\s+1x28x28/m);
});

t.test('arch usage errors', async (t) => {
  const unknown = cdnv2('arch', 'shufflenetv2-3x');
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /unknown configuration 'shufflenetv2-3x' \(known: .*sfr-shufflenetv2-0\.5x/);
  const noSfr = cdnv2('arch', 'sfr-shufflenetv2-1.0x', '--no-sfr');
  t.equal(noSfr.code, 2);
  t.match(noSfr.stderr, /use shufflenetv2-1\.0x/);
  t.equal(cdnv2('arch').code, 2, 'no configuration');
  t.equal(cdnv2('arch', 'cdnv2-a').code, 2, 'a CondenseNetV2 configuration still needs -o');
});
