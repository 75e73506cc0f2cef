// A second thread for the training kernels: a worker instantiates the same module on the same shared memory and
// runs one half of a kernel's range while the calling thread runs the other. Kernels are pure functions over
// pointers, so two instances never share state other than the tensors they are given.
//
// Hand-off through a small shared control block, by job number: the caller publishes job n (function, arguments),
// the worker runs every job whose number it has not done yet and then publishes "done n". Waking up is only a hint
// to re-check the numbers, so a notify that arrives late (the caller was preempted between publishing a job and
// notifying, and the worker had already run it) can neither run a job twice nor mark the next one done unrun.
import { Worker } from 'node:worker_threads';

/** Int32 slots of the control block. */
const REQUESTED = 0, FN = 1, ARGC = 2, DONE = 3, STATUS = 4;
const INT_SLOTS = 8, MAX_ARGS = 28;
const EXIT = -1;
const OK = 1, FAILED = 2;

// The worker is plain CommonJS, evaluated from a string, so it runs the same under tsx and from dist/.
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, control, names } = workerData;
const instance = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error('abort'); } } });
const fns = names.map((n) => instance.exports[n]);
const state = new Int32Array(control, 0, ${INT_SLOTS});
const args = new Float64Array(control, ${INT_SLOTS * 4}, ${MAX_ARGS});
let done = 0;
for (;;) {
  let job;
  while ((job = Atomics.load(state, ${REQUESTED})) === done) Atomics.wait(state, ${REQUESTED}, done);
  if (job === ${EXIT}) break;
  let status = ${OK};
  try { fns[state[${FN}]](...args.subarray(0, state[${ARGC}])); } catch (e) { status = ${FAILED}; }
  done = job;
  Atomics.store(state, ${STATUS}, status);
  Atomics.store(state, ${DONE}, job);
  Atomics.notify(state, ${DONE});
}
`;

export class HelperThread {
  private readonly worker: Worker;
  private readonly state: Int32Array;
  private readonly args: Float64Array;
  private readonly index: Map<string, number>;
  private job = 0;
  /** The shared control block (tests poke it to check that stray wake-ups are harmless). */
  readonly control: SharedArrayBuffer;

  constructor(module: WebAssembly.Module, memory: WebAssembly.Memory, names: string[]) {
    this.control = new SharedArrayBuffer(INT_SLOTS * 4 + MAX_ARGS * 8);
    this.state = new Int32Array(this.control, 0, INT_SLOTS);
    this.args = new Float64Array(this.control, INT_SLOTS * 4, MAX_ARGS);
    this.index = new Map(names.map((n, i) => [n, i]));
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory, control: this.control, names } });
    this.worker.unref();
  }

  /** Starts fn(...args) on the helper thread; finish() waits for it. */
  start(fn: string, args: number[]): void {
    const i = this.index.get(fn);
    if (i === undefined) throw new Error(`unknown training kernel ${fn}`);
    if (args.length > MAX_ARGS) throw new Error(`training kernel ${fn}: ${args.length} arguments, at most ${MAX_ARGS}`);
    this.args.set(args);
    this.state[FN] = i;
    this.state[ARGC] = args.length;
    this.job = this.job === 0x7fffffff ? 1 : this.job + 1;
    Atomics.store(this.state, REQUESTED, this.job); // publishes FN, ARGC and the arguments with it
    Atomics.notify(this.state, REQUESTED);
  }

  finish(): void {
    // A kernel never runs for minutes; a helper that stops answering is a bug worth a clear error, not a hang.
    for (;;) {
      const done = Atomics.load(this.state, DONE);
      if (done === this.job) break;
      if (Atomics.wait(this.state, DONE, done, 120_000) === 'timed-out') throw new Error('training kernel thread did not answer in 120 s');
    }
    if (Atomics.load(this.state, STATUS) === FAILED) throw new Error('training kernel failed on the helper thread');
  }

  terminate(): void {
    Atomics.store(this.state, REQUESTED, EXIT);
    Atomics.notify(this.state, REQUESTED);
    void this.worker.terminate();
  }
}
