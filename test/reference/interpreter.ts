// Plain reference interpreter of a condensed model (docs/format.md semantics), float64 math, no optimisation.
// Buffers other than the input start as NaN so that reading a channel no op has written poisons the output.
import { type Model, type Tensor, tensorFloats } from '../../base/cnv2/model.js';

export function applyAct(code: number, x: number): number {
  if (code === 1) return x > 0 ? x : 0;
  if (code === 2) return (x * Math.min(Math.max(x + 3, 0), 6)) / 6;
  return x;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

function floats(model: Model, ref: number | null): Float32Array | null {
  return ref === null ? null : tensorFloats(model.tensors[ref] as Tensor);
}

function ints(model: Model, ref: number | null): ArrayLike<number> | null {
  return ref === null ? null : (model.tensors[ref] as Tensor).data;
}

/** Runs the model on a normalised CHW input; returns every buffer (the output buffer holds the logits). */
export function interpret(model: Model, input: Float64Array): Float64Array[] {
  const bufs = model.buffers.map((b) => new Float64Array(b.channels * b.height * b.width).fill(NaN));
  const inB = bufs[model.inputBuffer]!;
  if (input.length !== inB.length) throw new Error(`input has ${input.length} values, expected ${inB.length}`);
  inB.set(input);
  for (const op of model.ops) {
    switch (op.kind) {
      case 'conv2d': {
        const ib = model.buffers[op.inBuffer]!;
        const ob = model.buffers[op.outBuffer]!;
        const src = bufs[op.inBuffer]!;
        const dst = bufs[op.outBuffer]!;
        const w = floats(model, op.weight)!;
        const bias = floats(model, op.bias);
        const inIndex = ints(model, op.inIndex);
        const scale = floats(model, op.inScale);
        const shift = floats(model, op.inShift);
        const outIndex = ints(model, op.outIndex);
        const H = ib.height, W = ib.width, HW = H * W;
        // Transformed input planes: gathered, scaled/shifted, activated (padding is applied after this).
        const x: Float64Array[] = [];
        for (let i = 0; i < op.cin; i++) {
          const c = op.inChannel + (inIndex ? inIndex[i]! : i);
          const plane = new Float64Array(HW);
          for (let p = 0; p < HW; p++) {
            let v = src[c * HW + p]!;
            if (scale && shift) v = v * scale[i]! + shift[i]!;
            plane[p] = applyAct(op.inAct, v);
          }
          x.push(plane);
        }
        const Ho = ob.height, Wo = ob.width, K = op.kernel;
        const cinG = op.cin / op.groups, coutG = op.cout / op.groups;
        const y = new Float64Array(op.cout * Ho * Wo);
        for (let o = 0; o < op.cout; o++) {
          const g = Math.floor(o / coutG);
          for (let oy = 0; oy < Ho; oy++) {
            for (let ox = 0; ox < Wo; ox++) {
              let s = bias ? bias[o]! : 0;
              for (let i = 0; i < cinG; i++) {
                const plane = x[g * cinG + i]!;
                for (let ky = 0; ky < K; ky++) {
                  const iy = op.stride * oy + ky - op.pad;
                  if (iy < 0 || iy >= H) continue;
                  for (let kx = 0; kx < K; kx++) {
                    const ix = op.stride * ox + kx - op.pad;
                    if (ix < 0 || ix >= W) continue;
                    s += w[((o * cinG + i) * K + ky) * K + kx]! * plane[iy * W + ix]!;
                  }
                }
              }
              y[(o * Ho + oy) * Wo + ox] = applyAct(op.outAct, s);
            }
          }
        }
        const HWo = Ho * Wo;
        for (let o = 0; o < op.cout; o++) {
          const c = op.outChannel + (outIndex ? outIndex[o]! : o);
          for (let p = 0; p < HWo; p++) {
            dst[c * HWo + p] = op.accumulate ? dst[c * HWo + p]! + y[o * HWo + p]! : y[o * HWo + p]!;
          }
        }
        break;
      }
      case 'se': {
        const b = model.buffers[op.buffer]!;
        const HW = b.height * b.width;
        const buf = bufs[op.buffer]!;
        const w1 = floats(model, op.w1)!, b1 = floats(model, op.b1), w2 = floats(model, op.w2)!, b2 = floats(model, op.b2);
        const s = new Float64Array(op.channels);
        for (let c = 0; c < op.channels; c++) {
          let sum = 0;
          for (let p = 0; p < HW; p++) sum += buf[(op.channel + c) * HW + p]!;
          s[c] = sum / HW;
        }
        const h = new Float64Array(op.hidden);
        for (let j = 0; j < op.hidden; j++) {
          let v = b1 ? b1[j]! : 0;
          for (let c = 0; c < op.channels; c++) v += w1[j * op.channels + c]! * s[c]!;
          h[j] = Math.max(v, 0);
        }
        for (let c = 0; c < op.channels; c++) {
          let v = b2 ? b2[c]! : 0;
          for (let j = 0; j < op.hidden; j++) v += w2[c * op.hidden + j]! * h[j]!;
          const gate = sigmoid(v);
          for (let p = 0; p < HW; p++) buf[(op.channel + c) * HW + p] *= gate;
        }
        break;
      }
      case 'avgpool': {
        const ib = model.buffers[op.inBuffer]!, ob = model.buffers[op.outBuffer]!;
        const src = bufs[op.inBuffer]!, dst = bufs[op.outBuffer]!;
        for (let c = 0; c < op.channels; c++) {
          for (let oy = 0; oy < ob.height; oy++) {
            for (let ox = 0; ox < ob.width; ox++) {
              let s = 0;
              for (let ky = 0; ky < op.kernel; ky++) {
                for (let kx = 0; kx < op.kernel; kx++) {
                  s += src[((op.inChannel + c) * ib.height + op.stride * oy + ky) * ib.width + op.stride * ox + kx]!;
                }
              }
              dst[((op.outChannel + c) * ob.height + oy) * ob.width + ox] = s / (op.kernel * op.kernel);
            }
          }
        }
        break;
      }
      case 'maxpool': {
        const ib = model.buffers[op.inBuffer]!, ob = model.buffers[op.outBuffer]!;
        const src = bufs[op.inBuffer]!, dst = bufs[op.outBuffer]!;
        for (let c = 0; c < op.channels; c++) {
          for (let oy = 0; oy < ob.height; oy++) {
            for (let ox = 0; ox < ob.width; ox++) {
              let m = -Infinity;
              for (let ky = 0; ky < op.kernel; ky++) {
                const y = op.stride * oy + ky - op.pad;
                if (y < 0 || y >= ib.height) continue;
                for (let kx = 0; kx < op.kernel; kx++) {
                  const x = op.stride * ox + kx - op.pad;
                  if (x >= 0 && x < ib.width) m = Math.max(m, src[((op.inChannel + c) * ib.height + y) * ib.width + x]!);
                }
              }
              dst[((op.outChannel + c) * ob.height + oy) * ob.width + ox] = m;
            }
          }
        }
        break;
      }
      case 'global_avgpool': {
        const ib = model.buffers[op.inBuffer]!;
        const HW = ib.height * ib.width;
        const src = bufs[op.inBuffer]!, dst = bufs[op.outBuffer]!;
        const scale = floats(model, op.inScale), shift = floats(model, op.inShift);
        for (let c = 0; c < op.channels; c++) {
          let s = 0;
          for (let p = 0; p < HW; p++) {
            let v = src[(op.inChannel + c) * HW + p]!;
            if (scale && shift) v = v * scale[c]! + shift[c]!;
            s += applyAct(op.inAct, v);
          }
          dst[op.outChannel + c] = s / HW;
        }
        break;
      }
      case 'fc': {
        const src = bufs[op.inBuffer]!, dst = bufs[op.outBuffer]!;
        const w = floats(model, op.weight)!, bias = floats(model, op.bias);
        const y = new Float64Array(op.cout);
        for (let o = 0; o < op.cout; o++) {
          let s = bias ? bias[o]! : 0;
          for (let i = 0; i < op.cin; i++) s += w[o * op.cin + i]! * src[op.inChannel + i]!;
          y[o] = applyAct(op.outAct, s);
        }
        for (let o = 0; o < op.cout; o++) dst[op.outChannel + o] = y[o]!;
        break;
      }
      case 'channel_shuffle': {
        const ib = model.buffers[op.inBuffer]!;
        const HW = ib.height * ib.width;
        const src = bufs[op.inBuffer]!, dst = bufs[op.outBuffer]!;
        const per = op.channels / op.groups;
        const tmp = new Float64Array(op.channels * HW);
        for (let g = 0; g < op.groups; g++) {
          for (let j = 0; j < per; j++) {
            for (let p = 0; p < HW; p++) tmp[(j * op.groups + g) * HW + p] = src[(op.inChannel + g * per + j) * HW + p]!;
          }
        }
        dst.set(tmp, op.outChannel * HW);
        break;
      }
    }
  }
  return bufs;
}

/** The logits: the output buffer after running the model. */
export function interpretLogits(model: Model, input: Float64Array): Float64Array {
  return interpret(model, input)[model.outputBuffer]!;
}
