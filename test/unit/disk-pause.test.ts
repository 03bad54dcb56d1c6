// The disk-full pause: claiming waits until the filesystems have room for what failed, within bounds.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DiskPause } from '../../src/daemon/disk-pause.js';
import { silentLogger } from '../../src/log.js';

const MiB = 1024 * 1024;

function setup(size: number, minFreeBytes = 64 * MiB) {
  let free = 0;
  const events: boolean[] = [];
  const pause = new DiskPause({
    dirs: ['/out', '/rejects', '/state'],
    settings: () => ({ diskCheckMs: 1000, minFreeBytes }),
    log: silentLogger,
    onDiskFull: (full) => events.push(full),
    stopping: () => false,
    space: async () => ({ free, size }),
  });
  return { pause, events, setFree: (n: number) => (free = n) };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('DiskPause', () => {
  it('resumes once there is room for the file that failed (at least 1 MiB), checked every diskCheckMs', async () => {
    const t = setup(10_000 * MiB);
    t.pause.pause(5 * MiB);
    const wait = t.pause.wait;
    expect(wait).toBeDefined();
    expect(t.events).toEqual([true]);
    t.setFree(4 * MiB);
    await vi.advanceTimersByTimeAsync(1000);
    expect(t.pause.wait).toBe(wait);
    t.setFree(5 * MiB);
    await vi.advanceTimersByTimeAsync(1000);
    await wait;
    expect(t.pause.wait).toBeUndefined();
    expect(t.events).toEqual([true, false]);
  });

  it('wants no more than minFreeBytes, nor half of a small filesystem, and at least 1 MiB for a small file', async () => {
    const big = setup(10_000 * MiB, 64 * MiB);
    big.pause.pause(500 * MiB);
    big.setFree(64 * MiB);
    await vi.advanceTimersByTimeAsync(1000);
    expect(big.pause.wait).toBeUndefined();

    const small = setup(20 * MiB);
    small.pause.pause(500 * MiB);
    small.setFree(10 * MiB);
    await vi.advanceTimersByTimeAsync(1000);
    expect(small.pause.wait).toBeUndefined();

    const tiny = setup(10_000 * MiB);
    tiny.pause.pause(10);
    tiny.setFree(MiB - 1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(tiny.pause.wait).toBeDefined();
    tiny.setFree(MiB);
    await vi.advanceTimersByTimeAsync(1000);
    expect(tiny.pause.wait).toBeUndefined();
  });
});
