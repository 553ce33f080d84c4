// The project's one home for msgpackr. Records are plain maps; Uint8Array values travel as msgpack
// bin and come back as Uint8Array (Buffer) views. Decoding garbage throws a CodecError, never
// anything else, so callers need one catch.

import { Packr } from 'msgpackr';
import { CodecError } from './validate.ts';

// No record structures or extensions: frames and disk records must decode in any process,
// without shared state, and a peer must not be able to make us build arbitrary classes.
// copyBuffers: decoded bytes must not pin the whole received frame (entries outlive it in the log).
const packr = new Packr({
  useRecords: false,
  moreTypes: false,
  mapsAsObjects: true,
  int64AsType: 'number',
  copyBuffers: true,
});

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function decode(bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes);
  } catch (error) {
    throw new CodecError(
      `undecodable msgpack (${bytes.length} bytes): ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}
