// The CPU count behind the defaults of concurrency and workers: a cgroup CPU quota caps it (v2 and v1).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cgroupCpuQuota, usableCpus } from '../../src/config/cpus.js';

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'sluice-cg-'));
  roots.push(root);
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), text);
  }
  return root;
}

describe('cgroupCpuQuota', () => {
  it('cgroup v2: the quota of the process cgroup or of one above it, the tightest', () => {
    const root = tree({ 'kubepods/pod1/ctr/cpu.max': 'max 100000\n', 'kubepods/pod1/cpu.max': '250000 100000\n', 'kubepods/cpu.max': '800000 100000\n' });
    expect(cgroupCpuQuota({ root, self: '0::/kubepods/pod1/ctr\n' })).toBe(2.5);
  });
  it('cgroup v2 seen from inside a container ("0::/"), and no quota ("max")', () => {
    expect(cgroupCpuQuota({ root: tree({ 'cpu.max': '150000 100000\n' }), self: '0::/\n' })).toBe(1.5);
    expect(cgroupCpuQuota({ root: tree({ 'cpu.max': 'max 100000\n' }), self: '0::/\n' })).toBeUndefined();
  });
  it('cgroup v1: cfs quota over period; -1 is none', () => {
    const self = '5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n';
    expect(
      cgroupCpuQuota({ root: tree({ 'cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '300000\n', 'cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000\n' }), self }),
    ).toBe(3);
    expect(
      cgroupCpuQuota({ root: tree({ 'cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '-1\n', 'cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000\n' }), self }),
    ).toBeUndefined();
  });
  it('no cgroup files at all: no quota', () => {
    expect(cgroupCpuQuota({ root: tree({}), self: undefined })).toBeUndefined();
  });
});

describe('usableCpus', () => {
  it('the CPU count, capped by a quota rounded up, at least 1', () => {
    expect(usableCpus(64, undefined)).toBe(64);
    expect(usableCpus(64, 2)).toBe(2);
    expect(usableCpus(64, 2.5)).toBe(3);
    expect(usableCpus(2, 8)).toBe(2);
    expect(usableCpus(8, 0.5)).toBe(1);
  });
});
