// The browser API (`cdnv2/browser`, dist/runtime/browser.js) and the demo page, in Debian's Chromium: the page served
// by `scripts/serve-demo.mjs` classifies the eight shipped samples, a picked file and each forced wasm build with
// the same top-5 as Node's decoder path (runtime/image.ts + runtime/index.ts), scores within 1e-5; the API takes
// ImageData, ImageBitmap, canvases, <img> and Blobs, models from bytes or a URL, compiles the wasm even when the
// server mislabels it, and fails with the same Cdnv2Error codes as Node. In CI (CI set) a missing Chromium fails.
// CDNV2_SCREENSHOT=docs/demo.png also saves the demo with a sample classified (the README's screenshot).
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import t, { type Test } from 'tap';
import type { Page } from 'playwright-core';

import { readImageFile } from '../../runtime/image.js';
import { Cdnv2Error, loadModel, loadModelFile, type Cdnv2Model, type Isa, type Prediction } from '../../runtime/index.js';
import { chromiumPresent, CHROMIUM, launchChromium, serveDemo } from '../helpers/browser.js';

const root = path.resolve(import.meta.dirname, '../..');
const modelFile = path.join(root, 'models/cdnv2-fmnist.cnv2');
const samplesDir = path.join(root, 'models/samples');
const samples = readdirSync(samplesDir).filter((f) => f.endsWith('.png')).sort();
const ISAS: Isa[] = ['relaxed', 'simd', 'scalar'];
const TOLERANCE = 1e-5;

t.test('dist/runtime/browser.js and everything it imports load in a browser: only relative imports, no node:', async (t) => {
  const entry = path.join(root, 'dist/runtime/browser.js');
  const seen = new Set<string>();
  const offenders: string[] = [];
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const m of source.matchAll(/(?:^|[;\s])(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]|^import\s*['"]([^'"]+)['"]/gm)) {
      const spec = (m[1] ?? m[2] ?? m[3])!;
      if (!spec.startsWith('./') && !spec.startsWith('../')) offenders.push(`${path.relative(root, file)} imports '${spec}'`);
      else visit(path.resolve(path.dirname(file), spec));
    }
  };
  visit(entry);
  t.same(offenders, [], 'no node: module or bare package specifier anywhere in the graph');
  t.ok(seen.size >= 2 && [...seen].some((f) => f.endsWith('engine.js')), `the graph (${seen.size} files) includes the shared engine`);
});

t.test('the demo server: 127.0.0.1 only, the MIME types browsers need, nothing outside demo/ dist/ build/ models/', async (t) => {
  const demo = await serveDemo(root);
  t.teardown(demo.stop);
  const origin = new URL(demo.url).origin;
  t.match(origin, /^http:\/\/127\.0\.0\.1:\d+$/, 'listens on the loopback address');
  const types: Record<string, RegExp> = {
    '/demo/': /^text\/html/, '/demo/demo.js': /^text\/javascript/, '/demo/demo.css': /^text\/css/,
    '/dist/runtime/browser.js': /^text\/javascript/, '/build/cdnv2-lib-relaxed.wasm': /^application\/wasm$/,
    '/models/samples/00-ankle-boot.png': /^image\/png$/, '/models/cdnv2-fmnist.cnv2': /^application\/octet-stream$/,
  };
  for (const [p, type] of Object.entries(types)) {
    const r = await fetch(origin + p);
    t.equal(r.status, 200, `${p}: 200`);
    t.match(r.headers.get('content-type'), type, `${p}: ${type.source}`);
  }
  t.equal((await fetch(origin + '/build/cdnv2-lib.wasm').then((r) => r.arrayBuffer())).byteLength,
    readFileSync(path.join(root, 'build/cdnv2-lib.wasm')).length, 'serves the whole file');
  for (const p of ['/package.json', '/runtime/browser.ts', '/node_modules/tap/package.json', '/demo/%2e%2e/package.json', '/models/..%2f..%2fetc/passwd', '/demo/%00']) {
    t.equal((await fetch(origin + p)).status, 404, `${p}: not served`);
  }
  const root302 = await fetch(origin + '/', { redirect: 'manual' });
  t.equal(root302.headers.get('location'), '/demo/', '/ redirects to the demo');
  t.equal((await fetch(origin + '/demo/', { method: 'POST' })).status, 405, 'only GET and HEAD');
  const bad = spawnSync(process.execPath, [path.join(root, 'scripts/serve-demo.mjs'), '--port', 'abc'], { encoding: 'utf8' });
  t.equal(bad.status, 2, '--port abc: usage error, exit 2');
  t.match(bad.stderr, /--port must be an integer/);
});

