// Hostile .cnv2 files that are well formed in every field and pass every checksum (issue 22): each is built with
// the project's own writer (validation off where the file is meant to be refused) or by editing a valid file's
// table and re-assembling it with correct CRCs. Sizes are parameters, so cost tests can compare two of them.
import { writeModel, readModel } from '../../base/cnv2/format.js';
import type { BufferShape, MetaEntry, Model, Op, Tensor } from '../../base/cnv2/model.js';
import { assemble, setU32, splitSections, u32 } from './cnv2-bytes.js';

function meta(input: BufferShape, name = 'hostile'): MetaEntry[] {
  return [
    { key: 'name', type: 'string', value: name },
    { key: 'input.shape', type: 'u32[]', value: Uint32Array.from([input.channels, input.height, input.width]) },
    { key: 'input.mean', type: 'f32[]', value: new Float32Array(input.channels).fill(0.5) },
    { key: 'input.std', type: 'f32[]', value: new Float32Array(input.channels).fill(0.25) },
  ];
}

const one: BufferShape = { channels: 1, height: 1, width: 1 };

function fc(inBuffer: number, outBuffer: number, outChannel = 0, weight = 0): Op {
  return { kind: 'fc', inBuffer, inChannel: 0, cin: 1, outBuffer, outChannel, cout: 1, outAct: 0, weight, bias: null };
}

function model(buffers: BufferShape[], ops: Op[], tensors: Tensor[], outputBuffer: number): Model {
  return { meta: meta(buffers[0]!), buffers, inputBuffer: 0, outputBuffer, ops, tensors };
}

const unitWeight = (): Tensor => ({ dtype: 'f32', shape: [1, 1], data: Float32Array.of(1) });

/**
 * k buffers of 1x1x1 whose lifetimes all overlap: ops 0..k-1 fill buffer i+1 from the input, ops k..2k-1 copy
 * them into the output's k channels. Valid (every channel written before it is read).
 */
export function overlappingLifetimes(k: number): Uint8Array {
  const buffers = [one, ...Array.from({ length: k }, () => one), { channels: k, height: 1, width: 1 }];
  const ops: Op[] = [];
  for (let i = 1; i <= k; i++) ops.push(fc(0, i));
  for (let i = 1; i <= k; i++) ops.push(fc(i, k + 1, i - 1));
  return writeModel(model(buffers, ops, [unitWeight()], k + 1), { validate: false });
}

/** A chain of k FC ops through k + 1 buffers of 1x1x1. Valid. */
export function chain(k: number): Uint8Array {
  const buffers = Array.from({ length: k + 1 }, () => one);
  const ops = Array.from({ length: k }, (_, i) => fc(i, i + 1));
  return writeModel(model(buffers, ops, [unitWeight()], k), { validate: false });
}

/** A small valid model, a 65536-value rice list (8 KB), and `copies` more table entries over the same bytes. */
export function aliasedRice(copies: number): Uint8Array {
  const values = Uint32Array.from({ length: 65536 }, (_, i) => i);
  const base = writeModel(model([one, one], [fc(0, 1)], [unitWeight(), { dtype: 'rice', shape: [65536], data: values }], 1));
  return duplicateLastTensor(base, copies);
}

/** Appends `copies` copies of the last tensor record (same offset and length) to TENS. */
export function duplicateLastTensor(file: Uint8Array, copies: number): Uint8Array {
  return assemble(splitSections(file).map((s) => {
    if (s.tag !== 'TENS') return s;
    const n = u32(s.body, 0);
    const body = new Uint8Array(s.body.length + copies * 32);
    body.set(s.body);
    const last = s.body.subarray(4 + (n - 1) * 32, 4 + n * 32);
    for (let c = 0; c < copies; c++) body.set(last, s.body.length + c * 32);
    setU32(body, 0, n + copies);
    return { tag: s.tag, body };
  }));
}

/**
 * `ops` convolutions that each accumulate `entries` outputs into one channel through the same rice outIndex
 * (all zeros): a loader that checks the list per op does ops x entries work. Valid.
 */
export function sharedIndexList(ops: number, entries: number): Uint8Array {
  const tensors: Tensor[] = [
    unitWeight(),
    { dtype: 'f16', shape: [entries, 1, 1, 1], data: new Uint16Array(entries).fill(0x3c00) },
    { dtype: 'rice', shape: [entries], data: new Uint32Array(entries) },
  ];
  const list: Op[] = [fc(0, 1)];
  for (let i = 0; i < ops; i++) {
    list.push({
      kind: 'conv2d', inBuffer: 0, inChannel: 0, cin: 1, outBuffer: 1, outChannel: 0, cout: entries, kernel: 1, stride: 1,
      pad: 0, groups: 1, inAct: 0, outAct: 0, accumulate: 1, weight: 1, bias: null, inIndex: null, inScale: null, inShift: null, outIndex: 2,
    });
  }
  return writeModel(model([one, one], list, tensors, 1), { validate: false });
}

/**
 * The given model plus two 1x1 buffers and two weightless ops (about 150 bytes): the first copies last run's
 * logits (kept in P) into the new output Q, the last saves this run's logits into P. Without a write-before-read
 * rule it classifies each image as the previous one.
 */
export function previousRunOutput(file: Uint8Array): Uint8Array {
  const m = readModel(file);
  const out = m.outputBuffer;
  const classes = m.buffers[out]!.channels;
  const p = m.buffers.length, q = p + 1;
  m.buffers.push({ channels: classes, height: 1, width: 1 }, { channels: classes, height: 1, width: 1 });
  const shuffle = (inBuffer: number, outBuffer: number): Op =>
    ({ kind: 'channel_shuffle', inBuffer, inChannel: 0, channels: classes, outBuffer, outChannel: 0, groups: 1 });
  m.ops = [shuffle(p, q), ...m.ops, shuffle(out, p)];
  m.outputBuffer = q;
  return writeModel(m, { validate: false });
}

/** One 1x1 convolution that accumulates into the output buffer, which nothing wrote before. */
export function accumulateIntoUnwritten(): Uint8Array {
  const weight: Tensor = { dtype: 'f32', shape: [2, 1, 1, 1], data: Float32Array.of(1, -1) };
  const op: Op = {
    kind: 'conv2d', inBuffer: 0, inChannel: 0, cin: 1, outBuffer: 1, outChannel: 0, cout: 2, kernel: 1, stride: 1, pad: 0,
    groups: 1, inAct: 0, outAct: 0, accumulate: 1, weight: 0, bias: null, inIndex: null, inScale: null, inShift: null, outIndex: null,
  };
  return writeModel(model([one, { channels: 2, height: 1, width: 1 }], [op], [weight], 1), { validate: false });
}

/** An FC writes channel 0 of a two-channel output; channel 1 is never written. */
export function outputPartlyWritten(): Uint8Array {
  return writeModel(model([one, { channels: 2, height: 1, width: 1 }], [fc(0, 1)], [unitWeight()], 1), { validate: false });
}
