// Unit tests for parseCsv: the header first, the file context (line, counts, rejects), errors.
import { describe, expect, it } from 'vitest';
import { type Observable, concat, from, lastValueFrom, of, take, tap, throwError, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { SluiceError } from '../../src/errors.js';
import { FileContext } from '../../src/file-context.js';
import { parseCsv } from '../../src/operators/parse-csv.js';
import type { Rejection, Row } from '../../src/row.js';

const b = (s: string | number[]): Buffer => (typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s));

function context(): { ctx: FileContext; rejects: Rejection[] } {
  const rejects: Rejection[] = [];
  const ctx = new FileContext('orders.csv', { onReject: (r) => rejects.push({ ...r, raw: Buffer.from(r.raw) }) });
  return { ctx, rejects };
}

async function errorOf(o: Observable<unknown>): Promise<unknown> {
  try {
    await lastValueFrom(o);
  } catch (err) {
    return err;
  }
  throw new Error('the stream completed without an error');
}

const testScheduler = (): TestScheduler => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

describe('parseCsv', () => {
  it('emits the header first, then the rows, across chunk boundaries', async () => {
    const rows = await lastValueFrom(of(b('id,na'), b('me\r\n1,"a\nb"\r'), b('\n2,c')).pipe(parseCsv(), toArray()));
    expect(rows).toEqual([
      ['id', 'name'],
      ['1', 'a\nb'],
      ['2', 'c'],
    ]);
  });

  it('sets ctx.line for each row as it flows and counts data rows read', async () => {
    const { ctx } = context();
    const seen: Array<[number, Row]> = [];
    await lastValueFrom(
      of(b('a;b\n\n1;2\n"x\ny";3\n4;5')).pipe(
        parseCsv({ delimiter: ';', context: ctx }),
        tap((row) => seen.push([ctx.line, row])),
        toArray(),
      ),
    );
    expect(seen).toEqual([
      [1, ['a', 'b']],
      [3, ['1', '2']],
      [4, ['x\ny', '3']],
      [6, ['4', '5']],
    ]);
    expect(ctx.counts).toEqual({ read: 3, batched: 0, written: 0, rejected: 0 });
  });

  it('sends malformed records to ctx.reject with line, code and raw bytes, and counts them as read and rejected', async () => {
    const { ctx, rejects } = context();
    const rows = await lastValueFrom(of(b('a,b\n1,2,3\n"x"y,4\n'), b([0x66, 0xff, 0x2c, 0x35, 0x0a]), b('6,7\n')).pipe(parseCsv({ context: ctx }), toArray()));
    expect(rows).toEqual([
      ['a', 'b'],
      ['6', '7'],
    ]);
    expect(rejects.map((r) => [r.line, r.code, r.raw])).toEqual([
      [2, 'CSV_RECORD_INCONSISTENT_COLUMNS', b('1,2,3')],
      [3, 'CSV_INVALID_CLOSING_QUOTE', b('"x"y,4')],
      [4, 'INVALID_UTF8', b([0x66, 0xff, 0x2c, 0x35])],
    ]);
    expect(rejects[0]!.message).toBe('line 2: expected 2 fields as in the header, got 3');
    expect(ctx.counts).toEqual({ read: 4, batched: 0, written: 0, rejected: 3 });
  });

  it('errors the stream when the header itself is malformed', async () => {
    const { ctx, rejects } = context();
    const err = await errorOf(of(b('"a"x,b\n1,2\n')).pipe(parseCsv({ context: ctx })));
    expect(err).toBeInstanceOf(SluiceError);
    expect(err).toMatchObject({ code: 'CSV_INVALID_CLOSING_QUOTE', line: 1, file: 'orders.csv' });
    expect((err as Error).message).toMatch(/^the header is malformed: line 1: /);
    expect(rejects).toEqual([]);

    const utf8 = await errorOf(of(b([0x61, 0xfe, 0x0a, 0x31, 0x0a])).pipe(parseCsv({ context: context().ctx })));
    expect(utf8).toMatchObject({ code: 'INVALID_UTF8', line: 1 });
  });

  it('errors the stream on the first malformed record when it has no context', async () => {
    const err = await errorOf(of(b('a,b\n1,2\n3\n4,5\n')).pipe(parseCsv()));
    expect(err).toMatchObject({ code: 'CSV_RECORD_INCONSISTENT_COLUMNS', line: 3 });
  });

  it('errors the stream with BINARY_FILE when the first chunk holds a NUL byte', async () => {
    const err = await errorOf(of(b('a,b\n\u0000\n')).pipe(parseCsv({ context: context().ctx })));
    expect(err).toMatchObject({ code: 'BINARY_FILE' });
  });

  // csv-parse looks a few bytes ahead before it ends a record, so a record comes out with the next chunk
  it('emits each record once the next chunk arrives, and the last one on complete', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const src = cold('-a-b-|', { a: b('h,k\n1,2'), b: b('\n3,4') });
      expectObservable(src.pipe(parseCsv({ fast: false }))).toBe('-h-x-(y|)', { h: ['h', 'k'], x: ['1', '2'], y: ['3', '4'] });
      expectSubscriptions(src.subscriptions).toBe('^----!');
    });
  });

  it('passes a source error through without flushing the held record', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const src = cold('-a-#', { a: b('h\n1\n2') }, new Error('disk'));
      expectObservable(src.pipe(parseCsv({ fast: false }))).toBe('-h-#', { h: ['h'] }, new Error('disk'));
      expectSubscriptions(src.subscriptions).toBe('^--!');
    });
  });

  // the fast tokenizer emits a record as soon as its line end is read
  it('fast path: emits a complete record at once, holding only an unfinished one', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const src = cold('-a-----b-|', { a: b('h,k\n1,2\n3,'), b: b('4\n') });
      expectObservable(src.pipe(parseCsv())).toBe('-(hx)--y-|', { h: ['h', 'k'], x: ['1', '2'], y: ['3', '4'] });
    });
  });

  it('unsubscribes from the source when the subscriber does', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const src = cold('-a-b-c-|', { a: b('h\n111'), b: b('\n222\n'), c: b('3\n') });
      expectObservable(src.pipe(parseCsv({ fast: false })), '^----!').toBe('-h-x', { h: ['h'], x: ['111'] });
      expectSubscriptions(src.subscriptions).toBe('^----!');
    });
  });

  it('counts and rejects nothing more once the subscriber closes in the middle of a chunk', () => {
    const { ctx, rejects } = context();
    const seen: Row[] = [];
    of(b('h\n1\n2\nx,y\n3\n4\n'), b('5\n'))
      .pipe(parseCsv({ context: ctx }), take(2))
      .subscribe((r) => seen.push(r));
    expect(seen).toEqual([['h'], ['1']]);
    expect(ctx.counts.read).toBe(1);
    expect(rejects).toEqual([]);
  });

  it('counts and rejects nothing more once a downstream operator errors in the middle of a chunk', async () => {
    const { ctx, rejects } = context();
    const err = await errorOf(
      of(b('h\n1\n2\nx,y\n3\n')).pipe(
        parseCsv({ context: ctx }),
        tap((r) => {
          if (r[0] === '1') throw new Error('boom');
        }),
      ),
    );
    expect((err as Error).message).toBe('boom');
    expect(ctx.counts).toEqual({ read: 1, batched: 0, written: 0, rejected: 0 });
    expect(rejects).toEqual([]);
  });

  it('does not re-read after a source error', async () => {
    const err = await errorOf(
      concat(
        from([b('a\n1\n')]),
        throwError(() => new Error('EIO')),
      ).pipe(parseCsv()),
    );
    expect((err as Error).message).toBe('EIO');
  });
});
