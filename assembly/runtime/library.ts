// JS API entry (build/cdnv2-lib*.wasm): no imports, handles instead of global state, several models at once.
// The host copies model bytes into memory from cdnv2_alloc, calls cdnv2_load, writes the input (or pixels to
// cdnv2_preprocess), calls cdnv2_run and reads the logits. Errors: negative return values; details from
// cdnv2_error_code / cdnv2_error_message.

import { ERR_HANDLE, ERR_INPUT, ERR_NUMERIC, errorCode, errorMessage, fail, tryAlloc } from './errors';
import { addHandle, dropHandle, loadModel, modelOf, runModel } from './engine';
import { executeOps, inputLength, inputPtr, outputLength, outputPtr } from './executor';
import { opMadds } from './ops/registry';
import { decodePnm, freePixels, preprocess } from './image';
import { bufferAt, freeModel, opAt } from './model';
import { softmax, top_k } from '../kernels/softmax';
import { peak_madd, peak_madds_per_iteration } from '../kernels/peak';

let messageBytes: ArrayBuffer = new ArrayBuffer(0);

/** 0 when the block cannot be had (over 1 GiB, or memory cannot grow): the host reports it, nothing traps. */
export function cdnv2_alloc(bytes: u32): usize {
  return tryAlloc(<usize>bytes);
}

export function cdnv2_free(ptr: usize): void {
  if (ptr != 0) heap.free(ptr);
}

/** Takes ownership of image (from cdnv2_alloc). arenaLimit in bytes, 0 = default (512 MiB). Returns a handle > 0 or -code. */
export function cdnv2_load(image: usize, length: u32, arenaLimit: u32): i32 {
  const m = loadModel(image, length, <u64>arenaLimit);
  if (m == null) return -errorCode();
  const h = addHandle(m);
  if (h == 0) { freeModel(m); return -ERR_HANDLE; }
  return h;
}

/** Multiply-adds of one run (the compute budget; pools and copies count one per element). */
export function cdnv2_macs(handle: i32): f64 {
  const m = modelOf(handle);
  return m == null ? -1 : m.macs;
}

export function cdnv2_unload(handle: i32): i32 {
  return dropHandle(handle) ? 0 : -ERR_HANDLE;
}

export function cdnv2_run(handle: i32): i32 {
  const m = modelOf(handle);
  if (m == null) { fail(ERR_HANDLE, 'invalid model handle'); return -ERR_HANDLE; }
  return runModel(m) ? 0 : -ERR_NUMERIC;
}

/** Resizes, crops, converts and normalises HWC f32 pixels in [0,1] into the model's input buffer. */
export function cdnv2_preprocess(handle: i32, pixels: usize, width: i32, height: i32, channels: i32): i32 {
  const m = modelOf(handle);
  if (m == null) { fail(ERR_HANDLE, 'invalid model handle'); return -ERR_HANDLE; }
  return preprocess(m, pixels, width, height, channels, inputPtr(m)) ? 0 : -ERR_INPUT;
}

/** Decodes a binary PGM/PPM file image (len bytes at ptr) and preprocesses it into the model input. */
export function cdnv2_preprocess_pnm(handle: i32, ptr: usize, len: u32): i32 {
  const m = modelOf(handle);
  if (m == null) { fail(ERR_HANDLE, 'invalid model handle'); return -ERR_HANDLE; }
  const px = decodePnm(ptr, len);
  if (px == null) return -ERR_INPUT;
  const ok = preprocess(m, px.data, px.width, px.height, px.channels, inputPtr(m));
  freePixels(px);
  return ok ? 0 : -ERR_INPUT;
}

/** Writes softmax(logits) to dst (outputLength floats). */
export function cdnv2_probabilities(handle: i32, dst: usize): i32 {
  const m = modelOf(handle);
  if (m == null) { fail(ERR_HANDLE, 'invalid model handle'); return -ERR_HANDLE; }
  softmax(outputPtr(m), outputLength(m), dst);
  return 0;
}

/** Writes the indices of the k largest values of src (n floats) to dst (i32), best first. */
export function cdnv2_top_k(src: usize, n: i32, k: i32, dst: usize): i32 {
  if (n <= 0 || k <= 0 || k > n) return -ERR_INPUT;
  top_k(src, n, k, dst);
  return 0;
}

