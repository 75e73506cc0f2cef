// Hostile inputs on the training side (issue 22): a checkpoint manifest edited consistently with its files'
// checksums, empty data sets, gzip bombs as data sets, disk-full errors and interrupted model writes.
import t from 'tap';
import { spawn } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CheckpointError, listCheckpointDirs, loadCheckpoint, saveCheckpoint, type Manifest } from '../../trainer/checkpoint.js';
import { openIdx } from '../../base/data/idx.js';
import { writeFileAtomic } from '../../base/io.js';
import { checkpointContent } from '../helpers/checkpoint-content.js';
import { cdnv2 } from '../helpers/cli.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-hostile-train-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

const manifestOf = (dir: string): Manifest => JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
/** Writes an edited manifest without re-sealing it: what an attacker (or a bit flip) that keeps the files does. */
const tamper = (dir: string, edit: (m: Manifest) => void): void => {
  const m = manifestOf(dir);
  edit(m);
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m, null, 1));
};

t.test('a manifest that does not verify is a corrupt checkpoint: refused alone, skipped in a run', async (t) => {
  const cases: [string, (m: Manifest) => void][] = [
    ['a tensor offset shifted by 64', (m) => { m.tensors[1]!.offset += 64; }],
    ['two BN tensors with swapped offsets', (m) => {
      const a = m.tensors.find((x) => x.name.endsWith('bn.mean'))!, b = m.tensors.find((x) => x.name.endsWith('bn.variance') && x.bytes === a.bytes)!;
      [a.offset, b.offset] = [b.offset, a.offset];
    }],
  ];
  for (const [what, edit] of cases) {
    const run = path.join(tmp, `run-${what.replace(/\W+/g, '-')}`);
    saveCheckpoint(run, checkpointContent(1));
    saveCheckpoint(run, checkpointContent(2));
    const [older, newest] = listCheckpointDirs(run) as [string, string];
    tamper(newest, edit);
    let err: unknown;
    try { await loadCheckpoint(newest); } catch (e) { err = e; }
    t.ok(err instanceof CheckpointError, `${what}: strict load refuses`);
    t.match((err as Error).message, /manifest\.json: manifest checksum mismatch/, what);
    const warnings: string[] = [];
    const c = await loadCheckpoint(run, (m) => warnings.push(m));
    t.equal(c.dir, older, `${what}: the run falls back to the previous checkpoint`);
    t.match(warnings.join('\n'), /manifest checksum mismatch.*using .*epoch-0001/, `${what}: with a message`);
  }
});

/** An IDX data set directory with `train` and `test` image counts (28x28, labels 0). */
function idxDir(name: string, train: number, test: number, gz = false): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir, { recursive: true });
  const images = (n: number): Buffer => {
    const b = Buffer.alloc(16 + n * 784);
    b.writeUInt32BE(0x00000803, 0); b.writeUInt32BE(n, 4); b.writeUInt32BE(28, 8); b.writeUInt32BE(28, 12);
    return b;
  };
  const labels = (n: number): Buffer => { const b = Buffer.alloc(8 + n); b.writeUInt32BE(0x00000801, 0); b.writeUInt32BE(n, 4); return b; };
  const put = (f: string, b: Buffer): void => writeFileSync(path.join(dir, gz ? `${f}.gz` : f), gz ? gzipSync(b) : b);
  put('train-images-idx3-ubyte', images(train)); put('train-labels-idx1-ubyte', labels(train));
  put('t10k-images-idx3-ubyte', images(test)); put('t10k-labels-idx1-ubyte', labels(test));
  return dir;
}

t.test('empty data sets are errors (exit 1), not NaN iterations or accuracy on nothing', async (t) => {
  for (const [what, train, test] of [['0 training images', 0, 4], ['0 test images', 4, 0]] as const) {
    const r = cdnv2('train', '--arch', 'cdnv2-fmnist', '--dataset', 'fashion-mnist', '--data', idxDir(what.replace(/ /g, '-'), train, test),
      '--epochs', '1', '--batch', '2', '--workers', '1', '--no-progress', '--out', path.join(tmp, `out-${train}-${test}`));
    t.equal(r.code, 1, `${what}: exit 1`);
    t.match(r.stderr, new RegExp(what), what);
  }
});

t.test('a gzip bomb as a data set stops inflating at the cap', async (t) => {
  const dir = path.join(tmp, 'bomb');
  mkdirSync(dir);
  // 300 MB of zeros compress to about 300 KB; the header claims a plausible size.
  const big = Buffer.alloc(300 << 20);
  big.writeUInt32BE(0x00000803, 0); big.writeUInt32BE(60000, 4); big.writeUInt32BE(28, 8); big.writeUInt32BE(28, 12);
  writeFileSync(path.join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(big, { level: 1 }));
  writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), Buffer.alloc(8));
  let err: unknown;
  try { openIdx(dir, 'train', 'bomb'); } catch (e) { err = e; }
  t.match((err as Error)?.message, /inflates to more than 268435456 bytes/);
});

t.test('an interrupted model write leaves no stray temporary file after the next write', async (t) => {
  const dir = path.join(tmp, 'atomic');
  mkdirSync(dir);
  // A process killed between writing its temporary file and the rename leaves `.model.cnv2.<pid>.<rand>.tmp`.
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
  const deadPid = child.pid!;
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  writeFileSync(path.join(dir, `.model.cnv2.${deadPid}.abc123.tmp`), 'partial');
  writeFileSync(path.join(dir, `.model.cnv2.${process.pid}.live.tmp`), 'a write of this process, in progress');
  await writeFileAtomic(path.join(dir, 'model.cnv2'), Uint8Array.of(1, 2, 3));
  t.same(readdirSync(dir).sort(), [`.model.cnv2.${process.pid}.live.tmp`, 'model.cnv2'], 'the dead writer\'s temp file is gone, a live one stays');
  t.ok(existsSync(path.join(dir, 'model.cnv2')));
});
