// Writing through plain file descriptors. Small writes land in the page cache in microseconds, so they are
// synchronous system calls: a trip through libuv's thread pool would cost several times more CPU than the
// write (docs/throughput.md). Large writes and fsync, which can wait on the disk, stay asynchronous.
import { fdatasync, fsync, open, unlink, write, writeSync } from 'node:fs';

/** Writes up to this many bytes in place; more go through the thread pool. */
export const SYNC_WRITE_MAX = 64 * 1024;

/** Writes all of `buf` at the file's position (O_APPEND: at its end, in one call if it is small). */
export async function writeAll(fd: number, buf: Buffer): Promise<void> {
  let off = 0;
  if (buf.length <= SYNC_WRITE_MAX) {
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    return;
  }
  while (off < buf.length) off += await writeAsync(fd, buf, off);
}

function writeAsync(fd: number, buf: Buffer, off: number): Promise<number> {
  return new Promise((resolve, reject) => write(fd, buf, off, buf.length - off, null, (err, n) => (err === null ? resolve(n) : reject(err))));
}

/** fsync (or, with `dataOnly`, fdatasync) without blocking the event loop. */
export function syncFd(fd: number, dataOnly = false): Promise<void> {
  return new Promise((resolve, reject) => (dataOnly ? fdatasync : fsync)(fd, (err) => (err === null ? resolve() : reject(err))));
}

/**
 * Group commit for one file or folder: a caller needs a sync that starts after its own change, so callers
 * arriving while a sync runs share the next one. Many files committing at once cost a few syncs, not one each.
 */
export class SyncGroup {
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  constructor(private readonly doSync: () => Promise<void>) {}

  sync(): Promise<void> {
    // a queued sync has not started yet, so it covers this caller too (even if the running one just ended)
    if (this.next !== undefined) return this.next;
    if (this.running === undefined) return this.start();
    this.next = this.running.then(
      () => this.start(),
      () => this.start(),
    );
    return this.next;
  }

  /** Resolves once no sync is running or queued. */
  async idle(): Promise<void> {
    while (this.running !== undefined || this.next !== undefined) await Promise.allSettled([this.running, this.next]);
  }

  private start(): Promise<void> {
    this.next = undefined;
    let p: Promise<void>;
    try {
      p = this.doSync();
    } catch (err) {
      p = Promise.reject(err);
    }
    this.running = p;
    const clear = (): void => {
      if (this.running === p) this.running = undefined;
    };
    p.then(clear, clear);
    return p;
  }
}

/**
 * Opens (creating: `flags` with O_CREAT) through the thread pool. Creating a file is the one name operation
 * that is slow here (about 330 µs of kernel time on this project's machine, against 10 µs for a link or a
 * rename), so it runs beside the main thread rather than on it.
 */
export function openAsync(path: string, flags: number | string, mode?: number): Promise<number> {
  return new Promise((resolve, reject) => open(path, flags, mode, (err, fd) => (err === null ? resolve(fd) : reject(err))));
}

/** Removes a file through the thread pool: freeing the last link of a file's blocks costs about 120 µs. */
export function unlinkAsync(path: string): Promise<void> {
  return new Promise((resolve, reject) => unlink(path, (err) => (err === null ? resolve() : reject(err))));
}
