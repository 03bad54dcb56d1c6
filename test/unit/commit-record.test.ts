// The commit record built from a report, the record of a file failed at COMMIT, and records of older versions.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Committer, commitRecord, failedRecord, holdsTransaction } from '../../src/daemon/commit.js';
import { Ledger } from '../../src/daemon/ledger.js';
import { SluiceError } from '../../src/errors.js';
import type { Claims } from '../../src/inbox/claims.js';
import type { FileReport } from '../../src/pipeline/process-file.js';

const claimed = { name: 'orders.csv', claimId: 'c1', path: '/state/claimed/i/c1-orders.csv' };
const file = { tmp: '/out/.sluice-i~c1-x.tmp', dir: '/out', name: 'orders.csv', ino: 7, bytes: 40 };
const rejectsFile = { tmp: '/rejects/.sluice-i~c1-y.tmp', dir: '/rejects', name: 'orders.rejects.csv', ino: 8, bytes: 30 };
const startedAt = new Date('2026-12-01T00:00:00.000Z');

const report = (over: Partial<FileReport>): FileReport => ({
  name: 'orders.csv',
  pipeline: 'p',
  outcome: 'succeeded',
  rows: { read: 3, written: 2, filtered: 0, rejected: 1 },
  bytesRead: 50,
  bytesWritten: 70,
  durationMs: 12,
  ...over,
});

describe('commitRecord', () => {
  it('records a staged file and rejects, the counts and the input', () => {
    const r = commitRecord(
      claimed,
      report({
        staged: { output: { kind: 'file', file, rows: 2, bytes: 40 }, rejects: { kind: 'file', file: rejectsFile, rows: 1, bytes: 30 } },
        sha256: 'ab',
      }),
      startedAt,
      { ino: 5, size: 50 },
    );
    expect(r).toEqual({
      claimId: 'c1',
      file: 'orders.csv',
      pipeline: 'p',
      outcome: 'succeeded',
      input: { ino: 5, size: 50, sha256: 'ab' },
      staged: [
        { role: 'output', kind: 'file', file, rows: 2 },
        { role: 'rejects', kind: 'file', file: rejectsFile, rows: 1 },
      ],
      rows: { read: 3, written: 2, filtered: 0, rejected: 1 },
      startedAt: '2026-12-01T00:00:00.000Z',
      durationMs: 12,
    });
    expect(holdsTransaction(r)).toBe(false);
  });

  it('records an open transaction (its target, not its functions), and an error with line, field and rows read', () => {
    const tx = { kind: 'transaction' as const, target: '"public"."t"', rows: 2, bytes: 99, confirm: async () => undefined, abort: async () => undefined };
    const r = commitRecord(claimed, report({ staged: { output: tx } }), startedAt, { ino: 5, size: 50 });
    // with what older versions look for (db, table), so a downgrade still asks the database
    expect(r.staged).toEqual([{ role: 'output', kind: 'transaction', target: '"public"."t"', table: '"public"."t"', rows: 2, bytes: 99 }]);
    expect(r.db).toBe(true);
    expect(holdsTransaction(r)).toBe(true);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
    const failed = commitRecord(
      claimed,
      report({ outcome: 'failed', error: new SluiceError('UNKNOWN_COLUMN', 'no column x', { line: 1, field: 'x' }), readBeforeFailure: 4 }),
      startedAt,
      { ino: 5, size: 50 },
    );
    expect(failed.error).toEqual({ code: 'UNKNOWN_COLUMN', message: 'no column x', line: 1, field: 'x', readBeforeFailure: 4 });
    expect(failedRecord(r, { code: 'DB_REFUSED', message: 'refused' })).not.toHaveProperty('db');
    expect(failedRecord(r, { code: 'DB_REFUSED', message: 'refused' })).toMatchObject({
      outcome: 'failed',
      staged: [],
      rows: { read: 0, written: 0, filtered: 0, rejected: 0 },
      error: { code: 'DB_REFUSED', message: 'refused' },
    });
  });
});

describe('Committer.pending', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-record-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a record of an older version (no kind, a db flag) as today', async () => {
    const committer = new Committer({ dir } as Claims, new Ledger(dir, false), { archive: dir, failed: dir }, false);
    const old = {
      claimId: 'c1',
      file: 'orders.csv',
      pipeline: 'p',
      outcome: 'succeeded',
      input: { ino: 5, size: 50 },
      staged: [
        { role: 'output', table: '"public"."t"', rows: 2, bytes: 99 },
        { role: 'rejects', file: rejectsFile, rows: 1 },
      ],
      db: true,
      rows: { read: 3, written: 2, filtered: 0, rejected: 1 },
      startedAt: '2026-12-01T00:00:00.000Z',
      durationMs: 12,
    };
    writeFileSync(join(dir, 'c1.commit.json'), JSON.stringify(old));
    const r = (await committer.pending(claimed))!;
    expect(r.staged).toEqual([
      { role: 'output', kind: 'transaction', target: '"public"."t"', rows: 2, bytes: 99 },
      { role: 'rejects', kind: 'file', file: rejectsFile, rows: 1 },
    ]);
    expect(holdsTransaction(r)).toBe(true);
  });
});
