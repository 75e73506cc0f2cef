// The package as a user gets it: `npm pack`, install the tarball into a fresh project, and there run the CLI
// through npm's bin link, the README's JS API snippet verbatim, and `tsc --noEmit` on a TypeScript consumer of the
// entry points. One pack and one install (deps from npm's cache where it has them); nothing is cached in the repo.
import t from 'tap';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { root } from '../helpers/cli.js';

const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string; version: string };
const recorder = path.join(root, 'test/helpers/record-imports.mjs');
const LABEL_OF_SAMPLE = /^\d\d-(.+)\.png$/; // models/samples/03-trouser.png holds a trouser
const HEAVY = /node_modules\/(@tensorflow|vega|vega-lite|@resvg|onnx-proto|onnxruntime-node|onnxruntime-web|protobufjs)\//;

function run(cmd: string, args: string[], opts: SpawnSyncOptions & { cwd: string }): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 600_000, ...opts });
  return { code: r.status ?? -1, stdout: String(r.stdout), stderr: String(r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

/** The first fenced block of `lang` after the README heading `heading`. */
function readmeBlock(heading: string, lang: string): string {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const at = readme.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`README has no '${heading}' section`);
  const m = readme.slice(at).match(new RegExp('```' + lang + '\\n([\\s\\S]*?)```'));
  if (!m) throw new Error(`README's '${heading}' has no \`\`\`${lang} block`);
  return m[1]!;
}

const work = mkdtempSync(path.join(tmpdir(), 'cdnv2-pkg-'));
t.teardown(() => { if (!process.env.CDNV2_KEEP) rmSync(work, { recursive: true, force: true }); });
if (process.env.CDNV2_KEEP) t.comment(`kept: ${work}`);
const project = path.join(work, 'consumer');
const installed = path.join(project, 'node_modules', pkg.name);

t.test('npm pack ships the compiled code, declarations, runtime wasm builds and the shipped model', async (t) => {
  if (!existsSync(path.join(root, 'dist/cli/cdnv2.js')) || !existsSync(path.join(root, 'build/cdnv2-lib.wasm'))) {
    t.fail('run `npm run build` first (npm test does)');
    return;
  }
  // --ignore-scripts: prepack would rebuild everything; the tree is already built.
  const r = run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: root });
  t.equal(r.code, 0, r.stderr);
  const [info] = JSON.parse(r.stdout) as { filename: string; size: number; unpackedSize: number; files: { path: string }[] }[];
  const files = new Set(info!.files.map((f) => f.path));
  for (const f of ['package.json', 'README.md', 'dist/cli/cdnv2.js', 'dist/runtime/index.js', 'dist/runtime/index.d.ts',
    'dist/runtime/engine.d.ts', 'dist/runtime/browser.js', 'dist/runtime/browser.d.ts', 'build/cdnv2-lib.wasm', 'build/cdnv2-lib-relaxed.wasm', 'build/cdnv2-lib-scalar.wasm',
    'build/cdnv2.wasm', 'build/cdnv2-train.wasm', 'models/cdnv2-fmnist.cnv2', 'models/samples/00-ankle-boot.png']) {
    t.ok(files.has(f), `ships ${f}`);
  }
  // scripts/wasmtime-run.py is what `classify --engine wasmtime` runs when only the Python embedding is installed.
  const stray = [...files].filter((f) => (/^(test|assembly|scripts|runs|node_modules|build\/test|demo)\//.test(f) && f !== 'scripts/wasmtime-run.py')
    || (f.endsWith('.ts') && !f.endsWith('.d.ts')));
  t.same(stray, [], 'no sources, tests, test harness builds or runs in the tarball');
  t.comment(`tarball ${(info!.size / 1024).toFixed(0)} KiB, unpacked ${(info!.unpackedSize / 1024).toFixed(0)} KiB, ${files.size} files`);

  mkdirSync(project);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // --ignore-scripts: the optional @tensorflow/tfjs-node would download libtensorflow; nothing here needs it.
  const inst = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error',
    path.join(work, info!.filename)], { cwd: project });
  t.equal(inst.code, 0, `npm install of the tarball: ${inst.stderr.slice(-2000)}`);
  t.ok(lstatSync(path.join(project, 'node_modules/.bin/cdnv2')).isSymbolicLink(), 'npm links the bin');
  const du = run('du', ['-sk', path.join(project, 'node_modules')], { cwd: project });
  t.comment(`installed: node_modules ${(Number(du.stdout.split('\t')[0]) / 1024).toFixed(0)} MiB`);
});