if (!chromiumPresent()) {
  const why = `${CHROMIUM} is missing (Debian package chromium)`;
  if (process.env.CI) t.fail(`browser test cannot run in CI: ${why}`);
  else t.skip(`browser test skipped: ${why}`);
} else {
  chromiumTests();
}

interface Row { index: number; label: string; score: number }

// Node's reference: the PNG decoder (pngjs) and the Node API, per build.
const nodeModels = new Map<Isa, Cdnv2Model>();
async function nodeTop(file: string, isa: Isa): Promise<Prediction[]> {
  let model = nodeModels.get(isa);
  if (!model) nodeModels.set(isa, model = await loadModelFile(modelFile, { isa }));
  const input = await readImageFile(file);
  if (input.kind !== 'pixels') throw new Error(`${file}: expected a PNG`);
  return model.classify(input.image, 5);
}

function sameTop(t: Test, got: Row[], want: Prediction[], what: string): void {
  t.equal(got[0]?.index, want[0]!.index, `${what}: top-1 ${want[0]!.label} as in Node`);
  t.same(got.map((p) => p.index), want.map((p) => p.index), `${what}: same top-5 classes in the same order`);
  const diff = Math.max(...want.map((p, i) => Math.abs((got[i]?.score ?? Infinity) - p.score)));
  t.ok(diff <= TOLERANCE, `${what}: scores within ${TOLERANCE} of Node's (max difference ${diff.toExponential(2)})`);
}

/** The demo's result list, with the exact scores it keeps in data-* attributes. */
async function pageRows(page: Page): Promise<Row[]> {
  return page.$$eval('#results li', (lis) => lis.map((li) => ({
    index: Number((li as HTMLElement).dataset.index), label: (li as HTMLElement).dataset.label!, score: Number((li as HTMLElement).dataset.score),
  })));
}

/** Runs `action` and waits until the demo shows the result of one more classification. */
async function nextResult(page: Page, action: () => Promise<void>): Promise<{ rows: Row[]; state: string; latencyMs: number; readMs: number }> {
  const before = Number(await page.getAttribute('#results', 'data-run'));
  await action();
  await page.waitForFunction((n) => Number(document.getElementById('results')!.dataset.run) > n, before, { timeout: 30_000 });
  const data = await page.$eval('#results', (el) => ({ ...(el as HTMLElement).dataset }));
  return { rows: await pageRows(page), state: data.state!, latencyMs: Number(data.latencyMs), readMs: Number(data.readMs) };
}

async function openDemo(page: Page, url: string): Promise<string> {
  await page.goto(url);
  await page.waitForSelector('#results[data-state=ready]', { timeout: 60_000 });
  return (await page.getAttribute('#results', 'data-isa'))!;
}

/** A PNG written with pngjs: odd sizes exercise the resize and crop, colour ones the RGB -> gray conversion. */
function writePng(file: string, width: number, height: number, colorType: 0 | 2, seed: number): void {
  const png = new PNG({ width, height, colorType, inputColorType: 6, inputHasAlpha: true });
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  for (let i = 0; i < width * height; i++) {
    const v = next();
    png.data[4 * i] = v;
    png.data[4 * i + 1] = colorType === 0 ? v : next();
    png.data[4 * i + 2] = colorType === 0 ? v : next();
    png.data[4 * i + 3] = 255;
  }
  writeFileSync(file, PNG.sync.write(png, { colorType, inputColorType: 6, inputHasAlpha: true }));
}

