// Debian's Chromium driven by playwright-core, and the demo server (scripts/serve-demo.mjs) as a user starts it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

export function chromiumPresent(): boolean {
  return existsSync(CHROMIUM);
}

/** A headless Chromium with a fresh profile directory, removed on close. */
export async function launchChromium(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const profile = mkdtempSync(path.join(tmpdir(), 'cdnv2-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1100, height: 760 },
    });
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Starts `node scripts/serve-demo.mjs --port 0` and resolves with the demo URL it prints. */
export function serveDemo(root: string): Promise<{ url: string; server: ChildProcess; stop: () => void }> {
  const server = spawn(process.execPath, [path.join(root, 'scripts/serve-demo.mjs'), '--port', '0'], {
    cwd: root, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stop = () => { if (server.exitCode === null) server.kill(); };
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => { stop(); reject(new Error(`serve-demo printed no URL in 30 s: ${out}${err}`)); }, 30_000);
    server.stderr!.on('data', (d: Buffer) => { err += d; });
    server.stdout!.on('data', (d: Buffer) => {
      out += d;
      const url = /http:\/\/127\.0\.0\.1:\d+\/demo\//.exec(out)?.[0];
      if (url) {
        clearTimeout(timer);
        resolve({ url, server, stop });
      }
    });
    server.on('exit', (code) => { clearTimeout(timer); reject(new Error(`serve-demo exited with ${code}: ${err}`)); });
  });
}
