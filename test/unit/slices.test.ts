// The slice producer (workers/slices.ts) with a pool whose "workers" run slices in this thread: two files
// cut at once share the main thread's lane and one worker that is not ready yet, and both finish with the
// outputs of a whole run; a stop wakes a producer wherever it waits.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, type SluiceConfig } from '../../src/config/load.js';
import { processFile, type PipelineSettings } from '../../src/pipeline/process-file.js';
import { pipelineSettings, settingsForFile } from '../../src/pipeline/settings.js';
import { Lane } from '../../src/workers/lane.js';
import type { WorkerPool } from '../../src/workers/pool.js';
import { sliceProducer } from '../../src/workers/slices.js';
import { fakePool } from './fake-pool.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-slices-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** The fake pools here build nothing from it. */
const FAKE_CONFIG = {} as SluiceConfig;

const per = (tag: string) => ({ tempTag: tag, claimId: tag, delimiter: undefined, format: 'csv' as const });

async function settingsIn(out: string, tag: string): Promise<PipelineSettings> {
  await mkdir(out, { recursive: true });
  const cfg = loadConfig({ cwd: dir, env: {}, flags: { watch: dir, out, rejects: out, archive: dir, failed: dir } });
  return { ...settingsForFile(await pipelineSettings(cfg, cfg.pipelines[0]!, 0), per(tag)), fsync: false, stageOnly: false };
}

function csv(rows: number, seed: number): string {
  let text = 'id,name,amount\n';
  for (let i = 0; i < rows; i++) text += `${i},name ${seed}-${i},${i % 5 === 0 ? '' : i * seed}\n`;
  return text;
}

describe('sliceProducer', () => {
  it('two files cut at once, one lane and a worker still starting: both finish, each with the output of a whole run', async () => {
    const names = ['a.csv', 'b.csv'];
    for (const [k, n] of names.entries()) await writeFile(join(dir, n), csv(6000, k + 1));
    const settings = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await settingsIn(join(dir, `out-${n}`), n.slice(0, 1))] as const)));
    const { pool, tasks } = fakePool((n) => settings[n]!);
    const lane = new Lane(true);
    const job = (n: string) =>
      sliceProducer({ pool, lane, gen: 1, config: FAKE_CONFIG, pipeline: 0, per: per(n.slice(0, 1)), sliceBytes: 16 * 1024, onEvent: () => undefined });
    const reports = await Promise.all(names.map((n) => processFile(join(dir, n), n, settings[n]!, {}, undefined, job(n))));
    for (const r of reports) {
      expect(r.error).toBeUndefined();
      expect(r.slices).toBeGreaterThan(5);
    }
    // the file holding the lane had no worker to give slices to; the other queued its in the pool
    expect(tasks()).toBeGreaterThan(0);
    for (const [k, n] of names.entries()) {
      const whole = await processFile(join(dir, n), n, await settingsIn(join(dir, `whole-${n}`), `w${k}`));
      expect(await readFile(reports[k]!.output!, 'utf8')).toBe(await readFile(whole.output!, 'utf8'));
      expect(reports[k]!.rows).toEqual(whole.rows);
    }
  });

  it('a worker dying while a slice is appended: the attempt fails with its code once the append is over, nothing left', async () => {
    // 2 MiB slices: each local one's output is two slabs, appended in two writes
    await writeFile(join(dir, 'a.csv'), csv(400_000, 1));
    const out = join(dir, 'out');
    const settings = await settingsIn(out, 'a');
    // whether the output was removed while an append was still writing to it
    let appending = 0;
    let abortedWhileAppending = false;
    let onAppend: (() => void) | undefined;
    const sink = settings.sink;
    const traced: PipelineSettings = {
      ...settings,
      sink: async (ctx, file) => {
        const s = await sink(ctx, file);
        const append = s.append!.bind(s);
        const abort = s.abort.bind(s);
        s.append = async (chunks, rows) => {
          appending++;
          onAppend?.();
          try {
            await append(chunks, rows);
          } finally {
            appending--;
          }
        };
        s.abort = async () => {
          if (appending > 0) abortedWhileAppending = true;
          await abort();
        };
        return s;
      },
    };
    // the worker's slice dies as soon as the lane's first slice is being appended
    const pool = {
      size: 1,
      ready: 1,
      start() {},
      giveSlabs() {},
      // as the real pool does, a task stopped by its signal ends (ABORTED)
      run: (_msg: unknown, opts: { signal?: AbortSignal }) =>
        new Promise((_, reject) => {
          onAppend = () => reject(Object.assign(new Error('died'), { code: 'WORKER_FAILED' }));
          opts.signal?.addEventListener('abort', () => reject(Object.assign(new Error('stopped'), { code: 'ABORTED' })), { once: true });
        }),
    } as unknown as WorkerPool;
    const produce = sliceProducer({
      pool,
      lane: new Lane(true),
      gen: 1,
      config: FAKE_CONFIG,
      pipeline: 0,
      per: per('a'),
      sliceBytes: 2 * 1024 * 1024,
      onEvent: () => undefined,
    });
    const r = await processFile(join(dir, 'a.csv'), 'a.csv', traced, {}, undefined, produce);
    expect(r.outcome).toBe('failed');
    expect(r.error?.message).toContain('died');
    expect(await readdir(out)).toEqual([]);
    expect(abortedWhileAppending).toBe(false);
  });

  it('a stop wakes the scan: the file ends ABORTED, not never', async () => {
    await writeFile(join(dir, 'a.csv'), csv(6000, 1));
    const settings = await settingsIn(join(dir, 'out'), 'a');
    // a pool whose task never ends: the lane is closed, so the scan waits on it
    const pool = { size: 1, ready: 1, start() {}, giveSlabs() {}, run: () => new Promise(() => undefined) } as unknown as WorkerPool;
    const ac = new AbortController();
    const produce = sliceProducer({
      pool,
      lane: new Lane(false),
      gen: 1,
      config: FAKE_CONFIG,
      pipeline: 0,
      per: per('a'),
      sliceBytes: 16 * 1024,
      onEvent: () => undefined,
    });
    const done = processFile(join(dir, 'a.csv'), 'a.csv', settings, { onBytesRead: () => ac.abort() }, ac.signal, produce);
    const r = await done;
    expect(r.outcome).toBe('failed');
    expect(r.error?.code).toBe('ABORTED');
  });
});
