// Issue 6: a training run killed with SIGKILL in the middle of an epoch resumes from its last complete
// checkpoint and ends with the same weights, EMA and masks as an uninterrupted run (same seed, same data order),
// byte for byte. The kill point is one the trainer signals (test/helpers/train-child.ts, CDNV2_KILL_AT), not a race.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { listCheckpointDirs, loadCheckpoint, saveCheckpoint } from '../../trainer/checkpoint.js';
import { PNG } from 'pngjs';
import { Rng } from '../../base/rng.js';
import { root } from '../helpers/cli.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-kill-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const child = path.join(root, 'test/helpers/train-child.ts');

function runToEnd(out: string, resume: boolean, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', child, out, ...(resume ? ['--resume'] : [])], { cwd: root, encoding: 'utf8', timeout: 600_000, env: { ...process.env, ...env } });
  return { code: r.status, stderr: r.stderr };
}

const KILL_AT = 'epoch 2/3 iteration 7/20';

/** Runs until the trainer logs `killAt` (inside epoch 2, after checkpoint 1 was written), where the child kills itself. */
function runAndKill(out: string, killAt = KILL_AT, env: NodeJS.ProcessEnv = {}): { signal: NodeJS.Signals | null; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', child, out], {
    cwd: root, encoding: 'utf8', timeout: 600_000, env: { ...process.env, ...env, CDNV2_KILL_AT: killAt },
  });
  return { signal: r.signal, stderr: r.stderr };
}

/** The bytes of every tensor of a group, concatenated in name order. */
function groupBytes(m: Map<string, Float32Array | Uint8Array>): Buffer {
  return Buffer.concat([...m.keys()].sort().map((k) => { const v = m.get(k)!; return Buffer.from(v.buffer, v.byteOffset, v.byteLength); }));
}

t.test('SIGKILL mid-epoch, then --resume, equals an uninterrupted run', async (t) => {
  const full = path.join(tmp, 'full');
  const killed = path.join(tmp, 'killed');
  const a = runToEnd(full, false);
  t.equal(a.code, 0, a.code === 0 ? 'uninterrupted run finished' : a.stderr.slice(-500));

  const k = runAndKill(killed);
  t.equal(k.signal, 'SIGKILL', 'killed where the trainer logged the kill point');
  t.ok(k.stderr.trimEnd().split('\n').at(-1)!.startsWith(KILL_AT), `the last line logged is "${KILL_AT} ..."`);
  t.notMatch(k.stderr, /epoch 2\/3 iteration 8\/20/, 'nothing ran past the kill point');
  t.equal(listCheckpointDirs(killed).length, 1, 'only the epoch-1 checkpoint exists after the kill');
  const b = runToEnd(killed, true);
  t.equal(b.code, 0, b.code === 0 ? 'resumed run finished' : b.stderr.slice(-500));
  t.match(b.stderr, /resuming after epoch 1/);

  const ca = await loadCheckpoint(full), cb = await loadCheckpoint(killed);
  t.equal(cb.state.epochsDone, 3);
  // Byte-exact, as the in-process resume tests demand: the same seed and data order give the same arithmetic.
  t.ok(groupBytes(cb.model).equals(groupBytes(ca.model)), 'weights and BN statistics: identical bytes');
  t.ok(groupBytes(cb.ema!).equals(groupBytes(ca.ema!)), 'EMA: identical bytes');
  t.ok(groupBytes(cb.momentum).equals(groupBytes(ca.momentum)), 'momentum: identical bytes');
  for (const [name, m] of ca.masks) t.same(cb.masks.get(name), m, `mask ${name}`);
  t.same(cb.state.history.map((h) => h.testAccuracy), ca.state.history.map((h) => h.testAccuracy), 'same test accuracy per epoch');
});

