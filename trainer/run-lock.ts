// One writer per run directory: two training processes on the same --out would interleave checkpoints, logs and
// the keep-3 pruning of each other's files. The lock is a small JSON file created exclusively; a lock left by a
// process that died (kill -9, power loss) is recognised by its pid and taken over.
import { closeSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';

export const LOCK_FILE = 'train.lock';

interface LockContent { pid: number; host: string; started: string }

export interface RunLock {
  readonly file: string;
  release(): void;
}

/**
 * True when a process with this pid runs on this machine (EPERM: it exists but belongs to someone else). A zombie
 * (killed, not yet reaped by its parent) still answers signal 0, so on Linux its /proc state is checked too.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (macOS) or it vanished: trust the signal
  }
}

function parse(text: string): LockContent | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockContent>;
    if (Number.isInteger(v.pid) && (v.pid as number) > 0 && typeof v.host === 'string' && typeof v.started === 'string') return v as LockContent;
  } catch { /* not JSON: treated as stale below */ }
  return undefined;
}

/**
 * Takes the run directory's lock or throws a clear error naming the process that holds it. `warn` hears about a
 * stale lock being replaced.
 */
export function acquireRunLock(runDir: string, warn: (msg: string) => void = () => {}): RunLock {
  const file = path.join(runDir, LOCK_FILE);
  const mine: LockContent = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  const text = JSON.stringify(mine) + '\n';
  for (let attempt = 0; attempt < 5; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let raw: string;
      try { raw = readFileSync(file, 'utf8'); } catch { continue; /* vanished meanwhile: retry */ }
      const held = parse(raw);
      if (held) {
        if (held.host !== mine.host) {
          throw new Error(`${runDir} is locked by training process ${held.pid} on ${held.host} (since ${held.started}); ` +
            `if that process has ended, delete ${file}`);
        }
        if (held.pid === process.pid || alive(held.pid)) {
          throw new Error(`${runDir} is in use by training process ${held.pid} (since ${held.started}); ` +
            `wait for it or stop it, or choose another --out`);
        }
      }
      // Stale (its process is gone, or the file is not a lock we wrote): move it aside and retry the exclusive
      // create. If what we moved is no longer the stale lock we judged (another process took over in between),
      // put it back: two processes taking over the same stale lock must not both win.
      const stale = `${file}.stale-${process.pid}`;
      try { renameSync(file, stale); } catch { continue; /* someone else moved it: retry */ }
      let moved = '';
      try { moved = readFileSync(stale, 'utf8'); } catch { /* unreadable: treat as changed */ }
      if (moved !== raw) {
        try { renameSync(stale, file); } catch { /* gone */ }
        continue;
      }
      rmSync(stale, { force: true });
      warn(held ? `taking over the lock of ended process ${held.pid} in ${runDir}` : `replaced an unreadable ${file}`);
      continue;
    }
    try { writeSync(fd, text); } finally { closeSync(fd); }
    let released = false;
    return {
      file,
      release(): void {
        if (released) return;
        released = true;
        // Only remove the lock if it is still ours.
        try { if (parse(readFileSync(file, 'utf8'))?.pid === process.pid) rmSync(file, { force: true }); } catch { /* already gone */ }
      },
    };
  }
  throw new Error(`${runDir}: could not take the run lock ${file} (another process keeps replacing it)`);
}
