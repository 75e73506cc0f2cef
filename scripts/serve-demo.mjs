#!/usr/bin/env node
// Serves the browser demo (demo/) with what it loads (dist/, build/, models/) on 127.0.0.1 only, with the MIME
// types browsers need (application/wasm lets WebAssembly.compileStreaming compile while the file downloads).
// Usage: node scripts/serve-demo.mjs [--port N] [--root DIR]   (port 0 picks a free one; the URL is printed)
import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import path from 'node:path';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.pgm': 'image/x-portable-graymap',
  '.ppm': 'image/x-portable-pixmap',
  '.cnv2': 'application/octet-stream',
  '.ts': 'text/plain; charset=utf-8',
  '.map': 'application/json',
};
// Only what the page needs is reachable; the rest of the tree (sources, node_modules, checkpoints) is not.
const SERVED = ['demo', 'dist', 'build', 'models'];

let opts;
try {
  opts = parseArgs({ options: { port: { type: 'string', default: '8021' }, root: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }).values;
} catch (err) {
  console.error(`serve-demo: ${err.message}`);
  process.exit(2);
}
if (opts.help) {
  console.log('usage: node scripts/serve-demo.mjs [--port N] [--root DIR]\nServes the cdnv2 browser demo on http://127.0.0.1:N/demo/ (default port 8021; 0 picks a free port).');
  process.exit(0);
}
const port = Number(opts.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`serve-demo: --port must be an integer in 0..65535, got '${opts.port}'`);
  process.exit(2);
}
const root = await realpath(path.resolve(opts.root ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..')));
try {
  await stat(path.join(root, 'dist/runtime/browser.js'));
} catch {
  console.error(`serve-demo: ${root}/dist/runtime/browser.js is missing: run \`npm run build\` first`);
  process.exit(1);
}

/** The file under root a request path names, or null: only under SERVED, no escape through `..` or symlinks. */
async function resolveFile(urlPath) {
  let rel;
  try {
    rel = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (rel.includes('\0')) return null;
  const file = path.resolve(root, '.' + rel);
  const top = path.relative(root, file).split(path.sep)[0];
  if (!SERVED.includes(top)) return null;
  try {
    let real = await realpath(file);
    if (!real.startsWith(root + path.sep)) return null;
    if ((await stat(real)).isDirectory()) real = await realpath(path.join(real, 'index.html'));
    const info = await stat(real);
    return info.isFile() ? { file: real, size: info.size } : null;
  } catch {
    return null;
  }
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  if (url.pathname === '/' || url.pathname === '/demo') {
    res.writeHead(302, { location: '/demo/' }).end();
    return;
  }
  const found = await resolveFile(url.pathname);
  if (!found) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`not found: ${url.pathname}\n`);
    return;
  }
  res.writeHead(200, {
    'content-type': MIME[path.extname(found.file).toLowerCase()] ?? 'application/octet-stream',
    'content-length': found.size,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  createReadStream(found.file).on('error', () => res.destroy()).pipe(res);
});
server.on('error', (err) => {
  console.error(`serve-demo: ${err.code === 'EADDRINUSE' ? `port ${port} is in use (try --port 0)` : err.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  console.log(`cdnv2 demo: http://127.0.0.1:${server.address().port}/demo/  (Ctrl-C stops)`);
});
