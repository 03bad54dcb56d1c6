// Unit tests for AtomicFile and csvFileSink: nothing visible before commit, no temp left, never overwrite.
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lastValueFrom, of, concatMap } from 'rxjs';
import { AtomicFile, TEMP_PREFIX } from '../../src/fs/atomic-file.js';
import { csvFileSink } from '../../src/sinks/csv-file.js';
import { parseCsv } from '../../src/operators/parse-csv.js';
import { batch } from '../../src/operators/batch.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-unit-atomic-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ls = async (): Promise<string[]> => (await readdir(dir)).sort();

describe('AtomicFile', () => {
  it('writes under a hidden temporary name only, then publishes the exact bytes under the final name', async () => {
    const f = await AtomicFile.create(dir, 'out.csv', { tempTag: 'i1' });
    await f.write('a,b\n');
    await f.write(Buffer.from([0x31, 0xff, 0x0a]));
    const before = await ls();
    expect(before).toHaveLength(1);
    expect(before[0]).toMatch(/^\.sluice-i1-[0-9a-f]{8}-out\.csv\.tmp$/);
    expect(join(dir, before[0]!)).toBe(f.tempPath);
    expect(before[0]!.startsWith(TEMP_PREFIX)).toBe(true);
    const path = await f.commit();
    expect(path).toBe(join(dir, 'out.csv'));
    expect(await ls()).toEqual(['out.csv']);
    expect(await readFile(path)).toEqual(Buffer.from([0x61, 0x2c, 0x62, 0x0a, 0x31, 0xff, 0x0a]));
    expect(f.bytes).toBe(7);
  });

  it('never replaces an existing file: publishes as name-1, name-2', async () => {
    await writeFile(join(dir, 'out.csv'), 'old');
    const paths: string[] = [];
    for (const text of ['one', 'two']) {
      const f = await AtomicFile.create(dir, 'out.csv', { fsync: false });
      await f.write(text);
      paths.push(await f.commit());
    }
    expect(paths).toEqual([join(dir, 'out-1.csv'), join(dir, 'out-2.csv')]);
    expect(await ls()).toEqual(['out-1.csv', 'out-2.csv', 'out.csv']);
    expect(await readFile(join(dir, 'out.csv'), 'utf8')).toBe('old');
    expect(await readFile(join(dir, 'out-1.csv'), 'utf8')).toBe('one');
    expect(await readFile(join(dir, 'out-2.csv'), 'utf8')).toBe('two');
  });

  it('abort removes the temporary file and publishes nothing; a second abort is harmless', async () => {
    const f = await AtomicFile.create(dir, 'out.csv', { fsync: false });
    await f.write('x');
    await f.abort();
    expect(await ls()).toEqual([]);
    await f.abort();
    expect(await ls()).toEqual([]);
  });

  it('abort after commit leaves the published file alone', async () => {
    const f = await AtomicFile.create(dir, 'out.csv', { fsync: false });
    await f.write('x');
    await f.commit();
    await f.abort();
    expect(await ls()).toEqual(['out.csv']);
  });

  it('compresses each write as a gzip member when asked', async () => {
    const f = await AtomicFile.create(dir, 'out.csv.gz', { fsync: false, gzip: true });
    await f.write('a,b\n');
    await f.write('1,2\n');
    const path = await f.commit();
    expect(gunzipSync(await readFile(path)).toString()).toBe('a,b\n1,2\n');
  });
});

