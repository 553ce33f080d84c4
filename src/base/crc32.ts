// CRC-32 (the IEEE polynomial zlib and gzip use) in plain TypeScript, for the pure layers that may
// not import node:zlib: the Raft core checks snapshot chunks with it unless the host hands it
// zlib's (RaftConfig.checksum), which computes the same values several times faster. Pure.

const table = ((): Uint32Array => {
  const out = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    out[n] = c >>> 0;
  }
  return out;
})();

/** CRC-32 of `bytes`, continuing from `previous` (0 to start), as zlib.crc32 computes it. */
export function crc32(bytes: Uint8Array, previous = 0): number {
  let crc = ~previous;
  for (let k = 0; k < bytes.length; k++) crc = (table[(crc ^ (bytes[k] ?? 0)) & 0xff] ?? 0) ^ (crc >>> 8);
  return ~crc >>> 0;
}
