// Accuracy of a .cnv2 model over a labelled image source, in the wasm runtime (`cdnv2 eval <model.cnv2>`).
// Images go through the same preprocessing as `classify` (identity when the data set matches the input size).
import type { ImageSource } from '../base/data/source.js';
import { Cdnv2Error, type Cdnv2Model } from './engine.js';

export interface RuntimeEvaluation {
  accuracy: number;
  count: number;
  /** count x classes logits in source order, when asked for. */
  logits?: Float32Array;
}

export function evaluateModel(model: Cdnv2Model, src: ImageSource, opts: { keepLogits?: boolean; onProgress?: (done: number) => void } = {}): RuntimeEvaluation {
  const classes = model.outputLength;
  if (src.classes > classes) throw new Cdnv2Error('input', `the data set has ${src.classes} classes, the model ${classes}`);
  const pixels = new Uint8Array(src.height * src.width * src.channels);
  const logits = opts.keepLogits ? new Float32Array(src.count * classes) : undefined;
  let correct = 0;
  for (let i = 0; i < src.count; i++) {
    // A folder's original image, so the runtime applies the model's own resize to it (not to a resized copy).
    let y: Float32Array;
    if (src.readOriginal) y = model.runImage(src.readOriginal(i));
    else {
      src.read(i, pixels);
      y = model.runImage({ width: src.width, height: src.height, channels: src.channels, data: pixels });
    }
    let best = 0;
    for (let c = 1; c < classes; c++) if (y[c]! > y[best]!) best = c;
    if (best === src.label(i)) correct++;
    logits?.set(y, i * classes);
    opts.onProgress?.(i + 1);
  }
  return { accuracy: src.count ? correct / src.count : 0, count: src.count, logits };
}
