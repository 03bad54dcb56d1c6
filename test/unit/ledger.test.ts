// The receipt ledger: whole lines only count, appends share syncs, close waits for them.
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Ledger, type Receipt } from '../../src/daemon/ledger.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-ledger-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const receipt = (claimId: string): Receipt => ({
  claimId,
  instance: 'i',
  file: `${claimId}.csv`,
  size: 1,
  pipeline: 'default',
  outcome: 'succeeded',
  outputs: [],
  input: `/a/${claimId}.csv`,
  rows: { read: 1, written: 1, filtered: 0, rejected: 0 },
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:00:01.000Z',
  durationMs: 1000,
});

describe('Ledger', () => {
  it('appends many receipts at once as whole lines, in one file, and finds each', async () => {
    const ledger = new Ledger(dir, true);
    const ids = Array.from({ length: 40 }, (_, i) => `c${i}`);
    await Promise.all(ids.map((id) => ledger.append(receipt(id))));
    await ledger.close();
    const lines = readFileSync(ledger.path, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((l) => (JSON.parse(l) as Receipt).claimId)).toEqual(ids);
    for (const id of ids) expect(await ledger.has(id)).toBe(true);
    expect(await ledger.has('c40')).toBe(false);
  });

  it('a fragment that names a claim (a write a full disk cut short) is not a receipt', async () => {
    const ledger = new Ledger(dir, false);
    await ledger.append(receipt('a'));
    appendFileSync(ledger.path, '{"claimId":"b","instance":"i","fi\n');
    await ledger.append(receipt('c'));
    await ledger.close();
    expect(await ledger.has('a')).toBe(true);
    expect(await ledger.has('b')).toBe(false);
    expect(await ledger.has('c')).toBe(true);
    expect((await ledger.recent()).map((r) => r.claimId)).toEqual(['a', 'c']);
  });

  it('an append after close opens the ledger again', async () => {
    const ledger = new Ledger(dir, true);
    await ledger.append(receipt('a'));
    const closing = ledger.close();
    await ledger.append(receipt('b'));
    await closing;
    await ledger.close();
    expect((await ledger.recent()).map((r) => r.claimId)).toEqual(['a', 'b']);
  });
});
