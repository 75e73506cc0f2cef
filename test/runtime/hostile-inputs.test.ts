// Hostile files around the model (issue 22): special files refused by type before they are opened, allocations
// over what wasm can give reported as clean errors (exit 1, the right code), big files read in bounded chunks,
// text from a model file printed escaped, image headers checked before decoding, and the node WASI runner kept
// inside its granted directories. Every interface: the CLI, the JS API, the WASI command under node:wasi and wasmtime.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { readModel, writeModel } from '../../base/cnv2/format.js';
import { Cdnv2Error, loadModel, loadModelFile, wasmPath } from '../../runtime/index.js';
import { readImageFile } from '../../runtime/image.js';
import { cdnv2 } from '../helpers/cli.js';
import { runWasmtime, wasmtimeOrSkip } from '../helpers/wasmtime.js';

const root = mkdtempSync(path.join(tmpdir(), 'cdnv2-hostile-in-'));
const data = path.join(root, 'data');
mkdirSync(data);
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const shipped = readFileSync(new URL('../../models/cdnv2-fmnist.cnv2', import.meta.url));
writeFileSync(path.join(data, 'model.cnv2'), shipped);
writeFileSync(path.join(data, 'image.pgm'), Buffer.concat([Buffer.from('P5 28 28 255\n'), Buffer.alloc(784, 90)]));
const fifo = path.join(data, 'fifo');
spawnSync('mkfifo', [fifo]);

/** A sparse file: `header` then zeros up to `size` bytes, without writing them. */
function sparse(file: string, header: Uint8Array, size: number): void {
  writeFileSync(file, header);
  const fd = openSync(file, 'r+');
  ftruncateSync(fd, size);
  closeSync(fd);
}

type Run = { engine: string; code: number; stdout: string; stderr: string };
function wasi(t: Parameters<typeof wasmtimeOrSkip>[0], args: string[], dir = data): Run[] {
  const cmd = wasmPath('command', 'simd');
  const node = spawnSync(process.execPath, ['scripts/wasi-run.mjs', `--dir=${dir}::/data`, cmd, ...args], { encoding: 'utf8', timeout: 120_000 });
  const runs: Run[] = [{ engine: 'node:wasi', code: node.status ?? (node.error ? -2 : -1), stdout: node.stdout, stderr: node.stderr }];
  const w = wasmtimeOrSkip(t);
  if (w) runs.push({ engine: 'wasmtime', ...runWasmtime(w, cmd, args, { dirs: [`${dir}::/data`] }) });
  return runs;
}

async function apiCode(fn: () => Promise<unknown>): Promise<string> {
  try {
    const m = await fn();
    (m as { dispose?: () => void })?.dispose?.();
    return 'ok';
  } catch (err) {
    return err instanceof Cdnv2Error ? err.code : `crash: ${(err as Error).constructor.name}: ${(err as Error).message}`;
  }
}

t.test('a FIFO, /dev/zero or a directory is refused by type, never read (no hang, no growth)', async (t) => {
  for (const r of wasi(t, ['info', '/data/fifo'])) {
    t.equal(r.code, 1, `${r.engine}: FIFO as model`);
    t.match(r.stderr, /fifo: not a regular file/, r.engine);
  }
  for (const r of wasi(t, ['classify', '/data/model.cnv2', '/data/fifo'])) {
    t.equal(r.code, 1, `${r.engine}: FIFO as image`);
    t.match(r.stderr, /fifo: not a regular file/, r.engine);
  }
  t.equal(await apiCode(() => loadModelFile(fifo)), 'io', 'JS API: FIFO as model');
  t.equal(await apiCode(() => loadModelFile('/dev/zero')), 'io', 'JS API: /dev/zero as model');
  t.equal(await apiCode(() => loadModelFile(data)), 'io', 'JS API: a directory as model');
  t.equal(await apiCode(() => readImageFile(fifo)), 'input', 'JS image reader: FIFO');
  t.equal(await apiCode(() => readImageFile('/dev/zero')), 'input', 'JS image reader: /dev/zero');
  const info = cdnv2('info', fifo);
  t.equal(info.code, 1, 'cdnv2 info on a FIFO');
  t.match(info.stderr, /not a regular file/);
  const cls = cdnv2('classify', path.join(data, 'model.cnv2'), '/dev/zero', fifo);
  t.equal(cls.code, 1, 'cdnv2 classify on /dev/zero and a FIFO');
  t.match(cls.stderr, /zero: not a regular file/);
  t.match(cls.stderr, /fifo: not a regular file/);
});

