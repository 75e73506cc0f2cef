// Output of `cdnv2 eval`, the same for a checkpoint (TensorFlow.js) and a model file (wasm runtime), so the two
// can be compared: `--json` prints {"accuracy", "count"}, `--logits FILE` writes {"logits": [[...], ...]}.
import { writeFileAtomic } from '../base/io.js';

export interface Evaluation {
  accuracy: number;
  count: number;
  logits?: Float32Array; // count x classes, in source order
}

export async function reportEvaluation(r: Evaluation, classes: number, o: { json?: boolean; logits?: string }, source: string): Promise<void> {
  if (o.logits) {
    const rows = Array.from({ length: r.count }, (_, i) => Array.from(r.logits!.subarray(i * classes, (i + 1) * classes)));
    await writeFileAtomic(o.logits, new TextEncoder().encode(JSON.stringify({ logits: rows })));
  }
  if (o.json) process.stdout.write(`${JSON.stringify({ accuracy: r.accuracy, count: r.count })}\n`);
  else process.stdout.write(`accuracy ${(100 * r.accuracy).toFixed(2)}% on ${r.count} images (${source})\n`);
}
