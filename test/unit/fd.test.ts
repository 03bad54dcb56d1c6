// SyncGroup (group commit) on a hand-driven fake sync, and writeAll / syncFd on real temp files.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SYNC_WRITE_MAX, SyncGroup, syncFd, writeAll } from '../../src/fs/fd.js';
import { pattern } from './bytes.js';

// Count the system calls writeAll makes, so the tests know which path (in place or thread pool) it took.
vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  return { ...actual, writeSync: vi.fn(actual.writeSync), write: vi.fn(actual.write) };
});

/** Lets every pending promise reaction run (one trip around the event loop; no timer). */
function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A doSync whose calls are counted and whose promises the test settles by hand. */
function fakeSync(): {
  doSync: () => Promise<void>;
  readonly calls: number;
  resolve(i: number): void;
  reject(i: number, err: Error): void;
} {
  const pending: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  return {
    doSync: () =>
      new Promise<void>((resolve, reject) => {
        pending.push({ resolve, reject });
      }),
    get calls() {
      return pending.length;
    },
    resolve(i: number) {
      const p = pending[i];
      if (p === undefined) throw new Error(`no sync #${i}`);
      p.resolve();
    },
    reject(i: number, err: Error) {
      const p = pending[i];
      if (p === undefined) throw new Error(`no sync #${i}`);
      p.reject(err);
    },
  };
}

type State = 'pending' | 'resolved' | `rejected:${string}`;

/** Follows a promise's state without awaiting it (and marks its rejection handled). */
function track(p: Promise<void>): { readonly state: State } {
  const t: { state: State } = { state: 'pending' };
  p.then(
    () => {
      t.state = 'resolved';
    },
    (err: unknown) => {
      t.state = `rejected:${(err as Error).message}`;
    },
  );
  return t;
}

