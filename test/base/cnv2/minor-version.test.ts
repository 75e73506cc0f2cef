// Format 1.2 (docs/format.md): the writer marks a file 1.2 only when it holds a MAXPOOL op, so every other model keeps
// the 1.1 bytes it always had; a MAXPOOL op reads back with its eight words.
import t from 'tap';
import { readModel, writeModel } from '../../../base/cnv2/format.js';
import { ACT, type Op } from '../../../base/cnv2/model.js';
import { buildModel } from '../../../testkit/models.js';

function model(withMaxpool: boolean) {
  const buffers = [{ channels: 2, height: 5, width: 5 }, { channels: 3, height: 3, width: 3 }, { channels: 2, height: 1, width: 1 }];
  const pool: Op = withMaxpool
    ? { kind: 'maxpool', inBuffer: 0, inChannel: 0, channels: 2, outBuffer: 1, outChannel: 1, kernel: 3, stride: 2, pad: 1 }
    : { kind: 'avgpool', inBuffer: 0, inChannel: 0, channels: 2, outBuffer: 1, outChannel: 1, kernel: 3, stride: 1 };
  const ops: Op[] = [pool, { kind: 'global_avgpool', inBuffer: 1, inChannel: 1, channels: 2, outBuffer: 2, outChannel: 0, inAct: ACT.none, inScale: null, inShift: null }];
  return buildModel(buffers, ops, [], 2);
}

t.test('minor version 2 only with a MAXPOOL op', async (t) => {
  const withPool = writeModel(model(true)), without = writeModel(model(false));
  t.equal(new DataView(withPool.buffer).getUint16(6, true), 2, 'a model with MAXPOOL is 1.2');
  t.equal(new DataView(without.buffer).getUint16(6, true), 1, 'a model without it stays 1.1');
  const back = readModel(withPool);
  t.same(back.ops[0], { kind: 'maxpool', inBuffer: 0, inChannel: 0, channels: 2, outBuffer: 1, outChannel: 1, kernel: 3, stride: 2, pad: 1 });
  t.same(writeModel(back), withPool, 'read and written back: the same bytes');
});
