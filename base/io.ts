// File helpers shared by the commands.
import { promises as fs, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * What went wrong with a file operation, as a plain phrase (the error code alone, ENOENT or EISDIR, tells a user
 * little). `writing` words a missing path as the missing directory it is.
 */
export function fileErrorReason(err: unknown, file: string, writing = false): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT': return writing ? `the directory '${path.dirname(file)}' does not exist` : 'no such file';
    case 'EISDIR': return 'it is a directory, not a file';
    case 'ENOTDIR': return 'a part of the path is not a directory';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'EROFS': return 'the file system is read-only';
    case 'ENOSPC': return 'no space left on the device';
    case 'ENAMETOOLONG': return 'the path is too long';
    case 'ELOOP': return 'too many symbolic links in the path';
    default: return code ?? (err as Error).message;
  }
}

/** Writes via a temporary file in the same directory and a rename, so readers never see a partial file. */
export async function writeFileAtomic(file: string, bytes: Uint8Array): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  try {
    await fs.writeFile(tmp, bytes);
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw new Error(`cannot write '${file}': ${fileErrorReason(err, file, true)}`);
  }
}

/** writeFileAtomic for synchronous callers (logs and reports written between training steps). */
export function writeFileAtomicSync(file: string, data: string | Uint8Array): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new Error(`cannot write '${file}': ${fileErrorReason(err, file, true)}`);
  }
}

export async function readModelFile(file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await fs.readFile(file));
  } catch (err) {
    throw new Error(`cannot read '${file}': ${fileErrorReason(err, file)}`);
  }
}