describe('SyncGroup', () => {
  it('starts the first sync at once, synchronously', async () => {
    const f = fakeSync();
    const g = new SyncGroup(f.doSync);
    expect(f.calls).toBe(0);
    const a = track(g.sync());
    expect(f.calls).toBe(1);
    await flush();
    expect(a.state).toBe('pending');
    f.resolve(0);
    await flush();
    expect(a.state).toBe('resolved');
    expect(f.calls).toBe(1);
  });

  it('makes 5 callers arriving during a running sync share one next sync, started only after it settles', async () => {
    const f = fakeSync();
    const g = new SyncGroup(f.doSync);
    const first = track(g.sync());
    expect(f.calls).toBe(1);

    const waiting = [track(g.sync()), track(g.sync()), track(g.sync()), track(g.sync()), track(g.sync())];
    await flush();
    expect(f.calls).toBe(1); // nothing new while the first sync runs
    expect(waiting.map((w) => w.state)).toEqual(['pending', 'pending', 'pending', 'pending', 'pending']);

    f.resolve(0);
    await flush();
    expect(first.state).toBe('resolved');
    expect(f.calls).toBe(2); // exactly one sync for all five
    expect(waiting.map((w) => w.state)).toEqual(['pending', 'pending', 'pending', 'pending', 'pending']);

    f.resolve(1);
    await flush();
    expect(waiting.map((w) => w.state)).toEqual(['resolved', 'resolved', 'resolved', 'resolved', 'resolved']);
    expect(f.calls).toBe(2);
  });

  it('a caller that syncs again as its sync settles joins the queued sync: never two syncs at once', async () => {
    const f = fakeSync();
    const g = new SyncGroup(f.doSync);
    let again: { readonly state: State } | undefined;
    // the first caller calls sync() again straight from its sync's resolution, before the queued one starts
    const first = g.sync().then(() => {
      again = track(g.sync());
    });
    const queued = track(g.sync());
    f.resolve(0);
    await first;
    await flush();
    expect(f.calls).toBe(2); // the queued sync, shared with the re-entrant caller; no third
    f.resolve(1);
    await flush();
    expect(queued.state).toBe('resolved');
    expect(again?.state).toBe('resolved');
    let idle = false;
    void g.idle().then(() => (idle = true));
    await flush();
    expect(idle).toBe(true);
  });

  it('a doSync that throws at once makes sync() reject, not throw', async () => {
    const g = new SyncGroup(() => {
      throw new Error('EBADF');
    });
    await expect(g.sync()).rejects.toThrow('EBADF');
  });

  it('returns the same promise to every caller queued for one sync', () => {
    const f = fakeSync();
    const g = new SyncGroup(f.doSync);
    const first = g.sync();
    const b = g.sync();
    const c = g.sync();
    expect(b).toBe(c);
    expect(b).not.toBe(first);
    for (const p of [first, b, c]) p.catch(() => undefined);
  });

  it('never resolves a caller before a sync that started after its call has finished', async () => {
    const f = fakeSync();
    const g = new SyncGroup(f.doSync);
    const log: string[] = [];
    void g.sync().then(() => log.push('a'));
    void g.sync().then(() => log.push('b')); // arrives while sync #0 runs: #0 started before its change

    f.resolve(0);
    await flush();
    expect(log).toEqual(['a']);
    expect(f.calls).toBe(2);

    void g.sync().then(() => log.push('c')); // arrives while sync #1 runs: needs #2
    await flush();
    expect(f.calls).toBe(2);

    f.resolve(1);
    await flush();
    expect(log).toEqual(['a', 'b']);
    expect(f.calls).toBe(3);

    f.resolve(2);
    await flush();
    expect(log).toEqual(['a', 'b', 'c']);
    expect(f.calls).toBe(3);
  });

  it('starts a fresh sync at once after everything settled', async () => {
    const f = fakeSync();
    const g = new SyncGroup(f.doSync);
    const a = track(g.sync());
    f.resolve(0);
    await flush();
    expect(a.state).toBe('resolved');

    const b = track(g.sync());
    expect(f.calls).toBe(2); // not queued: nothing runs
    f.resolve(1);
    await flush();
    expect(b.state).toBe('resolved');
    expect(f.calls).toBe(2);
  });

  it('rejects exactly the callers waiting on a failed sync, and still runs the next one', async () => {
    const f = fakeSync();
    const g = new SyncGroup(f.doSync);
    const a = track(g.sync());
    const b = track(g.sync());
    const c = track(g.sync());

    f.reject(0, new Error('disk on fire'));
    await flush();
    expect([a.state, b.state, c.state]).toEqual(['rejected:disk on fire', 'pending', 'pending']);
    expect(f.calls).toBe(2);

    const d = track(g.sync()); // during #1: waits for #2
    f.reject(1, new Error('still on fire'));
    await flush();
    expect([a.state, b.state, c.state, d.state]).toEqual(['rejected:disk on fire', 'rejected:still on fire', 'rejected:still on fire', 'pending']);
    expect(f.calls).toBe(3);

    f.resolve(2);
    await flush();
    expect(d.state).toBe('resolved');
    expect(f.calls).toBe(3);

    // the group is usable again after failures
    const e = track(g.sync());
    expect(f.calls).toBe(4);
    f.resolve(3);
    await flush();
    expect(e.state).toBe('resolved');
  });

  it('idle() resolves at once when nothing runs', async () => {
    const f = fakeSync();
    const g = new SyncGroup(f.doSync);
    const idle = track(g.idle());
    await flush();
    expect(idle.state).toBe('resolved');
    expect(f.calls).toBe(0);
  });

  it('idle() resolves only once nothing runs or is queued', async () => {
    const f = fakeSync();
    const g = new SyncGroup(f.doSync);
    const a = track(g.sync());
    const b = track(g.sync());
    const idle = track(g.idle());

    await flush();
    expect(idle.state).toBe('pending');

    f.resolve(0);
    await flush();
    expect(a.state).toBe('resolved');
    expect(idle.state).toBe('pending'); // #1 is running now
    expect(f.calls).toBe(2);

    const c = track(g.sync()); // queues #2 while idle() waits
    f.resolve(1);
    await flush();
    expect(b.state).toBe('resolved');
    expect(idle.state).toBe('pending'); // #2 is running now
    expect(f.calls).toBe(3);

    f.resolve(2);
    await flush();
    expect(c.state).toBe('resolved');
    expect(idle.state).toBe('resolved');
    expect(f.calls).toBe(3);
  });

  it('idle() does not reject when a sync fails', async () => {
    const f = fakeSync();
    const g = new SyncGroup(f.doSync);
    const a = track(g.sync());
    const b = track(g.sync());
    const idle = track(g.idle());
    f.reject(0, new Error('boom'));
    await flush();
    expect(idle.state).toBe('pending');
    f.reject(1, new Error('boom again'));
    await flush();
    expect([a.state, b.state, idle.state]).toEqual(['rejected:boom', 'rejected:boom again', 'resolved']);
    expect(f.calls).toBe(2);
  });
});

