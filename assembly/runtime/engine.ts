// The engine facade both entry points use: load (parse, validate, plan), run, and model handles.

import { ERR_COMPUTE, ERR_HANDLE, ERR_NUMERIC, clearError, fail } from './errors';
import { Model, freeModel } from './model';
import { parseModel } from './parse';
import { proveWrites } from './writes';
import { planMemory } from './planner';
import { execute, outputLength, outputPtr } from './executor';
import { dec } from './dec';

export const DEFAULT_ARENA_LIMIT: u64 = 512 << 20;
const MAX_HANDLES: i32 = 1024;

let handles: usize = 0; // Model pointers; slot 0 unused so 0 is never a valid handle

function slots(): usize {
  if (handles == 0) {
    handles = heap.alloc(<usize>MAX_HANDLES * sizeof<usize>());
    memory.fill(handles, 0, <usize>MAX_HANDLES * sizeof<usize>());
  }
  return handles;
}

/**
 * Loads a model image the caller allocated with heap.alloc; the model takes ownership. Returns null on failure.
 * maxMacs > 0 refuses models whose run needs more multiply-adds.
 */
export function loadModel(image: usize, length: u32, arenaLimit: u64, maxMacs: f64 = 0): Model | null {
  clearError();
  const m = parseModel(image, length);
  if (m == null) return null;
  if (!planMemory(m, arenaLimit == 0 ? DEFAULT_ARENA_LIMIT : arenaLimit) || !proveWrites(m)
    // The count as an integer (saturating): f64.toString would link the float printer, 2.5 KB of the command.
    || (maxMacs > 0 && m.macs > maxMacs && !fail(ERR_COMPUTE, 'a run needs ' + dec((<u64>m.macs)) + ' multiply-adds, above the limit'))) {
    freeModel(m);
    return null;
  }
  return m;
}

/** Registers a model and returns its handle (> 0), or 0 when the table is full. */
export function addHandle(m: Model): i32 {
  const t = slots();
  for (let i = 1; i < MAX_HANDLES; i++) {
    if (load<usize>(t + <usize>i * sizeof<usize>()) == 0) {
      store<usize>(t + <usize>i * sizeof<usize>(), changetype<usize>(m));
      return i;
    }
  }
  fail(ERR_HANDLE, 'too many models loaded at once (1023)');
  return 0;
}

export function modelOf(handle: i32): Model | null {
  if (handle <= 0 || handle >= MAX_HANDLES || handles == 0) return null;
  const p = load<usize>(handles + <usize>handle * sizeof<usize>());
  return p == 0 ? null : changetype<Model>(p);
}

export function dropHandle(handle: i32): bool {
  const m = modelOf(handle);
  if (m == null) return false;
  store<usize>(handles + <usize>handle * sizeof<usize>(), 0);
  freeModel(m);
  return true;
}

/**
 * Runs the model; false (after fail) when a logit is NaN or infinite. A valid file may hold finite weights so
 * large that sums overflow: that is reported, never passed on as scores.
 */
export function runModel(m: Model): bool {
  execute(m);
  const out = outputPtr(m);
  const n = outputLength(m);
  for (let i = 0; i < n; i++) {
    if (!isFinite(load<f32>(out + <usize>i * 4))) return fail(ERR_NUMERIC, 'the network produced non-finite logits (weights or input so large that sums overflow)');
  }
  return true;
}
