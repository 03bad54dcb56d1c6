// At the inotify watch limit (ENOSPC) or the file table's (EMFILE), fs.watch fails, at once or later through
// the watcher's 'error' event: the inbox then watches by polling, and files dropped afterwards still come.
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Logger } from '../../src/log.js';

/** How the mocked fs.watch behaves: throw at once, or return a watcher the test makes fail later. */
let mode: 'throw' | 'emit' = 'throw';
let watcher: (EventEmitter & { close(): void }) | undefined;

vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  return {
    ...actual,
    watch: () => {
      if (mode === 'throw') throw Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC' });
      watcher = Object.assign(new EventEmitter(), { close: () => undefined });
      return watcher;
    },
  };
});

const { Inbox } = await import('../../src/inbox/inbox.js');

let dir: string;
let warnings: string[];
let inbox: InstanceType<typeof Inbox> | undefined;
const log: Logger = { debug() {}, info() {}, warn: (msg: string) => void warnings.push(msg), error() {} };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-poll-'));
  warnings = [];
  watcher = undefined;
});
afterEach(async () => {
  await inbox?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Starts an inbox (settle 0, no rescans: only polling can find a file dropped after start). */
async function start(): Promise<{ next: () => Promise<string> }> {
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  inbox = new Inbox({ dir, settleMs: 0, rescanMs: 0, watch: true, pollIntervalMs: 20, log }, (name) => {
    queue.push(name);
    wake?.();
  });
  await inbox.start();
  return {
    next: async () => {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      return queue.shift()!;
    },
  };
}

describe('Inbox at the inotify limit', () => {
  it('fs.watch failing with ENOSPC at start: the inbox polls, and a file dropped later is found', async () => {
    mode = 'throw';
    const { next } = await start();
    expect(warnings).toEqual(['inotify watch limit reached: watching the inbox by polling instead']);
    writeFileSync(join(dir, 'late.csv'), 'a\n1\n');
    expect(await next()).toBe('late.csv');
  });

  it('the watcher failing with EMFILE later: the inbox switches to polling, and a file dropped then is found', async () => {
    mode = 'emit';
    const { next } = await start();
    expect(warnings).toEqual([]);
    watcher!.emit('error', Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' }));
    expect(warnings).toEqual(['inotify watch limit reached: watching the inbox by polling instead']);
    writeFileSync(join(dir, 'after.csv'), 'a\n1\n');
    expect(await next()).toBe('after.csv');
  });

  it('another watcher error leaves the inbox on its rescans, with a warning', async () => {
    mode = 'emit';
    await start();
    watcher!.emit('error', Object.assign(new Error('EIO'), { code: 'EIO' }));
    expect(warnings).toEqual(['inbox watcher error; relying on rescans']);
  });
});
