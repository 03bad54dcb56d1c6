// Reused memory for encoded output. On this project's machine a page of fresh memory costs more to fault
// in than to fill: encoding 100 MB of rows with Buffer.from (a new buffer per batch) took 130-430 ms, into
// a reused buffer 7-13 ms (README Performance). Slabs are recycled: a file sink encodes into one it keeps;
// a worker's slices encode into slabs that go to the main thread and come back once written.

/** The size of a slab of a slice's output (a batch's text larger than this gets a slab of its own size). */
export const SLAB_BYTES = 1024 * 1024;

/** Free slabs of this thread, to be given out again. */
const free: ArrayBuffer[] = [];
/** At most this many free slabs are kept (the rest are left to the garbage collector). */
const KEEP = 8;
/** A slab larger than this (made for one large batch) is not kept: eight of them could hold much memory. */
const KEEP_MAX_BYTES = 4 * SLAB_BYTES;

/** A slab of at least `bytes` bytes, reused if one is free. */
export function takeSlab(bytes: number): ArrayBuffer {
  for (let i = free.length - 1; i >= 0; i--) {
    if (free[i]!.byteLength >= bytes) return free.splice(i, 1)[0]!;
  }
  return new ArrayBuffer(Math.max(bytes, SLAB_BYTES));
}

/** Slabs no longer used (written out, or come back from the main thread). */
export function giveSlabs(slabs: Iterable<ArrayBuffer>): void {
  for (const s of slabs) if (free.length < KEEP && s.byteLength > 0 && s.byteLength <= KEEP_MAX_BYTES) free.push(s);
}

/**
 * Encodes text as UTF-8 into a buffer this caller reuses: `scratch` if large enough, else a slab (given
 * back here if `scratch` was one too small). Returns the bytes (a view valid until the next call with the
 * same scratch) and the scratch to keep; the caller gives it back with `giveSlabs` when done writing.
 * Slabs and not a buffer of its own per file: 10,000 small files each allocating one made the garbage
 * collector run for the external memory.
 */
export function encodeInto(text: string, scratch: Buffer | undefined): { bytes: Buffer; scratch: Buffer } {
  const need = Buffer.byteLength(text);
  let buf = scratch;
  if (buf === undefined || buf.length < need) {
    if (buf !== undefined) giveSlabs([buf.buffer as ArrayBuffer]);
    buf = Buffer.from(takeSlab(need));
  }
  const n = buf.write(text, 0, 'utf8');
  return { bytes: buf.subarray(0, n), scratch: buf };
}
