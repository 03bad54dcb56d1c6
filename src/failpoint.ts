// Failpoints: named places where a test can make the process die at once (SIGKILL), to prove that a crash
// at that instant loses and duplicates nothing. Inert unless SLUICE_FAILPOINT names the point, as `name`
// (its first hit) or `name#n` (its n-th hit). Hits and fault budgets are counted for the whole process:
// worker threads count in memory the main thread shares with them (failpointMemory / useFailpointMemory).

const armed = process.env.SLUICE_FAILPOINT;
const [armedName, armedHit] = armed === undefined ? [undefined, 0] : [armed.split('#')[0], Number(armed.split('#')[1] ?? 1)];

const faultSpec = process.env.SLUICE_FAULT;
const faults = new Map<string, { code: string; index: number }>();
const budgets: number[] = [];
for (const part of faultSpec === undefined ? [] : faultSpec.split(',')) {
  const m = /^([a-z-]+)=([A-Z]+)(?:\*(\d+))?$/.exec(part.trim());
  if (m !== null) {
    faults.set(m[1]!, { code: m[2]!, index: budgets.length });
    budgets.push(m[3] === undefined ? -1 : Number(m[3]));
  }
}

/** [0]: hits of the armed failpoint; [1 + i]: what is left of fault i's budget (-1: no limit). */
let counters = new Int32Array(new SharedArrayBuffer(4 * (1 + budgets.length)));
counters.set([0, ...budgets]);

/** The counters to give a worker thread (undefined when nothing is armed). */
export function failpointMemory(): SharedArrayBuffer | undefined {
  return armedName === undefined && faults.size === 0 ? undefined : (counters.buffer as SharedArrayBuffer);
}

/** In a worker thread: count in the main thread's counters. */
export function useFailpointMemory(memory: SharedArrayBuffer | undefined): void {
  if (memory !== undefined) counters = new Int32Array(memory);
}

/** SLUICE_FAILPOINT names this point (for a failpoint that is not a kill, such as a worker's exit). */
export function failpointArmed(name: string): boolean {
  return armedName === name;
}

/** Kills the process right here if SLUICE_FAILPOINT names this point (and hit). */
export function failpoint(name: string): void {
  if (armedName !== name) return;
  if (Atomics.add(counters, 0, 1) + 1 === armedHit) process.kill(process.pid, 'SIGKILL');
}

/**
 * Fault injection for tests: throws an errno-style error (e.g. ENOSPC) here while SLUICE_FAULT arms this
 * point, as `write=ENOSPC*2` (the first two hits) or `publish=EIO` (every hit). Inert otherwise.
 */
export function fault(name: string): void {
  const f = faults.get(name);
  if (f === undefined) return;
  const at = 1 + f.index;
  for (;;) {
    const left = Atomics.load(counters, at);
    if (left === -1) break; // no limit
    if (left <= 0) return;
    if (Atomics.compareExchange(counters, at, left, left - 1) === left) break;
  }
  const err = new Error(`${f.code}: injected fault at ${name}`) as NodeJS.ErrnoException;
  err.code = f.code;
  throw err;
}
