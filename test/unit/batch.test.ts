// Unit tests for batch and its policy: size and time triggers on virtual time, flush, errors, teardown.
import { describe, expect, it } from 'vitest';
import { type SchedulerLike, type Subscription, of, take, tap } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { FileContext } from '../../src/file-context.js';
import { batch } from '../../src/operators/batch.js';
import { BatchBuffer, normalizeBatchOptions } from '../../src/operators/batch-policy.js';
import type { Row, RowBatch } from '../../src/row.js';

const newScheduler = (): TestScheduler => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

const rows = { h: ['id', 'v'], a: ['1', 'a'], b: ['2', 'b'], c: ['3', 'c'], d: ['4', 'd'], e: ['5', 'e'] } satisfies Record<string, Row>;
const { h, a, b, c, d } = rows;
const zeros = (n: number): number[] => Array.from({ length: n }, () => 0);

/** A scheduler that records every timer it is asked for: when it was due, whether it fired or was cancelled. */
function spyScheduler(inner: TestScheduler): { scheduler: SchedulerLike; timers: Array<{ due: number; fired: boolean; sub: Subscription }> } {
  const timers: Array<{ due: number; fired: boolean; sub: Subscription }> = [];
  const scheduler: SchedulerLike = {
    now: () => inner.now(),
    schedule(work: (this: unknown, state?: unknown) => void, delay = 0, state?: unknown) {
      const t = { due: inner.now() + delay, fired: false, sub: undefined as unknown as Subscription };
      t.sub = inner.schedule(
        function (this: unknown, s?: unknown) {
          t.fired = true;
          work.call(this, s);
        },
        delay,
        state,
      );
      timers.push(t);
      return t.sub;
    },
  } as SchedulerLike;
  return { scheduler, timers };
}

describe('batch (marbles, virtual time)', () => {
  it('emits a batch each time `size` rows are buffered; the header rides on the first', () => {
    const ts = newScheduler();
    ts.run(({ cold, expectObservable, expectSubscriptions }) => {
      const src = cold('-h-a-b-c-d-|', rows);
      const out = src.pipe(batch({ size: 2, maxWaitMs: Infinity, scheduler: ts }));
      expectObservable(out).toBe('-----x---y-|', {
        x: { header: h, rows: [a, b], lines: [0, 0] },
        y: { rows: [c, d], lines: [0, 0] },
      });
      expectSubscriptions(src.subscriptions).toBe('^----------!');
    });
  });

  it('flushes a partial batch maxWaitMs after its first row when rows trickle in', () => {
    const ts = newScheduler();
    ts.run(({ cold, expectObservable }) => {
      // h at 1, a at 3, b at 14, c at 16, d at 30, complete at 31
      const src = cold('-h-a 10ms b-c 13ms d|', rows);
      const out = src.pipe(batch({ size: 10, maxWaitMs: 5, scheduler: ts }));
      expectObservable(out).toBe('8ms x 10ms y 11ms (z|)', {
        x: { header: h, rows: [a], lines: [0] },
        y: { rows: [b, c], lines: [0, 0] },
        z: { rows: [d], lines: [0] },
      });
    });
  });

  it('restarts the timer after a size flush, from the next row', () => {
    const ts = newScheduler();
    ts.run(({ cold, expectObservable }) => {
      const src = cold('-h-a-b-c----------|', rows);
      expectObservable(src.pipe(batch({ size: 2, maxWaitMs: 4, scheduler: ts }))).toBe('-----x-----y------|', {
        x: { header: h, rows: [a, b], lines: [0, 0] },
        y: { rows: [c], lines: [0] },
      });
    });
  });

  it('flushes what is buffered on complete and cancels its timer', () => {
    const ts = newScheduler();
    const spy = spyScheduler(ts);
    ts.run(({ cold, expectObservable }) => {
      expectObservable(cold('-h-a-b-|', rows).pipe(batch({ size: 10, maxWaitMs: 50, scheduler: spy.scheduler }))).toBe('-------(x|)', {
        x: { header: h, rows: [a, b], lines: [0, 0] },
      });
    });
    expect(spy.timers.map((t) => [t.due, t.fired, t.sub.closed])).toEqual([[53, false, true]]);
  });

  it('gives one batch with the header and no rows for a header-only stream', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('-h---|', rows).pipe(batch({ size: 2 }))).toBe('-----(x|)', { x: { header: h, rows: [], lines: [] } });
    });
  });

  it('gives no batch for an empty stream', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold<Row>('---|').pipe(batch({ size: 2 }))).toBe('---|');
    });
  });

  it('passes an error through, dropping the partial batch and its timer', () => {
    const ts = newScheduler();
    const spy = spyScheduler(ts);
    ts.run(({ cold, expectObservable, expectSubscriptions }) => {
      const src = cold('-h-a-b-c-#', rows, new Error('parse'));
      expectObservable(src.pipe(batch({ size: 2, maxWaitMs: 100, scheduler: spy.scheduler }))).toBe(
        '-----x---#',
        { x: { header: h, rows: [a, b], lines: [0, 0] } },
        new Error('parse'),
      );
      expectSubscriptions(src.subscriptions).toBe('^--------!');
    });
    expect(spy.timers.map((t) => [t.due, t.fired, t.sub.closed])).toEqual([
      [103, false, true],
      [107, false, true],
    ]);
  });

  it('cancels its timer when unsubscribed early', () => {
    const ts = newScheduler();
    const spy = spyScheduler(ts);
    ts.run(({ cold, expectObservable, expectSubscriptions }) => {
      const src = cold('-h-a-----b-|', rows);
      expectObservable(src.pipe(batch({ size: 10, maxWaitMs: 5, scheduler: spy.scheduler })), '^---!').toBe('----');
      expectSubscriptions(src.subscriptions).toBe('^---!');
    });
    expect(spy.timers.map((t) => [t.due, t.fired, t.sub.closed])).toEqual([[8, false, true]]);
  });

  it('uses asyncScheduler by default, which run mode puts on virtual time', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('-h-a-----------|', rows).pipe(batch({ size: 5, maxWaitMs: 3 }))).toBe('------x--------|', {
        x: { header: h, rows: [a], lines: [0] },
      });
    });
  });
});

