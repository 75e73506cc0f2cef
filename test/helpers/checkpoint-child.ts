// Saves a checkpoint in its own process and SIGKILLs itself part-way, at a point chosen by the test:
//   node --import tsx test/helpers/checkpoint-child.ts <runDir> <epoch> <write|rename>
// write: while tensors.bin is being written (half of it on disk); rename: after every file is written and
// fsync'd, just before the temp directory is renamed. Deterministic: the kill happens inside the fs call.
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { checkpointContent } from './checkpoint-content.js';

const [runDir, epoch, when] = process.argv.slice(2);
if (!runDir || !epoch || (when !== 'write' && when !== 'rename')) throw new Error('usage: checkpoint-child.ts <runDir> <epoch> <write|rename>');
const die = (): never => { process.kill(process.pid, 'SIGKILL'); throw new Error('unreachable'); };
if (when === 'write') {
  const writeSync = fs.writeSync;
  fs.writeSync = ((fd: number, buf: Uint8Array, off = 0, len = buf.length - off) => {
    if (len > 4096) { writeSync(fd, buf, off, len >> 1); fs.fsyncSync(fd); die(); }
    return writeSync(fd, buf, off, len);
  }) as typeof fs.writeSync;
} else {
  fs.renameSync = (() => die()) as typeof fs.renameSync;
}
syncBuiltinESMExports();
const { saveCheckpoint } = await import('../../trainer/checkpoint.js');
saveCheckpoint(runDir, checkpointContent(Number(epoch)));
process.stderr.write('saved without being killed\n');
