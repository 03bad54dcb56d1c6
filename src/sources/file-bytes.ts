// The source: a file's bytes as a cold Observable of chunks, read only while the flow gate has credit.
import { constants, type FileHandle, open } from 'node:fs/promises';
import { Observable } from 'rxjs';
import type { FlowGate } from '../flow-gate.js';

export interface FileBytesOptions {
  /** Bytes per read. Default 64 KiB. */
  chunkSize?: number;
  /** When given, no read starts while the gate is closed: this is what bounds memory. */
  gate?: FlowGate;
  /** Called with the size of each chunk read (for byte counters). */
  onBytes?: (n: number) => void;
}

/**
 * Reads a file (a path, opened with O_NOFOLLOW, or an open FileHandle that stays the caller's to close)
 * chunk by chunk. Unsubscribing stops the reading.
 *
 * @example fileBytes('orders.csv').pipe(parseCsv(), dropNulls({ how: 'any' }))
 */
export function fileBytes(file: string | FileHandle, options: FileBytesOptions = {}): Observable<Buffer> {
  const chunkSize = options.chunkSize ?? 64 * 1024;
  const { gate, onBytes } = options;
  return new Observable<Buffer>((subscriber) => {
    let stopped = false;
    const run = async (): Promise<void> => {
      const fh = typeof file === 'string' ? await open(file, constants.O_RDONLY | constants.O_NOFOLLOW) : file;
      try {
        for (;;) {
          if (gate !== undefined && !gate.open) await gate.wait();
          if (stopped) return;
          const buf = Buffer.allocUnsafe(chunkSize);
          const { bytesRead } = await fh.read(buf, 0, chunkSize, null);
          if (stopped) return;
          if (bytesRead === 0) break;
          onBytes?.(bytesRead);
          subscriber.next(bytesRead < chunkSize ? buf.subarray(0, bytesRead) : buf);
        }
        subscriber.complete();
      } finally {
        if (typeof file === 'string') await fh.close();
      }
    };
    run().catch((err: unknown) => subscriber.error(err));
    return () => {
      stopped = true;
    };
  });
}