t.test('allocations over what wasm can give: clean errors with exit 1 and the right code', async (t) => {
  // A 1 GiB model file (sparse): no block that large exists in wasm32.
  sparse(path.join(data, 'huge.cnv2'), shipped.subarray(0, 64), 1 << 30);
  for (const r of wasi(t, ['info', '/data/huge.cnv2'])) {
    t.equal(r.code, 1, `${r.engine}: 1 GiB model`);
    t.match(r.stderr, /too large for wasm memory/, r.engine);
  }
  t.equal(await apiCode(() => loadModelFile(path.join(data, 'huge.cnv2'))), 'size', 'JS API: 1 GiB model');
  // A 16384x16384 PGM (268 MB, sparse) decodes to 1 GiB of floats; reading it takes many bounded reads
  // (node:wasi crashed on one read of 32 MB or more, wasmtime refuses one of 128 MiB or more).
  sparse(path.join(data, 'big.pgm'), Buffer.from('P5 16384 16384 255\n'), 19 + 16384 * 16384);
  for (const r of wasi(t, ['classify', '/data/model.cnv2', '/data/big.pgm'])) {
    t.equal(r.code, 1, `${r.engine}: 268 MB PGM`);
    t.match(r.stderr, /big\.pgm: image too large for wasm memory/, `${r.engine}: read in full, refused at decode`);
  }
  // An arena between 1 and 2 GiB, allowed by the caller's limit: the input buffer alone is 1.18 GB.
  const m = readModel(shipped);
  const arena = writeModel({
    meta: [
      { key: 'name', type: 'string', value: 'big arena' },
      { key: 'input.shape', type: 'u32[]', value: Uint32Array.of(1, 16384, 18000) },
      { key: 'input.mean', type: 'f32[]', value: Float32Array.of(0) },
      { key: 'input.std', type: 'f32[]', value: Float32Array.of(1) },
    ],
    buffers: [{ channels: 1, height: 16384, width: 18000 }, { channels: 1, height: 1, width: 1 }],
    inputBuffer: 0, outputBuffer: 1, tensors: [],
    ops: [{ kind: 'global_avgpool', inBuffer: 0, inChannel: 0, channels: 1, outBuffer: 1, outChannel: 0, inAct: 0, inScale: null, inShift: null }],
  });
  t.ok(m.ops.length > 0);
  writeFileSync(path.join(data, 'arena.cnv2'), arena);
  for (const r of wasi(t, ['info', '/data/arena.cnv2', '--arena-limit', '2048'])) {
    t.equal(r.code, 1, `${r.engine}: 1.18 GB arena`);
    t.match(r.stderr, /\[arena\]/, r.engine);
  }
  t.equal(await apiCode(() => loadModel(arena, { arenaLimitBytes: 2 ** 31 })), 'arena', 'JS API: 1.18 GB arena');
});

