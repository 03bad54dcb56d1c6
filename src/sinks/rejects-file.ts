// The rejects file: `line,code,message,raw` for every refused record, raw kept byte for byte.
import { csvField, rawField } from '../csv/fields.js';
import type { FlowGate } from '../flow-gate.js';
import type { Rejection } from '../row.js';
import { AtomicFile, type AtomicFileOptions } from '../fs/atomic-file.js';
import type { SinkResult, StagedFileOutput } from '../outputs/driver.js';

const HEADER = Buffer.from('line,code,message,raw\n');
const FLUSH_BYTES = 64 * 1024;

/** Collects rejections and writes them to `dir/name` (atomically, only if there are any). */
export class RejectsFile {
  private file: Promise<AtomicFile> | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingRows = 0;
  private writing: Promise<void> = Promise.resolve();
  private failure: unknown;
  rows = 0;

  constructor(
    private readonly dir: string,
    private readonly name: string,
    private readonly options: AtomicFileOptions & { gate?: FlowGate } = {},
  ) {
    // a source about to wait for credit these rejects hold: write them now
    options.gate?.onStall(() => this.flush());
  }

  add(r: Rejection): void {
    const line = Buffer.from(`${r.line},${csvField(r.code)},${csvField(r.message)},`);
    this.pending.push(line, rawField(r.raw), Buffer.from('\n'));
    this.pendingBytes += line.length + r.raw.length + 3;
    this.pendingRows++;
    this.rows++;
    this.options.gate?.take(1);
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
  }

  private flush(): void {
    if (this.pendingRows === 0) return;
    const data = Buffer.concat(this.pending);
    const n = this.pendingRows;
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingRows = 0;
    this.writing = this.writing.then(async () => {
      try {
        if (this.failure !== undefined) return;
        if (this.file === undefined) {
          this.file = AtomicFile.create(this.dir, this.name, this.options);
          await (await this.file).write(HEADER);
        }
        await (await this.file).write(data);
      } catch (err) {
        this.failure ??= err;
      } finally {
        this.options.gate?.give(n);
      }
    });
  }

  /** Makes the rejects file durable (not yet visible), if any record was rejected. */
  async stage(): Promise<StagedFileOutput | undefined> {
    const file = await this.written();
    return file === undefined ? undefined : { kind: 'file', file: await file.stage(), rows: this.rows, bytes: file.bytes };
  }

  /** Publishes the rejects file if any record was rejected. */
  async commit(): Promise<SinkResult> {
    const file = await this.written();
    return file === undefined ? { rows: 0, bytes: 0 } : { path: await file.commit(), rows: this.rows, bytes: file.bytes };
  }

  /** Writes what is pending; the file (undefined when nothing was rejected), or the write's failure. */
  private async written(): Promise<AtomicFile | undefined> {
    this.flush();
    await this.writing;
    if (this.failure !== undefined) throw this.failure;
    return this.file === undefined ? undefined : this.file;
  }

  async abort(): Promise<void> {
    await this.writing;
    const file = await this.file?.catch(() => undefined);
    await file?.abort();
  }
}
