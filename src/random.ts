// Random bits for unique names, drawn from a pool: one call into the system's generator per 4 KiB rather
// than one per name (each call cost about 20 µs of the main thread for every small file).
import { randomFillSync } from 'node:crypto';

const pool = Buffer.alloc(4096);
let used = pool.length;

function take(n: number): Buffer {
  if (used + n > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const b = pool.subarray(used, used + n);
  used += n;
  return b;
}

/** `digits` random hexadecimal digits (even). */
export function randomHex(digits: number): string {
  return take(digits / 2).toString('hex');
}

/** A random 32-bit unsigned integer. */
export function randomUint32(): number {
  return take(4).readUInt32BE(0);
}
