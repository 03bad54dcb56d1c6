// The PostgreSQL sink against a real server: exact contents, a reserved-word column, a refused row, an
// outage while a file waits, SIGKILL at every step of the load's commit, and a password never printed.
import { execFileSync, spawn } from 'node:child_process';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cleanup, dirFlags, type Dirs, list, logLines, makeDirs, waitFor } from '../e2e/harness.js';
import { type Cluster, startCluster } from './pg-harness.js';

let db: Cluster;
let d: Dirs;
beforeAll(async () => {
  db = await startCluster();
}, 120_000);
afterAll(() => db?.stop());
afterEach(() => cleanup(d));

const GEN = resolve(import.meta.dirname, '../fixtures/gen.mjs');
const DDL = `(id bigint primary key, ts timestamptz, "user" text, email text, country text, amount numeric(10,2), qty int, status text, note text, score numeric(6,4))`;
/** The table read back in the generator's own text form, to compare with the input byte for byte. */
const READ_BACK = `select orders.id::text as id, to_char(ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as ts, "user", email, country, amount::text, qty::text, status, note, score::text`;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}
function sluice(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...db.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('close', (code, signal) => res({ code, signal, stdout, stderr }));
  });
}

async function config(table: string, extra = ''): Promise<string> {
  const path = join(d.root, 'sluice.yaml');
  await writeFile(
    path,
    `pipelines:\n  - name: load\n    match: ["*.csv"]\n    steps:\n      - dropNulls: { how: any }\n    output: { format: postgres, table: ${table}${extra} }\n`,
  );
  return path;
}