t.test('text from a model file is printed escaped; JSON carries it exactly', async (t) => {
  const m = readModel(shipped);
  const evil = '\u001b[31mred\n0.999999 2 INJECTED';
  m.meta = m.meta.map((e) => (e.key === 'name' ? { ...e, value: `name\u001b]0;title\u0007` }
    : e.key === 'labels' ? { ...e, value: (e.value as string[]).map(() => evil) } : e));
  const file = path.join(data, 'evil.cnv2');
  writeFileSync(file, writeModel(m));
  for (const r of wasi(t, ['classify', '/data/evil.cnv2', '/data/image.pgm', '--top', '3'])) {
    t.equal(r.code, 0, r.engine);
    const lines = r.stdout.trimEnd().split('\n');
    t.equal(lines.length, 3, `${r.engine}: three prediction lines, none forged`);
    t.notOk(/[\u0000-\u0009\u000b-\u001f]/.test(r.stdout), `${r.engine}: no control characters`);
    t.match(lines[0], /^\d\.\d{6} \d \\x1b\[31mred\\x0a0\.999999 2 INJECTED$/, r.engine);
  }
  for (const r of wasi(t, ['info', '/data/evil.cnv2'])) t.match(r.stdout, /^name: name\\x1b\]0;title\\x07$/m, `${r.engine}: info`);
  const info = cdnv2('info', file);
  t.equal(info.code, 0);
  t.notOk(/[\u0000-\u0009\u000b-\u001f]/.test(info.stdout), 'cdnv2 info: no control characters');
  t.match(info.stdout, /model {4}name\\x1b\]0;title\\x07/);
  const text = cdnv2('classify', file, path.join(data, 'image.pgm'), '--top', '2', '--warmup', '0');
  t.equal(text.code, 0);
  t.equal(text.stdout.trimEnd().split('\n').length, 3, 'cdnv2 classify: a file line and two predictions');
  t.notOk(/[\u0000-\u0009\u000b-\u001f]/.test(text.stdout), 'cdnv2 classify: no control characters');
  const json = cdnv2('classify', file, path.join(data, 'image.pgm'), '--top', '2', '--json', '--warmup', '0');
  t.equal(json.code, 0);
  t.equal(JSON.parse(json.stdout)[0].top[0].label, evil, 'JSON carries the label exactly');
});

t.test('image headers are checked before decoding', async (t) => {
  // A 68-byte-ish PNG declaring 65535x1525 (pngjs would allocate 400 MB before failing on the data).
  const png = new PNG({ width: 1, height: 1 });
  const bytes = PNG.sync.write(png);
  bytes.writeUInt32BE(65535, 16); bytes.writeUInt32BE(1525, 20);
  writeFileSync(path.join(root, 'wide.png'), bytes);
  // A JPEG whose start-of-frame declares 10000x10000.
  const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
    0xff, 0xc0, 0, 11, 8, 0x27, 0x10, 0x27, 0x10, 1, 1, 0x11, 0, 0xff, 0xd9]);
  writeFileSync(path.join(root, 'big.jpg'), jpeg);
  for (const f of ['wide.png', 'big.jpg']) {
    let err: unknown;
    try { await readImageFile(path.join(root, f)); } catch (e) { err = e; }
    t.ok(err instanceof Cdnv2Error && err.code === 'input', `${f}: input error`);
    t.match((err as Error).message, /pixels, above 16384 a side/, f);
  }
});

t.test('the node WASI runner refuses paths that resolve outside its granted directories', async (t) => {
  const granted = path.join(root, 'granted'), outside = path.join(root, 'outside');
  mkdirSync(granted); mkdirSync(outside);
  writeFileSync(path.join(outside, 'model.cnv2'), shipped);
  symlinkSync(outside, path.join(granted, 'linkdir'));
  symlinkSync(path.join(outside, 'model.cnv2'), path.join(granted, 'link.cnv2'));
  for (const p of ['/data/linkdir/model.cnv2', '/data/link.cnv2']) {
    for (const r of wasi(t, ['info', p], granted)) {
      t.equal(r.code, 1, `${r.engine}: ${p}`);
      t.equal(r.stdout, '', `${r.engine}: nothing read`);
    }
  }
  // A symlink that stays inside is followed.
  symlinkSync('model.cnv2', path.join(data, 'inside.cnv2')); // relative: wasmtime refuses absolute targets
  for (const r of wasi(t, ['info', '/data/inside.cnv2'])) t.equal(r.code, 0, `${r.engine}: symlink inside the grant`);
});
