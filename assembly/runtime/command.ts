// WASI preview1 command (build/cdnv2.wasm): `wasmtime run --dir=. build/cdnv2.wasm classify model.cnv2 image.ppm`.
// Subcommands: classify, info, bench, help. Exit codes: 0 ok, 1 failure (file, model or image), 2 usage.
// Reads only the files named on the command line, through the directories the host preopened; writes nothing
// but stdout/stderr.

import {
  args_get, args_sizes_get, clock_time_get, clockid, fd_close, fd_filestat_get, fd_prestat_dir_name, fd_prestat_get,
  fd_read, fd_write, filestat, filetype, lookupflags, path_filestat_get, path_open, prestat, proc_exit, rights,
} from '@assemblyscript/wasi-shim/assembly/bindings/wasi_snapshot_preview1';
import { ERR_INPUT, errorMessage, errorName, errorCode, fail, tryAlloc } from './errors';
import { loadModel, runModel } from './engine';
import { executeOps, inputLength, inputPtr, outputLength, outputPtr } from './executor';
import { opMadds } from './ops/registry';
import { decodePnm, freePixels, preprocess } from './image';
import { Model, freeModel, opAt } from './model';
import { labelOf, modelName } from './meta';
import { OP_CONV2D, opName } from './format';
import { softmax, top_k } from '../kernels/softmax';
import { dec } from './dec';

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;
const CHUNK: u32 = 1 << 24; // bytes per fd_read: hosts differ in what one call may move (wasmtime: < 128 MiB)

const USAGE = `usage: cdnv2.wasm <command> <model.cnv2> [options]
  classify <model> <image...> [--top K] [--logits]  top-K per image: <score> <index> <label>
	(binary PGM/PPM, or .f32/.raw/.bin CHW tensors); --logits: the logits, a line per image
  info <model>	name, shapes, ops, multiply-adds, arena
  bench <model> [--runs N] [--warmup N] [--profile]	latency on a fixed input (ms); --profile: per op
  help
options: --arena-limit MIB (default 512), --max-macs N
exit: 0 ok, 1 failure, 2 usage
`;

// Direct WASI calls rather than the shim's process/console objects: those pull in error-string tables
// that would take a tenth of the module's size budget.
function writeFd(fd: u32, s: string): void {
  const bytes = String.UTF8.encode(s);
  const iov = memory.data(16);
  const written = memory.data(8);
  let off: usize = 0;
  const len = <usize>bytes.byteLength;
  while (off < len) {
    store<usize>(iov, changetype<usize>(bytes) + off);
    store<usize>(iov + sizeof<usize>(), len - off);
    if (fd_write(fd, iov, 1, written) != 0) return;
    const n = load<usize>(written);
    if (n == 0) return;
    off += n;
  }
}
function out(s: string): void { writeFd(1, s); }

/** Text from a model file, printable: control characters (and backslashes) as \xHH, so none reaches a terminal or forges a line. */
const HEX = '0123456789abcdef';
function clean(s: string): string {
  let r = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 32 || c == 92 || (c >= 127 && c < 160)) r += '\\x' + HEX.charAt(c >> 4) + HEX.charAt(c & 15);
    else r += String.fromCharCode(c);
  }
  return r;
}
function err(s: string): void { writeFd(2, s); }

function nowNs(): u64 {
  const t = memory.data(8);
  return clock_time_get(clockid.MONOTONIC, 1000, t) == 0 ? load<u64>(t) : 0;
}

function readArgs(): string[] {
  const sizes = memory.data(8);
  const result = new Array<string>();
  if (args_sizes_get(sizes, sizes + 4) != 0) return result;
  const count = load<u32>(sizes), bufSize = load<u32>(sizes + 4);
  const ptrs = heap.alloc(<usize>count * sizeof<usize>() + 4);
  const buf = heap.alloc(<usize>bufSize + 1);
  if (args_get(ptrs, buf) == 0) {
    for (let i: u32 = 0; i < count; i++) {
      const p = load<usize>(ptrs + <usize>i * sizeof<usize>());
      let n: usize = 0;
      while (p + n < buf + bufSize && load<u8>(p + n) != 0) n++;
      result.push(String.UTF8.decodeUnsafe(p, n));
    }
  }
  heap.free(ptrs);
  heap.free(buf);
  return result;
}

