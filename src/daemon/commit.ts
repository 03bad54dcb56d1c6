// The commit protocol that makes each file's outcome exactly-once across crashes. Once a file's outputs are
// durable under temporary names, a commit record is written beside its claim; from then on every step is
// idempotent and a restart rolls it forward: publish outputs, move the input, append the receipt, drop
// the record. Without a record, a claim is redone from the start (its temporary files are discarded).
import { closeSync, renameSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { openAsync, syncFd, unlinkAsync, writeAll } from '../fs/fd.js';
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

export class Committer {
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
    const tmp = `${path}.tmp`;
    const fd = await openAsync(tmp, 'w', 0o640);
    try {
      await writeAll(fd, Buffer.from(JSON.stringify(record)));
      if (this.fsync) await syncFd(fd);
    } catch (err) {
      try {
        closeSync(fd);
      } catch {
        // the write's error is the one to report
      }
      throw err;
    }
    closeSync(fd);
    renameSync(tmp, path);
    if (this.fsync) await fsyncDir(this.claims.dir);
    failpoint('after-commit-record');
    if (beforeFinish !== undefined) {
      await beforeFinish();
      failpoint('after-db-commit');
    }
    return this.finish(c, record, true);
  }

  /** Drops a record whose database load did not commit, and its staged files: the claim is redone. */
  async discard(c: ClaimedFile, record: Pick<CommitRecord, 'staged'>): Promise<void> {
    for (const s of record.staged) if (s.kind === 'file') await unlink(s.file.tmp).catch(() => undefined);
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
    await unlinkAsync(this.recordPath(c)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
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
