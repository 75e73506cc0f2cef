// Issue 6: a training run killed with SIGKILL in the middle of an epoch resumes from its last complete
// checkpoint and ends with the same weights, EMA and masks as an uninterrupted run (same seed, same data order).
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { listCheckpointDirs, loadCheckpoint, saveCheckpoint } from '../../trainer/checkpoint.js';
import { root } from '../helpers/cli.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-kill-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const child = path.join(root, 'test/helpers/train-child.ts');

function runToEnd(out: string, resume: boolean) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', child, out, ...(resume ? ['--resume'] : [])], { cwd: root, encoding: 'utf8', timeout: 600_000 });
  return { code: r.status, stderr: r.stderr };
}

/** Starts a run and SIGKILLs it once it reports progress inside epoch 2 (after checkpoint 1 was written). */
function runAndKill(out: string): Promise<{ killedAt: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, out], { cwd: root });
    let err = '', killedAt = '';
    p.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /epoch 2\/3 iteration (\d+)\/20/.exec(err);
      if (m && Number(m[1]) < 20 && !p.killed) {
        killedAt = m[0];
        p.kill('SIGKILL');
      }
    });
    // Resolve once the process is gone (reaped), as it would be for a user restarting the run.
    p.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`run ended (${code}) before it could be killed mid-epoch:\n${err}`));
      else resolve({ killedAt });
    });
  });
}

t.test('SIGKILL mid-epoch, then --resume, equals an uninterrupted run', async (t) => {
  const full = path.join(tmp, 'full');
  const killed = path.join(tmp, 'killed');
  const a = runToEnd(full, false);
  t.equal(a.code, 0, a.code === 0 ? 'uninterrupted run finished' : a.stderr.slice(-500));

  const { killedAt } = await runAndKill(killed);
  t.pass(`killed at "${killedAt}"`);
  t.equal(listCheckpointDirs(killed).length, 1, 'only the epoch-1 checkpoint exists after the kill');
  const b = runToEnd(killed, true);
  t.equal(b.code, 0, b.code === 0 ? 'resumed run finished' : b.stderr.slice(-500));
  t.match(b.stderr, /resuming after epoch 1/);

  const ca = await loadCheckpoint(full), cb = await loadCheckpoint(killed);
  t.equal(cb.state.epochsDone, 3);
  let maxDiff = 0;
  for (const [name, v] of ca.model) {
    const w = cb.model.get(name)!;
    for (let i = 0; i < v.length; i++) maxDiff = Math.max(maxDiff, Math.abs(v[i]! - w[i]!));
  }
  for (const [name, v] of ca.ema!) {
    const w = cb.ema!.get(name)!;
    for (let i = 0; i < v.length; i++) maxDiff = Math.max(maxDiff, Math.abs(v[i]! - w[i]!));
  }
  t.ok(maxDiff <= 1e-6, `weights and EMA agree (max difference ${maxDiff})`);
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
