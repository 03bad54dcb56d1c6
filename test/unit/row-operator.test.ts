// Unit tests for rowOperator: bind once on the header, map or drop rows, errors end the stream.
import { describe, expect, it } from 'vitest';
import { TestScheduler } from 'rxjs/testing';
import { take, of } from 'rxjs';
import { columnIndexes, rowOperator } from '../../src/operators/row-operator.js';
import type { Row } from '../../src/row.js';

const testScheduler = (): TestScheduler => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

/** Upper-cases one column; drops rows where it is "skip"; throws on "boom". */
const upper = (col: string, binds: Row[] = []) =>
  rowOperator((header) => {
    binds.push(header);
    const [i] = columnIndexes(header, [col], 'upper');
    return {
      header: [...header, 'len'],
      row: (r) => {
        const v = r[i!]!;
        if (v === 'boom') throw new Error('boom');
        if (v === 'skip') return undefined;
        return [...r.slice(0, i), v.toUpperCase(), ...r.slice(i! + 1), String(v.length)];
      },
    };
  });

const values = {
  h: ['id', 'name'],
  H: ['id', 'name', 'len'],
  a: ['1', 'ann'],
  A: ['1', 'ANN', '3'],
  s: ['2', 'skip'],
  b: ['3', 'bo'],
  B: ['3', 'BO', '2'],
  x: ['4', 'boom'],
};

describe('rowOperator', () => {
  it('binds once with the header, emits the bound header, maps and drops rows', () => {
    const binds: Row[] = [];
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const src = cold('-h-a-s-b-|', values);
      expectObservable(src.pipe(upper('name', binds))).toBe('-H-A---B-|', values);
      expectSubscriptions(src.subscriptions).toBe('^--------!');
    });
    expect(binds).toEqual([['id', 'name']]);
  });

  it('binds again for every subscription', () => {
    const binds: Row[] = [];
    const op = upper('name', binds);
    of(['x', 'name'], ['1', 'a']).pipe(op).subscribe();
    of(['name'], ['b']).pipe(op).subscribe();
    expect(binds).toEqual([['x', 'name'], ['name']]);
  });

  it('errors the stream when bind throws (unknown column)', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const src = cold('-h-a-|', values);
      expectObservable(src.pipe(upper('nope'))).toBe('-#', undefined, expect.objectContaining({ code: 'UNKNOWN_COLUMN', field: 'nope' }));
      expectSubscriptions(src.subscriptions).toBe('^!');
    });
  });

  it('errors the stream when the row function throws', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const src = cold('-h-a-x-b-|', values);
      expectObservable(src.pipe(upper('name'))).toBe('-H-A-#', values, new Error('boom'));
      expectSubscriptions(src.subscriptions).toBe('^----!');
    });
  });

  it('passes a source error through', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('-h-#', values, new Error('src')).pipe(upper('name'))).toBe('-H-#', values, new Error('src'));
    });
  });

  it('unsubscribes from the source early', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const src = cold('-h-a-b-|', values);
      expectObservable(src.pipe(upper('name')), '^--!').toBe('-H-', values);
      expectSubscriptions(src.subscriptions).toBe('^--!');
    });
  });

  it('calls the row function no more once the subscriber has closed mid-way through a synchronous source', () => {
    const calls: string[] = [];
    const op = rowOperator((header) => ({
      header,
      row: (r) => {
        calls.push(r[0]!);
        return r;
      },
    }));
    of(['h'], ['1'], ['2'], ['3'], ['4']).pipe(op, take(2)).subscribe();
    expect(calls).toEqual(['1']);
  });
});

describe('columnIndexes', () => {
  it('resolves names to indexes in the order asked', () => {
    expect(columnIndexes(['a', 'b', 'c'], ['c', 'a'], 'op')).toEqual([2, 0]);
  });

  it('throws UNKNOWN_COLUMN naming the operator, column and header', () => {
    expect(() => columnIndexes(['a', 'b'], ['a', 'z'], 'select')).toThrow('select: column "z" is not in the header ("a", "b")');
  });
});
