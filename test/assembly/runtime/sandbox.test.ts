// The WASI command's sandbox footprint (docs/sandboxing.md), under node:wasi with every WASI call recorded: it
// imports no call that could create, delete, rename or resize files; opens files read-only, without create or
// truncate flags; writes only to stdout and stderr; reads only inside the directories granted with --dir; and
// leaves those directories exactly as they were after classify, info and bench.
import t from 'tap';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WASI } from 'node:wasi';
import { condense } from '../../../converter/condense.js';
import { randomNetworkParams } from '../../../converter/random.js';
import { writeModel } from '../../../base/cnv2/format.js';
import { enableRelaxedSimd, wasmPath, type Isa } from '../../../runtime/index.js';
import { TINY_A } from '../../../testkit/tiny-configs.js';

const RIGHT_FD_READ = 1n << 1n;
const RIGHT_FD_WRITE = 1n << 6n;
const FDFLAG_APPEND = 1;
// Calls that could change the file system; none may even be imported.
const MUTATING = ['path_create_directory', 'path_unlink_file', 'path_remove_directory', 'path_rename', 'path_symlink',
  'path_link', 'path_filestat_set_times', 'fd_filestat_set_size', 'fd_filestat_set_times', 'fd_allocate', 'fd_pwrite',
  'fd_renumber', 'sock_accept', 'sock_send', 'sock_recv', 'sock_shutdown'];

const root = mkdtempSync(path.join(tmpdir(), 'cdnv2-sandbox-'));
const data = path.join(root, 'data');
const secret = path.join(root, 'secret');
mkdirSync(data); mkdirSync(secret);
const model = writeModel(condense(randomNetworkParams(TINY_A, 51), { weights: 'f32' }));
writeFileSync(path.join(data, 'model.cnv2'), model);
writeFileSync(path.join(secret, 'model.cnv2'), model);
writeFileSync(path.join(data, 'image.ppm'), Buffer.concat([Buffer.from('P6\n12 10\n255\n'), Buffer.alloc(360, 77)]));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

interface Call { name: string; args: unknown[] }

/** Runs the command in-process with --dir=<data>::/data, recording every WASI call it makes. */
async function run(isa: Isa, args: string[]): Promise<{ code: number; stdout: string; stderr: string; calls: Call[]; opens: { path: string; oflags: number; rights: bigint; fdflags: number }[] }> {
  if (isa === 'relaxed') enableRelaxedSimd();
  const module = await WebAssembly.compile(readFileSync(wasmPath('command', isa)));
  const outFile = path.join(root, `out-${process.pid}`), errFile = path.join(root, `err-${process.pid}`);
  const out = openSync(outFile, 'w'), err = openSync(errFile, 'w');
  const wasi = new WASI({ version: 'preview1', args: ['cdnv2.wasm', ...args], env: {}, preopens: { '/data': data }, stdout: out, stderr: err, returnOnExit: true });
  const real = (wasi.getImportObject() as Record<string, unknown>).wasi_snapshot_preview1 as Record<string, (...a: unknown[]) => unknown>;
  const calls: Call[] = [];
  const opens: { path: string; oflags: number; rights: bigint; fdflags: number }[] = [];
  let memory: WebAssembly.Memory | null = null;
  const recorded: Record<string, (...a: unknown[]) => unknown> = {};
  for (const [name, fn] of Object.entries(real)) {
    recorded[name] = (...a: unknown[]) => {
      calls.push({ name, args: a });
      if (name === 'path_open' && memory) {
        const p = new TextDecoder().decode(new Uint8Array(memory.buffer, a[2] as number, a[3] as number));
        opens.push({ path: p, oflags: a[4] as number, rights: BigInt(a[5] as bigint), fdflags: a[7] as number });
      }
      return fn(...a);
    };
  }
  const instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: recorded });
  memory = instance.exports.memory as WebAssembly.Memory;
  let code: number;
  try {
    code = wasi.start(instance);
  } finally {
    closeSync(out); closeSync(err);
  }
  return { code, stdout: readFileSync(outFile, 'utf8'), stderr: readFileSync(errFile, 'utf8'), calls, opens };
}