/** Sorts n f64 values in place (shell sort: small, no closures). */
function sortF64(p: usize, n: i32): void {
  for (let gap = n >> 1; gap > 0; gap >>= 1) {
    for (let i = gap; i < n; i++) {
      const v = load<f64>(p + (<usize>i << 3));
      let j = i;
      while (j >= gap && load<f64>(p + (<usize>(j - gap) << 3)) > v) {
        store<f64>(p + (<usize>j << 3), load<f64>(p + (<usize>(j - gap) << 3)));
        j -= gap;
      }
      store<f64>(p + (<usize>j << 3), v);
    }
  }
}

function usageError(message: string): i32 {
  err('cdnv2: ' + message + '\n' + USAGE);
  return EXIT_USAGE;
}

// ---------------------------------------------------------------------------------------------------------
// Files through WASI preopens

let fileLength: u32 = 0;
let fileError: string = '';

function startsWith(s: string, prefix: string): bool {
  return s.length >= prefix.length && s.substring(0, prefix.length) == prefix;
}

/** Finds the preopened directory for path; stores the path relative to it in relPath. */
let relPath: string = '';
function preopenFor(path: string): i32 {
  let best: i32 = -1;
  let bestLen: i32 = -1;
  const info = memory.data(16);
  for (let fd: u32 = 3; fd < 64; fd++) {
    if (fd_prestat_get(fd, changetype<prestat>(info)) != 0) break;
    const nameLen = <i32>load<usize>(info + sizeof<usize>());
    if (nameLen > 4096) continue;
    const buf = heap.alloc(<usize>nameLen + 1);
    if (fd_prestat_dir_name(fd, buf, <usize>nameLen) != 0) { heap.free(buf); continue; }
    let name = String.UTF8.decodeUnsafe(buf, <usize>nameLen);
    heap.free(buf);
    // Some hosts report a trailing NUL or slash.
    while (name.length > 1 && (name.endsWith('/') || name.endsWith('\0'))) name = name.substring(0, name.length - 1);
    let rel: string = '';
    let match = false;
    if (name == '.' || name == './') {
      if (!startsWith(path, '/')) { match = true; rel = startsWith(path, './') ? path.substring(2) : path; }
    } else if (name == '/') {
      if (startsWith(path, '/')) { match = true; rel = path.substring(1); }
    } else if (path == name) {
      match = true; rel = '.';
    } else if (startsWith(path, name + '/')) {
      match = true; rel = path.substring(name.length + 1);
    } else if (!startsWith(path, '/') && !startsWith(name, '/') && startsWith(path, name + '/')) {
      match = true; rel = path.substring(name.length + 1);
    }
    if (match && name.length > bestLen) { best = <i32>fd; bestLen = name.length; relPath = rel; }
  }
  return best;
}

/** A plain reason for a failed path_open (WASI errno values), instead of the bare number. */
function openFailure(e: u16): string {
  if (e == 44) return 'no such file';
  if (e == 54) return 'a part of the path is not a directory';
  if (e == 31) return 'is a directory';
  if (e == 2 || e == 63 || e == 76) return 'permission denied';
  return 'cannot open (WASI errno ' + dec(e) + ')';
}

/**
 * Reads a whole regular file into a heap block (caller frees). Returns 0 and sets fileError on failure. The type
 * is checked before opening (opening a FIFO for reading blocks; devices report size 0), and reads go in chunks.
 */
function readFile(path: string): usize {
  const dir = preopenFor(path);
  if (dir < 0) { fileError = path + ': not inside a directory the host granted'; return 0; }
  const rel = String.UTF8.encode(relPath);
  const st = changetype<filestat>(memory.data(64));
  const e = path_filestat_get(<u32>dir, lookupflags.SYMLINK_FOLLOW, changetype<usize>(rel), <usize>rel.byteLength, st);
  if (e == 0 && st.filetype != filetype.REGULAR_FILE) { fileError = path + ': not a regular file'; return 0; }
  const fdOut = memory.data(8);
  const e2 = e != 0 ? e : path_open(<u32>dir, lookupflags.SYMLINK_FOLLOW, changetype<usize>(rel), <usize>rel.byteLength, 0,
    rights.FD_READ | rights.FD_FILESTAT_GET, 0, 0, fdOut);
  if (e2 != 0) { fileError = path + ': ' + openFailure(e2); return 0; }
  const fd = load<u32>(fdOut);
  // The type again on the open file, in case the path changed in between.
  if (fd_filestat_get(fd, st) != 0 || st.filetype != filetype.REGULAR_FILE) { fd_close(fd); fileError = path + ': not a regular file'; return 0; }
  const buf = st.size < 0xffffffff ? tryAlloc(<usize>st.size) : 0;
  if (buf == 0) { fd_close(fd); fileError = path + ': ' + dec(st.size) + ' bytes, too large for wasm memory'; return 0; }
  const size = <u32>st.size;
  const iov = memory.data(16);
  const nread = memory.data(8);
  let got: u32 = 0;
  while (got < size) {
    const want = size - got;
    store<usize>(iov, buf + got);
    store<usize>(iov + sizeof<usize>(), <usize>(want < CHUNK ? want : CHUNK));
    if (fd_read(fd, iov, 1, nread) != 0) { fd_close(fd); heap.free(buf); fileError = path + ': read error'; return 0; }
    const n = <u32>load<usize>(nread);
    if (n == 0) break;
    got += n;
  }
  fd_close(fd);
  fileLength = got;
  return buf;
}

