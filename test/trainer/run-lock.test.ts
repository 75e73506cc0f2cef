// One writer per run directory: the lock file refuses a second live trainer, names it, and takes over the locks
// of processes that died.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';

import { selectBackend } from '../../trainer/backend.js';
import { openSynthetic } from '../../base/data/synthetic.js';
import { acquireRunLock, LOCK_FILE } from '../../trainer/run-lock.js';
import { tinyConfig } from '../../trainer/tiny.js';
import { train, type TrainRun } from '../../trainer/train.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-lock-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

function dir(name: string): string {
  const d = path.join(tmp, name);
  mkdirSync(d, { recursive: true });
  return d;
}

function writeLock(d: string, pid: number, host = os.hostname()): void {
  writeFileSync(path.join(d, LOCK_FILE), JSON.stringify({ pid, host, started: '2026-01-01T00:00:00.000Z' }));
}

/** A pid that belonged to a process which has ended. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

t.test('the lock is exclusive within a process and is removed on release', async (t) => {
  const d = dir('basic');
  const lock = acquireRunLock(d);
  const content = JSON.parse(readFileSync(path.join(d, LOCK_FILE), 'utf8'));
  t.equal(content.pid, process.pid);
  t.equal(content.host, os.hostname());
  t.throws(() => acquireRunLock(d), new RegExp(`in use by training process ${process.pid}`));
  lock.release();
  t.notOk(existsSync(path.join(d, LOCK_FILE)), 'released lock file is gone');
  lock.release(); // twice is harmless
  acquireRunLock(d).release();
  t.same(readdirSync(d), [], 'nothing left behind');
});

t.test('a live process holding the lock is named and refused; its lock is left alone', async (t) => {
  const d = dir('live');
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  t.teardown(() => { child.kill('SIGKILL'); });
  writeLock(d, child.pid!);
  t.throws(() => acquireRunLock(d), new RegExp(`in use by training process ${child.pid}`));
  t.equal(JSON.parse(readFileSync(path.join(d, LOCK_FILE), 'utf8')).pid, child.pid, 'the holder keeps its lock');
});

t.test('the lock of an ended process is taken over with a warning', async (t) => {
  const d = dir('stale');
  const pid = deadPid();
  writeLock(d, pid);
  const warnings: string[] = [];
  const lock = acquireRunLock(d, (m) => warnings.push(m));
  t.match(warnings.join('\n'), new RegExp(`ended process ${pid}`));
  t.equal(JSON.parse(readFileSync(path.join(d, LOCK_FILE), 'utf8')).pid, process.pid);
  lock.release();
  t.same(readdirSync(d), [], 'no stale copies left behind');
});

t.test('a killed process not yet reaped by its parent (a zombie) does not hold the lock', { skip: process.platform !== 'linux' && 'needs /proc' }, async (t) => {
  const d = dir('zombie');
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  await new Promise((r) => child.once('spawn', r));
  writeLock(d, child.pid!);
  child.kill('SIGKILL');
  // Without returning to the event loop, Node cannot reap the child: wait (synchronously) until it is a zombie.
  const state = () => { try { const s = readFileSync(`/proc/${child.pid}/stat`, 'utf8'); return s[s.lastIndexOf(')') + 2]; } catch { return 'gone'; } };
  const until = Date.now() + 5000;
  while (state() !== 'Z' && Date.now() < until) { /* spin */ }
  t.equal(state(), 'Z', 'the child is a zombie');
  const warnings: string[] = [];
  const lock = acquireRunLock(d, (m) => warnings.push(m));
  t.match(warnings.join('\n'), new RegExp(`ended process ${child.pid}`));
  lock.release();
});

t.test('an unreadable lock file (empty, not JSON, wrong fields) is replaced', async (t) => {
  for (const [name, text] of [['empty', ''], ['garbage', '\u0000\u00ffnot json'], ['fields', '{"pid":-3,"host":1}']] as const) {
    const d = dir(`bad-${name}`);
    writeFileSync(path.join(d, LOCK_FILE), text);
    const warnings: string[] = [];
    const lock = acquireRunLock(d, (m) => warnings.push(m));
    t.match(warnings.join('\n'), /unreadable/, name);
    t.equal(JSON.parse(readFileSync(path.join(d, LOCK_FILE), 'utf8')).pid, process.pid, name);
    lock.release();
  }
});

t.test('a lock from another machine is refused with the file to delete', async (t) => {
  const d = dir('remote');
  writeLock(d, 12345, `${os.hostname()}-other`);
  t.throws(() => acquireRunLock(d), /locked by training process 12345 on .*-other .*if that process has ended, delete .*train\.lock/);
});

t.test('train() refuses a run directory in use and writes nothing into it; it releases its own lock when done', async (t) => {
  await selectBackend('cpu');
  const cfg = tinyConfig();
  const shape = { height: 8, width: 8, channels: 1, classes: 4 };
  const run = (out: string): TrainRun => ({
    arch: 'tiny', dataset: 'synthetic', epochs: 1, batch: 32, lr: 0.1, warmupEpochs: 0, warmupLr: 0.1, weightDecay: 0,
    momentum: 0.9, labelSmoothing: 0, ema: 0, groupLasso: 0, sfr: true, seed: 1, augment: false,
    out, resume: false, backend: 'cpu', config: cfg, chart: false, log: () => {},
    sources: { train: openSynthetic({ split: 'train', count: 64, ...shape }), test: openSynthetic({ split: 'test', count: 32, ...shape }) },
  });
  const busy = dir('train-busy');
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  t.teardown(() => { child.kill('SIGKILL'); });
  writeLock(busy, child.pid!);
  await t.rejects(train(run(busy)), new RegExp(`in use by training process ${child.pid}`));
  t.same(readdirSync(busy), [LOCK_FILE], 'no checkpoints or logs written');

  const free = path.join(tmp, 'train-free');
  const r = await train(run(free));
  t.equal(r.history.length, 1);
  t.notOk(existsSync(path.join(free, LOCK_FILE)), 'lock released after training');
  // A failing run releases it too.
  await t.rejects(train(run(free)), /already holds checkpoints/);
  t.notOk(existsSync(path.join(free, LOCK_FILE)), 'lock released after an error');
});
