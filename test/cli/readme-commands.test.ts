// The README's command lines stay runnable: every `cdnv2` line (sh blocks, the CLI synopsis, inline spans) names a
// real subcommand with real options and parses; npm scripts it names exist; the cheap ones run (the demo, the WASI
// command's three lines under node:wasi). The JS API snippet runs in test/package.test.ts.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import type { Command } from 'commander';

import { buildFullProgram } from '../../cli/cdnv2.js';
import { root } from '../helpers/cli.js';

const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
const scripts = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-readme-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** Fenced blocks: language and lines (comments and trailing descriptions cut). */
function blocks(): { lang: string; lines: string[] }[] {
  return [...readme.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({
    lang: m[1]!,
    lines: m[2]!.split('\n').map((l) => l.replace(/\s#\s.*$/, '').trim()).filter(Boolean),
  }));
}

/** Every `cdnv2 ...` invocation: in sh blocks (also behind `npm run cdnv2 --`), the synopsis block, inline spans. */
function cdnv2Lines(): string[] {
  const out: string[] = [];
  for (const b of blocks()) {
    if (b.lang === 'js' || b.lang === 'ts') continue;
    for (const line of b.lines) {
      const m = /^(?:npm run cdnv2 -- |npx cdnv2 |cdnv2 )(.*)$/.exec(line);
      // The synopsis block ends each line with a description after two or more spaces.
      if (m) out.push(m[1]!.split(/\s{2,}/)[0]!);
    }
  }
  for (const m of readme.matchAll(/`(?:npx )?cdnv2 ([a-z-]+ [^`]*)`/g)) out.push(m[1]!.replace(/\s+/g, ' '));
  return out;
}

const SAMPLE: Record<string, string> = {
  '<config>': 'cdnv2-fmnist', '<model.cnv2>': 'models/cdnv2-fmnist.cnv2', '<checkpointDir|model.cnv2>': 'models/cdnv2-fmnist.cnv2',
  '<checkpointDir>': 'runs/x', '<name>': 'fashion-mnist', '<image...>': 'models/samples/00-ankle-boot.png', N: '3', K: '3', FILE: 'out.json', DIR: 'out',
  'a,b': 'cdnv2-fmnist', '...': '',
};

/** A synopsis or example line as argv: placeholders get sample values, [optional] parts are kept, a|b takes a. */
function toArgv(line: string): string[] {
  // Placeholders first (they may hold brackets: <file.pth[.tar]>), then the [optional] brackets go.
  const filled = line.replace(/<[^>\s]*>/g, (p) => SAMPLE[p] ?? (p.includes('|') ? p.slice(1, -1).split('|')[0]! : p.slice(1, -1).replace(/\[.*?\]/g, '')));
  return filled.replace(/[[\]]/g, ' ').split(/\s+/).filter(Boolean).map((tok) => {
    if (SAMPLE[tok] !== undefined) return SAMPLE[tok]!;
    if (/^<[^>]*\|/.test(tok)) return tok.slice(1, -1).split('|')[0]!;
    if (!tok.startsWith('--') && tok.includes('|')) return tok.split('|')[0]!;
    return tok;
  }).filter(Boolean);
}

/** Parses argv with the real program, every action replaced by a no-op: commander's own checks only. */
async function parses(argv: string[]): Promise<string | null> {
  const program = await buildFullProgram();
  const silence = (c: Command): void => {
    c.exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
    c.commands.forEach(silence);
  };
  silence(program);
  for (const c of program.commands) c.action(() => {});
  if (!program.commands.some((c) => c.name() === argv[0])) return `no subcommand '${argv[0]}'`;
  try {
    await program.parseAsync(['node', 'cdnv2', ...argv]);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

t.test('every cdnv2 command line in the README parses as a real subcommand with real options', async (t) => {
  const lines = cdnv2Lines();
  t.ok(lines.length >= 15, `found ${lines.length} command lines`);
  for (const sub of ['arch', 'train', 'eval', 'convert', 'export-onnx', 'info', 'classify', 'bench']) {
    t.ok(lines.some((l) => l.startsWith(`${sub} `)), `the README shows ${sub}`);
  }
  for (const line of lines) {
    const argv = toArgv(line);
    t.equal(await parses(argv), null, `cdnv2 ${line}`);
  }
  // The check can fail: an unknown option, a bad choice and an unknown subcommand are caught.
  t.not(await parses(toArgv('info <model.cnv2> --verbose')), null, 'unknown option');
  t.not(await parses(toArgv('classify <model.cnv2> <image...> --engine gpu')), null, 'bad choice');
  t.not(await parses(toArgv('quantize <model.cnv2>')), null, 'unknown subcommand');
});

t.test('npm scripts the README names exist; the demo runs', async (t) => {
  const named = new Set([...readme.matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]!));
  for (const s of named) t.ok(scripts[s], `npm run ${s}`);
  t.ok(scripts.test, 'npm test');
  // `npm run demo` is the README's main job; run the script's command itself (npm only adds its banner).
  const demo = spawnSync('sh', ['-c', scripts.demo!], { cwd: root, encoding: 'utf8', timeout: 300_000 });
  t.equal(demo.status, 0, demo.stderr);
  t.equal(demo.stdout.match(/^models\/samples\/\S+\.png/gm)?.length, 8, 'the eight shipped samples');
  t.match(demo.stdout, /00-ankle-boot\.png.*\n\s+\d\.\d+\s+9\s+Ankle boot/, 'the first one is an ankle boot');
});

t.test("the WASI command's README lines run (node:wasi instead of wasmtime)", async (t) => {
  const wasi = blocks().find((b) => b.lines.some((l) => l.startsWith('wasmtime run')))!;
  // Each line without its comment; a line with `...` only names a build, it has no arguments to run.
  const lines = wasi.lines.map((l) => l.replace(/\s+#.*$/, '')).filter((l) => !l.includes('...'));
  t.same(lines.map((l) => l.split(/\s+/).slice(4, 5)[0]), ['classify', 'classify', 'info', 'bench', 'bench'], 'the five runnable lines');
  copyFileSync(path.join(root, 'models/cdnv2-fmnist.cnv2'), path.join(dir, 'model.cnv2'));
  // image.ppm: the ankle-boot sample as a binary PPM (gray repeated in R, G and B).
  const png = PNG.sync.read(readFileSync(path.join(root, 'models/samples/00-ankle-boot.png')));
  const rgb = Buffer.alloc(png.width * png.height * 3);
  for (let i = 0; i < png.width * png.height; i++) rgb.fill(png.data[4 * i]!, 3 * i, 3 * i + 3);
  writeFileSync(path.join(dir, 'image.ppm'), Buffer.concat([Buffer.from(`P6\n${png.width} ${png.height}\n255\n`), rgb]));
  const outputs = lines.map((line) => {
    const args = line.split(/\s+/).slice(2); // after `wasmtime run`
    const wasm = args.indexOf('build/cdnv2.wasm');
    return spawnSync(process.execPath, [path.join(root, 'scripts/wasi-run.mjs'), ...args.slice(0, wasm),
      path.join(root, 'build/cdnv2.wasm'), ...args.slice(wasm + 1)], { cwd: dir, encoding: 'utf8', timeout: 300_000 });
  });
  for (const [i, r] of outputs.entries()) t.equal(r.status, 0, `${lines[i]}: ${r.stderr}`);
  const top = outputs[0]!.stdout.trim().split('\n');
  t.equal(top.length, 5, 'top-5');
  t.match(top[0], /^\d\.\d+ 9 Ankle boot$/, '<score> <index> <label>');
  const logits = outputs[1]!.stdout.trim().split(/\s+/).map(Number);
  t.equal(logits.length, 10, '--logits: the ten logits');
  t.equal(logits.indexOf(Math.max(...logits)), 9, '--logits: the largest is the ankle boot');
  t.match(outputs[2]!.stdout, /cdnv2-fmnist-w/);
  t.match(outputs[3]!.stdout, /median ms: \d/);
  t.ok(outputs[4]!.stdout.split('\n').length > outputs[3]!.stdout.split('\n').length + 10, '--profile: a row per op');
});
