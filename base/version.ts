// The package version, for provenance records (works from the sources and from dist/).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function toolVersion(): string {
  if (cached) return cached;
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['..', '../..']) {
    try {
      cached = JSON.parse(readFileSync(path.join(here, up, 'package.json'), 'utf8')).version as string;
      return cached;
    } catch { /* try the next level: dist/converter vs converter */ }
  }
  cached = '0.0.0';
  return cached;
}