describe('postgres sink', () => {
  it('loads 100k generated rows into a typed table (with a reserved-word column) exactly', async () => {
    d = await makeDirs();
    await db.query(`drop table if exists orders; create table orders ${DDL}`);
    const csv = execFileSync(process.execPath, [GEN, '100000', '5'], { maxBuffer: 1 << 30 }).toString();
    await writeFile(join(d.watch, 'orders.csv'), csv);
    const r = await sluice(['run', '--once', '--settle-ms', '1', '--config', await config('orders'), ...dirFlags(d)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const { parse } = await import('csv-parse/sync');
    const expected = (parse(csv) as string[][]).slice(1).filter((row) => !row.includes(''));
    const rows = await db.query<Record<string, string>>(`${READ_BACK} from orders order by orders.id`);
    expect(rows.length).toBe(expected.length);
    const got = rows.map((x) => Object.values(x));
    let diff = -1;
    for (let i = 0; i < expected.length && diff === -1; i++) if (JSON.stringify(got[i]) !== JSON.stringify(expected[i])) diff = i;
    expect(diff === -1 ? 'all equal' : { at: diff, got: got[diff], want: expected[diff] }).toBe('all equal');
    const loads = await db.query<{ input_name: string; rows: string; pipeline: string }>('select input_name, rows::text, pipeline from sluice_loads');
    expect(loads).toEqual([{ input_name: 'orders.csv', rows: String(expected.length), pipeline: 'load' }]);
    const done = logLines(r.stdout).find((l) => l.msg === 'file processed');
    expect(done).toMatchObject({ file: 'orders.csv', read: 100000, written: expected.length, output: '"public"."orders"' });
    expect(await list(d.archive)).toEqual(['orders.csv']);
  });

  it('a row the database refuses rolls the whole file back; failed/ says SQLSTATE, message and line', async () => {
    d = await makeDirs();
    await db.query(`drop table if exists refuse; create table refuse (id int, "user" text)`);
    await writeFile(join(d.watch, 'r.csv'), 'id,user\n1,a\n2,b\n"x\ny",c\nabc,d\n5,e\n');
    const r = await sluice(['run', '--once', '--settle-ms', '1', '--config', await config('refuse'), ...dirFlags(d)]);
    expect(r.code).toBe(1);
    expect(await db.query('select * from refuse')).toEqual([]);
    expect(await list(d.failed)).toEqual(['r.csv', 'r.csv.error.json']);
    const err = JSON.parse(await readFile(join(d.failed, 'r.csv.error.json'), 'utf8')) as { code: string; message: string; line: number };
    expect(err.code).toBe('DB_REFUSED');
    expect(err.message).toContain('SQLSTATE 22P02');
    expect(err.message).toContain('invalid input syntax for type integer: "x\ny"');
    expect(err.line).toBe(4);
  });

  it('creates a missing table with create: true, and maps columns', async () => {
    d = await makeDirs();
    await db.query('drop table if exists made');
    await writeFile(join(d.watch, 'm.csv'), 'Order Id,user,skip\n1,a,x\n2,b,y\n');
    const cfg = await config('made', ', create: true, columns: { "Order Id": order_id, user: user }');
    const r = await sluice(['run', '--once', '--settle-ms', '1', '--config', cfg, ...dirFlags(d)]);
    expect(r.code).toBe(0);
    expect(await db.query('select order_id, "user" from made order by 1')).toEqual([
      { order_id: '1', user: 'a' },
      { order_id: '2', user: 'b' },
    ]);
  });

  it('create: true gives a column mapped by output.columns the type its cast step declares', async () => {
    d = await makeDirs();
    await db.query('drop table if exists typed');
    await writeFile(join(d.watch, 't.csv'), 'Order Id,when\n7,2026-01-02\n');
    const cfg = join(d.root, 'sluice.yaml');
    await writeFile(
      cfg,
      'pipelines:\n  - name: load\n    steps:\n      - cast: { "Order Id": integer, when: date }\n    output: { format: postgres, table: typed, create: true, columns: { "Order Id": order_id, when: at } }\n',
    );
    const r = await sluice(['run', '--once', '--settle-ms', '1', '--config', cfg, ...dirFlags(d)]);
    expect(r.code).toBe(0);
    expect(await db.query("select column_name, data_type from information_schema.columns where table_name = 'typed' order by ordinal_position")).toEqual([
      { column_name: 'order_id', data_type: 'bigint' },
      { column_name: 'at', data_type: 'date' },
    ]);
  });

  it("a value that is exactly \\. (COPY's end-of-data marker) is loaded as data, on the raw and the rewritten path", async () => {
    d = await makeDirs();
    await db.query('drop table if exists eod; create table eod (v text)');
    // one column: a line that is exactly \. ; the second file goes through select, so it is re-stringified
    await writeFile(join(d.watch, 'e1.csv'), 'v\nx\n\\.\ny\nz\n');
    await writeFile(join(d.watch, 'e2.csv'), 'v,w\np,1\n\\.,2\nq,3\n');
    const cfg = join(d.root, 'sluice.yaml');
    await writeFile(
      cfg,
      'pipelines:\n  - name: raw\n    match: ["e1.csv"]\n    output: { format: postgres, table: eod }\n  - name: sel\n    match: ["e2.csv"]\n    steps:\n      - select: [v]\n    output: { format: postgres, table: eod }\n',
    );
    const r = await sluice(['run', '--once', '--settle-ms', '1', '--config', cfg, ...dirFlags(d)]);
    expect(r.code).toBe(0);
    expect((await db.query<{ v: string }>('select v from eod order by v')).map((x) => x.v)).toEqual(['\\.', '\\.', 'p', 'q', 'x', 'y', 'z']);
  });

  it('create: true with a header named like an Object property, and two files creating one table at once', async () => {
    d = await makeDirs();
    await db.query('drop table if exists protos');
    for (const n of [1, 2, 3, 4]) await writeFile(join(d.watch, `p${n}.csv`), `constructor,toString\n${n},x${n}\n`);
    const cfg = await config('protos', ', create: true');
    const r = await sluice(['run', '--once', '--settle-ms', '1', '--concurrency', '4', '--config', cfg, ...dirFlags(d)]);
    expect(r.stdout).not.toContain('"level":"error"');
    expect(r.code).toBe(0);
    expect(await db.query('select "constructor", "toString" from protos order by 1')).toEqual(
      [1, 2, 3, 4].map((n) => ({ constructor: String(n), toString: `x${n}` })),
    );
  });

  it('--once waits for a file whose load was interrupted at its commit record while the database is down', async () => {
    d = await makeDirs();
    await db.query('drop table if exists parked; create table parked (a int); drop table if exists sluice_loads');
    await writeFile(join(d.watch, 'k.csv'), 'a\n1\n2\n');
    const cfg = await config('parked');
    const args = ['run', '--once', '--settle-ms', '1', '--config', cfg, ...dirFlags(d)];
    expect((await sluice(args, { SLUICE_FAILPOINT: 'after-commit-record' })).signal).toBe('SIGKILL');
    db.pause();
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...db.env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((res) => child.on('close', res));
    let early: number | null | undefined;
    void exited.then((c) => (early ??= c));
    try {
      await waitFor(() => out.includes('the database is still unavailable'), 'a second probe while the database is down');
    } finally {
      db.resume();
    }
    expect(early).toBeUndefined(); // it did not exit while the file waited
    expect(await exited).toBe(0);
    expect(await db.query('select a from parked order by a')).toEqual([{ a: 1 }, { a: 2 }]);
    expect(await list(d.archive)).toEqual(['k.csv']);
  });

  it('waits while the database is down, then loads the file once when it is back', async () => {
    d = await makeDirs();
    await db.query(`drop table if exists outage; create table outage (a int)`);
    const cfg = join(d.root, 'sluice.yaml');
    await writeFile(cfg, `retry: { backoffMs: 100 }\npipelines:\n  - name: load\n    output: { format: postgres, table: outage }\n`);
    db.pause();
    const child = spawn(process.execPath, [CLI, 'run', '--once', '--settle-ms', '1', '--config', cfg, ...dirFlags(d)], {
      env: { ...process.env, ...db.env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((res) => child.on('close', res));
    await writeFile(join(d.root, 'o.csv'), 'a\n1\n2\n');
    await rename(join(d.root, 'o.csv'), join(d.watch, 'o.csv'));
    try {
      await waitFor(() => out.includes('the database is unavailable'), 'the outage to be noticed');
    } finally {
      db.resume();
    }
    expect(await exited).toBe(0);
    expect(out).toContain('the database is back');
    expect(await db.query('select a from outage order by a')).toEqual([{ a: 1 }, { a: 2 }]);
    expect(await list(d.archive)).toEqual(['o.csv']);
  });

  it.each(['before-commit-record', 'after-commit-record', 'after-db-commit', 'after-publish', 'after-move', 'after-receipt'])(
    'SIGKILL at %s, then a restart: every row is in the table exactly once',
    async (point) => {
      d = await makeDirs();
      await db.query(`drop table if exists kills; create table kills (id int primary key, v text)`);
      await db.query(`drop table if exists sluice_loads`);
      await writeFile(join(d.watch, 'k.csv'), `id,v\n${Array.from({ length: 500 }, (_, i) => `${i},v${i}`).join('\n')}\n3000,\n`);
      const cfg = await config('kills');
      const crashed = await sluice(['run', '--once', '--settle-ms', '1', '--config', cfg, ...dirFlags(d)], { SLUICE_FAILPOINT: point });
      expect(crashed.signal).toBe('SIGKILL');
      const again = await sluice(['run', '--once', '--settle-ms', '1', '--config', cfg, ...dirFlags(d)]);
      if (again.code !== 0) console.log(again.stdout, again.stderr);
      expect(again.stderr).toBe('');
      expect(again.code).toBe(0);
      const [{ n, s }] = (await db.query<{ n: string; s: string }>('select count(*)::text as n, sum(id)::text as s from kills')) as [{ n: string; s: string }];
      expect({ n, s }).toEqual({ n: '500', s: String((499 * 500) / 2) });
      expect(await db.query('select input_name from sluice_loads')).toEqual([{ input_name: 'k.csv' }]);
      expect(await list(d.archive)).toEqual(['k.csv']);
      expect(await list(join(d.root, '.sluice', 'claimed'))).toEqual([]);
    },
  );

  it('never prints a password from the URL (logs, errors, validate)', async () => {
    d = await makeDirs();
    const cfg = join(d.root, 'sluice.yaml');
    await writeFile(
      cfg,
      `pipelines:\n  - name: load\n    output: { format: postgres, table: nope, url: "postgres://postgres:s3cr3tpw@127.0.0.1:${db.env.PGPORT}/no_such_db" }\n`,
    );
    await writeFile(join(d.watch, 'p.csv'), 'a\n1\n');
    const v = await sluice(['validate', '--config', cfg]);
    expect(v.code).toBe(0);
    const r = await sluice(['run', '--once', '--settle-ms', '1', '--config', cfg, ...dirFlags(d)]);
    expect(r.code).toBe(1);
    const all = v.stdout + v.stderr + r.stdout + r.stderr + (await readFile(join(d.failed, 'p.csv.error.json'), 'utf8'));
    expect(all).toContain('no_such_db');
    expect(all).not.toContain('s3cr3tpw');
  });
});