t.test('a diverging run stops with a clear message and keeps its last good checkpoint', async (t) => {
  // Epoch 1 of a normal run, saved again with one weight so large that the next forward pass overflows.
  const source = path.join(tmp, 'killed');
  const good = await loadCheckpoint(listCheckpointDirs(source)[0]!);
  const diverge = path.join(tmp, 'diverge');
  const model = new Map(good.model);
  const [name, w] = [...model].find(([n]) => n.includes('stem'))!;
  model.set(name, w.map((v) => (v >= 0 ? 3e38 : -3e38)));
  saveCheckpoint(diverge, { ...good, model });
  const r = runToEnd(diverge, true);
  t.not(r.code, 0, 'non-zero exit');
  t.match(r.stderr, /training diverged at iteration \d+ \(loss (NaN|-?Infinity)\)/, 'names the problem');
  t.equal(listCheckpointDirs(diverge).length, 1, 'no checkpoint written after the divergence');
  const kept = await loadCheckpoint(diverge);
  t.equal(kept.state.epochsDone, 1, 'the last good checkpoint still loads');
});

t.test('with the official folder augmentation (crop, flip, RandAugment, erasing): SIGKILL mid-epoch, then --resume, equals an uninterrupted run', async (t) => {
  // 4 classes x 20 PNG images of assorted sizes (every 10th held out): 72 training images, 4 iterations of 16.
  const folder = path.join(tmp, 'images');
  const rng = new Rng(4);
  for (let k = 0; k < 4; k++) {
    mkdirSync(path.join(folder, `class-${k}`), { recursive: true });
    for (let i = 0; i < 20; i++) {
      const png = new PNG({ width: 12 + (i % 4) * 3, height: 10 + (i % 3) * 4 });
      for (let p = 0; p < png.width * png.height; p++) {
        const x = p % png.width, y = Math.floor(p / png.width);
        png.data[p * 4] = (x * 20 * (k + 1) + rng.int(40)) & 255; png.data[p * 4 + 1] = (y * 25) & 255; png.data[p * 4 + 2] = k * 60; png.data[p * 4 + 3] = 255;
      }
      writeFileSync(path.join(folder, `class-${k}`, `${i}.png`), PNG.sync.write(png));
    }
  }
  const env = { CDNV2_CHILD_FOLDER: folder };
  const killAt = 'epoch 2/3 iteration 3/4';
  const full = path.join(tmp, 'folder-full'), killed = path.join(tmp, 'folder-killed');
  const a = runToEnd(full, false, env);
  t.equal(a.code, 0, a.code === 0 ? 'uninterrupted run finished' : a.stderr.slice(-500));
  t.match(a.stderr, /on folder\/train \(72 images, test 8\), 3 epochs x 4 iterations of 16/);
  const k = runAndKill(killed, killAt, env);
  t.equal(k.signal, 'SIGKILL', 'killed where the trainer logged the kill point');
  t.ok(k.stderr.trimEnd().split('\n').at(-1)!.startsWith(killAt), `the last line logged is "${killAt} ..."`);
  const b = runToEnd(killed, true, env);
  t.equal(b.code, 0, b.code === 0 ? 'resumed run finished' : b.stderr.slice(-500));
  const ca = await loadCheckpoint(full), cb = await loadCheckpoint(killed);
  t.match(ca.state.options.folderAugment, { randAugment: 'rand-m9-mstd0.5', randomErasing: 0.2, hflip: 0.5 }, 'the run used the official augmentation');
  t.equal(cb.state.epochsDone, 3);
  t.ok(groupBytes(cb.model).equals(groupBytes(ca.model)), 'weights and BN statistics: identical bytes');
  t.ok(groupBytes(cb.ema!).equals(groupBytes(ca.ema!)), 'EMA: identical bytes');
  t.ok(groupBytes(cb.momentum).equals(groupBytes(ca.momentum)), 'momentum: identical bytes');
  t.same(cb.state.history.map((h) => [h.trainLoss, h.testAccuracy]), ca.state.history.map((h) => [h.trainLoss, h.testAccuracy]), 'same losses and accuracies');
});
