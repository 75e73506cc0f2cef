// Checkpoints (issue 26): every promise of docs/checkpoint.md held by a crafted or corrupted checkpoint: the
// manifest's format and version, file sizes and sha256, each tensor's dtype and shape, 0/1 masks, keep-3
// retention, and the temp-directory-then-rename write (a write killed part-way leaves the previous checkpoint).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CheckpointError, listCheckpointDirs, loadCheckpoint, saveCheckpoint, type Manifest } from '../../trainer/checkpoint.js';
import { checkpointContent } from '../helpers/checkpoint-content.js';
import { root } from '../helpers/cli.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cdnv2-ckpt-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
/** A fresh run directory holding the checkpoints of the given epochs. */
function run(...epochs: number[]): string {
  const dir = path.join(tmp, `run${n++}`);
  for (const e of epochs) saveCheckpoint(dir, checkpointContent(e));
  return dir;
}
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const readManifest = (dir: string): Manifest => JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
const writeManifest = (dir: string, m: Manifest): void => writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m));
/** Rewrites a file of a checkpoint and records its true size and sha256 in the manifest (so only `edit` is wrong). */
function rewriteFile(dir: string, name: string, edit: (b: Buffer) => Buffer): void {
  const b = edit(readFileSync(path.join(dir, name)));
  writeFileSync(path.join(dir, name), b);
  const m = readManifest(dir);
  m.files[name] = { sha256: sha256(b), bytes: b.length };
  writeManifest(dir, m);
}
/** One epoch-0001 checkpoint, edited, loaded strictly: resolves to the error message. */
async function rejection(edit: (dir: string) => void): Promise<string> {
  const dir = listCheckpointDirs(run(1))[0]!;
  edit(dir);
  try {
    await loadCheckpoint(dir);
    return 'loaded';
  } catch (err) {
    return err instanceof CheckpointError ? err.message : `not a CheckpointError: ${(err as Error).message}`;
  }
}

t.test('a saved checkpoint loads back bit for bit', async (t) => {
  const content = checkpointContent(2);
  const dir = run(2);
  const c = await loadCheckpoint(dir);
  t.equal(path.basename(c.dir), 'epoch-0002');
  t.equal(c.manifest.format, 'cdnv2-checkpoint');
  t.equal(c.manifest.version, 1);
  for (const [group, a, b] of [['model', content.model, c.model], ['momentum', content.momentum, c.momentum], ['mask', content.masks, c.masks]] as const) {
    t.equal(b.size, a.size, `${group}: ${a.size} tensors`);
    let same = true;
    for (const [name, v] of a) if (Buffer.compare(Buffer.from(v.buffer, v.byteOffset, v.byteLength), Buffer.from(b.get(name)!.buffer)) !== 0) same = false;
    t.ok(same, `${group}: identical bytes`);
  }
  t.same(c.state.config, content.state.config, 'configuration');
});

t.test('manifest format and version', async (t) => {
  t.match(await rejection((d) => { const m = readManifest(d); m.format = 'other'; writeManifest(d, m); }), /manifest\.json: format is "other", expected cdnv2-checkpoint/);
  t.match(await rejection((d) => { const m = readManifest(d); m.version = 2; writeManifest(d, m); }), /manifest\.json: unsupported checkpoint version 2/);
  t.match(await rejection((d) => writeFileSync(path.join(d, 'manifest.json'), '{"format": "cdnv2-checkpoint", ')), /manifest\.json: not valid JSON/);
  t.match(await rejection((d) => rmSync(path.join(d, 'manifest.json'))), /no checkpoints \(expected .*manifest\.json\)/, 'without a manifest the directory is no checkpoint');
  t.match(await rejection((d) => { const m = readManifest(d); delete (m.files as Record<string, unknown>)['state.json']; writeManifest(d, m); }), /must list tensors\.bin and state\.json/);
});

t.test('file sizes and sha256', async (t) => {
  t.match(await rejection((d) => writeFileSync(path.join(d, 'state.json'), readFileSync(path.join(d, 'state.json'), 'utf8') + ' ')), /state\.json: \d+ bytes, manifest says \d+/);
  t.match(await rejection((d) => { const b = readFileSync(path.join(d, 'tensors.bin')); writeFileSync(path.join(d, 'tensors.bin'), b.subarray(0, b.length - 4)); }), /tensors\.bin: \d+ bytes, manifest says/);
  t.match(await rejection((d) => { const f = path.join(d, 'tensors.bin'); const b = readFileSync(f); b[b.length >> 1] ^= 1; writeFileSync(f, b); }), /tensors\.bin: checksum mismatch/);
  t.match(await rejection((d) => rmSync(path.join(d, 'tensors.bin'))), /missing tensors\.bin/);
});

t.test('each tensor: present, dtype, shape, inside tensors.bin', async (t) => {
  const edit = (name: string, change: (x: Manifest['tensors'][number]) => void) => (d: string): void => {
    const m = readManifest(d);
    change(m.tensors.find((x) => x.name === name && x.group === (name.endsWith('.mask') ? 'mask' : 'model'))!);
    writeManifest(d, m);
  };
  t.match(await rejection(edit('stem.weight', (x) => { x.dtype = 'uint8'; })), /tensor model:stem\.weight is uint8\[3,3,1,8\], expected float32\[3,3,1,8\]/);
  t.match(await rejection(edit('stem.weight', (x) => { x.shape = [3, 3, 8, 1]; })), /tensor model:stem\.weight is float32\[3,3,8,1\], expected float32\[3,3,1,8\]/);
  t.match(await rejection(edit('head.fc.bias', (x) => { x.name = 'head.fc.biases'; })), /tensor model:head\.fc\.bias missing/);
  t.match(await rejection(edit('head.fc.bias', (x) => { x.offset = 1e9; })), /tensor head\.fc\.bias lies outside tensors\.bin/);
  t.match(await rejection(edit('head.fc.bias', (x) => { x.bytes = 4; })), /tensor head\.fc\.bias lies outside tensors\.bin/);
});

