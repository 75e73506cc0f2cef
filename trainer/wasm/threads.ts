// A second thread for the training kernels: a worker instantiates the same module on the same shared memory and
// runs one half of a kernel's range while the calling thread runs the other. Kernels are pure functions over
// pointers, so two instances never share state other than the tensors they are given.
import { Worker } from 'node:worker_threads';

// The worker is plain CommonJS, evaluated from a string, so it runs the same under tsx and from dist/.
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, control, names } = workerData;
const instance = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error('abort'); } } });
const fns = names.map((n) => instance.exports[n]);
const state = new Int32Array(control, 0, 4);
const args = new Float64Array(control, 16, 28);
for (;;) {
  Atomics.wait(state, 0, 0);
  if (Atomics.load(state, 0) === 2) break;
  let status = 1;
  try { fns[state[1]](...args.subarray(0, state[2])); } catch (e) { status = 2; }
  Atomics.store(state, 0, 0);
  Atomics.store(state, 3, status);
  Atomics.notify(state, 3);
}
`;

const IDLE = 0, RUN = 1, EXIT = 2;

export class HelperThread {
  private readonly worker: Worker;
  private readonly state: Int32Array;
  private readonly args: Float64Array;
  private readonly index: Map<string, number>;

  constructor(module: WebAssembly.Module, memory: WebAssembly.Memory, names: string[]) {
    const control = new SharedArrayBuffer(16 + 28 * 8);
    this.state = new Int32Array(control, 0, 4);
    this.args = new Float64Array(control, 16, 28);
    this.index = new Map(names.map((n, i) => [n, i]));
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory, control, names } });
    this.worker.unref();
  }

  /** Starts fn(...args) on the helper thread; finish() waits for it. */
  start(fn: string, args: number[]): void {
    const i = this.index.get(fn);
    if (i === undefined) throw new Error(`unknown training kernel ${fn}`);
    this.args.set(args);
    this.state[1] = i;
    this.state[2] = args.length;
    Atomics.store(this.state, 3, 0);
    Atomics.store(this.state, 0, RUN);
    Atomics.notify(this.state, 0);
  }

  finish(): void {
    // A kernel never runs for minutes; a helper that stops answering is a bug worth a clear error, not a hang.
    while (Atomics.load(this.state, 3) === 0) {
      if (Atomics.wait(this.state, 3, 0, 120_000) === 'timed-out') throw new Error('training kernel thread did not answer in 120 s');
    }
    if (Atomics.load(this.state, 3) === 2) throw new Error('training kernel failed on the helper thread');
    Atomics.store(this.state, 0, IDLE);
  }

  terminate(): void {
    Atomics.store(this.state, 0, EXIT);
    Atomics.notify(this.state, 0);
    void this.worker.terminate();
  }
}