// ---------------------------------------------------------------------------------------------------------

function loadModelFile(path: string, limit: u64, maxMacs: f64): Model | null {
  const bytes = readFile(path);
  if (bytes == 0) { err('cdnv2: ' + fileError + '\n'); return null; }
  const m = loadModel(bytes, fileLength, limit, maxMacs);
  if (m == null) err('cdnv2: ' + path + ': invalid model [' + errorName(errorCode()) + ']: ' + errorMessage() + '\n');
  return m;
}

function endsWith(s: string, suffix: string): bool { return s.length >= suffix.length && s.substring(s.length - suffix.length) == suffix; }

/** Fills the model input from an image or raw tensor file. */
function loadInput(m: Model, path: string): bool {
  const bytes = readFile(path);
  if (bytes == 0) return fail(ERR_INPUT, fileError);
  const len = fileLength;
  let ok: bool;
  if (endsWith(path, '.f32') || endsWith(path, '.raw') || endsWith(path, '.bin')) {
    const n = inputLength(m);
    if (<u64>len != <u64>n * 4) {
      ok = fail(ERR_INPUT, path + ': raw tensor of the wrong length');
    } else {
      ok = true;
      for (let i = 0; i < n; i++) {
        if (!isFinite(load<f32>(bytes + <usize>i * 4))) { ok = fail(ERR_INPUT, path + ': non-finite value'); break; }
      }
      if (ok) memory.copy(inputPtr(m), bytes, <usize>len);
    }
  } else {
    const px = decodePnm(bytes, len);
    if (px == null) {
      ok = fail(ERR_INPUT, path + ': ' + errorMessage());
    } else {
      ok = preprocess(m, px.data, px.width, px.height, px.channels, inputPtr(m));
      if (!ok) fail(ERR_INPUT, path + ': ' + errorMessage()); // name the file, as every other input error does
      freePixels(px);
    }
  }
  heap.free(bytes);
  return ok;
}

function fixed(v: f64, digits: i32): string {
  // Prints v with `digits` decimals (toFixed is not in AssemblyScript's standard library).
  let scale: f64 = 1;
  for (let i = 0; i < digits; i++) scale *= 10;
  const neg = v < 0;
  const r = <u64>Math.round(Math.abs(v) * scale);
  const whole = r / <u64>scale;
  let frac = dec((r % <u64>scale));
  while (frac.length < digits) frac = '0' + frac;
  return (neg ? '-' : '') + dec(whole) + (digits > 0 ? '.' + frac : '');
}

function parseIntArg(s: string): f64 {
  if (s.length == 0 || s.length > 15) return -1;
  let v: f64 = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + (c - 48);
  }
  return v;
}

/** v with 9 significant digits, `d.dddddddde[-]x`: scaled by tens in f64, so exact to far below f32 precision. */
function sci(v: f64): string {
  let a = Math.abs(v), e = 0;
  if (a != 0) {
    while (a >= 10) { a /= 10; e++; }
    while (a < 1) { a *= 10; e--; }
    if (a >= 9.999999995) { a = 1; e++; }
  }
  return (v < 0 ? '-' : '') + fixed(a, 8) + 'e' + dec(e);
}

