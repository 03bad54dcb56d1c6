// The commit protocol that makes each file's outcome exactly-once across crashes. Once a file's outputs are
// durable under temporary names, a commit record is written beside its claim; from then on every step is
// idempotent and a restart rolls it forward: publish outputs, move the input, append the receipt, drop
// the record. Without a record, a claim is redone from the start (its temporary files are discarded).
import { closeSync, ftruncateSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { openAsync, syncFd, unlinkAsync } from '../fs/fd.js';
import { exists, fsyncDir, moveOnce, publishStaged, type StagedFile } from '../fs/no-clobber.js';
import { fitName } from '../fs/names.js';
import type { ClaimedFile, Claims } from '../inbox/claims.js';
import { AtomicFile, outputMode } from '../fs/atomic-file.js';
import { failpoint } from '../failpoint.js';
import type { Ledger, Receipt } from './ledger.js';
import { errorInfo, noRows, type ErrorInfo, type Outcome } from '../outcome.js';
import type { FileReport } from '../pipeline/process-file.js';

/** What a commit record says is staged: a file to publish by link, or a transaction whose COMMIT follows the record. */
export type StagedRecord =
  | { role: 'output' | 'rejects'; kind: 'file'; file: StagedFile; rows: number }
  | { role: 'output'; kind: 'transaction'; target: string; rows: number; bytes: number; table?: string };

export interface CommitRecord extends Outcome<ErrorInfo & { readBeforeFailure?: number }> {
  claimId: string;
  file: string;
  /** The claimed input's inode and size: how it is found again if it moved before a crash. */
  input: { ino: number; size: number; sha256?: string };
  staged: StagedRecord[];
  /**
   * Set with a transaction, as is `table` on its entry: what versions before 0.2 look for, so that one
   * started on this record after a downgrade still asks the database (this version reads `staged`).
   */
  db?: true;
  startedAt: string;
  durationMs: number;
}

/**
 * A transaction was open when this record was written: if the record exists, the load may or may not have
 * committed, and only its output can say (OutputDriver.remote.committed).
 */
export function holdsTransaction(record: Pick<CommitRecord, 'staged'>): boolean {
  return record.staged.some((s) => s.kind === 'transaction');
}

/** The commit record of a file's report: what is staged, the counts, the error. */
export function commitRecord(claimed: ClaimedFile, report: FileReport, startedAt: Date, input: { ino: number; size: number }): CommitRecord {
  const { output, rejects } = report.staged ?? {};
  const staged: StagedRecord[] = [];
  if (output?.kind === 'file') staged.push({ role: 'output', kind: 'file', file: output.file, rows: output.rows });
  if (output?.kind === 'transaction') {
    staged.push({ role: 'output', kind: 'transaction', target: output.target, table: output.target, rows: output.rows, bytes: output.bytes });
  }
  if (rejects !== undefined) staged.push({ role: 'rejects', kind: 'file', file: rejects.file, rows: rejects.rows });
  const err = report.error;
  return {
    claimId: claimed.claimId,
    file: claimed.name,
    pipeline: report.pipeline,
    outcome: report.outcome,
    input: { ino: input.ino, size: input.size, ...(report.sha256 === undefined ? {} : { sha256: report.sha256 }) },
    staged,
    ...(output?.kind === 'transaction' ? { db: true as const } : {}),
    rows: report.rows,
    startedAt: startedAt.toISOString(),
    durationMs: report.durationMs,
    ...(err === undefined ? {} : { error: { ...errorInfo(err), ...(report.readBeforeFailure ? { readBeforeFailure: report.readBeforeFailure } : {}) } }),
  };
}

/** The record of a file that fails after all, with `err` (refused at COMMIT, unrecoverable): nothing staged is kept. */
export function failedRecord(record: CommitRecord, err: ErrorInfo): CommitRecord {
  const { db: _db, ...rest } = record;
  return { ...rest, outcome: 'failed', staged: [], rows: noRows(), error: err };
}

/**
 * A record as read from disk. Records of versions before 0.2 had no `kind`: `{ file }` or `{ table }`
 * entries and a `db` flag; a crash across an upgrade still finds them.
 */
function normalize(raw: CommitRecord): CommitRecord {
  const record = { ...raw };
  type Old = { role: 'output' | 'rejects'; kind?: undefined; file?: StagedFile; table?: string; rows: number; bytes?: number };
  record.staged = (raw.staged as Array<StagedRecord | Old>).map((s): StagedRecord => {
    if (s.kind !== undefined) return s;
    if (s.table !== undefined) return { role: 'output', kind: 'transaction', target: s.table, rows: s.rows, bytes: s.bytes ?? 0 };
    return { role: s.role, kind: 'file', file: s.file!, rows: s.rows };
  });
  return record;
}

export interface Folders {
  archive: string;
  failed: string;
}

/**
 * A record file kept for reuse: after a commit, its record is renamed back to a spare name instead of being
 * removed, and the next commit overwrites it in place. Creating a file and freeing one that has data cost
 * about 450 µs of kernel time here (docs/small-files.md), a rename about 50. The name is a record temporary's
 * (`spare<n>.commit.json.tmp`), which a restart, an adopter and older versions all remove as never complete.
 */
interface Spare {
  fd: number;
  path: string;
  /** The file's size: records are padded to whole KiB, so most writes leave it unchanged. */
  size: number;
}

/** Spares kept at most (more files than this committing at once: the extra record files are removed). */
const MAX_SPARES = 64;

export class Committer {
  /** Spare record files, free. */
  private readonly spares: Spare[] = [];
  /** Record files of claims being committed (renamed from a spare), by claim id. */
  private readonly held = new Map<string, Spare>();
  private spareCount = 0;

  constructor(
    private readonly claims: Claims,
    private readonly ledger: Ledger,
    private readonly folders: Folders,
    private readonly fsync: boolean,
  ) {}

  recordPath(c: ClaimedFile): string {
    return join(this.claims.dir, `${c.claimId}.commit.json`);
  }

  /** Writes the commit record (the point of no return), then finishes. */
  /**
   * `beforeFinish` runs once the record is durable: a database COMMIT goes there, so that a crash before it
   * leaves a record that recovery resolves by asking the database.
   */
  async commit(c: ClaimedFile, record: CommitRecord, beforeFinish?: () => Promise<void>): Promise<Receipt> {
    const path = this.recordPath(c);
    // a retry: the record written by the attempt before is replaced by the rename below
    this.drop(this.held.get(c.claimId));
    this.held.delete(c.claimId);
    const spare = this.spares.pop() ?? (await this.newSpare());
    try {
      // padded with spaces (JSON allows them) to whole KiB: an overwrite of the same size changes no metadata,
      // so its fdatasync need not wait for a journal commit
      const json = JSON.stringify(record);
      const size = Math.ceil((Buffer.byteLength(json) + 1) / 1024) * 1024;
      const buf = Buffer.alloc(size, 0x20);
      buf.write(json);
      buf[size - 1] = 0x0a;
      for (let off = 0; off < size; ) off += writeSync(spare.fd, buf, off, size - off, off);
      if (spare.size !== size) ftruncateSync(spare.fd, size);
      spare.size = size;
      if (this.fsync) await syncFd(spare.fd, true);
    } catch (err) {
      this.drop(spare, true);
      throw err;
    }
    try {
      renameSync(spare.path, path);
    } catch (err) {
      this.drop(spare, true);
      throw err;
    }
    this.held.set(c.claimId, spare);
    if (this.fsync) await fsyncDir(this.claims.dir);
    failpoint('after-commit-record');
    if (beforeFinish !== undefined) {
      await beforeFinish();
      failpoint('after-db-commit');
    }
    return this.finish(c, record, true);
  }

  /** Removes the spare record files and closes those of records still pending (a clean stop). */
  close(): void {
    for (const s of this.spares.splice(0)) {
      this.drop(s);
      // at once (a few files): the claim folder is removed next, if empty
      try {
        unlinkSync(s.path);
      } catch {
        // gone already; a restart removes it otherwise
      }
    }
    for (const s of this.held.values()) this.drop(s);
    this.held.clear();
  }

  private async newSpare(): Promise<Spare> {
    const path = join(this.claims.dir, `spare${(this.spareCount++).toString(36)}.commit.json.tmp`);
    return { fd: await openAsync(path, 'w', 0o640), path, size: 0 };
  }

  /** Closes a spare's file (and with `remove`, removes it, best effort). */
  private drop(s: Spare | undefined, remove = false): void {
    if (s === undefined) return;
    try {
      closeSync(s.fd);
    } catch {
      // already closed
    }
    if (remove) unlinkAsync(s.path).catch(() => undefined);
  }

  /** The claim's record file is done with: renamed back to a spare if it was one, else removed. */
  private async retireRecord(c: ClaimedFile): Promise<void> {
    const path = this.recordPath(c);
    const spare = this.held.get(c.claimId);
    this.held.delete(c.claimId);
    if (spare !== undefined && this.spares.length < MAX_SPARES) {
      try {
        renameSync(path, spare.path);
        this.spares.push(spare);
        return;
      } catch {
        // removed below
      }
    }
    this.drop(spare);
    await unlinkAsync(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  /** Drops a record whose database load did not commit, and its staged files: the claim is redone. */
  async discard(c: ClaimedFile, record: Pick<CommitRecord, 'staged'>): Promise<void> {
    for (const s of record.staged) if (s.kind === 'file') await unlink(s.file.tmp).catch(() => undefined);
    this.drop(this.held.get(c.claimId));
    this.held.delete(c.claimId);
    await unlink(this.recordPath(c)).catch(() => undefined);
  }

  /** A commit record left by a crash, if any. */
  async pending(c: ClaimedFile): Promise<CommitRecord | undefined> {
    try {
      return normalize(JSON.parse(await readFile(this.recordPath(c), 'utf8')));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * Rolls a commit forward; every step may already have happened, and is then recognised and skipped.
   * `fresh`: the record was written by this very run, so no receipt can exist yet (no ledger lookup).
   */
  async finish(c: ClaimedFile, record: CommitRecord, fresh = false): Promise<Receipt> {
    const outputs: Receipt['outputs'] = [];
    for (const s of record.staged) {
      if (s.kind === 'transaction') {
        outputs.push({ role: s.role, path: s.target, rows: s.rows, bytes: s.bytes });
        continue;
      }
      const path = await publishStaged(s.file);
      outputs.push({ role: s.role, path, rows: s.rows, bytes: s.file.bytes });
    }
    if (this.fsync) for (const dir of new Set(record.staged.flatMap((s) => (s.kind === 'file' ? [s.file.dir] : [])))) await fsyncDir(dir);
    failpoint('after-publish');
    const dest = record.outcome === 'succeeded' ? this.folders.archive : this.folders.failed;
    const input = await moveOnce(c.path, dest, c.name, record.input.ino);
    if (this.fsync) await fsyncDir(dest);
    failpoint('after-move');
    if (record.outcome === 'failed' && input !== undefined) await this.writeErrorFile(input, c, record);
    const receipt: Receipt = {
      claimId: c.claimId,
      instance: this.claims.instanceId,
      file: c.name,
      size: record.input.size,
      ...(record.input.sha256 === undefined ? {} : { sha256: record.input.sha256 }),
      pipeline: record.pipeline,
      outcome: record.outcome,
      outputs,
      input: input ?? '(moved; not found)',
      rows: record.rows,
      startedAt: record.startedAt,
      finishedAt: new Date().toISOString(),
      durationMs: Math.round(record.durationMs),
      ...(record.error === undefined ? {} : { error: receiptError(record.error) }),
    };
    if (fresh || !(await this.ledger.has(c.claimId))) await this.ledger.append(receipt);
    failpoint('after-receipt');
    this.claims.forget(c);
    await this.retireRecord(c);
    return receipt;
  }

  private async writeErrorFile(input: string, c: ClaimedFile, record: CommitRecord): Promise<void> {
    // beside the input, within NAME_MAX (a long name is shortened; the body has the whole name)
    const name = fitName(`${basename(input)}.error.json`);
    const path = join(dirname(input), name);
    if (await exists(path)) return;
    const body = {
      file: c.name,
      ...(c.nameHex === undefined ? {} : { nameBytes: c.nameHex }),
      ...record.error,
      pipeline: record.pipeline,
      claimId: c.claimId,
      instance: this.claims.instanceId,
      time: new Date().toISOString(),
    };
    const file = await AtomicFile.create(dirname(input), name, {
      fsync: this.fsync,
      tempTag: `${this.claims.instanceId}~${c.claimId}`,
      mode: outputMode(input),
    });
    try {
      await file.write(`${JSON.stringify(body, null, 2)}\n`);
      await file.commit();
    } catch (err) {
      await file.abort();
      throw err;
    }
  }
}

/** What a receipt keeps of an error: its code, message and line (as receipts always had). */
function receiptError(e: ErrorInfo): Receipt['error'] {
  return { code: e.code, message: e.message, ...(e.line === undefined ? {} : { line: e.line }) };
}
