// Files wait while their output is down, probes back off, a batch job gives up, a reload reroutes.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SinkOutages } from '../../src/daemon/sink-outage.js';
import { SluiceError } from '../../src/errors.js';
import type { Logger } from '../../src/log.js';
import type { OutputConfig } from '../../src/outputs/registry.js';

const db = (table: string): OutputConfig => ({ format: 'postgres', table, create: false });
const pipe = (table = 't') => ({ name: 'load', output: db(table) });

function setup(opts: { up?: () => boolean; maxWaitMs?: number } = {}) {
  const lines: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = [];
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => lines.push({ level, msg, ...(fields === undefined ? {} : { fields }) });
  const log: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  const events: string[] = [];
  const resumed: string[] = [];
  const givenUp: Array<{ pipeline: string; jobs: string[] }> = [];
  const probes: number[] = [];
  const outages = new SinkOutages<string>({
    log,
    hooks: { onSinkUp: (p, up) => events.push(`${p} ${up ? 'up' : 'down'}`), onSinkWaiting: (p, n) => events.push(`${p} waiting ${n}`) },
    backoffMs: () => 100,
    maxWaitMs: () => opts.maxWaitMs,
    stopping: () => false,
    resume: (j) => resumed.push(j),
    giveUp: (pipeline, jobs) => givenUp.push({ pipeline, jobs }),
    driver: () => ({
      remote: {
        what: 'the database',
        probe: async () => {
          probes.push(Date.now());
          return opts.up?.() ?? false;
        },
        committed: async () => false,
      },
    }),
  });
  return { outages, lines, events, resumed, givenUp, probes };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('SinkOutages', () => {
  it('parks files while the output is down, probes at 100, 200, 400 ms, and resumes them all when a probe succeeds', async () => {
    let up = false;
    const t = setup({ up: () => up });
    t.outages.park(pipe(), 'a', new SluiceError('SINK_UNAVAILABLE', 'connect ECONNREFUSED 127.0.0.1:5432'));
    t.outages.park(pipe(), 'b');
    expect(t.outages.isDown('load')).toBe(true);
    expect(t.events).toEqual(['load down', 'load waiting 1', 'load waiting 2']);
    expect(t.lines[0]).toEqual({
      level: 'error',
      msg: 'the database is unavailable: files of this pipeline wait until it is back',
      fields: { pipeline: 'load', code: 'SINK_UNAVAILABLE', error: 'connect ECONNREFUSED 127.0.0.1:5432' },
    });
    await vi.advanceTimersByTimeAsync(100);
    await vi.advanceTimersByTimeAsync(200);
    expect(t.probes).toEqual([100, 300]);
    expect(t.lines.filter((l) => l.msg === 'the database is still unavailable').map((l) => l.fields?.retryInMs)).toEqual([200, 400]);
    up = true;
    await vi.advanceTimersByTimeAsync(400);
    expect(t.probes).toEqual([100, 300, 700]);
    expect(t.resumed).toEqual(['a', 'b']);
    expect(t.outages.isDown('load')).toBe(false);
    expect(t.events.slice(-2)).toEqual(['load up', 'load waiting 0']);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.probes).toHaveLength(3);
  });

  it('a batch job gives up after maxWaitMs: the waiting files, then any later one at once', async () => {
    const t = setup({ maxWaitMs: 1000 });
    t.outages.park(pipe(), 'a');
    t.outages.park(pipe(), 'b');
    await vi.advanceTimersByTimeAsync(1000);
    expect(t.givenUp).toEqual([{ pipeline: 'load', jobs: ['a', 'b'] }]);
    expect(t.lines.some((l) => l.msg === 'the database stayed unavailable past --max-wait: its files go back to the inbox')).toBe(true);
    t.outages.park(pipe(), 'c');
    expect(t.givenUp).toEqual([
      { pipeline: 'load', jobs: ['a', 'b'] },
      { pipeline: 'load', jobs: ['c'] },
    ]);
    const probes = t.probes.length;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.probes).toHaveLength(probes);
  });

  it('after a reload that changes the output, files go again, except those only the old output can settle', async () => {
    const t = setup();
    for (const j of ['a', 'b', 'c']) t.outages.park(pipe('old'), j);
    expect(await t.outages.reroute([pipe('old')], async () => false)).toEqual([]);
    expect(await t.outages.reroute([pipe('new')], async (j) => j === 'b')).toEqual(['a', 'c']);
    expect(t.outages.isDown('load')).toBe(false);
    // b still waits for the old database, under another name, and is resumed when it is back
    expect(t.outages.stop()).toEqual(['b']);
  });

  it('a reload that removes the pipeline retires its outage: no more probes', async () => {
    const t = setup();
    t.outages.park(pipe(), 'a');
    expect(await t.outages.reroute([], async () => false)).toEqual(['a']);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.probes).toEqual([]);
    expect(t.outages.stop()).toEqual([]);
  });
});
