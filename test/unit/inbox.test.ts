// The inbox's settle rule, on a fake clock: a file is reported once it has been unchanged for settleMs
// (by what was seen, or by its mtime), looked at when it is due or when an event names it.
import { mkdtempSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Inbox } from '../../src/inbox/inbox.js';
import { silentLogger } from '../../src/log.js';

const SETTLE = 2000;
const T0 = Date.parse('2026-01-01T00:00:00Z');

let dir: string;
let ready: string[];
let gone: string[];
let inbox: Inbox;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'Date'] });
  vi.setSystemTime(T0);
  dir = mkdtempSync(join(tmpdir(), 'sluice-inbox-'));
  ready = [];
  gone = [];
  inbox = new Inbox(
    { dir, settleMs: SETTLE, rescanMs: 0, watch: false, log: silentLogger },
    (n) => ready.push(n),
    (n) => gone.push(n),
  );
});

afterEach(async () => {
  await inbox.close();
  vi.useRealTimers();
  rmSync(dir, { recursive: true, force: true });
});

/** Writes `name` with `bytes` bytes and an mtime of `at` (ms on the fake clock). */
function put(name: string, bytes: number, at: number): void {
  writeFileSync(join(dir, name), 'x'.repeat(bytes));
  utimesSync(join(dir, name), at / 1000, at / 1000);
}

describe('Inbox settle', () => {
  it('reports a file whose mtime is older than the settle time at the first look', () => {
    put('old.csv', 10, T0 - SETTLE - 1000);
    inbox.hint('old.csv');
    expect(ready).toEqual([]);
    vi.advanceTimersByTime(0); // the hints of one burst are looked at together, on the next turn
    expect(ready).toEqual(['old.csv']);
  });

  it('reports a fresh file exactly when it has been unchanged for the settle time, not before', () => {
    put('new.csv', 10, T0);
    inbox.hint('new.csv');
    vi.advanceTimersByTime(SETTLE - 1);
    expect(ready).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ready).toEqual(['new.csv']);
  });

  it('an event about a change starts the settle time again', () => {
    put('grow.csv', 10, T0);
    inbox.hint('grow.csv');
    vi.advanceTimersByTime(SETTLE / 2);
    put('grow.csv', 20, Date.now());
    inbox.hint('grow.csv'); // what the watcher does on a write
    vi.advanceTimersByTime(SETTLE - 1);
    expect(ready).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ready).toEqual(['grow.csv']);
  });

  it('without an event, a change is seen when the file is due, and it is reported a settle time after its mtime', () => {
    put('quiet.csv', 10, T0);
    inbox.hint('quiet.csv');
    vi.advanceTimersByTime(SETTLE / 2);
    put('quiet.csv', 20, Date.now()); // no hint: a missed event
    vi.advanceTimersByTime(SETTLE / 2); // due: looked at, found changed
    expect(ready).toEqual([]);
    vi.advanceTimersByTime(SETTLE / 2 - 1); // last changed at T0 + settle/2: settled at T0 + 1.5 settle
    expect(ready).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ready).toEqual(['quiet.csv']);
  });

  it('a file removed while it settles is reported gone, never ready', () => {
    put('brief.csv', 10, T0);
    inbox.hint('brief.csv');
    vi.advanceTimersByTime(0);
    unlinkSync(join(dir, 'brief.csv'));
    vi.advanceTimersByTime(SETTLE);
    expect(ready).toEqual([]);
    expect(gone).toEqual(['brief.csv']);
    expect(inbox.stats().files).toBe(0);
  });

  it('looks at each waiting file once per settle period, not on every tick', () => {
    const names = Array.from({ length: 50 }, (_, i) => `f${i}.csv`);
    for (const n of names) put(n, 10, T0);
    for (const n of names) inbox.hint(n);
    // count the looks: one at arrival, one when due
    const looks = vi.spyOn(inbox as unknown as { check: (...a: unknown[]) => void }, 'check');
    vi.advanceTimersByTime(0);
    expect(looks).toHaveBeenCalledTimes(50);
    vi.advanceTimersByTime(SETTLE - 1);
    expect(looks).toHaveBeenCalledTimes(50);
    vi.advanceTimersByTime(1);
    expect(looks).toHaveBeenCalledTimes(100);
    expect(ready.sort()).toEqual([...names].sort());
    expect(inbox.stats()).toEqual({ files: 50, oldestAgeSeconds: SETTLE / 1000 });
  });

  it('an event about one file looks at that file alone; each waiting file is looked at again when it is due', () => {
    put('a.csv', 10, T0);
    inbox.hint('a.csv');
    vi.advanceTimersByTime(0);
    const looks = vi.spyOn(inbox as unknown as { check: (name: string) => void }, 'check');
    vi.advanceTimersByTime(500);
    put('b.csv', 10, Date.now());
    inbox.hint('b.csv');
    vi.advanceTimersByTime(0);
    expect(looks.mock.calls.map((c) => c[0])).toEqual(['b.csv']);
    vi.advanceTimersByTime(SETTLE - 500 - 1);
    expect(ready).toEqual([]);
    vi.advanceTimersByTime(1); // a.csv due at T0 + settle
    expect(ready).toEqual(['a.csv']);
    vi.advanceTimersByTime(499);
    expect(ready).toEqual(['a.csv']);
    vi.advanceTimersByTime(1); // b.csv due at T0 + 500 + settle
    expect(ready).toEqual(['a.csv', 'b.csv']);
    expect(looks.mock.calls.map((c) => c[0])).toEqual(['b.csv', 'a.csv', 'b.csv']);
  });

  it("counts a waiting file's age from its arrival (ctime), so a restarted daemon does not reset it", () => {
    // the daemon starts a minute after the file arrived (the fake clock runs ahead of the file's real ctime)
    vi.useRealTimers();
    put('early.csv', 10, T0);
    const ctime = statSync(join(dir, 'early.csv')).ctimeMs;
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'Date'] });
    vi.setSystemTime(ctime + 60_000);
    inbox.hint('early.csv');
    expect(inbox.stats().oldestAgeSeconds).toBe(0);
    vi.advanceTimersByTime(0); // looked at: its ctime is a minute ago
    expect(ready).toEqual(['early.csv']);
    const { files, oldestAgeSeconds } = inbox.stats();
    expect(files).toBe(1);
    expect(oldestAgeSeconds).toBeCloseTo(60, 2); // the fake clock keeps whole milliseconds; ctime has more
  });
});
