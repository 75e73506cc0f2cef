// The wasmtime runner the other wasmtime tests stand on (scripts/wasmtime-run.py, or the CLI when on PATH): the
// module's exit status passes through, a trap is reported with exit 134, argv reaches the guest, a
// precompiled module runs like the original, and `batch` reports each of many runs as its own run would.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { wasmPath } from '../../runtime/index.js';
import { runWasmtime, runWasmtimeBatch, wasmtimeOrSkip } from '../helpers/wasmtime.js';

// (module (func (export "_start") unreachable)), written out byte by byte.
const TRAPPING = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
  0x03, 0x02, 0x01, 0x00, // one function of type 0
  0x07, 0x0a, 0x01, 0x06, 0x5f, 0x73, 0x74, 0x61, 0x72, 0x74, 0x00, 0x00, // export "_start"
  0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b, // body: unreachable
]);

const w = wasmtimeOrSkip(t);
if (w) {
  const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-wasmtime-run-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  t.test('exit status of the module passes through', async (t) => {
    const usage = runWasmtime(w, wasmPath('command', 'simd'), ['no-such-command']);
    t.equal(usage.code, 2, 'usage error: 2');
    t.match(usage.stderr, /unknown command no-such-command/, 'guest argv arrives; guest stderr is inherited');
    const missing = runWasmtime(w, wasmPath('command', 'simd'), ['info', '/nowhere/model.cnv2'], { dirs: [`${dir}::/d`] });
    t.equal(missing.code, 1, 'missing model: 1');
    const help = runWasmtime(w, wasmPath('command', 'simd'), ['help']);
    t.equal(help.code, 0, 'help: 0');
    t.match(help.stdout, /^usage: cdnv2\.wasm/m, 'guest stdout is inherited');
  });

  t.test('a trap exits 134 with a message', async (t) => {
    const file = path.join(dir, 'trap.wasm');
    writeFileSync(file, TRAPPING);
    const r = runWasmtime(w, file, []);
    t.equal(r.code, 134);
    t.match(r.stderr, /unreachable|trap/i);
  });

  t.test('a precompiled module runs like the original', async (t) => {
    const out = path.join(dir, 'cdnv2.cwasm');
    const { command, args } = w.compileCommand(wasmPath('command', 'simd'), out);
    const c = spawnSync(command, args, { encoding: 'utf8', timeout: 300_000 });
    t.equal(c.status, 0, `compile: ${c.stderr}`);
    t.not(readFileSync(out).subarray(0, 4).toString('latin1'), '\0asm', 'the output is native code, not wasm');
    const help = runWasmtime(w, out, ['help'], { precompiled: true });
    t.equal(help.code, 0);
    t.match(help.stdout, /^usage: cdnv2\.wasm/m);
    const refused = runWasmtime(w, out, ['help']);
    t.not(refused.code, 0, 'a precompiled module needs the explicit option');
  });

  t.test('batch: each run reported as a run of its own (code, stdout, stderr), in order; a trap is one run\'s 134', async (t) => {
    writeFileSync(path.join(dir, 'not-a-model.cnv2'), 'hello');
    const lists = [['help'], ['no-such-command'], ['info', '/d/not-a-model.cnv2'], ['help']];
    const runs = await runWasmtimeBatch(w, wasmPath('command', 'simd'), lists, { dirs: [`${dir}::/d`] });
    t.same(runs.map((r) => r.code), [0, 2, 1, 0]);
    t.match(runs[0]!.stdout, /^usage: cdnv2\.wasm/m);
    t.equal(runs[0]!.stderr, '');
    t.match(runs[1]!.stderr, /unknown command no-such-command/);
    t.equal(runs[1]!.stdout, '', 'no output of the run before');
    t.match(runs[2]!.stderr, /not-a-model\.cnv2: invalid model \[truncated\]/);
    t.equal(runs[3]!.stdout, runs[0]!.stdout, 'the same run gives the same output later in the batch');
    for (const [i, args] of lists.entries()) {
      const single = runWasmtime(w, wasmPath('command', 'simd'), args, { dirs: [`${dir}::/d`] });
      t.same(runs[i], { code: single.code, stdout: single.stdout, stderr: single.stderr }, `${args.join(' ')}: as a run of its own`);
    }
    const trapping = path.join(dir, 'trap.wasm');
    writeFileSync(trapping, TRAPPING);
    const traps = await runWasmtimeBatch(w, trapping, [[], []]);
    t.same(traps.map((r) => r.code), [134, 134], 'every run traps, and the batch goes on after a trap');
    t.match(traps[1]!.stderr, /unreachable|trap/i);
  });
}
