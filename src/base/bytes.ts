// Big-endian u32 in and out of byte arrays, for the keys, records and frame headers built on every
// write. Bytes are moved one by one rather than through a DataView: a DataView made per call cost
// about 20x as much here (744 against 35 ns per storage key, `npx tsx` loop of 3 million keys on
// the 2-core benchmark machine), and keys, records and frames are made for every entry and turn.
// Pure; callers keep offsets in range (checked by the typed array itself: writes past the end are
// dropped, so callers allocate first).

/** Writes `value` (an integer in [0, 2^32)) big-endian at `offset`. */
export function writeUint32BE(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 24;
  bytes[offset + 1] = (value >>> 16) & 0xff;
  bytes[offset + 2] = (value >>> 8) & 0xff;
  bytes[offset + 3] = value & 0xff;
}

/** Reads a big-endian u32 at `offset` (the caller has checked that four bytes are there). */
export function readUint32BE(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset] ?? 0) * 0x100_0000 +
    (((bytes[offset + 1] ?? 0) << 16) | ((bytes[offset + 2] ?? 0) << 8) | (bytes[offset + 3] ?? 0))
  );
}

const twoPow32 = 0x1_0000_0000;

/** Writes a safe non-negative integer (< 2^53) as a big-endian u64 at `offset` (eight bytes). */
export function writeUint53BE(bytes: Uint8Array, offset: number, value: number): void {
  writeUint32BE(bytes, offset, Math.floor(value / twoPow32));
  writeUint32BE(bytes, offset + 4, value % twoPow32);
}

/**
 * Reads a big-endian u64 at `offset` (eight bytes there); undefined when it does not fit in a
 * safe integer (a high word of 2^21 or more), which callers report as corruption.
 */
export function readUint53BE(bytes: Uint8Array, offset: number): number | undefined {
  const high = readUint32BE(bytes, offset);
  if (high >= 0x20_0000) return undefined;
  return high * twoPow32 + readUint32BE(bytes, offset + 4);
}

/**
 * The number of bytes TextEncoder would produce for `text` (UTF-8; a lone surrogate becomes
 * U+FFFD, three bytes), without encoding it: length checks run on every request and every applied
 * entry, and encoding only to measure allocated a copy each time.
 */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (pairedAt(text, i, unit)) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** Whether `text` has no lone surrogate, so UTF-8 carries it exactly (TextEncoder replaces a lone one). */
export function wellFormed(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    if (!pairedAt(text, i, unit)) return false;
    i++;
  }
  return true;
}

/** Whether `unit` (text[i]) is a high surrogate that text[i + 1] completes into a pair. */
function pairedAt(text: string, i: number, unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
}

/** The chunks one after another (the one chunk itself when there is one); `totalBytes` when known. */
export function concatBytes(chunks: readonly Uint8Array[], totalBytes?: number): Uint8Array {
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
  const data = new Uint8Array(totalBytes ?? chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    data.set(chunk, offset);
    offset += chunk.length;
  }
  return data;
}
