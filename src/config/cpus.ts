// The CPUs this process may use: the default of `concurrency` and `workers`. os.availableParallelism()
// counts the CPUs the process may be scheduled on, not a container's CPU quota: a pod limited to 2 CPUs on
// a 64-core node would start 63 worker threads (each tens of MB) under a memory limit sized for 2. So a
// cgroup CPU quota (v2 `cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`) caps it, rounded up.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

/** Where the cgroup files are (tests give another root). */
export interface CgroupFiles {
  root: string;
  /** The contents of /proc/self/cgroup. */
  self: string | undefined;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The CPU quota of this process's cgroup, in CPUs (fractional), or undefined when there is none. */
export function cgroupCpuQuota(files: CgroupFiles = { root: '/sys/fs/cgroup', self: read('/proc/self/cgroup') }): number | undefined {
  const lines = (files.self ?? '').split('\n');
  // v2: "0::/path"; the quota may be set on the process's cgroup or any above it (the tightest counts)
  const v2 = lines.find((l) => l.startsWith('0::'))?.slice(3);
  if (v2 !== undefined) {
    let best: number | undefined;
    for (let dir = v2; ; dir = dir.slice(0, Math.max(0, dir.lastIndexOf('/')))) {
      const m = /^(\d+)\s+(\d+)/.exec(read(join(files.root, dir, 'cpu.max')) ?? '');
      if (m !== null && Number(m[2]) > 0) best = Math.min(best ?? Infinity, Number(m[1]) / Number(m[2]));
      if (dir === '' || dir === '/') break;
    }
    if (best !== undefined) return best;
  }
  // v1: "N:cpu,cpuacct:/path"
  const v1 = lines.map((l) => /^\d+:([^:]*\bcpu\b[^:]*):(.*)$/.exec(l)).find((m) => m !== null);
  if (v1 != null) {
    for (const dir of [join(files.root, v1[1]!, v1[2]!), join(files.root, v1[1]!), join(files.root, 'cpu')]) {
      const quota = Number(read(join(dir, 'cpu.cfs_quota_us')));
      const period = Number(read(join(dir, 'cpu.cfs_period_us')));
      if (quota > 0 && period > 0) return quota / period;
    }
  }
  return undefined;
}

/** The CPUs to plan for: availableParallelism(), capped by a cgroup CPU quota (rounded up); at least 1. */
export function usableCpus(cpus = availableParallelism(), quota = cgroupCpuQuota()): number {
  return Math.max(1, quota === undefined ? cpus : Math.min(cpus, Math.ceil(quota)));
}
