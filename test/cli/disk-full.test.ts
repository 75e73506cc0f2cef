// A full disk (issue 22): every write names the file it could not write, exits 1, and leaves no partial or
// temporary file behind. The disk is a 64 KiB tmpfs mounted by the test (root only; skipped where mount is refused).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cdnv2 } from '../helpers/cli.js';

const disk = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-full-'));
const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', disk]).status === 0;
t.teardown(() => {
  if (mounted) spawnSync('umount', [disk]);
  rmSync(disk, { recursive: true, force: true });
});

/** Every file and directory under dir, relative to it. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

t.test('writes to a full disk', { skip: mounted ? false : 'cannot mount a small tmpfs here (needs root)' }, async (t) => {
  t.test('arch -o: a model larger than the disk', async (t) => {
    const out = path.join(disk, 'model.cnv2');
    const r = cdnv2('arch', 'cdnv2-fmnist', '-o', out);
    t.equal(r.code, 1, 'exit 1');
    t.match(r.stderr, `cannot write '${out}'`, 'names the file');
    t.match(r.stderr, /no space left/, 'says the disk is full');
    t.same(tree(disk), [], 'no partial or temporary file left');
  });

  t.test('train: the first checkpoint does not fit', async (t) => {
    const run = path.join(disk, 'run');
    const r = cdnv2('train', '--arch', 'cdnv2-fmnist', '--dataset', 'synthetic', '--epochs', '1', '--limit-train', '64',
      '--limit-test', '32', '--workers', '1', '--out', run);
    t.equal(r.code, 1, 'exit 1');
    t.match(r.stderr, new RegExp(`cannot write '${run}/checkpoints/[^']+': ENOSPC \\(disk full\\)`), 'names the file');
    t.same(tree(path.join(run, 'checkpoints')), [], 'the temporary checkpoint directory is removed');
  });
});