/** Declared synchronously (tap ends a file whose subtests all ran); the server and browser start in t.before. */
function chromiumTests(): void {
  let demo!: Awaited<ReturnType<typeof serveDemo>>;
  let browser!: Awaited<ReturnType<typeof launchChromium>>;
  let page!: Page;
  const pageErrors: string[] = [];
  t.before(async () => {
    demo = await serveDemo(root);
    browser = await launchChromium();
    page = browser.context.pages()[0] ?? await browser.context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });
  t.teardown(async () => {
    for (const m of nodeModels.values()) m.dispose();
    await browser?.close();
    demo?.stop();
  });

  t.test('the demo page classifies the eight shipped samples as Node does, with the best build Chromium has', async (t) => {
    const isa = await openDemo(page, demo.url);
    t.equal(isa, 'relaxed', 'Chromium validates the relaxed-SIMD probe, so the demo runs the relaxed build');
    t.match(await page.textContent('#isa'), /relaxed SIMD/, 'the page names the build');
    const offered = await page.$$eval('#samples button', (bs) => bs.map((b) => (b as HTMLElement).dataset.sample));
    t.same(offered, samples, 'the page offers exactly the shipped samples');
    t.equal(samples.length, 8);
    const latencies: number[] = [];
    const reads: number[] = [];
    for (const name of samples) {
      const result = await nextResult(page, () => page.click(`button[data-sample="${name}"]`));
      t.equal(result.state, 'done', `${name} classified`);
      t.equal(result.rows.length, 5, `${name}: five rows`);
      sameTop(t, result.rows, await nodeTop(path.join(samplesDir, name), isa as Isa), name);
      t.match(await page.textContent('#latency'), /^\d+\.\d\d ms$/, `${name}: latency shown`);
      latencies.push(result.latencyMs);
      reads.push(result.readMs);
    }
    const summary = (v: number[]) => { v.sort((a, b) => a - b); return `median ${((v[3]! + v[4]!) / 2).toFixed(2)} ms, min ${v[0]!.toFixed(2)}, max ${v[7]!.toFixed(2)}`; };
    t.comment(`demo, relaxed build, 8 samples: preprocessing + network ${summary(latencies)}; reading the <img> pixels ${summary(reads)}`);
    const shot = process.env.CDNV2_SCREENSHOT;
    if (shot) {
      await nextResult(page, () => page.click('button[data-sample="00-ankle-boot.png"]'));
      await page.mouse.move(0, 0);
      await page.screenshot({ path: path.resolve(root, shot) });
    }
  });

  t.test('a picked file goes through the same path as Node\'s decoder', async (t) => {
    const isa = await openDemo(page, demo.url);
    for (const name of ['04-shirt.png', '06-coat.png']) {
      const file = path.join(samplesDir, name);
      const result = await nextResult(page, () => page.setInputFiles('#file', file));
      t.equal(result.state, 'done');
      sameTop(t, result.rows, await nodeTop(file, isa as Isa), `picked ${name}`);
    }
    const bad = await nextResult(page, () => page.setInputFiles('#file', { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not an image') }));
    t.equal(bad.state, 'error', 'an undecodable file is an error');
    t.match(await page.textContent('#status'), /notes\.png: .*not a decodable image.*\(input\)/, 'the page says which file and why');
  });

  t.test('each build can be forced from the page, and each gives Node\'s numbers for that build', async (t) => {
    await openDemo(page, demo.url);
    for (const isa of ISAS) {
      await page.selectOption('#isa-select', isa);
      await page.waitForSelector(`#results[data-state=ready][data-isa=${isa}]`, { timeout: 60_000 });
      t.match(page.url(), new RegExp(`\\?isa=${isa}$`), `${isa}: the choice is kept in the URL`);
      for (const name of ['04-shirt.png', '07-shirt.png']) {
        const result = await nextResult(page, () => page.click(`button[data-sample="${name}"]`));
        sameTop(t, result.rows, await nodeTop(path.join(samplesDir, name), isa), `${isa} build, ${name}`);
      }
    }
    t.equal(await openDemo(page, `${demo.url}?isa=scalar`), 'scalar', 'a forced build in the URL is honoured on load');
  });

  t.test('cdnv2/browser classifies ImageData, ImageBitmap, canvases, <img> and Blobs as Node decodes the file', async (t) => {
    await openDemo(page, demo.url);
    const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-browser-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    // The sample at its own size, a gray and a colour picture of odd sizes (resize + crop, RGB -> luma).
    const cases = [
      { name: '01-pullover.png', file: path.join(samplesDir, '01-pullover.png') },
      { name: 'gray-45x37.png', file: path.join(dir, 'gray-45x37.png') },
      { name: 'rgb-31x52.png', file: path.join(dir, 'rgb-31x52.png') },
    ];
    writePng(cases[1]!.file, 45, 37, 0, 7);
    writePng(cases[2]!.file, 31, 52, 2, 11);
    for (const isa of ISAS) {
      for (const c of cases) {
        const png = Array.from(readFileSync(c.file));
        const got = await page.evaluate(async ({ png, isa }) => {
          const api = await import('/dist/runtime/browser.js');
          const bytes = await (await fetch('/models/cdnv2-fmnist.cnv2')).arrayBuffer();
          const fromBytes = await api.loadModel(new Uint8Array(bytes), { isa });
          const fromUrl = await api.loadModelUrl('/models/cdnv2-fmnist.cnv2', { isa });
          const blob = new Blob([new Uint8Array(png)], { type: 'image/png' });
          const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
          const canvas = Object.assign(document.createElement('canvas'), { width: bitmap.width, height: bitmap.height });
          canvas.getContext('2d')!.drawImage(bitmap, 0, 0);
          const offscreen = new OffscreenCanvas(bitmap.width, bitmap.height);
          offscreen.getContext('2d')!.drawImage(bitmap, 0, 0);
          const imageData = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
          const img = new Image();
          img.src = URL.createObjectURL(blob);
          const sources: Record<string, unknown> = { ImageData: imageData, ImageBitmap: bitmap, HTMLCanvasElement: canvas, OffscreenCanvas: offscreen, HTMLImageElement: img, Blob: blob };
          const out: Record<string, unknown> = {};
          for (const [kind, source] of Object.entries(sources)) out[kind] = await fromBytes.classify(source as Blob, 5);
          out['loadModelUrl'] = await fromUrl.classify(blob, 5);
          out['isas'] = [fromBytes.isa, fromUrl.isa];
          fromBytes.dispose();
          fromUrl.dispose();
          return out;
        }, { png, isa });
        t.same(got['isas'], [isa, isa], `${isa}: both models run the forced build`);
        const want = await nodeTop(c.file, isa);
        for (const kind of ['ImageData', 'ImageBitmap', 'HTMLCanvasElement', 'OffscreenCanvas', 'HTMLImageElement', 'Blob', 'loadModelUrl']) {
          sameTop(t, got[kind] as Row[], want, `${isa}, ${c.name}, ${kind}`);
        }
      }
    }
  });

  t.test('the wasm build compiles while streaming when served as application/wasm, and from bytes when mislabelled', async (t) => {
    const count = () => {
      const w = window as unknown as { wasmCalls: Record<string, number> };
      w.wasmCalls = { compileStreaming: 0, compile: 0 };
      for (const name of ['compileStreaming', 'compile'] as const) {
        const original = WebAssembly[name] as (...a: unknown[]) => Promise<WebAssembly.Module>;
        (WebAssembly as unknown as Record<string, unknown>)[name] = (...a: unknown[]) => { w.wasmCalls[name]!++; return original.apply(WebAssembly, a); };
      }
    };
    const fresh = await browser.context.newPage();
    t.teardown(() => fresh.close());
    await fresh.addInitScript(count);
    await openDemo(fresh, demo.url);
    t.same(await fresh.evaluate(() => (window as unknown as { wasmCalls: unknown }).wasmCalls), { compileStreaming: 1, compile: 0 }, 'correct MIME type: compileStreaming');
    await fresh.route('**/*.wasm', async (route) => {
      const response = await route.fetch();
      await route.fulfill({ response, headers: { ...response.headers(), 'content-type': 'application/octet-stream' } });
    });
    await openDemo(fresh, `${demo.url}?isa=simd`);
    t.same(await fresh.evaluate(() => (window as unknown as { wasmCalls: unknown }).wasmCalls), { compileStreaming: 0, compile: 1 }, 'wrong MIME type: compiled from the bytes');
    const result = await nextResult(fresh, () => fresh.click('button[data-sample="02-trouser.png"]'));
    sameTop(t, result.rows, await nodeTop(path.join(samplesDir, '02-trouser.png'), 'simd'), 'mislabelled wasm, 02-trouser.png');
  });

  t.test('feature detection falls back to SIMD128 without relaxed SIMD and to scalar without SIMD', async (t) => {
    // An engine without the feature: WebAssembly.validate refuses modules with a relaxed-SIMD opcode (0xfd 0x85 0x02
    // and the like) or any SIMD prefix (0xfd).
    const hide = (feature: 'relaxed' | 'simd') => {
      const validate = WebAssembly.validate.bind(WebAssembly);
      WebAssembly.validate = (bytes: BufferSource) => {
        const b = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        for (let i = 0; i + 2 < b.length; i++) {
          if (b[i] === 0xfd && (feature === 'simd' || (b[i + 2] === 0x02 && b[i + 1]! >= 0x80))) return false;
        }
        return validate(bytes);
      };
    };
    for (const [feature, expected] of [['relaxed', 'simd'], ['simd', 'scalar']] as const) {
      const fresh = await browser.context.newPage();
      t.teardown(() => fresh.close());
      await fresh.addInitScript(hide, feature);
      t.equal(await openDemo(fresh, demo.url), expected, `without ${feature}: the demo runs the ${expected} build`);
      const disabled = await fresh.$$eval('#isa-select option:disabled', (os) => os.map((o) => (o as HTMLOptionElement).value));
      t.same(disabled, feature === 'relaxed' ? ['relaxed'] : ['relaxed', 'simd'], `without ${feature}: the page disables what cannot run`);
      const forced = await fresh.evaluate(async () => {
        const api = await import('/dist/runtime/browser.js');
        try {
          await api.loadModelUrl('/models/cdnv2-fmnist.cnv2', { isa: 'relaxed' });
          return 'loaded';
        } catch (err) {
          return `${(err as { code: string }).code}: ${(err as Error).message}`;
        }
      });
      t.match(forced, /^setup: this browser cannot run the relaxed build/, `without ${feature}: forcing relaxed is a clear error`);
      const result = await nextResult(fresh, () => fresh.click('button[data-sample="03-trouser.png"]'));
      sameTop(t, result.rows, await nodeTop(path.join(samplesDir, '03-trouser.png'), expected), `without ${feature}, 03-trouser.png`);
    }
  });

  t.test('the README\'s browser snippet runs verbatim in a page, against the package layout', async (t) => {
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## In the browser'));
    const snippet = /```html\n([\s\S]*?)```/.exec(section)?.[1];
    if (!snippet) {
      t.fail('README has an html snippet under "## In the browser"');
      return;
    }
    const origin = new URL(demo.url).origin;
    const fresh = await browser.context.newPage();
    t.teardown(() => fresh.close());
    // The page sits where an app would, with the package under /node_modules/cdnv2/ (mapped to this checkout).
    await fresh.route(`${origin}/app/index.html`, (route) => route.fulfill({
      contentType: 'text/html',
      body: `<!doctype html><html><body><img src="/node_modules/cdnv2/models/samples/06-coat.png">\n${snippet}</body></html>`,
    }));
    await fresh.route(`${origin}/node_modules/cdnv2/**`, async (route) => {
      route.fulfill({ response: await route.fetch({ url: route.request().url().replace('/node_modules/cdnv2/', '/') }) });
    });
    const logged = new Promise<unknown[]>((resolve) => fresh.on('console', async (msg) => {
      if (msg.type() === 'log') resolve(await Promise.all(msg.args().map((a) => a.jsonValue())));
    }));
    const errors: string[] = [];
    fresh.on('pageerror', (err) => errors.push(err.message));
    await fresh.goto(`${origin}/app/index.html`);
    const [isa, top5] = await Promise.race([logged, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no console.log in 60 s: ${errors}`)), 60_000))]);
    t.equal(isa, 'relaxed', 'the snippet logs the build it runs');
    sameTop(t, top5 as Row[], await nodeTop(path.join(samplesDir, '06-coat.png'), 'relaxed'), 'README snippet, 06-coat.png');
    t.same(errors, [], 'no errors on the page');
  });

  t.test('every failure is a Cdnv2Error with the code Node gives', async (t) => {
    await openDemo(page, demo.url);
    // The same damaged models on both sides; the page makes its own from the served file (no large transfer).
    const damage = (shipped: Uint8Array): Record<string, Uint8Array> => {
      const corrupt = new Uint8Array(shipped);
      corrupt[corrupt.length - 100] ^= 0xff;
      return { garbage: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), truncated: shipped.slice(0, 4096), corrupt };
    };
    const nodeCode = async (bytes: Uint8Array) => {
      try {
        (await loadModel(bytes)).dispose();
        return 'loaded';
      } catch (err) {
        return err instanceof Cdnv2Error ? err.code : `not a Cdnv2Error: ${err}`;
      }
    };
    const badModels = damage(new Uint8Array(readFileSync(modelFile)));
    const got = await page.evaluate(async (damageSource) => {
      const api = await import('/dist/runtime/browser.js');
      const damage = (0, eval)(damageSource) as (b: Uint8Array) => Record<string, Uint8Array>;
      const models = damage(new Uint8Array(await (await fetch('/models/cdnv2-fmnist.cnv2')).arrayBuffer()));
      const outcome = async (p: Promise<unknown>) => {
        try {
          await p;
          return { ok: true };
        } catch (err) {
          const e = err as { name: string; code: string; message: string };
          return { name: e.name, isCdnv2Error: err instanceof api.Cdnv2Error, code: e.code, message: e.message };
        }
      };
      const out: Record<string, unknown> = {};
      for (const [name, bytes] of Object.entries(models)) out[name] = await outcome(api.loadModel(bytes));
      out['missing URL'] = await outcome(api.loadModelUrl('/models/nope.cnv2'));
      out['bad URL'] = await outcome(api.loadModelUrl('http://[::1'));
      out['aborted'] = await outcome(api.loadModelUrl('/models/cdnv2-fmnist.cnv2', { signal: AbortSignal.abort() }));
      out['unknown build'] = await outcome(api.loadModel(new Uint8Array(8), { isa: 'avx' as 'simd' }));
      out['missing wasm'] = await outcome(api.loadModelUrl('/models/cdnv2-fmnist.cnv2', { wasmBaseUrl: '/nowhere/' }));
      const model = await api.loadModelUrl('/models/cdnv2-fmnist.cnv2');
      out['not an image'] = await outcome(model.classify(new Blob(['hello'], { type: 'image/png' })));
      out['not a source'] = await outcome(model.classify(42 as unknown as Blob));
      out['empty ImageData'] = await outcome(model.classify({ width: 0, height: 0, channels: 4, data: new Uint8Array(0) }));
      out['wrong tensor'] = await outcome(model.classify(new Float32Array(3)));
      model.dispose();
      out['disposed'] = await outcome(model.classify(new Float32Array(784)));
      return out;
    }, damage.toString());
    for (const [name, bytes] of Object.entries(badModels)) {
      const code = await nodeCode(bytes);
      t.not(code, 'loaded', `${name}: Node refuses it`);
      t.match(got[name], { isCdnv2Error: true, name: 'Cdnv2Error', code }, `${name} model: Cdnv2Error '${code}' as in Node`);
    }
    const expected: Record<string, object> = {
      'missing URL': { code: 'io', message: /nope\.cnv2.*HTTP 404/ },
      'bad URL': { code: 'input', message: /model URL: not a URL/ },
      'aborted': { code: 'io', message: /cannot fetch/ },
      'unknown build': { code: 'setup', message: /unknown build 'avx'/ },
      'missing wasm': { code: 'io', message: /nowhere\/cdnv2-lib-relaxed\.wasm.*HTTP 404/ },
      'not an image': { code: 'input', message: /not a decodable image/ },
      'not a source': { code: 'input', message: /not an image/ },
      'empty ImageData': { code: 'input', message: /image size 0x0/ },
      'wrong tensor': { code: 'input', message: /784 values/ },
      'disposed': { code: 'handle', message: /disposed/ },
    };
    for (const [name, want] of Object.entries(expected)) {
      t.match(got[name], { isCdnv2Error: true, name: 'Cdnv2Error', ...want }, `${name}: Cdnv2Error '${(want as { code: string }).code}'`);
    }
    t.same(pageErrors, [], 'no uncaught errors on the page');
  });
}