describe('csvFileSink', () => {
  const header = ['id', 'note'];

  it('writes nothing under the final name before commit, then the header and rows quoted only where needed', async () => {
    const sink = csvFileSink(dir, 'orders.csv', { fsync: false });
    await sink.write({
      header,
      rows: [
        ['1', 'plain'],
        ['2', 'say "hi", ok'],
      ],
      lines: [2, 3],
    });
    await sink.write({
      rows: [
        ['3', 'two\nlines'],
        ['4', ''],
      ],
      lines: [4, 6],
    });
    const before = await ls();
    expect(before).toHaveLength(1);
    expect(before[0]!.startsWith(TEMP_PREFIX)).toBe(true);
    const result = await sink.commit();
    const text = 'id,note\n1,plain\n2,"say ""hi"", ok"\n3,"two\nlines"\n4,\n';
    expect(result).toEqual({ path: join(dir, 'orders.csv'), rows: 4, bytes: Buffer.byteLength(text) });
    expect(await ls()).toEqual(['orders.csv']);
    expect(await readFile(join(dir, 'orders.csv'), 'utf8')).toBe(text);
  });

  it('writes the header of a header-only file', async () => {
    const sink = csvFileSink(dir, 'h.csv', { fsync: false });
    await sink.write({ header, rows: [], lines: [] });
    await sink.commit();
    expect(await readFile(join(dir, 'h.csv'), 'utf8')).toBe('id,note\n');
  });

  it('uses the delimiter and line ending asked for', async () => {
    const sink = csvFileSink(dir, 'o.csv', { fsync: false, delimiter: ';', recordDelimiter: '\r\n' });
    await sink.write({ header: ['a', 'b'], rows: [['1;5', '2']], lines: [2] });
    await sink.commit();
    expect(await readFile(join(dir, 'o.csv'), 'utf8')).toBe('a;b\r\n"1;5";2\r\n');
  });

  it('never overwrites: a second output with the same name becomes name-1', async () => {
    for (const v of ['first', 'second']) {
      const sink = csvFileSink(dir, 'orders.csv', { fsync: false });
      await sink.write({ header: ['v'], rows: [[v]], lines: [2] });
      await sink.commit();
    }
    expect(await ls()).toEqual(['orders-1.csv', 'orders.csv']);
    expect(await readFile(join(dir, 'orders.csv'), 'utf8')).toBe('v\nfirst\n');
    expect(await readFile(join(dir, 'orders-1.csv'), 'utf8')).toBe('v\nsecond\n');
  });

  it('abort leaves nothing, written or not', async () => {
    const sink = csvFileSink(dir, 'orders.csv', { fsync: false });
    await sink.abort();
    await sink.write({ header, rows: [['1', 'x']], lines: [2] });
    await sink.abort();
    expect(await ls()).toEqual([]);
  });

  it('round-trips through parseCsv: what it writes reads back as the same rows', async () => {
    const rows = [
      ['id', 'v'],
      ['1', ''],
      ['2', ' lead'],
      ['3', 'a,b'],
      ['4', '"'],
      ['5', '\r\n'],
      ['6', 'né😀'],
    ];
    const sink = csvFileSink(dir, 'rt.csv', { fsync: false });
    await lastValueFrom(
      of(Buffer.from(rows.map((r) => r.map((f) => `"${f.replace(/"/g, '""')}"`).join(',')).join('\r\n'))).pipe(
        parseCsv(),
        batch({ size: 2, maxWaitMs: Infinity }),
        concatMap((b) => sink.write(b)),
      ),
      { defaultValue: undefined },
    );
    const { path } = await sink.commit();
    const back = await lastValueFrom(of(await readFile(path!)).pipe(parseCsv(), batch({ size: 100 })));
    expect([back.header, ...back.rows]).toEqual(rows);
  });

  it('keeps a one-column row whose only field is empty (it must not become a blank line)', async () => {
    const sink = csvFileSink(dir, 'one.csv', { fsync: false });
    await sink.write({ header: ['v'], rows: [['a'], [''], ['b']], lines: [2, 3, 4] });
    const { path } = await sink.commit();
    expect(await readFile(path!, 'utf8')).toBe('v\na\n""\nb\n');
    const back = await lastValueFrom(of(await readFile(path!)).pipe(parseCsv(), batch({ size: 100 })));
    expect(back).toEqual({ header: ['v'], rows: [['a'], [''], ['b']], lines: [0, 0, 0] });
  });
});
