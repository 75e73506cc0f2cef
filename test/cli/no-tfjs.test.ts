// `cdnv2 convert`, `info` and `classify` start without TensorFlow.js (seconds of start-up, and a dependency a
// board-side user should not need): the real CLI runs with the module recorder (test/helpers/record-imports.mjs) and
// no module it resolves may come from a @tensorflow package. The recorder is checked on a process that loads TensorFlow.js.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { randomNetworkParams } from '../../converter/random.js';
import { tinyConfig } from '../../trainer/tiny.js';
import { writeTinyCheckpoint } from '../helpers/checkpoint.js';
import { root } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-no-tfjs-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const recorder = path.join(root, 'test/helpers/record-imports.mjs');

/** Runs node with the module recorder; returns the exit code, stderr and the modules it loaded. */
function recorded(name: string, args: string[]): { code: number | null; stderr: string; modules: string[] } {
  const log = path.join(dir, `${name}.modules`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', recorder, ...args], {
    cwd: root, encoding: 'utf8', timeout: 120_000, env: { ...process.env, CDNV2_IMPORT_LOG: log },
  });
  return { code: r.status, stderr: r.stderr, modules: readFileSync(log, 'utf8').split('\n').filter(Boolean) };
}

const tfModules = (modules: string[]): string[] => modules.filter((m) => m.includes('/node_modules/@tensorflow/'));
const cli = path.join(root, 'cli/cdnv2.ts');
const model = path.join(root, 'models/cdnv2-fmnist.cnv2');

t.test('the recorder sees TensorFlow.js when it is loaded', async (t) => {
  const r = recorded('control', ['--input-type=module', '-e', "await import('@tensorflow/tfjs');"]);
  t.equal(r.code, 0, r.stderr);
  t.ok(tfModules(r.modules).length > 0, 'TensorFlow.js modules recorded');
});

t.test('info loads no TensorFlow.js', async (t) => {
  const r = recorded('info', [cli, 'info', model]);
  t.equal(r.code, 0, r.stderr);
  t.ok(r.modules.some((m) => m.includes('/base/cnv2/format.')), 'the recorder saw the CLI\'s own modules');
  t.same(tfModules(r.modules), []);
});

t.test('classify loads no TensorFlow.js', async (t) => {
  const r = recorded('classify', [cli, 'classify', model, path.join(root, 'models/samples/00-ankle-boot.png')]);
  t.equal(r.code, 0, r.stderr);
  t.ok(r.modules.some((m) => m.includes('/runtime/engine.')), 'the recorder saw the runtime');
  t.same(tfModules(r.modules), []);
});

t.test('convert loads no TensorFlow.js', async (t) => {
  const cfg = tinyConfig();
  const ckpt = writeTinyCheckpoint(path.join(dir, 'run'), cfg, randomNetworkParams(cfg, 5), cfg.condenseFactor - 1);
  const r = recorded('convert', [cli, 'convert', ckpt, '-o', path.join(dir, 'tiny.cnv2')]);
  t.equal(r.code, 0, r.stderr);
  t.ok(r.modules.some((m) => m.includes('/trainer/checkpoint.')), 'the recorder saw the checkpoint reader');
  t.same(tfModules(r.modules), []);
});
