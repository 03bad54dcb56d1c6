// A file written under a hidden temporary name and published whole, without replacing anything.
import { closeSync, constants, fstatSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fault } from '../failpoint.js';
import { openAsync, syncFd, unlinkAsync, writeAll } from './fd.js';
import { fsyncDir, publishStaged, type StagedFile } from './no-clobber.js';
import { fitName, NAME_MAX } from './names.js';
import { randomHex } from '../random.js';

export interface AtomicFileOptions {
  /** fsync the file before publishing and the folder after. Default true. */
  fsync?: boolean;
  /** Tag in the temporary name so a restarted instance can find and remove its own leftovers. */
  tempTag?: string;
  /** Compress what is written (each write becomes one gzip member; gunzip reads them as one stream). */
  gzip?: boolean;
  /** The file's mode (the umask applies). Default 0640. */
  mode?: number;
}

/** The mode outputs get from an input: its permission bits, at most 0640 (never more readable than it). */
export function outputMode(inputPath: string): number {
  try {
    const st = lstatSync(inputPath);
    return st.isFile() ? st.mode & 0o640 : 0o640;
  } catch {
    return 0o640; // opening it will fail, with its own error
  }
}

/** The prefix of every temporary file sluice writes; `.sluice-<tag>-…` is a dotfile consumers skip. */
export const TEMP_PREFIX = '.sluice-';

export class AtomicFile {
  bytes = 0;
  private closed = false;

  private constructor(
    private readonly fd: number,
    readonly tempPath: string,
    private readonly dir: string,
    private readonly name: string,
    private readonly fsync: boolean,
    private readonly gzip: boolean,
  ) {}

  /** Creates `dir/.sluice-<tag>-<random>-<name>.tmp` (mode 0640 unless told, umask applies), exclusively. */
  static async create(dir: string, name: string, options: AtomicFileOptions = {}): Promise<AtomicFile> {
    // the name is only there for people looking at the folder: shortened to keep the whole within NAME_MAX
    const prefix = `${TEMP_PREFIX}${options.tempTag ?? 'x'}-${randomHex(8)}-`;
    const tempPath = join(dir, `${prefix}${fitName(name, NAME_MAX - Buffer.byteLength(prefix) - 4)}.tmp`);
    const fd = await openAsync(tempPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, options.mode ?? 0o640);
    return new AtomicFile(fd, tempPath, dir, name, options.fsync ?? true, options.gzip ?? false);
  }

  async write(data: string | Buffer): Promise<void> {
    fault('write');
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const buf = this.gzip ? gzipSync(bytes) : bytes;
    if (this.closed) throw new Error(`${this.tempPath} is closed`);
    await this.track(writeAll(this.fd, buf));
    this.bytes += buf.length;
  }

  /** The fd's operation in the thread pool, if any: closing waits for it (else it could hit a reused fd). */
  private inFlight: Promise<unknown> = Promise.resolve();

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight = p;
    return p;
  }

  /** Flushes and closes: the content is durable under the temporary name, ready to be published. */
  async stage(): Promise<StagedFile> {
    if (this.fsync) await this.track(syncFd(this.fd));
    const { ino } = fstatSync(this.fd);
    this.close();
    return { tmp: this.tempPath, dir: this.dir, name: this.name, ino, bytes: this.bytes };
  }

  /** Stages and publishes under `name` (or `name-1…` if taken). Returns the final path. */
  async commit(): Promise<string> {
    const staged = await this.stage();
    const final = await publishStaged(staged);
    if (this.fsync) await fsyncDir(this.dir);
    return final;
  }

  /** Closes and removes the temporary file. Safe to call after a failed commit or twice. */
  async abort(): Promise<void> {
    await this.inFlight.catch(() => undefined);
    try {
      this.close();
    } catch {
      // closing failed: the file is removed all the same
    }
    await unlinkAsync(this.tempPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}
