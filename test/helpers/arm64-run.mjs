// Plain-JS runner of the wasm library (no TypeScript, no dependencies), so the same file runs under the x64 Node
// and under an arm64 Node in qemu-aarch64-static:
//   node arm64-run.mjs <cdnv2-lib*.wasm> <model.cnv2> <input.f32>...
// Prints one JSON line: { arch, logits: number[][] } (logits of each input, CHW float32 files).
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';

const [wasmFile, modelFile, ...inputs] = process.argv.slice(2);
if (!wasmFile || !modelFile || inputs.length === 0) {
  process.stderr.write('usage: arm64-run.mjs <lib.wasm> <model.cnv2> <input.f32>...\n');
  process.exit(2);
}
// Node 20 needs the flag for relaxed SIMD; Node 22 has it on and warns about the unknown flag.
if (wasmFile.includes('relaxed') && Number(process.versions.node.split('.')[0]) < 22) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const { instance } = await WebAssembly.instantiate(readFileSync(wasmFile), {});
const ex = instance.exports;
const fail = (what) => {
  const msg = new TextDecoder().decode(new Uint8Array(ex.memory.buffer, ex.cdnv2_error_message(), ex.cdnv2_error_message_length()));
  process.stderr.write(`${what} failed: code ${ex.cdnv2_error_code()}: ${msg}\n`);
  process.exit(1);
};
const bytes = readFileSync(modelFile);
const ptr = ex.cdnv2_alloc(bytes.length);
new Uint8Array(ex.memory.buffer, ptr, bytes.length).set(bytes);
const handle = ex.cdnv2_load(ptr, bytes.length, 0);
if (handle <= 0) fail('load');
const n = ex.cdnv2_input_length(handle);
const logits = [];
for (const file of inputs) {
  const buf = readFileSync(file);
  const x = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  if (x.length !== n) { process.stderr.write(`${file}: ${x.length} values, the model takes ${n}\n`); process.exit(1); }
  new Float32Array(ex.memory.buffer, ex.cdnv2_input_ptr(handle), n).set(x);
  if (ex.cdnv2_run(handle) < 0) fail('run');
  logits.push(Array.from(new Float32Array(ex.memory.buffer, ex.cdnv2_output_ptr(handle), ex.cdnv2_output_length(handle))));
}
process.stdout.write(`${JSON.stringify({ arch: process.arch, isa: ex.cdnv2_isa(), logits })}\n`);
