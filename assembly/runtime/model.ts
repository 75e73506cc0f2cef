// The loaded model: buffers, tensors and ops as the parser (parse.ts) leaves them for the planner and the executor.
// Each section has its own parser: sections.ts (header and directory), meta.ts, tensors.ts, graph.ts (buffers and
// ops; each op's attributes are checked by its file in ops/).

@unmanaged export class BufferInfo {
  c: i32; h: i32; w: i32;
  first: i32;   // first op using it (-1: unused)
  last: i32;    // last op using it
  offset: usize; // arena offset, set by the planner
  ptr: usize;    // absolute address, set by the planner
}

@unmanaged export class TensorInfo {
  dtype: u32; ndim: u32;
  d0: u32; d1: u32; d2: u32; d3: u32;
  count: u32;    // elements
  src: usize;    // address of the raw bytes inside the model image
  floats: usize; // f32 view (in place for f32, expanded copy for f16), 0 until needed
  ints: usize;   // i32 view of an index tensor, 0 until needed
  ownsFloats: bool;
  idxState: u8;  // index facts, computed once however many ops share the list: bit 0 hi known, 1 distinct known, 2 distinct
  idxLo: i32; idxHi: i32; // smallest and largest value
}

/** One op with every tensor resolved to a pointer (0 = absent) and its shapes copied in. */
@unmanaged export class OpInfo {
  code: u32;
  inBuf: i32; inCh: i32; cin: i32;
  outBuf: i32; outCh: i32; cout: i32;
  kernel: i32; stride: i32; pad: i32; groups: i32;
  inAct: i32; outAct: i32; accumulate: i32;
  hidden: i32;
  weight: usize; bias: usize; weight2: usize; bias2: usize;
  inIndex: usize; inScale: usize; inShift: usize; outIndex: usize;
  h: i32; w: i32; outH: i32; outW: i32;
  scratchBytes: i32;  // transient memory this op needs in the arena's scratch region
  inLo: i32; inHi: i32; outLo: i32; outHi: i32; // channel spans read and written (write-before-read proof)
  inPanel: i32;       // bytes of the panel the reader's pre-activation is computed into (0: read the input as is)
  impl: i32;          // the kernel its op file (ops/) chose at load, for ops with more than one
}

@unmanaged export class Model {
  image: usize; length: u32;                 // the model bytes (owned)
  metaOff: u32; metaSize: u32;
  grphOff: u32; grphSize: u32;
  tensOff: u32; tensSize: u32;
  dataOff: u32; dataSize: u32;
  nBuffers: i32; buffers: usize;             // BufferInfo[]
  nTensors: i32; tensors: usize;             // TensorInfo[]
  nOps: i32; ops: usize;                     // OpInfo[]
  inputBuf: i32; outputBuf: i32;
  // metadata (offsets into the image)
  nameOff: u32; nameLen: u32;
  inC: i32; inH: i32; inW: i32;
  meanOff: u32; stdOff: u32;                 // f32[inC]
  labelsOff: u32; labelCount: i32;           // first string of the labels array
  resizeNearest: bool;
  resizeCubic: bool;
  /** Official evaluation resize: shorter side to this many pixels (antialiased, as PIL), then centre crop; 0: none. */
  resizeShorter: i32;
  // planned memory
  arena: usize; arenaBytes: usize;           // activations (+ scratch at scratchOffset)
  scratchOffset: usize; scratchBytes: usize;
  macs: f64;                                 // multiply-adds of one run (pools, shuffles, gathers: 1 per element)
}

@inline export function bufferAt(m: Model, i: i32): BufferInfo {
  return changetype<BufferInfo>(m.buffers + <usize>i * offsetof<BufferInfo>());
}
@inline export function tensorAt(m: Model, i: i32): TensorInfo {
  return changetype<TensorInfo>(m.tensors + <usize>i * offsetof<TensorInfo>());
}
@inline export function opAt(m: Model, i: i32): OpInfo {
  return changetype<OpInfo>(m.ops + <usize>i * offsetof<OpInfo>());
}

export function zeroAlloc(bytes: usize): usize {
  const p = heap.alloc(bytes < 16 ? 16 : bytes);
  memory.fill(p, 0, bytes < 16 ? 16 : bytes);
  return p;
}

/** Frees everything a (possibly partly) parsed model owns, including its image. */
export function freeModel(m: Model): void {
  if (m.tensors != 0) {
    for (let i = 0; i < m.nTensors; i++) {
      const t = tensorAt(m, i);
      if (t.ownsFloats && t.floats != 0) heap.free(t.floats);
      if (t.ints != 0) heap.free(t.ints);
    }
    heap.free(m.tensors);
  }
  if (m.buffers != 0) heap.free(m.buffers);
  if (m.ops != 0) heap.free(m.ops);
  if (m.arena != 0) heap.free(m.arena);
  if (m.image != 0) heap.free(m.image);
  heap.free(changetype<usize>(m));
}