describe('writeAll and syncFd', () => {
  let dir: string;
  const fds: number[] = [];

  beforeEach(() => {
    vi.mocked(fs.writeSync).mockClear();
    vi.mocked(fs.write).mockClear();
  });

  afterEach(() => {
    for (const fd of fds.splice(0)) {
      try {
        fs.closeSync(fd);
      } catch {
        // already closed by the test
      }
    }
  });

  afterAll(() => {
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  });

  function openNew(name: string, flags = 'w'): { file: string; fd: number } {
    dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-fd-'));
    const file = path.join(dir, name);
    const fd = fs.openSync(file, flags);
    fds.push(fd);
    return { file, fd };
  }

  it('SYNC_WRITE_MAX is 64 KiB', () => {
    expect(SYNC_WRITE_MAX).toBe(65536);
  });

  it('writes a small buffer in place (writeSync, no thread pool)', async () => {
    const { file, fd } = openNew('small.bin');
    const buf = pattern(1000, 7);
    await writeAll(fd, buf);
    expect(fs.readFileSync(file).equals(buf)).toBe(true);
    expect(fs.fstatSync(fd).size).toBe(1000);
    expect(vi.mocked(fs.writeSync)).toHaveBeenCalled();
    expect(vi.mocked(fs.write)).not.toHaveBeenCalled();
  });

  it('writes exactly SYNC_WRITE_MAX bytes in place', async () => {
    const { file, fd } = openNew('edge.bin');
    const buf = pattern(SYNC_WRITE_MAX, 11);
    await writeAll(fd, buf);
    expect(fs.readFileSync(file).equals(buf)).toBe(true);
    expect(vi.mocked(fs.write)).not.toHaveBeenCalled();
  });

  it('writes a buffer larger than SYNC_WRITE_MAX through the thread pool', async () => {
    const { file, fd } = openNew('large.bin');
    const buf = pattern(SYNC_WRITE_MAX + 1, 13);
    await writeAll(fd, buf);
    expect(fs.readFileSync(file).equals(buf)).toBe(true);
    expect(vi.mocked(fs.write)).toHaveBeenCalled();
    expect(vi.mocked(fs.writeSync)).not.toHaveBeenCalled();
  });

  it('writes a multi-megabyte buffer whole', async () => {
    const { file, fd } = openNew('huge.bin');
    const buf = pattern(5 * 1024 * 1024 + 123, 17);
    await writeAll(fd, buf);
    const got = fs.readFileSync(file);
    expect(got.length).toBe(buf.length);
    expect(got.equals(buf)).toBe(true);
  });

  it('writes nothing for an empty buffer', async () => {
    const { file, fd } = openNew('empty.bin');
    await writeAll(fd, Buffer.alloc(0));
    expect(fs.readFileSync(file).length).toBe(0);
  });

  it('writes successive buffers one after another, small and large mixed', async () => {
    const { file, fd } = openNew('mixed.bin');
    const parts = [pattern(10, 1), pattern(200_000, 2), pattern(SYNC_WRITE_MAX, 3), pattern(SYNC_WRITE_MAX + 5, 4), pattern(1, 5)];
    for (const p of parts) await writeAll(fd, p);
    expect(fs.readFileSync(file).equals(Buffer.concat(parts))).toBe(true);
  });

  it('appends after existing content on an O_APPEND file, on both paths', async () => {
    const { file, fd: first } = openNew('append.bin');
    const head = Buffer.from('existing line\n');
    fs.writeSync(first, head);
    const { fd } = openNew('append.bin', 'a');
    const small = pattern(300, 21);
    const large = pattern(100_000, 22);
    await writeAll(fd, small);
    await writeAll(fd, large);
    expect(fs.readFileSync(file).equals(Buffer.concat([head, small, large]))).toBe(true);
  });

  it('rejects (not throws) on a closed fd, on both paths', async () => {
    const { fd } = openNew('closed.bin');
    fs.closeSync(fd);
    const small = writeAll(fd, Buffer.from('x'));
    expect(small).toBeInstanceOf(Promise);
    await expect(small).rejects.toMatchObject({ code: 'EBADF' });
    await expect(writeAll(fd, pattern(SYNC_WRITE_MAX + 1, 9))).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('syncFd resolves on an open fd, with fsync and with fdatasync', async () => {
    const { file, fd } = openNew('sync.bin');
    await writeAll(fd, Buffer.from('durable'));
    await expect(syncFd(fd)).resolves.toBeUndefined();
    await expect(syncFd(fd, true)).resolves.toBeUndefined();
    expect(fs.readFileSync(file, 'utf8')).toBe('durable');
  });

  it('syncFd rejects with EBADF on a closed fd, with fsync and with fdatasync', async () => {
    const { fd } = openNew('sync-closed.bin');
    fs.closeSync(fd);
    // both calls are issued in the same turn as the close, before anything can reuse the fd number
    const full = syncFd(fd);
    const data = syncFd(fd, true);
    await expect(full).rejects.toMatchObject({ code: 'EBADF' });
    await expect(data).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('SyncGroup over syncFd on a real fd: concurrent callers resolve', async () => {
    const { file, fd } = openNew('group.bin');
    let calls = 0;
    const g = new SyncGroup(() => {
      calls++;
      return syncFd(fd, true);
    });
    await writeAll(fd, Buffer.from('a'));
    await Promise.all([g.sync(), g.sync(), g.sync(), g.sync()]);
    await g.idle();
    expect(calls).toBe(2);
    expect(fs.readFileSync(file, 'utf8')).toBe('a');
  });
});
