// Parquet output through the built CLI: typed rows read back by DuckDB, a SIGKILL before the commit, a full disk.
import { execFileSync, spawn } from 'node:child_process';
import { readdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, cleanup, dirFlags, type Dirs, list, logLines, makeDirs, runCli } from './harness.js';

let d: Dirs;
afterEach(() => cleanup(d));

const CSV =
  'id,amount,paid,day,at,note\n1,1.50,yes,2024-05-01,2024-05-01T12:00:00+02:00,a\n2,,no,2024-05-02,2024-05-02 08:30,\n3,-3,true,2024-05-03,2024-05-03T00:00:00Z,"c, d"\n';
const CONFIG = `retry: { attempts: 3, backoffMs: 5, diskCheckMs: 20 }
pipelines:
  - name: p
    steps:
      - cast: { id: integer, amount: number, paid: boolean, day: date, at: timestamp }
    output: { format: parquet, rowGroupRows: 2 }
`;

async function setup(config = CONFIG): Promise<string[]> {
  d = await makeDirs();
  const cfg = join(d.root, 'sluice.yaml');
  await writeFile(cfg, config);
  await writeFile(join(d.watch, 'orders.csv'), CSV);
  return ['run', '--once', '--settle-ms', '1', '--concurrency', '1', '--config', cfg, ...dirFlags(d)];
}

function runWith(env: Record<string, string>, args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.on('close', (code, signal) => res({ code, signal, stdout }));
  });
}

