// The daemon in process, without the CLI: a batch run takes every file to exactly one outcome, redoes a
// claim an earlier run left, and reports each file to its hooks.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { silentLogger } from '../../src/log.js';
import type { FileReport } from '../../src/pipeline/process-file.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'sluice-daemon-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function config(yaml: string) {
  writeFileSync(join(root, 'sluice.yaml'), yaml);
  return loadConfig({
    configPath: join(root, 'sluice.yaml'),
    env: {},
    cwd: root,
    defaults: { settleMs: 0, 'metrics.port': 0 },
    flags: { instanceId: 'unit-1' },
  });
}

const files = (dir: string) => readdirSync(join(root, dir)).sort();

describe('Daemon (in process)', () => {
  it('--once: writes each file once, rejects bad rows, fails an unmatched file, and redoes a claim left by a crash', async () => {
    const cfg = config('pipelines:\n  - name: orders\n    match: ["*.csv"]\n');
    mkdirSync(cfg.watch, { recursive: true });
    writeFileSync(join(cfg.watch, 'a.csv'), 'id,name\n1,x\n2,\n3,z\n4\n');
    writeFileSync(join(cfg.watch, 'b.txt'), 'id\n1\n');
    // a claim an earlier run of this instance left without a commit record: it is done again
    const claimDir = join(cfg.state, 'claimed', 'unit-1');
    mkdirSync(claimDir, { recursive: true });
    writeFileSync(join(claimDir, 'k0000000001-left.csv'), 'id\n7\n');
    const done: FileReport[] = [];
    const daemon = new Daemon(cfg, silentLogger, { onFileDone: (r) => done.push(r) }, true);
    await daemon.start();
    await daemon.finished();
    await daemon.stop();
    expect(files('out')).toEqual(['a.csv', 'left.csv']);
    expect(readFileSync(join(cfg.out, 'a.csv'), 'utf8')).toBe('id,name\n1,x\n3,z\n');
    expect(readFileSync(join(cfg.out, 'left.csv'), 'utf8')).toBe('id\n7\n');
    expect(files('rejects')).toEqual(['a.rejects.csv']);
    expect(files('archive')).toEqual(['a.csv', 'left.csv']);
    expect(files('failed')).toEqual(['b.txt', 'b.txt.error.json']);
    expect(JSON.parse(readFileSync(join(cfg.failed, 'b.txt.error.json'), 'utf8'))).toMatchObject({ code: 'NO_PIPELINE', file: 'b.txt' });
    expect(readdirSync(cfg.watch)).toEqual([]);
    // a clean stop retires the instance: its claim folder goes
    expect(existsSync(claimDir)).toBe(false);
    expect(daemon.failures).toBe(1);
    expect(daemon.unfinished).toBe(0);
    expect(done.map((r) => [r.name, r.outcome, r.rows]).sort()).toEqual([
      ['a.csv', 'succeeded', { read: 4, written: 2, filtered: 1, rejected: 1 }],
      ['b.txt', 'failed', { read: 0, written: 0, filtered: 0, rejected: 0 }],
      ['left.csv', 'succeeded', { read: 1, written: 1, filtered: 0, rejected: 0 }],
    ]);
    expect(daemon.totals).toEqual({
      succeeded: 2,
      failed: 1,
      rows: { read: 5, written: 3, filtered: 1, rejected: 1 },
      bytesRead: 26,
      bytesWritten: expect.any(Number),
    });
    const receipts = readFileSync(join(cfg.state, 'receipts.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { file: string; outcome: string });
    expect(receipts.map((r) => `${r.file} ${r.outcome}`).sort()).toEqual(['a.csv succeeded', 'b.txt failed', 'left.csv succeeded']);
  });
});
