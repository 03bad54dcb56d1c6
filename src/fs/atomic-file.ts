// A file written under a hidden temporary name and published whole, without replacing anything.
import { closeSync, constants, fstatSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fault } from '../failpoint.js';
import { openAsync, syncFd, unlinkAsync, writeAll } from './fd.js';
import { fsyncDir, publishStaged, type StagedFile } from './no-clobber.js';
import { fitName, NAME_MAX } from './names.js';
import { randomHex } from '../random.js';
import { encodeInto, giveSlabs, takeSlab } from './slabs.js';

export interface AtomicFileOptions {
  /** fsync the file before publishing and the folder after. Default true. */
  fsync?: boolean;
  /** Tag in the temporary name so a restarted instance can find and remove its own leftovers. */
  tempTag?: string;
  /** Compress what is written (each write becomes one gzip member; gunzip reads them as one stream). */
  gzip?: boolean;
  /** The file's mode (the umask applies). Default 0640. */
  mode?: number;
  /**
   * Write into this buffer instead of a file: a worker's slice of a large file, whose bytes the main thread
   * appends to the real output in order. Nothing is created on disk.
   */
  memory?: MemoryOutput;
}

/** What a file sink writes into: a file published whole (AtomicFile), or memory (a slice of a split file). */
export interface OutputFile {
  readonly bytes: number;
  write(data: string | Buffer): Promise<void>;
  stage(): Promise<StagedFile>;
  commit(): Promise<string>;
  abort(): Promise<void>;
}

/** `options.memory` if given, else a new AtomicFile in `dir`. */
export function openOutputFile(dir: string, name: string, options: AtomicFileOptions = {}): Promise<OutputFile> {
  return options.memory !== undefined ? Promise.resolve(options.memory) : AtomicFile.create(dir, name, options);
}

/**
 * The bytes of a slice, kept in memory: encoded into reused slabs (fs/slabs.ts), which go to the main
 * thread whole (transferred, not copied) and come back once written. It can be neither staged nor
 * published: the main thread appends its bytes to the real output.
 */
export class MemoryOutput implements OutputFile {
  bytes = 0;
  private done: Uint8Array[] = [];
  private cur: Buffer | undefined;
  private used = 0;

  async write(data: string | Buffer): Promise<void> {
    const need = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (need === 0) return;
    if (this.cur === undefined || this.cur.length - this.used < need) {
      this.seal();
      this.cur = Buffer.from(takeSlab(need));
      this.used = 0;
    }
    const n = typeof data === 'string' ? this.cur.write(data, this.used, 'utf8') : data.copy(this.cur, this.used);
    this.used += n;
    this.bytes += n;
  }

  private seal(): void {
    if (this.cur === undefined) return;
    if (this.used > 0) this.done.push(new Uint8Array(this.cur.buffer, 0, this.used));
    else giveSlabs([this.cur.buffer as ArrayBuffer]);
    this.cur = undefined;
  }

  /** Everything written, as views of whole slabs (each can be transferred to another thread). */
  take(): Uint8Array[] {
    this.seal();
    const d = this.done;
    this.done = [];
    return d;
  }

  stage(): Promise<StagedFile> {
    return Promise.reject(new Error('a slice in memory is not staged: its bytes are appended to the output'));
  }

  commit(): Promise<string> {
    return this.stage().then(() => '');
  }

  async abort(): Promise<void> {
    giveSlabs(this.take().map((v) => v.buffer as ArrayBuffer));
  }
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

export class AtomicFile implements OutputFile {
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
    if (this.closed || this.aborting) throw new Error(`${this.tempPath} is closed`);
    let buf: Buffer;
    // text is encoded into a buffer kept for the next write, unless a write still uses it
    const reuse = typeof data === 'string' && !this.gzip && !this.writing;
    if (reuse) {
      const e = encodeInto(data, this.scratch);
      this.scratch = e.scratch;
      buf = e.bytes;
    } else {
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      buf = this.gzip ? gzipSync(bytes) : bytes;
    }
    if (reuse) this.writing = true;
    try {
      await this.track(writeAll(this.fd, buf));
    } finally {
      if (reuse) this.writing = false;
    }
    this.bytes += buf.length;
  }

  /** The buffer text is encoded into (fs/slabs.ts), and whether a write is using it now. */
  private scratch: Buffer | undefined;
  private writing = false;
  private aborting = false;

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
    // no write starts once an abort has (it would land on a closed, maybe reused, fd)
    this.aborting = true;
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
    // no write is using it once closed (stage and abort wait for the last)
    if (this.scratch !== undefined) giveSlabs([this.scratch.buffer as ArrayBuffer]);
    this.scratch = undefined;
    closeSync(this.fd);
  }
}