t.test('masks hold only 0 and 1', async (t) => {
  const msg = await rejection((d) => {
    const mask = readManifest(d).tensors.find((x) => x.group === 'mask')!;
    rewriteFile(d, 'tensors.bin', (b) => { b[mask.offset + 1] = 2; return b; });
  });
  t.match(msg, /mask b\d\.l\d\.lgc\.mask has a value other than 0\/1/);
  t.equal(await rejection((d) => {
    const mask = readManifest(d).tensors.find((x) => x.group === 'mask')!;
    rewriteFile(d, 'tensors.bin', (b) => { b[mask.offset + 1] = 0; return b; });
  }), 'loaded', 'a mask byte changed to another 0/1 value (size and sha256 recorded) loads');
});

t.test('the newest 3 checkpoints are kept', async (t) => {
  const dir = run(1, 2, 3, 4, 5);
  t.same(listCheckpointDirs(dir).map((d) => path.basename(d)), ['epoch-0003', 'epoch-0004', 'epoch-0005']);
  t.same(readdirSync(path.join(dir, 'checkpoints')).sort(), ['epoch-0003', 'epoch-0004', 'epoch-0005'], 'nothing else left behind');
  t.equal((await loadCheckpoint(dir)).state.epochsDone, 5, 'a run directory loads its newest');
  // A corrupt newest falls back to the previous one, and so on; when none is valid the error lists them all.
  const f5 = path.join(dir, 'checkpoints/epoch-0005/tensors.bin');
  writeFileSync(f5, Buffer.alloc(readFileSync(f5).length));
  const warnings: string[] = [];
  t.equal((await loadCheckpoint(dir, (m) => warnings.push(m))).state.epochsDone, 4);
  t.match(warnings.join('\n'), /epoch-0005\/tensors\.bin: checksum mismatch.*using .*epoch-0004/);
  for (const e of [3, 4]) rmSync(path.join(dir, `checkpoints/epoch-000${e}/state.json`));
  await t.rejects(loadCheckpoint(dir, () => {}), /no valid checkpoint: .*epoch-0005.*epoch-0004.*epoch-0003/);
});

/** Runs test/helpers/checkpoint-child.ts, which SIGKILLs itself inside the write. */
function killedSave(dir: string, epoch: number, when: 'write' | 'rename'): { signal: NodeJS.Signals | null; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'test/helpers/checkpoint-child.ts'), dir, String(epoch), when], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { signal: r.signal, stderr: r.stderr };
}

t.test('a write killed part-way leaves the previous checkpoint, and the next write cleans up', async (t) => {
  for (const when of ['write', 'rename'] as const) {
    const dir = run(1, 2);
    const before = readFileSync(path.join(dir, 'checkpoints/epoch-0002/tensors.bin'));
    const r = killedSave(dir, 3, when);
    t.equal(r.signal, 'SIGKILL', `${when}: the child was killed inside the save (${r.stderr.trim() || 'no output'})`);
    const left = readdirSync(path.join(dir, 'checkpoints')).sort();
    t.same(left.filter((d) => !d.startsWith('.tmp-')), ['epoch-0001', 'epoch-0002'], `${when}: no epoch-0003, nothing pruned`);
    const tmpDir = left.find((d) => d.startsWith('.tmp-epoch-0003-'));
    t.ok(tmpDir, `${when}: the half-written checkpoint is in its temp directory (${tmpDir})`);
    if (when === 'write') {
      const partial = readFileSync(path.join(dir, 'checkpoints', tmpDir!, 'tensors.bin'));
      t.ok(partial.length > 0 && partial.length < before.length, `write: tensors.bin cut at ${partial.length} of ${before.length} bytes`);
      t.notOk(existsSync(path.join(dir, 'checkpoints', tmpDir!, 'manifest.json')), 'write: no manifest yet');
    } else {
      t.ok(existsSync(path.join(dir, 'checkpoints', tmpDir!, 'manifest.json')), 'rename: every file was written');
    }
    const c = await loadCheckpoint(dir, (m) => t.fail(`no warning expected: ${m}`));
    t.equal(c.state.epochsDone, 2, `${when}: the run loads its previous checkpoint`);
    t.same(readFileSync(path.join(c.dir, 'tensors.bin')), before, `${when}: unchanged`);
    saveCheckpoint(dir, checkpointContent(3));
    t.same(readdirSync(path.join(dir, 'checkpoints')).sort(), ['epoch-0001', 'epoch-0002', 'epoch-0003'], `${when}: the next save removes the temp directory`);
  }
});

t.test('a temp directory is never taken for a checkpoint, even a complete one', async (t) => {
  const dir = run(1);
  const src = listCheckpointDirs(dir)[0]!;
  const fake = path.join(dir, 'checkpoints', '.tmp-epoch-0009-1');
  mkdirSync(fake);
  cpSync(src, fake, { recursive: true });
  t.same(listCheckpointDirs(dir).map((d) => path.basename(d)), ['epoch-0001']);
  t.equal((await loadCheckpoint(dir)).state.epochsDone, 1);
});
