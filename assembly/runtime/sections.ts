// Header and section directory (docs/format.md): magic, version, sizes, the header checksum, and each section's
// place (aligned, inside the file, no overlap) and checksum; records where META, GRPH, TENS and DATA lie.

import { ERR_BAD_MAGIC, ERR_CHECKSUM, ERR_HEADER, ERR_SECTION, ERR_SIZE, ERR_TRUNCATED, ERR_VERSION, fail } from './errors';
import {
  DIR_ENTRY_BYTES, HEADER_BYTES, MAGIC, TAG_DATA, TAG_GRPH, TAG_META, TAG_TENS, VERSION_MAJOR, crc32Update, fits,
  readU16, readU32,
} from './format';
import { Model } from './model';
import { dec } from './dec';

export function parseSections(m: Model): bool {
  const img = m.image;
  const len = m.length;
  if (len < HEADER_BYTES) return fail(ERR_TRUNCATED, 'file shorter than the header');
  if (readU32(img, 0) != MAGIC) return fail(ERR_BAD_MAGIC, 'not a cdnv2 model (bad magic)');
  const major = readU16(img, 4);
  if (major != VERSION_MAJOR) return fail(ERR_VERSION, 'unsupported version ' + dec(major));
  const fileSize = readU32(img, 8);
  if (fileSize > len) return fail(ERR_TRUNCATED, 'file is truncated');
  if (fileSize != len) return fail(ERR_SIZE, 'file size field mismatch');
  const n = readU32(img, 12);
  if (n < 4 || n > 16) return fail(ERR_SIZE, 'section count ' + dec(n) + ' outside 4..16');
  const dirEnd = HEADER_BYTES + n * DIR_ENTRY_BYTES;
  if (dirEnd > len) return fail(ERR_TRUNCATED, 'section directory runs past the end of the file');
  let crc = crc32Update(0, img, 28);
  crc = crc32Update(crc, img + HEADER_BYTES, n * DIR_ENTRY_BYTES);
  if (crc != readU32(img, 28)) return fail(ERR_CHECKSUM, 'header checksum mismatch');
  // Flags and reserved fields are 0 in version 1; anything else is a file this reader does not understand.
  if (readU32(img, 16) != 0) return fail(ERR_HEADER, 'header fields not 0');
  if (readU32(img, 20) != 0 || readU32(img, 24) != 0) return fail(ERR_HEADER, 'header fields not 0');

  let seen = 0;
  for (let i: u32 = 0; i < n; i++) {
    const e = HEADER_BYTES + i * DIR_ENTRY_BYTES;
    const tag = readU32(img, e);
    const off = readU32(img, e + 4);
    const size = readU32(img, e + 8);
    if (!fits(off, size, len)) return fail(ERR_TRUNCATED, 'section past the end');
    if ((off & 15) != 0 || off < dirEnd) return fail(ERR_SECTION, 'misaligned section');
    for (let j: u32 = 0; j < i; j++) {
      const e2 = HEADER_BYTES + j * DIR_ENTRY_BYTES;
      const off2 = readU32(img, e2 + 4);
      const size2 = readU32(img, e2 + 8);
      if (<u64>off < <u64>off2 + <u64>size2 && <u64>off2 < <u64>off + <u64>size) {
        return fail(ERR_SECTION, 'sections ' + dec(j) + ' and ' + dec(i) + ' overlap');
      }
    }
    if (crc32Update(0, img + off, size) != readU32(img, e + 12)) {
      return fail(ERR_CHECKSUM, 'checksum mismatch in section ' + dec(i));
    }
    let bit = 0;
    if (tag == TAG_META) { bit = 1; m.metaOff = off; m.metaSize = size; }
    else if (tag == TAG_GRPH) { bit = 2; m.grphOff = off; m.grphSize = size; }
    else if (tag == TAG_TENS) { bit = 4; m.tensOff = off; m.tensSize = size; }
    else if (tag == TAG_DATA) { bit = 8; m.dataOff = off; m.dataSize = size; }
    if (bit != 0) {
      if (seen & bit) return fail(ERR_SECTION, 'duplicated section');
      seen |= bit;
    }
  }
  if (seen != 15) return fail(ERR_SECTION, 'missing section');
  return true;
}