function snapshot(dir: string): string {
  return readdirSync(dir).sort().map((f) => { const s = statSync(path.join(dir, f)); return `${f}:${s.size}:${s.mtimeMs}`; }).join('\n');
}

t.test('imports no call that can change the file system', async (t) => {
  for (const isa of ['simd', 'scalar', 'relaxed'] as Isa[]) {
    if (isa === 'relaxed') enableRelaxedSimd();
    const imports = WebAssembly.Module.imports(await WebAssembly.compile(readFileSync(wasmPath('command', isa))));
    const names = imports.map((i) => i.name);
    t.same(imports.filter((i) => i.module !== 'wasi_snapshot_preview1'), [], `${isa}: only wasi_snapshot_preview1`);
    t.same(names.filter((n) => MUTATING.includes(n)), [], `${isa}: imports ${names.join(', ')}`);
  }
});

t.test('classify, info and bench read only, write only stdout/stderr, change nothing', async (t) => {
  const before = snapshot(data);
  for (const [isa, args] of [
    ['simd', ['classify', '/data/model.cnv2', '/data/image.ppm']],
    ['scalar', ['info', '/data/model.cnv2']],
    ['relaxed', ['bench', '/data/model.cnv2', '--runs', '3']],
  ] as [Isa, string[]][]) {
    const r = await run(isa, args);
    t.equal(r.code, 0, `${args[0]}: exit 0 (${r.stderr})`);
    t.ok(r.stdout.length > 0, `${args[0]}: printed its result`);
    t.ok(r.opens.length >= 1, `${args[0]}: opened ${r.opens.map((o) => o.path).join(', ')}`);
    for (const o of r.opens) {
      t.equal(o.oflags, 0, `${args[0]}: ${o.path} opened without create/truncate/exclusive/directory flags`);
      t.equal(o.rights & RIGHT_FD_WRITE, 0n, `${args[0]}: ${o.path} without write rights`);
      t.equal(o.rights & RIGHT_FD_READ, RIGHT_FD_READ, `${args[0]}: ${o.path} for reading`);
      t.equal(o.fdflags & FDFLAG_APPEND, 0, `${args[0]}: no append`);
    }
    const writes = r.calls.filter((c) => c.name === 'fd_write').map((c) => c.args[0] as number);
    t.ok(writes.length > 0 && writes.every((fd) => fd === 1 || fd === 2), `${args[0]}: fd_write only to stdout/stderr`);
    t.same(r.calls.filter((c) => MUTATING.includes(c.name)), [], `${args[0]}: no mutating call`);
  }
  t.equal(snapshot(data), before, 'the granted directory is unchanged');
});

t.test('paths outside the granted directories are refused', async (t) => {
  const outside = await run('simd', ['info', path.join(secret, 'model.cnv2')]);
  t.equal(outside.code, 1);
  t.match(outside.stderr, /not inside a directory the host granted/);
  t.same(outside.opens, [], 'nothing was even opened');
  const escape = await run('simd', ['info', '/data/../secret/model.cnv2']);
  t.equal(escape.code, 1, '.. out of the preopen is refused by the host');
  t.match(escape.stderr, /\/data\/\.\.\/secret\/model\.cnv2: permission denied/);
  const relative = await run('simd', ['classify', '/data/model.cnv2', 'image.ppm']);
  t.equal(relative.code, 1, 'a relative path with no "." preopen');
  t.match(relative.stderr, /image\.ppm: not inside a directory the host granted/);
  const dirAsModel = await run('simd', ['info', '/data']);
  t.equal(dirAsModel.code, 1, 'a directory is not a model');
  t.match(dirAsModel.stderr, /not a regular file/);
});
