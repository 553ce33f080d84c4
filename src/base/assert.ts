// Programmer-error checks, kept on in production (TigerBeetle style). A failed assertion means the
// code is wrong, not the input: it throws and the process is expected to crash. Input from disk,
// network or HTTP is validated at the edge with error codes instead, never with assert.

export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

export function assert(condition: boolean, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function unreachable(value: never, message = 'unreachable'): never {
  throw new AssertionError(`${message}: ${JSON.stringify(value)}`);
}
