// The source: a file's bytes as a cold Observable of chunks, read only while the flow gate has credit.
import { once } from 'node:events';
import { closeSync, constants, fstatSync, openSync, read, readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { createGunzip, type Gunzip } from 'node:zlib';
import { Observable, type Subscriber } from 'rxjs';
import { SluiceError } from '../errors.js';
import type { FlowGate } from '../flow-gate.js';

export interface FileBytesOptions {
  /** Bytes per read. Default 64 KiB (larger chunks measured slower: longer strings to decode and slice). */
  chunkSize?: number;
  /** When given, no read starts while the gate is closed: this is what bounds memory. */
  gate?: FlowGate;
  /** Called with each chunk as read from disk, before decompression (byte counters, hashing). */
  onRead?: (chunk: Buffer) => void;
  /** `auto` (default): a file starting with the gzip magic bytes is decompressed as a stream. */
  decompress?: 'auto' | 'none';
  /**
   * Called with each read as it is issued. A caller that closes the file itself must first wait for the
   * last one: a read still queued in the thread pool would otherwise hit the next file given that fd.
   */
  onReadIssued?: (read: Promise<unknown>) => void;
  /** Called when the end of the file was reached (not when reading stopped early: an error, unsubscribing). */
  onEnd?: () => void;
}

/** An open file descriptor (the caller's to close) and the size fstat gave when it was opened. */
export interface OpenFile {
  fd: number;
  size: number;
  /** Read only the `size` bytes from this offset (a slice of a file), at explicit positions. */
  start?: number;
}

const EMPTY = Buffer.alloc(0);

/** Bytes per read unless `chunkSize` says otherwise. */
export const DEFAULT_CHUNK_SIZE = 64 * 1024;

/**
 * Reads a file (a path, opened with O_NOFOLLOW, or an open file that stays the caller's to close) chunk by
 * chunk. Unsubscribing stops the reading. A file smaller than a chunk is read in one synchronous call
 * (microseconds from the page cache, where a thread-pool round trip costs more): a read that returns less
 * than asked is its end, so the caller should check that the bytes read match the size (process-file does).
 * An open file is read from its current position.
 *
 * @example fileBytes('orders.csv').pipe(parseCsv(), dropNulls({ how: 'any' }))
 */
export function fileBytes(file: string | FileHandle | OpenFile, options: FileBytesOptions = {}): Observable<Buffer> {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const { gate, onRead } = options;
  const auto = (options.decompress ?? 'auto') === 'auto';
  return new Observable<Buffer>((subscriber) => {
    let stopped = false;
    const run = async (): Promise<void> => {
      let owned: number | undefined;
      let source: FileHandle | OpenFile;
      if (typeof file === 'string') {
        owned = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
        try {
          source = { fd: owned, size: fstatSync(owned).size };
        } catch (err) {
          closeSync(owned);
          throw err;
        }
      } else source = file;
      // a FileHandle has an fd too, but no size
      const fd = typeof (source as Partial<OpenFile>).size === 'number' ? (source as OpenFile) : undefined;
      // a small file's first read asks for its size and one byte more (at least two, for the gzip check):
      // a short read is its end; a full one means it grew, and reading goes on by chunks
      let small = fd !== undefined && fd.size < chunkSize;
      let ended = false;
      // a slice: explicit positions, and its end is `size` bytes on, whatever the file holds beyond
      let pos = fd?.start;
      const end = pos === undefined ? undefined : pos + fd!.size;
      let gunzip: Gunzip | undefined;
      const readNext = async (): Promise<Buffer> => {
        if (ended) return EMPTY;
        let bytesRead: number;
        let want = chunkSize;
        let buf: Buffer;
        if (end !== undefined) {
          want = Math.min(chunkSize, end - pos!);
          if (want <= 0) return EMPTY;
        }
        if (small && fd !== undefined) {
          small = false;
          if (end === undefined) want = Math.max(fd.size + 1, 2);
          buf = Buffer.allocUnsafe(want);
          bytesRead = readSync(fd.fd, buf, 0, want, pos ?? null);
          ended = bytesRead < want || end !== undefined;
        } else if (fd !== undefined) {
          buf = Buffer.allocUnsafe(want);
          const at = pos ?? null;
          bytesRead = await new Promise<number>((resolve, reject) => read(fd.fd, buf, 0, want, at, (err, n) => (err === null ? resolve(n) : reject(err))));
          // a slice cut short (the file shrank) ends there: the size check after reading catches it
          if (end !== undefined && bytesRead < want) ended = true;
        } else {
          buf = Buffer.allocUnsafe(want);
          ({ bytesRead } = await (source as FileHandle).read(buf, 0, want, null));
        }
        if (pos !== undefined) pos += bytesRead;
        return bytesRead < want ? buf.subarray(0, bytesRead) : buf;
      };
      const issue = (): Promise<Buffer> => {
        const p = readNext();
        options.onReadIssued?.(p);
        return p;
      };
      // one read ahead, issued while the current chunk is parsed, so disk and CPU overlap
      let ahead: Promise<Buffer> | undefined;
      try {
        for (let first = true; ; first = false) {
          if (gate !== undefined && !gate.open) await gate.wait();
          if (stopped) return;
          const chunk = await (ahead ?? issue());
          ahead = undefined;
          if (stopped) return;
          if (chunk.length === 0) {
            options.onEnd?.();
            break;
          }
          if (gate === undefined || gate.open) {
            ahead = issue();
            ahead.catch(() => undefined); // an abort may close the file first; that read's failure is moot
          }
          onRead?.(chunk);
          if (first && auto && chunk.length >= 2 && chunk[0] === 0x1f && chunk[1] === 0x8b) {
            gunzip = inflating(subscriber, gate, () => stopped);
          }
          if (gunzip === undefined) subscriber.next(chunk);
          else if (!gunzip.write(chunk)) await once(gunzip, 'drain');
        }
        if (gunzip === undefined) subscriber.complete();
        else {
          gunzip.end();
          await once(gunzip, 'end');
        }
      } finally {
        await ahead?.catch(() => undefined);
        if (owned !== undefined) closeSync(owned);
      }
    };
    run().catch((err: unknown) => subscriber.error(err));
    return () => {
      stopped = true;
    };
  });
}

/** A gunzip stream whose output goes to the subscriber, paused while the flow gate is closed. */
function inflating(subscriber: Subscriber<Buffer>, gate: FlowGate | undefined, stopped: () => boolean): Gunzip {
  const z = createGunzip();
  z.on('data', (b: Buffer) => {
    if (stopped()) return;
    subscriber.next(b);
    if (gate !== undefined && !gate.open) {
      z.pause();
      void gate.wait().then(() => z.resume());
    }
  });
  z.on('end', () => subscriber.complete());
  z.on('error', (err) => subscriber.error(new SluiceError('GZIP_INVALID', `the gzip data is damaged: ${err.message}`, { cause: err })));
  return z;
}
