// The compiled CLI as npm installs it: run through a symlink (node_modules/.bin/cdnv2, a global bin) it behaves
// exactly as `node dist/cli/cdnv2.js`; and each subcommand loads only the libraries it needs.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { root } from '../helpers/cli.js';

const entry = path.join(root, 'dist/cli/cdnv2.js');
const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-entry-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const model = path.join(root, 'models/cdnv2-fmnist.cnv2');
const sample = path.join(root, 'models/samples/02-trouser.png');

// Two levels of links, as a global install has (prefix/bin/cdnv2 -> lib/node_modules/cdnv2/dist/cli/cdnv2.js).
mkdirSync(path.join(dir, 'bin'));
mkdirSync(path.join(dir, 'lib'));
symlinkSync(path.join(root, 'dist'), path.join(dir, 'lib', 'dist'));
symlinkSync(path.join(dir, 'lib/dist/cli/cdnv2.js'), path.join(dir, 'bin', 'cdnv2'));
const link = path.join(dir, 'bin', 'cdnv2');

function node(args: string[], env: NodeJS.ProcessEnv = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', timeout: 300_000, env: { ...process.env, ...env } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

t.test('through a symlinked bin the CLI does exactly what the file does', async (t) => {
  if (!existsSync(entry)) return t.fail('run `npm run build` first');
  const cases: string[][] = [
    ['--version'],
    ['--help'],
    ['info', model],
    ['classify', model, sample, '--top', '2', '--json', '--warmup', '0'],
    ['bench', '--models', 'nope'],
    ['info'],
    ['frobnicate'],
  ];
  for (const args of cases) {
    const direct = node([entry, ...args]);
    const linked = node([link, ...args]);
    t.equal(linked.code, direct.code, `exit code of ${args.join(' ')}`);
    // Latency differs between two runs; everything else is the same.
    const unTimed = (s: string): string => s.replace(/"ms":[\d.e-]+/g, '"ms":0');
    t.equal(unTimed(linked.stdout), unTimed(direct.stdout), `stdout of ${args.join(' ')}`);
    t.equal(linked.stderr, direct.stderr, `stderr of ${args.join(' ')}`);
  }
  const v = node([link, '--version']);
  t.equal(v.stdout.trim(), (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version, 'prints the version');
  t.equal(node([link, 'frobnicate']).code, 2, 'an unknown subcommand is a usage error through the link too');
  const c = node([link, 'classify', model, sample, '--top', '1', '--json', '--warmup', '0']);
  t.equal((JSON.parse(c.stdout) as { top: { label: string }[] }[])[0]!.top[0]!.label, 'Trouser', 'classifies through the link');
});

const HEAVY = /node_modules\/(@tensorflow|vega|vega-lite|@resvg|onnx-proto|protobufjs|onnxruntime-node|onnxruntime-web)\//;

function loaded(args: string[]): { code: number; urls: string[]; stderr: string } {
  const log = path.join(dir, `imports-${Math.random().toString(36).slice(2)}.log`);
  const r = node(['--import', path.join(root, 'test/helpers/record-imports.mjs'), entry, ...args], { CDNV2_IMPORT_LOG: log });
  return { code: r.code, urls: existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [], stderr: r.stderr };
}

t.test('each subcommand loads only what it needs', async (t) => {
  for (const args of [['--help'], ['info', model], ['classify', model, sample, '--warmup', '0'], ['bench', '--help'], ['train', '--help'],
    ['arch', 'cdnv2-fmnist', '-o', path.join(dir, 'a.cnv2')]]) {
    const r = loaded(args);
    t.equal(r.code, 0, r.stderr);
    t.same(r.urls.filter((u) => HEAVY.test(u)), [], `${args[0]}: no TensorFlow.js, vega, resvg or ONNX code`);
  }
  // The check sees what a command does load: export-onnx needs onnx-proto.
  const onnx = loaded(['export-onnx', model, '-o', path.join(dir, 'm.onnx')]);
  t.equal(onnx.code, 0, onnx.stderr);
  t.ok(onnx.urls.some((u) => /node_modules\/onnx-proto\//.test(u)), 'export-onnx loads onnx-proto');
  t.notOk(onnx.urls.some((u) => /node_modules\/@tensorflow\//.test(u)), 'but not TensorFlow.js');
});
