// The learned masks of a training model (CondenseNetV2's LGC/SFR masks, ShuffleNetV2's SFR masks): the 0/1 arrays
// the condensation schedule edits in place, and the TF.js tensors the forward pass multiplies the weights by,
// rebuilt after every edit. Shared by trainer/model.ts and trainer/shufflenet-model.ts.
import * as tf from '@tensorflow/tfjs';

import type { MaskInfo } from '../base/arch/schema.js';

export class MaskState {
  readonly list: readonly MaskInfo[];
  /** The masks by name, [inCh, outCh] like their weights; edited in place, then `refresh()`. */
  readonly masks = new Map<string, Uint8Array>();
  private tensors = new Map<string, tf.Tensor>();

  constructor(list: readonly MaskInfo[]) {
    this.list = list;
  }

  /** The given masks, every missing one all ones (a fresh model keeps every connection). */
  static initial(list: readonly MaskInfo[], given?: Map<string, Uint8Array>): Map<string, Uint8Array> {
    return new Map(list.map((m) => [m.name, given?.get(m.name) ?? new Uint8Array(m.inCh * m.outCh).fill(1)]));
  }

  /** Copies every mask of the list from `masks` (each must have inCh * outCh values), then refreshes the tensors. */
  set(masks: Map<string, Uint8Array>): void {
    for (const m of this.list) {
      const v = masks.get(m.name);
      if (!v || v.length !== m.inCh * m.outCh) throw new Error(`mask ${m.name}: expected ${m.inCh * m.outCh} values`);
      this.masks.set(m.name, v.slice());
    }
    this.refresh();
  }

  /** Rebuilds the float tensors from the 0/1 arrays. */
  refresh(): void {
    this.dispose();
    for (const m of this.list) {
      this.tensors.set(m.name, tf.tensor(Float32Array.from(this.masks.get(m.name)!), [m.inCh, m.outCh]));
    }
  }

  /** The float tensor of a mask, to multiply its weight by. */
  tensor(name: string): tf.Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`no mask ${name}`);
    return t;
  }

  dispose(): void {
    for (const t of this.tensors.values()) t.dispose();
    this.tensors.clear();
  }
}
