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

export interface CommitRecord {
  claimId: string;
  file: string;
  pipeline: string;
  outcome: 'succeeded' | 'failed';
  /** The claimed input's inode and size: how it is found again if it moved before a crash. */
  input: { ino: number; size: number; sha256?: string };
  /** Files to publish by link, or (`table`) a database load whose transaction commits after this record. */
  staged: Array<{ role: 'output' | 'rejects'; file?: StagedFile; table?: string; rows: number; bytes?: number }>;
  /** The output is a database load: if this record exists, the load may or may not have committed (ask it). */
  db?: boolean;
  rows: Receipt['rows'];
  startedAt: string;
  durationMs: number;
  error?: { code: string; message: string; line?: number; field?: string; readBeforeFailure?: number };
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
    for (const s of record.staged) if (s.file !== undefined) await unlink(s.file.tmp).catch(() => undefined);
    await unlink(this.recordPath(c)).catch(() => undefined);
  }

  /** A commit record left by a crash, if any. */
  async pending(c: ClaimedFile): Promise<CommitRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.recordPath(c), 'utf8')) as CommitRecord;
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
      if (s.file === undefined) {
        outputs.push({ role: s.role, path: s.table ?? '', rows: s.rows, bytes: s.bytes ?? 0 });
        continue;
      }
      const path = await publishStaged(s.file);
      outputs.push({ role: s.role, path, rows: s.rows, bytes: s.file.bytes });
    }
    if (this.fsync) for (const dir of new Set(record.staged.flatMap((s) => (s.file === undefined ? [] : [s.file.dir])))) await fsyncDir(dir);
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
      ...(record.error === undefined
        ? {}
        : { error: { code: record.error.code, message: record.error.message, ...(record.error.line === undefined ? {} : { line: record.error.line }) } }),
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
