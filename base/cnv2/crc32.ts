// CRC32 (IEEE 802.3 / zlib / PNG): reflected polynomial 0xEDB88320, init and final xor 0xFFFFFFFF.

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Continues a running CRC (pass the previous result as `crc`) over bytes[start, end). */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length, crc = 0): number {
  let c = (crc ^ 0xffffffff) >>> 0;
  const stop = Math.min(end, bytes.length); // never read past the array, whatever the caller computed
  for (let i = start; i < stop; i++) c = TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
