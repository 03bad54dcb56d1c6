// skipLines: drops a preamble of N physical lines (LF, CRLF or CR) from the start of a byte stream.

const LF = 0x0a;
const CR = 0x0d;

/**
 * Drops the first `lines` physical lines of a stream, quotes not considered (a preamble is not CSV).
 * Feed it every chunk; it returns what follows the preamble (possibly empty) once the preamble is past.
 * A preamble longer than the file leaves nothing.
 */
export class PreambleSkipper {
  private left: number;
  /** The last line skipped ended with a CR at a chunk's end: a LF opening the next chunk belongs to it. */
  private pendingCR = false;

  constructor(lines: number) {
    this.left = lines;
  }

  /** True while lines remain to skip (or a CRLF split at the preamble's end is unresolved). */
  get active(): boolean {
    return this.left > 0 || this.pendingCR;
  }

  /** The part of `chunk` after the preamble (the chunk itself once it is past). */
  take(chunk: Buffer): Buffer {
    let i = 0;
    if (this.pendingCR && chunk.length > 0) {
      this.pendingCR = false;
      if (chunk[0] === LF) i = 1;
    }
    for (; this.left > 0 && i < chunk.length; i++) {
      const b = chunk[i];
      if (b === LF) {
        this.left--;
      } else if (b === CR) {
        this.left--;
        if (i + 1 === chunk.length) this.pendingCR = true;
        else if (chunk[i + 1] === LF) i++;
      }
    }
    return i === 0 ? chunk : chunk.subarray(i);
  }
}
