// The Parquet sink read back by an independent reader (DuckDB): exact rows, types, nulls, row groups, codecs.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CastType } from '../../src/operators/cast-values.js';
import type { Row } from '../../src/row.js';
import { MAGIC, ParquetEncoder } from '../../src/parquet/encoder.js';
import { parquetFileSink } from '../../src/sinks/parquet-file.js';

let dir: string;
let db: DuckDBInstance;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-parquet-'));
  db = await DuckDBInstance.create(':memory:', { threads: '1' });
});
afterAll(async () => {
  db.closeSync();
  await rm(dir, { recursive: true, force: true });
});

/** DuckDB's rows of a query, every value as text (null as null). */
async function query(sql: string): Promise<Array<Array<string | null>>> {
  const c = await db.connect();
  const r = await c.runAndReadAll(sql);
  const rows = r.getRows().map((row) => row.map((v) => (v === null ? null : String(v))));
  c.closeSync();
  return rows;
}

const HEADER = ['i', 'n', 'b', 'd', 'ts', 's', 'raw'];
const TYPES: Record<string, CastType> = { i: 'integer', n: 'number', b: 'boolean', d: 'date', ts: 'timestamp', s: 'string' };
// cast's canonical texts; an empty field is a null
const ROWS: Row[] = [
  ['1', '1.5', 'true', '2024-05-01', '2024-05-01T10:00:00Z', 'plain', 'x'],
  ['-12', '-0.25', 'false', '1969-12-31', '2024-05-01T12:00:00', 'é ü 日本 🎉', ''],
  ['9223372036854775807', '1e-7', '', '0001-01-01', '0001-01-01T00:00:01.000001Z', '', 'y'],
  ['-9223372036854775808', '1.7976931348623157e+308', 'true', '9999-12-31', '2023-12-31T23:59:59.123456789Z', 'a,"b"\nc', 'z'],
  ['', '', 'false', '', '', 'last', ''],
  ['0', '0', 'true', '2000-02-29', '1969-12-31T23:59:59.999999Z', ' ', 'w'],
];

async function write(name: string, rows: Row[], options: Parameters<typeof parquetFileSink>[2], batchSize = 2): Promise<string> {
  const sink = parquetFileSink(dir, name, options);
  for (let i = 0; i < rows.length || i === 0; i += batchSize) {
    await sink.write({ ...(i === 0 ? { header: HEADER } : {}), rows: rows.slice(i, i + batchSize), lines: [] });
  }
  const r = await sink.commit();
  expect(r.rows).toBe(rows.length);
  return r.path!;
}

describe('parquetFileSink', () => {
  it.each(['zstd', 'snappy', 'gzip', 'none'] as const)('%s: DuckDB reads the exact values, types and nulls back', async (compression) => {
    const path = await write(`all-${compression}.parquet`, ROWS, { types: TYPES, compression, rowGroupRows: 4, fsync: false });
    const types = await query(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('${path}'))`);
    expect(types).toEqual([
      ['i', 'BIGINT'],
      ['n', 'DOUBLE'],
      ['b', 'BOOLEAN'],
      ['d', 'DATE'],
      ['ts', 'TIMESTAMP WITH TIME ZONE'],
      ['s', 'VARCHAR'],
      ['raw', 'VARCHAR'],
    ]);
    const rows = await query(
      `SELECT i::VARCHAR, n, b::VARCHAR, d::VARCHAR, epoch_us(ts)::VARCHAR, s, raw FROM read_parquet('${path}') ORDER BY file_row_number`,
    );
    const micros = (t: string): string | null => {
      if (t === '') return null;
      const [, base, frac = ''] = /^(.{19})(?:\.(\d+))?Z?$/.exec(t)!;
      return String(BigInt(Date.parse(`${base}Z`)) * 1000n + BigInt(frac.padEnd(6, '0').slice(0, 6)));
    };
    expect(rows).toEqual(
      ROWS.map((r) => [r[0] || null, r[1] === '' ? null : String(Number(r[1])), r[2] || null, r[3] || null, micros(r[4]!), r[5] || null, r[6] || null]),
    );
    // 6 rows in groups of 4: two row groups
    const groups = await query(`SELECT count(DISTINCT row_group_id) FROM parquet_metadata('${path}')`);
    expect(groups).toEqual([['2']]);
  });

  it('uncast columns are strings; a header-only input gives a valid file of no rows', async () => {
    const path = await write('empty.parquet', [], { fsync: false });
    expect(await query(`SELECT count(*) FROM read_parquet('${path}')`)).toEqual([['0']]);
    const types = await query(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('${path}'))`);
    expect(types.map((t) => t[1])).toEqual(Array(HEADER.length).fill('VARCHAR'));
  });

  it('many rows across batches and row groups: counts and sums exact, nothing left beside the output', async () => {
    const rows: Row[] = [];
    for (let i = 0; i < 25_000; i++)
      rows.push([String(i - 5000), (i / 8).toString(), i % 3 === 0 ? '' : 'true', '2020-01-01', '2020-01-01T00:00:00Z', `s${i}`, '']);
    const path = await write('many.parquet', rows, { types: TYPES, rowGroupRows: 10_000, fsync: false }, 777);
    expect(await query(`SELECT count(*), sum(i), sum(n), count(b), count(DISTINCT s) FROM read_parquet('${path}')`)).toEqual([
      ['25000', String(rows.reduce((a, r) => a + Number(r[0]), 0)), String(rows.reduce((a, r) => a + Number(r[1]), 0)), String(25_000 - 8334), '25000'],
    ]);
    expect((await readdir(dir)).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('the encoder given a row group larger than it was told (the levels then copied) still writes it right', async () => {
    const enc = new ParquetEncoder([{ name: 'v', type: 'integer' }], 'none', 8);
    const rows: Row[] = Array.from({ length: 100 }, (_, i) => [i % 7 === 0 ? '' : String(i)]);
    enc.append(rows, 0, 100);
    const group = await enc.rowGroup(MAGIC.length);
    const path = join(dir, 'oversized.parquet');
    await writeFile(path, Buffer.concat([MAGIC, group, enc.footer()]));
    const want = rows.filter((r) => r[0] !== '').reduce((a, r) => a + Number(r[0]), 0);
    expect(await query(`SELECT count(*), count(v), sum(v) FROM read_parquet('${path}')`)).toEqual([['100', String(100 - 15), String(want)]]);
  });

  it('abort leaves nothing', async () => {
    const sink = parquetFileSink(dir, 'aborted.parquet', { types: TYPES, fsync: false });
    await sink.write({ header: HEADER, rows: ROWS, lines: [] });
    await sink.abort();
    expect((await readdir(dir)).filter((f) => f.includes('aborted'))).toEqual([]);
  });
});
