// Longer model-file fuzz runs than CI's: `npm run fuzz -- --cases 100000 --seed 7 [--isa simd,scalar,relaxed]
// [--large] [--save DIR]`. Same mutations and contract as test/assembly/runtime/model-fuzz.test.ts (see testkit/fuzz-model.ts).
// Every failing case is written to DIR (default test/fixtures/fuzz/found) with a .txt describing it; exits 1 if any.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { baseModels, fuzz } from '../testkit/fuzz-model.js';
import type { Isa } from '../runtime/index.js';

function usage(message: string): never {
  process.stderr.write(`fuzz: ${message}\nusage: npm run fuzz -- [--cases N] [--seed S] [--isa simd,scalar,relaxed] [--large] [--save DIR]\n`);
  process.exit(2);
}

let values;
try {
  values = parseArgs({
    options: {
      cases: { type: 'string', default: '20000' },
      seed: { type: 'string', default: String(Date.now() % 1e9) },
      isa: { type: 'string', default: 'simd,scalar,relaxed' },
      large: { type: 'boolean', default: false },
      save: { type: 'string', default: 'test/fixtures/fuzz/found' },
    },
    strict: true,
  }).values;
} catch (err) {
  usage((err as Error).message);
}
const cases = Number(values.cases);
const seed = Number(values.seed);
if (!Number.isInteger(cases) || cases < 1) usage(`--cases needs a positive integer, got '${values.cases}'`);
if (!Number.isInteger(seed) || seed < 0) usage(`--seed needs a non-negative integer, got '${values.seed}'`);
const isas = values.isa.split(',').map((s) => s.trim()) as Isa[];
for (const isa of isas) if (!['simd', 'scalar', 'relaxed'].includes(isa)) usage(`unknown ISA '${isa}'`);

const t0 = performance.now();
const stats = await fuzz({
  cases, seed, isas: isas.map((i) => [i, 1]), bases: baseModels({ large: values.large }),
  onCase: (i, s) => {
    if ((i + 1) % 1000 === 0) {
      process.stderr.write(`${i + 1} cases, ${s.rejected} rejected, ${s.failures.length} failures, ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
    }
  },
});
process.stdout.write(`seed ${seed}: ${stats.cases} cases (${Object.entries(stats.byIsa).map(([k, v]) => `${k} ${v}`).join(', ')}), ` +
  `${stats.rejected} rejected, ${stats.accepted} accepted (${stats.numeric} of them report non-finite logits at run), slowest ${stats.maxMs.toFixed(1)} ms\n`);
process.stdout.write(`verdicts: ${JSON.stringify(stats.codes)}\n`);
if (stats.failures.length) {
  mkdirSync(values.save, { recursive: true });
  stats.failures.forEach((f, i) => {
    const name = path.join(values.save, `seed${seed}-${i}`);
    writeFileSync(`${name}.cnv2`, f.bytes);
    writeFileSync(`${name}.txt`, `${f.isa}: ${f.desc}\n${f.problem}\n`);
    process.stdout.write(`FAIL ${name}.cnv2 [${f.isa}] ${f.desc}: ${f.problem}\n`);
  });
  process.exitCode = 1;
}
