// Small byte arrays carved from shared slabs. A Uint8Array of more than 64 bytes is an off-heap
// allocation of its own in V8 (malloc, external-memory accounting, a sweeper entry), about 1 us
// each here; a view into a slab is an ordinary heap object. A view keeps its whole slab alive, so
// this is for bytes that die together in the order they were made: log entries, which live until
// the compaction that covers them. Not for values a model keeps for as long as their key lives.

const slabBytes = 64 * 1024;
/** Larger arrays get their own allocation (a slab would waste more than it saves). */
const pooledBytesMax = 4096;

let slab = new ArrayBuffer(slabBytes);
let used = 0;

/** A zero-filled array of `length` bytes (every region of a slab is handed out once). */
export function slabBytesOf(length: number): Uint8Array {
  if (length > pooledBytesMax) return new Uint8Array(length);
  if (used + length > slabBytes) {
    slab = new ArrayBuffer(slabBytes);
    used = 0;
  }
  const view = new Uint8Array(slab, used, length);
  used += (length + 7) & ~7;
  return view;
}