export function cdnv2_input_ptr(handle: i32): usize { const m = modelOf(handle); return m == null ? 0 : inputPtr(m); }
export function cdnv2_input_length(handle: i32): i32 { const m = modelOf(handle); return m == null ? -ERR_HANDLE : inputLength(m); }
export function cdnv2_output_ptr(handle: i32): usize { const m = modelOf(handle); return m == null ? 0 : outputPtr(m); }
export function cdnv2_output_length(handle: i32): i32 { const m = modelOf(handle); return m == null ? -ERR_HANDLE : outputLength(m); }
export function cdnv2_arena_bytes(handle: i32): i32 { const m = modelOf(handle); return m == null ? -ERR_HANDLE : <i32>m.arenaBytes; }

/** Address and length (floats) of buffer i after a run, for debugging and tests; planned memory is reused, so
 *  only buffers still live at the end (or not overlapped since) hold their final values. */
export function cdnv2_buffer_ptr(handle: i32, i: i32): usize {
  const m = modelOf(handle);
  if (m == null || i < 0 || i >= m.nBuffers) return 0;
  return bufferAt(m, i).ptr;
}
export function cdnv2_buffer_length(handle: i32, i: i32): i32 {
  const m = modelOf(handle);
  if (m == null || i < 0 || i >= m.nBuffers) return -ERR_HANDLE;
  const b = bufferAt(m, i);
  return b.c * b.h * b.w;
}

export function cdnv2_error_code(): i32 { return errorCode(); }

/** UTF-8 bytes of the last error message; length from cdnv2_error_message_length. */
export function cdnv2_error_message(): usize {
  messageBytes = String.UTF8.encode(errorMessage());
  return changetype<usize>(messageBytes);
}
export function cdnv2_error_message_length(): i32 { return messageBytes.byteLength; }

/** Register-only multiply-add loop for measuring the SIMD peak in the same engine (see bench/). */
export function cdnv2_peak_madd(iterations: i32): f32 { return peak_madd(iterations); }
export function cdnv2_peak_madds_per_iteration(): i32 { return peak_madds_per_iteration(); }

/** 1 when this build uses SIMD128, 2 with relaxed SIMD, 0 for the scalar build. */
export function cdnv2_isa(): i32 { return ASC_FEATURE_RELAXED_SIMD ? 2 : (ASC_FEATURE_SIMD ? 1 : 0); }

// Per-op profile support (the JS API times each op from the host: this build has no imports, hence no clock).

export function cdnv2_op_count(handle: i32): i32 { const m = modelOf(handle); return m == null ? -ERR_HANDLE : m.nOps; }

/** Runs ops first..end-1 only, on the arena as the previous ops left it (no logits check). */
export function cdnv2_run_ops(handle: i32, first: i32, end: i32): i32 {
  const m = modelOf(handle);
  if (m == null || first < 0 || end > m.nOps || first > end) { fail(ERR_HANDLE, 'invalid model handle or op range'); return -ERR_HANDLE; }
  executeOps(m, first, end);
  return 0;
}

/** Writes op i's description to dst: i32 code, cin, h, w, cout, outH, outW, groups, kernel, stride; f64 madds at +40. */
export function cdnv2_op_info(handle: i32, i: i32, dst: usize): i32 {
  const m = modelOf(handle);
  if (m == null || i < 0 || i >= m.nOps) { fail(ERR_HANDLE, 'invalid model handle or op index'); return -ERR_HANDLE; }
  const op = opAt(m, i);
  store<i32>(dst, <i32>op.code); store<i32>(dst, op.cin, 4); store<i32>(dst, op.h, 8); store<i32>(dst, op.w, 12);
  store<i32>(dst, op.cout, 16); store<i32>(dst, op.outH, 20); store<i32>(dst, op.outW, 24);
  store<i32>(dst, op.groups > 1 ? op.groups : 1, 28); store<i32>(dst, op.kernel, 32); store<i32>(dst, op.stride, 36);
  store<f64>(dst, opMadds(op), 40);
  return 0;
}
