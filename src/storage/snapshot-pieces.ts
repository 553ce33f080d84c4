// Cuts a snapshot's bytes, held as slices (the model's, or one array), into pieces of a fixed size
// for writing, copying only where a piece spans two slices. Pure; used by snapshot-files.ts.

import { concatBytes } from '../base/bytes.ts';

/** `slices` cut into pieces of `pieceBytes` (the last one shorter; one empty piece for no bytes), copied only where a piece spans slices. */
export function* snapshotPieces(slices: readonly Uint8Array[], pieceBytes: number): Generator<Uint8Array, void> {
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let yielded = false;
  for (const slice of slices) {
    let at = 0;
    while (at < slice.length) {
      const take = Math.min(pieceBytes - pendingBytes, slice.length - at);
      if (pendingBytes === 0 && take === pieceBytes) {
        yield slice.subarray(at, at + take);
        yielded = true;
      } else {
        pending.push(slice.subarray(at, at + take));
        pendingBytes += take;
        if (pendingBytes === pieceBytes) {
          yield concatBytes(pending, pendingBytes);
          yielded = true;
          pending = [];
          pendingBytes = 0;
        }
      }
      at += take;
    }
  }
  if (pendingBytes > 0 || !yielded) yield concatBytes(pending, pendingBytes);
}