describe('batch with a file context', () => {
  it('takes each row line from ctx.line, counts batched rows and takes one flow credit per row (not the header)', () => {
    const ctx = new FileContext('f.csv');
    const lineOf: Record<string, number> = { id: 1, '1': 2, '2': 5, '3': 6 };
    const out: RowBatch[] = [];
    of(h, a, b, c)
      .pipe(
        tap((r) => (ctx.line = lineOf[r[0]!]!)),
        batch({ size: 2, maxWaitMs: Infinity, context: ctx }),
      )
      .subscribe((x) => out.push(x));
    expect(out).toEqual([
      { header: h, rows: [a, b], lines: [2, 5] },
      { rows: [c], lines: [6] },
    ]);
    expect(ctx.counts.batched).toBe(3);
    expect(ctx.gate.inFlight).toBe(3);
    expect(ctx.filtered).toBe(-3); // nothing was counted as read here: read - rejected - batched
  });

  it('counts and takes credit for no more rows once the subscriber has closed (synchronous source)', () => {
    const ctx = new FileContext('f.csv');
    const out: RowBatch[] = [];
    of(h, a, b, c, d)
      .pipe(batch({ size: 1, context: ctx }), take(2))
      .subscribe((x) => out.push(x));
    expect(out.map((x) => x.rows)).toEqual([[a], [b]]);
    expect(ctx.counts.batched).toBe(2);
    expect(ctx.gate.inFlight).toBe(2);
  });

  it('has lines of 0 without a context', () => {
    const out: RowBatch[] = [];
    of(h, a, b, c)
      .pipe(batch({ size: 3 }))
      .subscribe((x) => out.push(x));
    expect(out).toEqual([{ header: h, rows: [a, b, c], lines: zeros(3) }]);
  });
});

describe('batch policy', () => {
  it('normalizes defaults and refuses bad sizes and waits', () => {
    expect(normalizeBatchOptions()).toEqual({ size: 1000, maxWaitMs: 1000 });
    expect(normalizeBatchOptions({ size: 3, maxWaitMs: Infinity })).toEqual({ size: 3, maxWaitMs: Infinity });
    for (const bad of [{ size: 0 }, { size: 1.5 }, { size: Number.NaN }, { maxWaitMs: 0 }, { maxWaitMs: -1 }, { maxWaitMs: Number.NaN }]) {
      const invalid = expect.objectContaining({ code: 'CONFIG_INVALID', field: `batch.${Object.keys(bad)[0]}` });
      expect(() => normalizeBatchOptions(bad)).toThrow(invalid);
      expect(() => batch(bad)).toThrow(invalid);
    }
    expect(() => normalizeBatchOptions({ size: 0 })).toThrow('batch.size: expected a whole number >= 1, got 0');
  });

  it('BatchBuffer.add says when the size is reached; flush empties it', () => {
    const buf = new BatchBuffer<string>(2);
    expect(buf.add('x', 3)).toBe(false);
    expect(buf.add('y', 4)).toBe(true);
    expect(buf.length).toBe(2);
    expect(buf.flush()).toEqual({ rows: ['x', 'y'], lines: [3, 4] });
    expect(buf.length).toBe(0);
    expect(buf.flush()).toEqual({ rows: [], lines: [] });
  });
});
