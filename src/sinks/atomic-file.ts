// A file written under a hidden temporary name and published whole, without replacing anything.
import { constants, type FileHandle, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { fault } from '../failpoint.js';
import { fsyncDir, moveNoClobber, publishStaged, type StagedFile } from '../fs/no-clobber.js';

export interface AtomicFileOptions {
  /** fsync the file before publishing and the folder after. Default true. */
  fsync?: boolean;
  /** Tag in the temporary name so a restarted instance can find and remove its own leftovers. */
  tempTag?: string;
  /** Compress what is written (each write becomes one gzip member; gunzip reads them as one stream). */
  gzip?: boolean;
}

/** The prefix of every temporary file sluice writes; `.sluice-<tag>-…` is a dotfile consumers skip. */
export const TEMP_PREFIX = '.sluice-';

export class AtomicFile {
  bytes = 0;
  private closed = false;

  private constructor(
    private readonly fh: FileHandle,
    readonly tempPath: string,
    private readonly dir: string,
    private readonly name: string,
    private readonly fsync: boolean,
    private readonly gzip: boolean,
  ) {}

  /** Creates `dir/.sluice-<tag>-<random>-<name>.tmp` (mode 0640, umask applies), exclusively. */
  static async create(dir: string, name: string, options: AtomicFileOptions = {}): Promise<AtomicFile> {
    const tempPath = join(dir, `${TEMP_PREFIX}${options.tempTag ?? 'x'}-${randomBytes(4).toString('hex')}-${name}.tmp`);
    const fh = await open(tempPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o640);
    return new AtomicFile(fh, tempPath, dir, name, options.fsync ?? true, options.gzip ?? false);
  }

  async write(data: string | Buffer): Promise<void> {
    fault('write');
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const buf = this.gzip ? gzipSync(bytes) : bytes;
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.fh.write(buf, off, buf.length - off);
      off += bytesWritten;
    }
    this.bytes += buf.length;
  }

  /** Flushes and closes: the content is durable under the temporary name, ready to be published. */
  async stage(): Promise<StagedFile> {
    if (this.fsync) await this.fh.sync();
    const { ino } = await this.fh.stat();
    await this.close();
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
    await this.close().catch(() => undefined);
    await unlink(this.tempPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}
