// Byte-level tools for crafting malformed .cnv2 files in tests: take a valid file apart into its sections,
// change them, and put them back together with correct (or deliberately wrong) sizes and CRCs.
import { crc32 } from '../../base/cnv2/crc32.js';
import { MAJOR_VERSION } from '../../base/cnv2/format.js';

export interface RawSection {
  tag: string;
  body: Uint8Array;
}

export function u32(b: Uint8Array, off: number): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off, true);
}

export function setU32(b: Uint8Array, off: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(off, v >>> 0, true);
}

export function setU16(b: Uint8Array, off: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint16(off, v, true);
}

/** Directory entries of a (well-formed) file. */
export function directory(file: Uint8Array): { tag: string; offset: number; size: number; entry: number }[] {
  const n = u32(file, 12);
  return Array.from({ length: n }, (_, i) => {
    const d = 32 + i * 16;
    return { tag: String.fromCharCode(...file.subarray(d, d + 4)), offset: u32(file, d + 4), size: u32(file, d + 8), entry: d };
  });
}

export function splitSections(file: Uint8Array): RawSection[] {
  return directory(file).map((e) => ({ tag: e.tag, body: file.slice(e.offset, e.offset + e.size) }));
}

/**
 * Lays sections out like the writer does (16-aligned, zero padding), with correct sizes and CRCs. `minor`: the
 * header's minor version (the writer's 1 for models without a MAXPOOL op).
 */
export function assemble(sections: RawSection[], minor = 1): Uint8Array {
  const n = sections.length;
  let off = Math.ceil((32 + 16 * n) / 16) * 16;
  const offsets = sections.map((s) => { const o = off; off = Math.ceil((o + s.body.length) / 16) * 16; return o; });
  const size = offsets[n - 1]! + sections[n - 1]!.body.length;
  const out = new Uint8Array(size);
  out.set([0x43, 0x4e, 0x56, 0x32], 0);
  new DataView(out.buffer).setUint16(4, MAJOR_VERSION, true);
  new DataView(out.buffer).setUint16(6, minor, true);
  setU32(out, 8, size);
  setU32(out, 12, n);
  sections.forEach((s, i) => {
    const d = 32 + i * 16;
    for (let c = 0; c < 4; c++) out[d + c] = s.tag.charCodeAt(c);
    setU32(out, d + 4, offsets[i]!);
    setU32(out, d + 8, s.body.length);
    setU32(out, d + 12, crc32(s.body));
    out.set(s.body, offsets[i]!);
  });
  fixHeaderCrc(out);
  return out;
}

/** Recomputes the header/directory CRC after a deliberate header edit. */
export function fixHeaderCrc(file: Uint8Array): Uint8Array {
  const n = u32(file, 12);
  setU32(file, 28, crc32(file, 32, 32 + 16 * n, crc32(file, 0, 28)));
  return file;
}

/** Recomputes every section CRC from the directory, then the header CRC. */
export function fixAllCrcs(file: Uint8Array): Uint8Array {
  for (const e of directory(file)) {
    if (e.offset + e.size <= file.length) setU32(file, e.entry + 12, crc32(file, e.offset, e.offset + e.size));
  }
  return fixHeaderCrc(file);
}

/** Replaces one section's body (any length) and re-assembles the file with valid CRCs. */
export function withSection(file: Uint8Array, tag: string, edit: (body: Uint8Array) => Uint8Array): Uint8Array {
  return assemble(splitSections(file).map((s) => (s.tag === tag ? { tag, body: edit(s.body.slice()) } : s)),
    new DataView(file.buffer, file.byteOffset).getUint16(6, true));
}
