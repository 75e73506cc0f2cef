// The WASI command for ARM boards must stay within 64 KiB (README, project standard): growth is paid for elsewhere.
import t from 'tap';
import { statSync } from 'node:fs';
import { wasmPath } from '../../../runtime/index.js';

t.test('build/cdnv2.wasm is at most 65536 bytes', async (t) => {
  const bytes = statSync(wasmPath('command', 'simd')).size;
  t.ok(wasmPath('command', 'simd').endsWith('build/cdnv2.wasm'), 'the shipped command');
  t.ok(bytes <= 65536, `${bytes} bytes (limit 65536)`);
});
