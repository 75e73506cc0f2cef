// Softmax over the logits and the top-k classes.

/** out = softmax(input), numerically stable (max subtracted, exp and sum in f64). out may equal input. */
export function softmax(input: usize, n: i32, out: usize): void {
  if (n <= 0) return;
  let m = load<f32>(input);
  for (let i = 1; i < n; i++) m = max(m, load<f32>(input + (<usize>i << 2)));
  let sum: f64 = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(<f64>load<f32>(input + (<usize>i << 2)) - <f64>m);
  const inv = 1.0 / sum;
  for (let i = 0; i < n; i++) {
    const p = input + (<usize>i << 2);
    store<f32>(out + (<usize>i << 2), <f32>(Math.exp(<f64>load<f32>(p) - <f64>m) * inv));
  }
}

// a ranks before b: larger value first; NaN ranks after every number. Equal values keep index order (callers scan
// in index order and only insert strictly better values ahead).
@inline function better(a: f32, b: f32): bool {
  return a > b || (isNaN(b) && !isNaN(a));
}

/** outIndex[0..k) = indices of the k largest values, best first; ties: lower index first; NaN last. 0 <= k <= n. */
export function top_k(values: usize, n: i32, k: i32, outIndex: usize): void {
  if (k <= 0) return;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const v = load<f32>(values + (<usize>i << 2));
    // Position: after every kept entry that v does not beat.
    let pos = count;
    while (pos > 0 && better(v, load<f32>(values + (<usize>load<i32>(outIndex + (<usize>(pos - 1) << 2)) << 2)))) pos--;
    if (pos >= k) continue;
    const last = count < k ? count : k - 1;
    for (let j = last; j > pos; j--) store<i32>(outIndex + (<usize>j << 2), load<i32>(outIndex + (<usize>(j - 1) << 2)));
    store<i32>(outIndex + (<usize>pos << 2), i);
    if (count < k) count++;
  }
}
