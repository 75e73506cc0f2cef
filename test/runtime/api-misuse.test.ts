// JS API misuse (issue 22): argument types and ranges are checked and every failure is a Cdnv2Error with a code,
// never a black image, a raw ENOENT or a RangeError from the engine.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { Cdnv2Error, Cdnv2Model, loadModel, type Isa } from '../../runtime/index.js';

const shipped = readFileSync(new URL('../../models/cdnv2-fmnist.cnv2', import.meta.url));

async function codeOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
    return 'ok';
  } catch (err) {
    return err instanceof Cdnv2Error ? err.code : `${(err as Error).constructor.name}: ${(err as Error).message}`;
  }
}

t.test('load options', async (t) => {
  t.equal(await codeOf(() => loadModel(shipped, { isa: 'foo' as Isa })), 'input', "isa: 'foo'");
  t.equal(await codeOf(() => loadModel('model.cnv2' as unknown as Uint8Array)), 'input', 'a path string instead of bytes');
  t.equal(await codeOf(() => loadModel(shipped, { arenaLimitBytes: -1 })), 'input', 'arenaLimitBytes -1');
  t.equal(await codeOf(() => loadModel(shipped, { maxMacs: Number.NaN })), 'input', 'maxMacs NaN');
});

t.test('image data and maxValue', async (t) => {
  const m = await loadModel(shipped);
  const image = (data: unknown, maxValue?: number) => ({ width: 2, height: 2, channels: 1, data, maxValue }) as never;
  for (const mv of [0, -1, Number.NaN, Infinity]) {
    t.equal(await codeOf(() => m.runImage(image(new Uint8Array(4).fill(9), mv))), 'input', `maxValue ${mv}`);
  }
  t.equal(await codeOf(() => m.runImage(image('abcd'))), 'input', 'string data');
  t.equal(await codeOf(() => m.runImage(image(new Int8Array(4)))), 'input', 'Int8Array data');
  t.equal(await codeOf(() => m.runImage(null as never)), 'input', 'no image');
  t.equal(await codeOf(() => m.runPnm('P5 1 1 255\n\0' as never)), 'input', 'PGM as a string');
  t.equal(await codeOf(() => m.top(new Float32Array(10), -1)), 'input', 'k = -1');
  t.equal(await codeOf(() => m.runImage(image(new Uint8Array(4).fill(9)))), 'ok', 'the same image with valid arguments runs');
  m.dispose();
  t.equal(await codeOf(() => m.run(new Float32Array(784))), 'handle', 'a disposed model');
});

t.test('an engine that cannot instantiate (out of memories) gives a Cdnv2Error, not a RangeError', async (t) => {
  // A module whose memory needs 4 GiB at instantiation: V8 refuses it with a RangeError ("Out of memory: Cannot
  // allocate Wasm memory"), as when a process has run out of instances; if it does allocate it, the missing
  // exports fail instead. Either way the caller gets a Cdnv2Error.
  const bytes = Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 5, 1, 0, 0x80, 0x80, 4, 7, 10, 1, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0]);
  const module = await WebAssembly.compile(bytes);
  t.equal(await codeOf(() => Cdnv2Model.create(module, 'simd', shipped)), 'wasm');
});
