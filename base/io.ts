// File helpers shared by the commands.
import { promises as fs, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Writes via a temporary file in the same directory and a rename, so readers never see a partial file. */
export async function writeFileAtomic(file: string, bytes: Uint8Array): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  try {
    await fs.writeFile(tmp, bytes);
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw new Error(`cannot write '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
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
    throw new Error(`cannot write '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export async function readModelFile(file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await fs.readFile(file));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`cannot read '${file}': ${code === 'ENOENT' ? 'no such file' : code ?? (err as Error).message}`);
  }
}