function classify(m: Model, images: string[], top: i32, logits: bool): i32 {
  const n = outputLength(m);
  const k = top < n ? top : n;
  const probs = heap.alloc(<usize>n * 4);
  const idx = heap.alloc(<usize>k * 4);
  let status = EXIT_OK;
  for (let f = 0; f < images.length; f++) {
    if (!loadInput(m, unchecked(images[f]))) {
      err('cdnv2: ' + errorMessage() + '\n');
      status = EXIT_FAILURE;
      continue;
    }
    if (!runModel(m)) {
      err('cdnv2: ' + unchecked(images[f]) + ': ' + errorMessage() + '\n');
      status = EXIT_FAILURE;
      continue;
    }
    // No __collect() here: the minimal runtime's collector does not see locals (argv, images) as roots. The few
    // label strings per image stay allocated until the command exits.
    if (images.length > 1) out('# ' + unchecked(images[f]) + '\n');
    if (logits) {
      let line = '';
      for (let i = 0; i < n; i++) line += (i > 0 ? ' ' : '') + sci(<f64>load<f32>(outputPtr(m) + <usize>i * 4));
      out(line + '\n');
      continue;
    }
    softmax(outputPtr(m), n, probs);
    top_k(probs, n, k, idx);
    for (let i = 0; i < k; i++) {
      const c = load<i32>(idx + <usize>i * 4);
      out(fixed(<f64>load<f32>(probs + <usize>c * 4), 6) + ' ' + dec(c) + ' ' + clean(labelOf(m, c)) + '\n');
    }
  }
  heap.free(probs);
  heap.free(idx);
  return status;
}

function info(m: Model): i32 {
  out('name: ' + clean(modelName(m)) + '\n');
  out('input: ' + dec(m.inC) + 'x' + dec(m.inH) + 'x' + dec(m.inW) + '\n');
  out('classes: ' + dec(m.labelCount) + '\n');
  out('ops: ' + dec(m.nOps) + '\n');
  out('buffers: ' + dec(m.nBuffers) + '\n');
  out('tensors: ' + dec(m.nTensors) + '\n');
  out('arena bytes: ' + dec(m.arenaBytes) + '\n');
  out('multiply-adds: ' + dec((<u64>m.macs)) + '\n');
  let counts = new Array<i32>(8);
  for (let i = 0; i < m.nOps; i++) counts[<i32>opAt(m, i).code]++;
  for (let c = 1; c < 8; c++) if (counts[c] > 0) out('  ' + opName(<u32>c) + ': ' + dec(counts[c]) + '\n');
  return EXIT_OK;
}

/** s right-aligned in width columns, then a space. */
function pad(s: string, width: i32): string {
  while (s.length < width) s = ' ' + s;
  return s + ' ';
}

function dims(c: i32, h: i32, w: i32): string { return dec(c) + 'x' + dec(h) + 'x' + dec(w); }

/** Times each op alone (WASI monotonic clock around it), `runs` times, and prints one line per op. */
function profile(m: Model, runs: i32): void {
  const nOps = m.nOps;
  const times = heap.alloc(<usize>nOps * <usize>runs << 3);
  for (let r = 0; r < runs; r++) {
    fillInput(m);
    for (let i = 0; i < nOps; i++) {
      const t0 = nowNs();
      executeOps(m, i, i + 1);
      store<f64>(times + ((<usize>i * <usize>runs + <usize>r) << 3), <f64>(nowNs() - t0) / 1e6);
    }
  }
  let total: f64 = 0;
  for (let i = 0; i < nOps; i++) {
    const p = times + (<usize>i * <usize>runs << 3);
    sortF64(p, runs);
    total += load<f64>(p + (<usize>(runs >> 1) << 3));
  }
  out('  op kind             input      output groups       madds median_ms  share Gmadd/s\n');
  for (let i = 0; i < nOps; i++) {
    const op = opAt(m, i);
    const ms = load<f64>(times + ((<usize>i * <usize>runs + <usize>(runs >> 1)) << 3));
    const madds = opMadds(op);
    let kind = opName(op.code);
    if (op.code == OP_CONV2D) kind = 'conv' + dec(op.kernel) + 'x' + dec(op.kernel) + (op.stride > 1 ? '/s' + dec(op.stride) : '');
    while (kind.length < 11) kind += ' ';
    out(pad(dec(i), 4) + kind + pad(dims(op.cin, op.h, op.w), 11) + pad(dims(op.cout, op.outH, op.outW), 11)
      + pad(dec((op.groups > 1 ? op.groups : 1)), 6) + pad(dec((<u64>madds)), 11) + pad(fixed(ms, 4), 9)
      + pad(fixed(total > 0 ? 100 * ms / total : 0, 1) + '%', 6) + (madds > 0 && ms > 0 ? fixed(madds / ms / 1e6, 2) : '-') + '\n');
  }
  out('profile sum ms: ' + fixed(total, 3) + '\n');
  heap.free(times);
}

