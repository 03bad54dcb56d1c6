// Unit tests for addColumn: constant, file name, per-file timestamp; duplicate names.
import { from, lastValueFrom, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { FileContext } from '../../src/file-context.js';
import { addColumn, type AddColumnValue } from '../../src/operators/add-column.js';
import type { Row } from '../../src/row.js';

const header: Row = ['id', 'v'];
const run = (op: ReturnType<typeof addColumn>, rows: Row[]) => lastValueFrom(from(rows.map((r) => [...r])).pipe(op, toArray()));

describe('addColumn', () => {
  it('appends a constant', async () => {
    expect(await run(addColumn({ name: 'region', value: { constant: 'eu' } }), [header, ['1', 'a'], ['2', 'b']])).toEqual([
      ['id', 'v', 'region'],
      ['1', 'a', 'eu'],
      ['2', 'b', 'eu'],
    ]);
  });

  it("appends the input file's name from the context", async () => {
    const context = new FileContext('orders-2024.csv');
    expect(await run(addColumn({ name: 'source', value: { fileName: true }, context }), [header, ['1', 'a']])).toEqual([
      ['id', 'v', 'source'],
      ['1', 'a', 'orders-2024.csv'],
    ]);
  });

  it('appends one processing timestamp per file, taken when the header arrives', async () => {
    let t = Date.UTC(2024, 4, 1, 10, 0, 0, 123);
    const op = addColumn({ name: 'loaded_at', value: { timestamp: true }, now: () => new Date(t++) });
    expect(await run(op, [header, ['1', 'a'], ['2', 'b']])).toEqual([
      ['id', 'v', 'loaded_at'],
      ['1', 'a', '2024-05-01T10:00:00.123Z'],
      ['2', 'b', '2024-05-01T10:00:00.123Z'],
    ]);
    expect((await run(op, [header, ['3', 'c']]))[1]).toEqual(['3', 'c', '2024-05-01T10:00:00.124Z']);
  });

  it('fails with DUPLICATE_COLUMN when the header has the name', async () => {
    await expect(run(addColumn({ name: 'v', value: { constant: 'x' } }), [header])).rejects.toMatchObject({ code: 'DUPLICATE_COLUMN', field: 'v', line: 1 });
  });

  it('refuses bad options when built', () => {
    const bad =
      (value: unknown, name = 'c') =>
      () =>
        addColumn({ name, value: value as AddColumnValue });
    expect(bad({ constant: 'x' }, '')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', field: 'addColumn.name' }));
    expect(bad({ constant: 1 })).toThrow(/addColumn.value: expected \{ constant: text \}, \{ fileName: true \} or \{ timestamp: true \}/);
    expect(bad({ constant: 'x', timestamp: true })).toThrow(/addColumn.value/);
    expect(bad({ fileName: false })).toThrow(/addColumn.value/);
    expect(bad(undefined)).toThrow(/addColumn.value/);
    expect(bad({ fileName: true })).toThrow(/needs the file's context/);
  });

  it('marbles: header then rows, errors pass, early unsubscribe', () => {
    new TestScheduler((actual, expected) => expect(actual).toEqual(expected)).run(({ cold, expectObservable, expectSubscriptions }) => {
      const op = addColumn({ name: 'k', value: { constant: 'z' } });
      expectObservable(cold('-h-a-|', { h: ['id'], a: ['1'] }).pipe(op)).toBe('-H-A-|', { H: ['id', 'k'], A: ['1', 'z'] });
      expectObservable(cold('-h-#', { h: ['id'] }, new Error('read')).pipe(op)).toBe('-H-#', { H: ['id', 'k'] }, new Error('read'));
      const src = cold('-h-a-|', { h: ['id'], a: ['1'] });
      expectObservable(src.pipe(op), '^-!').toBe('-H-', { H: ['id', 'k'] });
      expectSubscriptions(src.subscriptions).toBe('^-!');
    });
  });
});