/** The rows DuckDB reads from out/orders.parquet, as text, with each column's type. */
async function readBack(): Promise<{ types: string[]; rows: Array<Array<string | null>> }> {
  const db = await DuckDBInstance.create(':memory:', { threads: '1' });
  const c = await db.connect();
  const path = join(d.out, 'orders.parquet');
  const types = (await c.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${path}')`)).getRows().map((r) => String(r[1]));
  const r = await c.runAndReadAll(`SELECT id, amount, paid, day::VARCHAR, epoch_ms("at"), note FROM read_parquet('${path}') ORDER BY id`);
  const rows = r.getRows().map((row) => row.map((v) => (v === null ? null : String(v))));
  c.closeSync();
  db.closeSync();
  return { types, rows };
}

async function expectPublished(): Promise<void> {
  expect(await list(d.out)).toEqual(['orders.parquet']);
  expect((await readdir(d.out)).filter((f) => f.startsWith('.'))).toEqual([]);
  const { types, rows } = await readBack();
  expect(types).toEqual(['BIGINT', 'DOUBLE', 'BOOLEAN', 'DATE', 'TIMESTAMP WITH TIME ZONE', 'VARCHAR']);
  expect(rows).toEqual([
    ['1', '1.5', 'true', '2024-05-01', String(Date.parse('2024-05-01T10:00:00Z')), 'a'],
    // a time without a zone is stored as UTC; empty fields are nulls
    ['2', null, 'false', '2024-05-02', String(Date.parse('2024-05-02T08:30:00Z')), null],
    ['3', '-3', 'true', '2024-05-03', String(Date.parse('2024-05-03T00:00:00Z')), 'c, d'],
  ]);
}

describe('parquet output (CLI)', () => {
  it('--once with cast: out/orders.parquet holds the typed rows, nulls as nulls', async () => {
    const args = await setup();
    const r = await runCli(args);
    expect(r.code).toBe(0);
    await expectPublished();
    expect(await list(d.archive)).toEqual(['orders.csv']);
  });

  it('every compression works in the bundled CLI (snappyjs is CommonJS: bundled, its exports are under default)', async () => {
    for (const compression of ['snappy', 'gzip', 'none', 'zstd']) {
      const args = await setup(CONFIG.replace('rowGroupRows: 2', `rowGroupRows: 2, compression: ${compression}`));
      const r = await runCli(args);
      expect(r.code, compression).toBe(0);
      await expectPublished();
      await cleanup(d);
    }
  });

  it('types follow the header through the steps: a swap by rename swaps them, select and addColumn too', async () => {
    const args = await setup(`pipelines:
  - name: p
    steps:
      - cast: { id: integer, amount: number }
      - rename: { id: amount, amount: id }
      - select: [id, amount, note]
      - addColumn: { name: constructor, constant: x }
    output: { format: parquet }
`);
    const r = await runCli(args);
    expect(r.code).toBe(0);
    const db = await DuckDBInstance.create(':memory:', { threads: '1' });
    const c = await db.connect();
    const rows = (await c.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${join(d.out, 'orders.parquet')}')`))
      .getRows()
      .map((row) => [String(row[0]), String(row[1])]);
    c.closeSync();
    db.closeSync();
    expect(rows).toEqual([
      ['id', 'DOUBLE'],
      ['amount', 'BIGINT'],
      ['note', 'VARCHAR'],
      ['constructor', 'VARCHAR'],
    ]);
  });

  it('SIGKILL before the commit record: no .parquet under out/ (a staged dotfile at most); the rerun publishes exactly one', async () => {
    const args = await setup();
    const crashed = await runWith({ SLUICE_FAILPOINT: 'before-commit-record' }, args);
    expect(crashed.signal).toBe('SIGKILL');
    // at most the staged temporary (a dotfile), which the restart removes: never a .parquet
    expect((await readdir(d.out)).filter((f) => !f.startsWith('.sluice-'))).toEqual([]);
    const again = await runCli(args);
    expect(again.code).toBe(0);
    await expectPublished();
  });

  it('ENOSPC while writing: retried, then one complete file', async () => {
    const args = await setup();
    const r = await runWith({ SLUICE_FAULT: 'write=ENOSPC*2' }, args);
    expect(r.code).toBe(0);
    expect(logLines(r.stdout).filter((l) => l.msg === 'writing failed; the file will be retried')).toHaveLength(2);
    await expectPublished();
  });

  it('SIGKILL at arbitrary moments of a large load, restart after each: never a partial .parquet, then exactly one', async () => {
    d = await makeDirs();
    const cfg = join(d.root, 'sluice.yaml');
    await writeFile(
      cfg,
      'pipelines:\n  - name: p\n    steps: [{ dropNulls: { how: any } }, { cast: { id: integer, amount: number } }]\n    output: { format: parquet, rowGroupRows: 20000 }\n',
    );
    const data = execFileSync(process.execPath, [resolve(import.meta.dirname, '../fixtures/gen.mjs'), '200000', '5'], { maxBuffer: 1 << 30 }).toString();
    const kept = data
      .split('\n')
      .slice(1, -1)
      .filter((l) => !/(^,|,,|,$|,"",|,""$)/.test(l)).length;
    await writeFile(join(d.root, 'big.csv'), data);
    await rename(join(d.root, 'big.csv'), join(d.watch, 'big.csv'));
    const args = ['run', '--once', '--settle-ms', '1', '--config', cfg, ...dirFlags(d)];
    const count = async (): Promise<string> => {
      const db = await DuckDBInstance.create(':memory:', { threads: '1' });
      const c = await db.connect();
      const n = String((await c.runAndReadAll(`SELECT count(*) FROM read_parquet('${join(d.out, 'big.parquet')}')`)).getRows()[0]![0]);
      c.closeSync();
      db.closeSync();
      return n;
    };
    for (const delayMs of [100, 300, 600]) {
      const child = spawn(process.execPath, [CLI, ...args], { stdio: 'ignore' });
      const done = new Promise((res) => child.on('close', res));
      setTimeout(() => child.kill('SIGKILL'), delayMs);
      await done;
      const visible = (await readdir(d.out)).filter((f) => !f.startsWith('.'));
      // nothing, or (if the run got that far) the whole file
      if (visible.length > 0) {
        expect(visible).toEqual(['big.parquet']);
        expect(await count()).toBe(String(kept));
      }
    }
    const r = await runCli(args);
    expect(r.code).toBe(0);
    expect(await readdir(d.out)).toEqual(['big.parquet']);
    expect(await count()).toBe(String(kept));
  }, 60_000);

  it('a write fault outlasting the attempts fails the file cleanly: nothing under out/', async () => {
    const args = await setup();
    const r = await runWith({ SLUICE_FAULT: 'write=EIO*3' }, args);
    expect(r.code).toBe(1);
    expect(await readdir(d.out)).toEqual([]);
    expect(await list(d.failed)).toEqual(['orders.csv', 'orders.csv.error.json']);
  });
});