/** A fixed pseudo-random pattern in [-1, 1) (LCG), written before every run: the planner may reuse the input's
 *  bytes for later buffers, and every run should do the same work on the same values. */
function fillInput(m: Model): void {
  const n = inputLength(m);
  const p = inputPtr(m);
  let s: u32 = 12345;
  for (let i = 0; i < n; i++) {
    s = s * 1664525 + 1013904223;
    store<f32>(p + <usize>i * 4, <f32>(s >>> 8) * (<f32>1.0 / <f32>8388608.0) - 1);
  }
}

function bench(m: Model, runs: i32, warmup: i32, perOp: bool): i32 {
  for (let i = 0; i < warmup; i++) { fillInput(m); runModel(m); }
  const times = heap.alloc(<usize>runs << 3);
  for (let i = 0; i < runs; i++) {
    fillInput(m);
    const t0 = nowNs();
    runModel(m);
    store<f64>(times + (<usize>i << 3), <f64>(nowNs() - t0) / 1e6);
  }
  sortF64(times, runs);
  let sum: f64 = 0;
  for (let i = 0; i < runs; i++) sum += load<f64>(times + (<usize>i << 3));
  out('runs: ' + dec(runs) + '\n');
  out('median ms: ' + fixed(load<f64>(times + (<usize>(runs >> 1) << 3)), 3) + '\n');
  out('p10 ms: ' + fixed(load<f64>(times + (<usize>((runs - 1) / 10) << 3)), 3) + '\n');
  out('p90 ms: ' + fixed(load<f64>(times + (<usize>((runs - 1) * 9 / 10) << 3)), 3) + '\n');
  out('mean ms: ' + fixed(sum / <f64>runs, 3) + '\n');
  out('arena bytes: ' + dec(m.arenaBytes) + '\n');
  heap.free(times);
  if (perOp) profile(m, runs);
  return EXIT_OK;
}

function main(): i32 {
  const argv = readArgs();
  if (argv.length < 2) return usageError('missing command');
  // unchecked(): every index below is checked against the length first; the checked accessor (and its
  // holey-array message) cost 170 bytes of the 64 KiB command.
  const cmd = unchecked(argv[1]);
  if (cmd == 'help' || cmd == '--help' || cmd == '-h') { out(USAGE); return EXIT_OK; }
  const positional = new Array<string>();
  let top = 5, runs = 20, warmup = 3;
  let limitMiB = 512;
  let maxMacs: f64 = 0;
  let logits = false, perOp = false;
  for (let i = 2; i < argv.length; i++) {
    const a = unchecked(argv[i]);
    if (a == '--logits' && cmd == 'classify') logits = true;
    else if (a == '--profile' && cmd == 'bench') perOp = true;
    else if (a == '--top' || a == '--runs' || a == '--warmup' || a == '--arena-limit' || a == '--max-macs') {
      if (i + 1 >= argv.length) return usageError(a + ' needs a value');
      const v = parseIntArg(unchecked(argv[++i]));
      if (v < 0 || (v == 0 && a != '--warmup') || (a != '--max-macs' && v > 1e9) || (a == '--runs' && v > 1000000)) return usageError(a + ' needs a positive integer');
      if (a == '--top') top = <i32>v;
      else if (a == '--runs') runs = <i32>v;
      else if (a == '--warmup') warmup = <i32>v;
      else if (a == '--max-macs') maxMacs = v;
      else limitMiB = <i32>v;
    } else if (startsWith(a, '--')) {
      return usageError('unknown option ' + a);
    } else {
      positional.push(a);
    }
  }
  if (cmd != 'classify' && cmd != 'info' && cmd != 'bench') return usageError('unknown command ' + cmd);
  if (positional.length < 1) return usageError(cmd + ' needs a model file');
  if (cmd == 'classify' && positional.length < 2) return usageError('classify needs at least one image');
  if (cmd != 'classify' && positional.length > 1) return usageError(cmd + ' takes one model file');
  const m = loadModelFile(unchecked(positional[0]), <u64>limitMiB << 20, maxMacs);
  if (m == null) return EXIT_FAILURE;
  let status: i32;
  if (cmd == 'classify') status = classify(m, positional.slice(1), top, logits);
  else if (cmd == 'info') status = info(m);
  else status = bench(m, runs, warmup, perOp);
  freeModel(m);
  return status;
}

const status = main();
if (status != 0) proc_exit(status);
