// A torch.save file -> training-form parameters and the condensed model (the work of `cdnv2 import`).
import type { ArchConfig } from '../../base/arch/configs.js';
import type { NetworkParams } from '../../base/arch/params.js';
import { condense, CondenseError, type WeightsDtype } from '../condense.js';
import type { Model } from '../../base/cnv2/model.js';
import { pickStateDict, stateDictToParams, type OfficialForm } from './state-dict.js';
import { readTorchFile } from './torch-file.js';

export interface ImportOptions { noEma?: boolean; weights?: WeightsDtype; name?: string; file?: string }

export interface Imported { model: Model; params: NetworkParams; form: OfficialForm; source: string }

/** Throws TorchFileError / StateDictError / Error with a message naming the file part or tensor at fault. */
export function importTorchCheckpoint(bytes: Uint8Array, cfg: ArchConfig, opts: ImportOptions = {}): Imported {
  const { sd, source } = pickStateDict(readTorchFile(bytes), { noEma: opts.noEma });
  const { params, form } = stateDictToParams(sd, cfg, { source: 'pytorch', file: opts.file, stateDict: source });
  try {
    return { model: condense(params, { weights: opts.weights ?? 'f32', name: opts.name }), params, form, source };
  } catch (e) {
    if (e instanceof CondenseError) throw new Error(`${opts.file ?? 'checkpoint'}: ${e.message}`);
    throw e;
  }
}
