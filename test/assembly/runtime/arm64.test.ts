// The same .wasm builds and model under an arm64 Node (qemu-aarch64-static) give the x64 results: identical top-5
// and logits within 1e-5, for the SIMD128 and relaxed-SIMD builds (and the scalar one). In CI (CI set) a missing
// qemu or arm64 Node fails the test; elsewhere it is skipped with the reason.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { getConfig } from '../../../base/arch/configs.js';
import { condense } from '../../../converter/condense.js';
import { writeModel } from '../../../base/cnv2/format.js';
import { randomNetworkParams } from '../../../converter/random.js';
import { wasmPath } from '../../../runtime/index.js';
import { rng } from '../../../testkit/models.js';
import { TINY_A } from '../../../testkit/tiny-configs.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const harness = path.join(root, 'test/helpers/arm64-run.mjs');
const inCi = Boolean(process.env.CI);
const TOL = 1e-5;

function unavailable(reason: string): void {
  if (inCi) t.fail(`ARM64 test cannot run in CI: ${reason}`);
  else t.skip(`ARM64 test skipped outside CI: ${reason}`);
}

function top5(logits: number[]): number[] {
  return logits.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 5).map((e) => e[1]);
}

const qemu = spawnSync('qemu-aarch64-static', ['--version'], { encoding: 'utf8' });
const fetched = qemu.status === 0 ? spawnSync(process.execPath, [path.join(root, 'scripts/arm64-node.mjs')], { encoding: 'utf8', timeout: 600_000 }) : null;

if (qemu.status !== 0) {
  unavailable('qemu-aarch64-static is not installed (Debian package qemu-user-static)');
} else if (!fetched || fetched.status !== 0) {
  unavailable(`no arm64 Node: ${fetched?.stderr.trim() || fetched?.error?.message}`);
} else {
  const armNode = fetched.stdout.trim();
  const dir = mkdtempSync(path.join(tmpdir(), 'cdnv2-arm64-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  const models = [
    { name: 'cdnv2-fmnist', bytes: writeModel(condense(randomNetworkParams(getConfig('cdnv2-fmnist'), 1), { weights: 'f32' })) },
    { name: 'tiny-a (f16)', bytes: writeModel(condense(randomNetworkParams(TINY_A, 2), { weights: 'f16' })) },
  ];

  const run = (cmd: string, args: string[]): { arch: string; logits: number[][] } => {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000 });
    if (r.status !== 0) throw new Error(`${path.basename(cmd)} exited ${r.status}: ${r.stderr.trim() || r.error?.message}`);
    return JSON.parse(r.stdout) as { arch: string; logits: number[][] };
  };

  models.forEach((m, mi) => {
    t.test(m.name, async (t) => {
      const modelFile = path.join(dir, `m${mi}.cnv2`);
      writeFileSync(modelFile, m.bytes);
      const { channels, height, width } = (await import('../../../base/cnv2/format.js')).readModel(m.bytes).buffers[0]!;
      const n = channels * height * width;
      const r = rng(100 + mi);
      const inputs = [
        Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37)),
        Float32Array.from({ length: n }, () => r() * 4 - 2),
      ].map((x, i) => {
        const f = path.join(dir, `m${mi}-in${i}.f32`);
        writeFileSync(f, new Uint8Array(x.buffer));
        return f;
      });
      for (const isa of ['simd', 'relaxed', 'scalar'] as const) {
        const wasm = wasmPath('lib', isa);
        const x64 = run(process.execPath, [harness, wasm, modelFile, ...inputs]);
        const arm = run('qemu-aarch64-static', ['-L', '/usr/aarch64-linux-gnu', armNode, harness, wasm, modelFile, ...inputs]);
        t.equal(arm.arch, 'arm64', `${isa}: ran on the arm64 Node`);
        t.equal(arm.logits.length, inputs.length);
        arm.logits.forEach((al, i) => {
          const xl = x64.logits[i]!;
          t.same(top5(al), top5(xl), `${isa} input ${i}: same top-5`);
          const scale = Math.max(1, ...xl.map(Math.abs));
          const diff = Math.max(...al.map((v, j) => Math.abs(v - xl[j]!)));
          t.ok(diff <= TOL * scale, `${isa} input ${i}: logits within ${TOL} (max diff ${diff.toExponential(2)})`);
        });
      }
    });
  });
}
