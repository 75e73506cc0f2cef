// FLOPs / parameter counting of a condensed model, following the official CondenseNetV2 convention
// (utils/tools.py::measure_model; docs/flops.md): one multiply-add = one FLOP, activations 1 per element,
// sigmoid 2 per element, pools 1 per input element (kernel*kernel per output), BN/gathers/adds free.
import { writeModel } from '../base/cnv2/format.js';
import { ACT, type Model, type Op, type Tensor, elementCount } from '../base/cnv2/model.js';

export interface LayerRow {
  index: number;
  op: Op['kind'];
  input: [number, number, number];   // channels (as gathered), height, width
  output: [number, number, number];
  groups: number;
  macs: number;    // multiply-adds of the op's convolution / linear parts
  flops: number;   // macs + activations, pooling and sigmoid work
  params: number;  // elements of weight, bias, scale and shift tensors (not index tensors)
}

export interface Analysis {
  layers: LayerRow[];
  totals: { flops: number; macs: number; params: number; bytes: number };
}

function paramsOf(model: Model, refs: (number | null)[]): number {
  let n = 0;
  for (const r of refs) if (r !== null) n += elementCount((model.tensors[r] as Tensor).shape);
  return n;
}

const actCost = (code: number, elements: number): number => (code === ACT.none ? 0 : elements);

/** Per-layer and total costs; `bytes` is the file size (pass it when known, else the model is serialised). */
export function analyze(model: Model, fileBytes?: number): Analysis {
  const layers: LayerRow[] = model.ops.map((op, index) => {
    switch (op.kind) {
      case 'conv2d': {
        const ib = model.buffers[op.inBuffer]!;
        const ob = model.buffers[op.outBuffer]!;
        const macs = op.kernel * op.kernel * (op.cin / op.groups) * op.cout * ob.height * ob.width;
        const flops = macs + actCost(op.inAct, op.cin * ib.height * ib.width) + actCost(op.outAct, op.cout * ob.height * ob.width);
        return {
          index, op: op.kind, input: [op.cin, ib.height, ib.width], output: [op.cout, ob.height, ob.width], groups: op.groups,
          macs, flops, params: paramsOf(model, [op.weight, op.bias, op.inScale, op.inShift]),
        };
      }
      case 'se': {
        const b = model.buffers[op.buffer]!;
        const macs = 2 * op.channels * op.hidden;
        // global pool (1 per element) + ReLU on the hidden vector + sigmoid (2 per element)
        const flops = macs + op.channels * b.height * b.width + op.hidden + 2 * op.channels;
        return {
          index, op: op.kind, input: [op.channels, b.height, b.width], output: [op.channels, b.height, b.width], groups: 1,
          macs, flops, params: paramsOf(model, [op.w1, op.b1, op.w2, op.b2]),
        };
      }
      case 'avgpool': {
        const ib = model.buffers[op.inBuffer]!;
        const ob = model.buffers[op.outBuffer]!;
        return {
          index, op: op.kind, input: [op.channels, ib.height, ib.width], output: [op.channels, ob.height, ob.width], groups: 1,
          macs: 0, flops: op.kernel * op.kernel * op.channels * ob.height * ob.width, params: 0,
        };
      }
      case 'maxpool': {
        const ib = model.buffers[op.inBuffer]!;
        const ob = model.buffers[op.outBuffer]!;
        return {
          index, op: op.kind, input: [op.channels, ib.height, ib.width], output: [op.channels, ob.height, ob.width], groups: 1,
          macs: 0, flops: op.kernel * op.kernel * op.channels * ob.height * ob.width, params: 0,
        };
      }
      case 'global_avgpool': {
        const ib = model.buffers[op.inBuffer]!;
        const n = op.channels * ib.height * ib.width;
        return {
          index, op: op.kind, input: [op.channels, ib.height, ib.width], output: [op.channels, 1, 1], groups: 1,
          macs: 0, flops: n + actCost(op.inAct, n), params: paramsOf(model, [op.inScale, op.inShift]),
        };
      }
      case 'fc': {
        const macs = op.cin * op.cout;
        return {
          index, op: op.kind, input: [op.cin, 1, 1], output: [op.cout, 1, 1], groups: 1,
          macs, flops: macs + actCost(op.outAct, op.cout), params: paramsOf(model, [op.weight, op.bias]),
        };
      }
      case 'channel_shuffle': {
        const ib = model.buffers[op.inBuffer]!;
        return {
          index, op: op.kind, input: [op.channels, ib.height, ib.width], output: [op.channels, ib.height, ib.width],
          groups: op.groups, macs: 0, flops: 0, params: 0,
        };
      }
    }
  });
  const totals: Analysis['totals'] = {
    flops: layers.reduce((s, r) => s + r.flops, 0),
    macs: layers.reduce((s, r) => s + r.macs, 0),
    params: layers.reduce((s, r) => s + r.params, 0),
    bytes: fileBytes ?? writeModel(model, { validate: false }).length,
  };
  return { layers, totals };
}

/** 45871234 -> "45.87M". */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}
