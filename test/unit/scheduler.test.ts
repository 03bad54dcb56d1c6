// Parsing permits: a semaphore that lets a claim go first, a slot released once, a delay a stop cuts short.
import { describe, expect, it } from 'vitest';
import { abortableDelay, Semaphore, Slot } from '../../src/daemon/scheduler.js';

describe('Semaphore and Slot', () => {
  it('lets `permits` through, queues the rest in order, and puts a `first` ahead of those waiting', async () => {
    const s = new Semaphore(1);
    const order: string[] = [];
    await s.acquire();
    const waiting = [s.acquire().then(() => order.push('b')), s.acquire().then(() => order.push('c')), s.acquire(true).then(() => order.push('claim'))];
    expect(s.free).toBe(0);
    s.release();
    s.release();
    s.release();
    await Promise.all(waiting);
    expect(order).toEqual(['claim', 'b', 'c']);
    s.release();
    expect(s.free).toBe(1);
  });

  it('a slot holds at most one permit, however often it is acquired or released', async () => {
    const s = new Semaphore(2);
    const slot = new Slot(s);
    await slot.acquire();
    await slot.acquire();
    expect(s.free).toBe(1);
    slot.release();
    slot.release();
    expect(s.free).toBe(2);
  });
});

describe('abortableDelay', () => {
  it('resolves true after the wait, false at once when aborted', async () => {
    expect(await abortableDelay(1, new AbortController().signal)).toBe(true);
    const ac = new AbortController();
    const waiting = abortableDelay(60_000, ac.signal);
    ac.abort();
    expect(await waiting).toBe(false);
    expect(await abortableDelay(60_000, ac.signal)).toBe(false);
  });
});
