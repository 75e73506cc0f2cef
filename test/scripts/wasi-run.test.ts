// scripts/wasi-run.mjs --batch (the node:wasi pass of test/assembly/runtime/model-fuzz.test.ts stands on it): each run
// of a batch reports what the same run in a process of its own reports (exit code, stdout, stderr), a trap included;
// a run whose memory grows large is repeated alone, in its own process, and says so.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { wasmPath } from '../../runtime/index.js';
import { root } from '../helpers/cli.js';

// (module (memory (export "memory") 1) (func (export "_start") unreachable)), byte by byte (node:wasi needs the memory).
const TRAPPING = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
  0x03, 0x02, 0x01, 0x00, // one function of type 0
  0x05, 0x03, 0x01, 0x00, 0x01, // one memory, 1 page
  0x07, 0x13, 0x02, 0x06, 0x5f, 0x73, 0x74, 0x61, 0x72, 0x74, 0x00, 0x00, // export "_start" (function 0)
  0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, // export "memory" (memory 0)
  0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b, // body: unreachable
]);

const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-wasi-run-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const script = path.join(root, 'scripts/wasi-run.mjs');
interface Run { code: number; stdout: string; stderr: string; alone?: boolean }

function alone(module: string, args: string[]): Run {
  const r = spawnSync(process.execPath, [script, `--dir=${dir}::/d`, module, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function batch(module: string, jobs: string[][]): Run[] {
  const file = path.join(dir, 'jobs.json');
  writeFileSync(file, JSON.stringify(jobs));
  const r = spawnSync(process.execPath, [script, '--batch', `--dir=${dir}::/d`, module, file], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`--batch exit ${r.status}: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Run);
}

copyFileSync(path.join(root, 'models/cdnv2-fmnist.cnv2'), path.join(dir, 'model.cnv2'));
writeFileSync(path.join(dir, 'image.pgm'), Buffer.concat([Buffer.from('P5\n28 28\n255\n'), Buffer.from(Array.from({ length: 784 }, (_, i) => (i * 7) % 256))]));
writeFileSync(path.join(dir, 'bad.cnv2'), 'not a model');

t.test('each run of a batch reports what it reports alone', async (t) => {
  const jobs = [
    ['classify', '/d/model.cnv2', '/d/image.pgm', '--top', '2'], // exit 0
    ['classify', '/d/bad.cnv2', '/d/image.pgm'],                 // exit 1, invalid model
    ['classify', '/d/model.cnv2'],                               // exit 2, usage
    ['classify', '/d/model.cnv2', '/d/missing.pgm'],              // exit 1, no such file
    ['info', '/d/model.cnv2'],
    ['classify', '/d/model.cnv2', '/d/image.pgm', '--top', '1'],  // after failures, a fresh instance again
  ];
  const got = batch(wasmPath('command', 'simd'), jobs);
  t.equal(got.length, jobs.length, 'a line per run');
  t.same(got.map((r) => r.code), [0, 1, 2, 1, 0, 0], 'the exit codes');
  for (const [i, job] of jobs.entries()) {
    t.same(got[i], alone(wasmPath('command', 'simd'), job), `${job.join(' ')}: as in a process of its own`);
  }
  t.match(got[0]!.stdout, /^\d\.\d{6} \d \S.*\n\d\.\d{6} \d \S.*\n$/, 'two classes printed');
});

t.test('a trap: exit 70 and the message on stderr, and the next run still runs', async (t) => {
  const trapping = path.join(dir, 'trap.wasm');
  writeFileSync(trapping, TRAPPING);
  const got = batch(trapping, [[], ['x']]);
  t.equal(got.length, 2);
  for (const r of got) {
    t.equal(r.code, 70);
    t.match(r.stderr, /^wasm trap: .*unreachable/);
  }
  t.same(got[0], alone(trapping, []), 'as alone');
});

t.test('a run whose memory grows past 16 MB is repeated alone', async (t) => {
  // A 2000x1500 PPM (9 MB): the command reads it whole and resizes it, growing its memory past the batch limit.
  writeFileSync(path.join(dir, 'big.ppm'), Buffer.concat([Buffer.from('P6\n2000 1500\n255\n'), Buffer.alloc(2000 * 1500 * 3, 77)]));
  const jobs = [['classify', '/d/model.cnv2', '/d/image.pgm', '--top', '1'], ['classify', '/d/model.cnv2', '/d/big.ppm', '--top', '1'],
    ['classify', '/d/model.cnv2', '/d/image.pgm', '--top', '1']];
  const got = batch(wasmPath('command', 'simd'), jobs);
  t.same(got.map((r) => r.alone === true), [false, true, false], 'only the large run, and the batch goes on after it');
  t.same(got[1], { ...alone(wasmPath('command', 'simd'), jobs[1]!), alone: true }, 'its result is its own process\'s');
  t.equal(got[1]!.code, 0);
  t.same(got[2], got[0], 'the same image, the same result');
});
