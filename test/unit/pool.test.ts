// The worker pool on a stand-in worker: answers in order, progress events, a worker that dies fails its
// task with WORKER_FAILED and is replaced, an abort reaches a running task, a script that cannot load
// breaks the pool instead of respawning forever.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { SluiceConfig } from '../../src/config/load.js';
import { WorkerPool } from '../../src/workers/pool.js';
import { caught } from './sluice-error.js';

const ENTRY = pathToFileURL(resolve(import.meta.dirname, '../fixtures/pool-worker.mjs'));
const task = (name: string) => ({
  t: 'file' as const,
  gen: 0,
  pipeline: 0,
  path: '/nowhere',
  name,
  per: { tempTag: 't', claimId: 'c', delimiter: ',', format: 'csv' as const },
});
let pool: WorkerPool | undefined;
afterEach(async () => {
  await pool?.close(true);
  pool = undefined;
});

describe('WorkerPool', () => {
  it('runs tasks on its workers, with their progress, more tasks than workers', async () => {
    pool = new WorkerPool(2, ENTRY);
    const events: unknown[] = [];
    const all = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((n) => pool!.run(task(n), { onEvent: (ev) => events.push(ev) })));
    expect(all).toEqual(['a', 'b', 'c', 'd', 'e'].map((echo) => ({ echo })));
    expect(events).toHaveLength(5);
    expect(events[0]).toEqual({ inFlight: 1, bytes: 2 });
  });

  it('a worker that dies fails its task with WORKER_FAILED, and a new worker takes the next', async () => {
    const deaths: Array<{ index: number; starting: boolean }> = [];
    pool = new WorkerPool(1, ENTRY, ({ index, starting }) => deaths.push({ index, starting }));
    await pool.run(task('warm'));
    const err = await caught(pool.run(task('crash')));
    expect(err.code).toBe('WORKER_FAILED');
    expect(err.message).toContain('exited with code 3');
    expect(deaths).toEqual([{ index: 0, starting: false }]);
    expect(await pool.run(task('after'))).toEqual({ echo: 'after' });
    expect(pool.broken).toBe(false);
  });

  it('an abort reaches the running task, and removes a queued one at once', async () => {
    pool = new WorkerPool(1, ENTRY);
    const a = new AbortController();
    const b = new AbortController();
    const running = pool.run(task('wait'), { signal: a.signal });
    const queued = pool.run(task('x'), { signal: b.signal });
    b.abort();
    expect((await caught(queued)).code).toBe('ABORTED');
    a.abort();
    expect(await running).toEqual({ aborted: true });
  });

  it("a task finds its generation's configuration in the worker, through any number of reloads; the worker holds a bounded number", async () => {
    pool = new WorkerPool(1, ENTRY);
    const cfg = (gen: number) => ({ mark: `config ${gen}` }) as unknown as SluiceConfig;
    // a file taken under generation 1 goes on sending tasks while 30 reloads come and go
    for (let gen = 2; gen <= 30; gen++) {
      expect(await pool.run({ ...task('gen?'), gen }, { config: cfg(gen) })).toMatchObject({ gen, held: `config ${gen}` });
      const old = (await pool.run({ ...task('gen?'), gen: 1 }, { config: cfg(1) })) as { held: string; count: number };
      expect(old.held).toBe('config 1');
      expect(old.count).toBeLessThanOrEqual(9);
    }
  });

  it('a script that cannot load breaks the pool: its tasks fail, and no worker is spawned again and again', async () => {
    const deaths: boolean[] = [];
    pool = new WorkerPool(2, pathToFileURL('/nonexistent/worker.js'), ({ starting }) => deaths.push(starting));
    const err = await caught(pool.run(task('a')));
    expect(err.code).toBe('WORKER_FAILED');
    expect(pool.broken).toBe(true);
    expect(deaths.every((s) => s)).toBe(true);
    expect(deaths.length).toBeLessThanOrEqual(2);
  });
});