t.test('the installed CLI runs through npx and the bin symlink', async (t) => {
  if (!existsSync(installed)) return t.fail('not installed (see the test above)');
  const v = run('npx', ['--no-install', 'cdnv2', '--version'], { cwd: project });
  t.equal(v.code, 0, v.stderr);
  t.equal(v.stdout.trim(), pkg.version, 'npx cdnv2 --version prints the package version');

  const samples = ['00-ankle-boot.png', '01-pullover.png',
    '02-trouser.png', '04-shirt.png', '06-coat.png'];
  const c = run('npx', ['--no-install', 'cdnv2', 'classify', 'node_modules/cdnv2/models/cdnv2-fmnist.cnv2',
    ...samples.map((s) => `node_modules/cdnv2/models/samples/${s}`), '--json', '--warmup', '0'], { cwd: project });
  t.equal(c.code, 0, c.stderr);
  const results = JSON.parse(c.stdout) as { file: string; top: { label: string }[] }[];
  t.equal(results.length, samples.length, 'one result per image');
  for (const r of results) {
    const expected = LABEL_OF_SAMPLE.exec(path.basename(r.file))![1]!.replace('-', ' ');
    t.equal(r.top[0]!.label.toLowerCase(), expected, `top-1 of ${path.basename(r.file)}`);
  }

  // A usage error through the symlinked bin exits 2, as from the sources (it used to print nothing and exit 0).
  const bad = run(path.join(project, 'node_modules/.bin/cdnv2'), ['bench', '--models', 'nope'], { cwd: project });
  t.equal(bad.code, 2, 'bench --models nope exits 2');
  t.match(bad.stderr, /unknown model 'nope'/);
  // bench writes its report (vega + resvg chart) where asked: the issue's `npx cdnv2 bench --out dir` wrote nothing.
  const bench = run('npx', ['--no-install', 'cdnv2', 'bench', '--models', 'cdnv2-fmnist', '--engines', 'cdnv2', '--runs', '2',
    '--warmup', '1', '--no-progress', '--out', 'report'], { cwd: project });
  t.equal(bench.code, 0, bench.stderr);
  t.same(existsSync(path.join(project, 'report')) ? readdirSync(path.join(project, 'report')).sort() : [],
    ['latest.json', 'latest.md', 'latest.png', 'latest.svg'], 'bench --out writes the report');
  t.match(bench.stdout, /cdnv2-fmnist/);
  const info = run(path.join(project, 'node_modules/.bin/cdnv2'), ['info', 'node_modules/cdnv2/models/cdnv2-fmnist.cnv2', '--json'], { cwd: project });
  t.equal(info.code, 0, info.stderr);
  t.equal((JSON.parse(info.stdout) as { classes: number }).classes, 10, 'info --json through the bin');
});

t.test("the README's JS API snippet runs verbatim in the installed project", async (t) => {
  if (!existsSync(installed)) return t.fail('not installed');
  writeFileSync(path.join(project, 'example.mjs'), readmeBlock('## The JS API', 'js'));
  const r = run(process.execPath, ['example.mjs'], { cwd: project });
  t.equal(r.code, 0, r.stderr);
  const [first, second] = r.stdout.trim().split('\n');
  t.match(first, /^Ankle boot 0\.\d{3}$/, 'the shipped model calls the ankle-boot sample an ankle boot');
  t.match(second, /^10 \[/, '10 logits, then the top-3 labels');
});

t.test("import 'cdnv2' loads the runtime only", async (t) => {
  if (!existsSync(installed)) return t.fail('not installed');
  const log = path.join(work, 'imports.log');
  const r = run(process.execPath, ['--import', recorder, '--input-type=module', '-e',
    "const m = await import('cdnv2'); if (typeof m.loadModelFile !== 'function') process.exit(3);"],
  { cwd: project, env: { ...process.env, CDNV2_IMPORT_LOG: log } });
  t.equal(r.code, 0, r.stderr);
  const urls = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  t.ok(urls.some((u) => u.includes('/node_modules/cdnv2/dist/runtime/index.js')), 'resolved to the package\'s dist/');
  t.same(urls.filter((u) => HEAVY.test(u) || /node_modules\/(commander|cli-progress|pngjs|jpeg-js)\//.test(u)), [],
    'no TensorFlow.js, vega, resvg, ONNX, CLI or image-decoder modules');
});

t.test('tsc --noEmit on a TypeScript consumer of the entry points', async (t) => {
  if (!existsSync(installed)) return t.fail('not installed');
  const consumer = path.join(project, 'ts');
  mkdirSync(consumer);
  writeFileSync(path.join(consumer, 'node.ts'), `import { classifyFile, Cdnv2Error, loadModelFile, type Cdnv2Model, type Prediction } from 'cdnv2';

const model: Cdnv2Model = await loadModelFile('node_modules/cdnv2/models/cdnv2-fmnist.cnv2', { isa: 'simd' });
const top: Prediction[] = await classifyFile(model, 'node_modules/cdnv2/models/samples/00-ankle-boot.png', 3);
const label: string = top[0]!.label;
const shape: [number, number, number] = model.meta.inputShape;
const err: Cdnv2Error = new Cdnv2Error('input', label + shape.join('x'));
console.log(err.code, model.run(new Float32Array(model.inputLength)).length);
// The declarations are real types, not any: each of these lines is an error, and tsc fails if one is not.
// @ts-expect-error a model path is a string, not a number
await loadModelFile(42);
// @ts-expect-error inputLength is a number
const wrong: string = model.inputLength;
console.log(wrong);
model.dispose();
`);
  const files = ['ts/node.ts'];
  // cdnv2/browser: dist/runtime/browser.js from runtime/browser.ts, with its declarations.
  t.ok(existsSync(path.join(installed, 'dist/runtime/browser.d.ts')), 'the package ships the browser entry\'s declarations');
  writeFileSync(path.join(consumer, 'browser.ts'), `import { detectIsa, loadModel, loadModelUrl, type BrowserModel, type Isa, type Prediction } from 'cdnv2/browser';

const isa: Isa = detectIsa();
const model: BrowserModel = await loadModelUrl('/models/cdnv2-fmnist.cnv2', { isa });
const fromBytes: BrowserModel = await loadModel(new Uint8Array(0));
const canvas = document.createElement('canvas');
const top: Prediction[] = await model.classify(canvas, 5);
console.log(top[0]?.label, fromBytes.meta.labels);
// @ts-expect-error the build is 'simd', 'relaxed' or 'scalar'
const wrong: Isa = 'avx';
console.log(wrong);
model.dispose();
`);
  files.push('ts/browser.ts');
  writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true,
      skipLibCheck: true, lib: ['ES2022', 'DOM'], types: ['node'], typeRoots: [path.join(root, 'node_modules/@types')] },
    files,
  }));
  const r = run(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: project });
  t.equal(r.code, 0, `tsc: ${r.stdout}${r.stderr}`);
});
