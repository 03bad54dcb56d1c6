// Unit tests for FlowGate (backpressure credit) and FileContext (counts, rejects).
import { describe, expect, it } from 'vitest';
import { FlowGate } from '../../src/flow-gate.js';
import { FileContext } from '../../src/file-context.js';
import type { Rejection } from '../../src/row.js';

describe('FlowGate', () => {
  it('is open below the high-water mark and closed at it', () => {
    const g = new FlowGate(3);
    expect([g.open, g.inFlight]).toEqual([true, 0]);
    g.take(2);
    expect(g.open).toBe(true);
    g.take(1);
    expect([g.open, g.inFlight]).toEqual([false, 3]);
    g.give(1);
    expect([g.open, g.inFlight]).toEqual([true, 2]);
  });

  it('keeps the peak level', () => {
    const g = new FlowGate(10);
    g.take(4);
    g.give(3);
    g.take(2);
    expect([g.inFlight, g.maxInFlight]).toEqual([3, 4]);
  });

  it('wait resolves at once when open, and when credit comes back under the mark', async () => {
    const g = new FlowGate(2);
    await g.wait();
    g.take(3);
    const order: string[] = [];
    const w1 = g.wait().then(() => order.push('w1'));
    const w2 = g.wait().then(() => order.push('w2'));
    g.give(1); // 2: still at the mark
    await Promise.resolve();
    expect(order).toEqual([]);
    g.give(1); // 1: open
    await Promise.all([w1, w2]);
    expect(order).toEqual(['w1', 'w2']);
  });

  it('reports every change to onChange and drains back to zero', () => {
    const deltas: number[] = [];
    const g = new FlowGate(5, (d) => deltas.push(d));
    g.take(3);
    g.give(1);
    g.drain();
    g.drain();
    expect(deltas).toEqual([3, -1, -2]);
    expect(g.inFlight).toBe(0);
  });

  it('drain releases waiters', async () => {
    const g = new FlowGate(1);
    g.take(5);
    const w = g.wait();
    g.drain();
    await expect(w).resolves.toBeUndefined();
  });

  it('refuses a high-water mark under 1', () => {
    expect(() => new FlowGate(0)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', field: 'highWaterMark' }));
    expect(() => new FlowGate(Number.NaN)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});

describe('FileContext', () => {
  it('counts rejects, hands them on, and derives filtered rows', () => {
    const seen: Rejection[] = [];
    const ctx = new FileContext('f.csv', { highWaterMark: 7, onReject: (r) => seen.push(r) });
    expect(ctx.gate.highWaterMark).toBe(7);
    ctx.counts.read = 10;
    ctx.counts.batched = 6;
    const r = { line: 4, code: 'INVALID_UTF8', message: 'm', raw: Buffer.from([0xff]) };
    ctx.reject(r);
    expect(seen).toEqual([r]);
    expect(ctx.counts.rejected).toBe(1);
    expect(ctx.filtered).toBe(3);
  });

  it('counts a reject even with no handler', () => {
    const ctx = new FileContext('f.csv');
    ctx.reject({ line: 2, code: 'X', message: 'm', raw: Buffer.alloc(0) });
    expect(ctx.counts.rejected).toBe(1);
    expect(ctx.gate.highWaterMark).toBe(4096);
  });
});
