// Parses and validates a .cnv2 image held in linear memory (docs/format.md), section by section. Every offset,
// count, shape and index is checked before it is used; on failure, fail() records why.

import { Model, freeModel, zeroAlloc } from './model';
import { parseSections } from './sections';
import { parseMeta } from './meta';
import { parseTensors } from './tensors';
import { parseGraph } from './graph';

/**
 * Parses and validates a model image (which the returned Model then owns). Returns null after fail();
 * in that case the image has been freed too.
 */
export function parseModel(image: usize, length: u32): Model | null {
  const m = changetype<Model>(zeroAlloc(offsetof<Model>()));
  m.image = image;
  m.length = length;
  if (parseSections(m) && parseMeta(m) && parseTensors(m) && parseGraph(m)) return m;
  freeModel(m);
  return null;
}
