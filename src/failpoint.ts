// Failpoints: named places where a test can make the process die at once (SIGKILL), to prove that a crash
// at that instant loses and duplicates nothing. Inert unless SLUICE_FAILPOINT names the point, as `name`
// (its first hit) or `name#n` (its n-th hit).

const armed = process.env.SLUICE_FAILPOINT;
const [armedName, armedHit] = armed === undefined ? [undefined, 0] : [armed.split('#')[0], Number(armed.split('#')[1] ?? 1)];
const hits = new Map<string, number>();

/** Kills the process right here if SLUICE_FAILPOINT names this point (and hit). */
export function failpoint(name: string): void {
  if (armedName !== name) return;
  const n = (hits.get(name) ?? 0) + 1;
  hits.set(name, n);
  if (n === armedHit) process.kill(process.pid, 'SIGKILL');
}

const faultSpec = process.env.SLUICE_FAULT;
const faults = new Map<string, { code: string; left: number }>();
for (const part of faultSpec === undefined ? [] : faultSpec.split(',')) {
  const m = /^([a-z-]+)=([A-Z]+)(?:\*(\d+))?$/.exec(part.trim());
  if (m !== null) faults.set(m[1]!, { code: m[2]!, left: m[3] === undefined ? Infinity : Number(m[3]) });
}

/**
 * Fault injection for tests: throws an errno-style error (e.g. ENOSPC) here while SLUICE_FAULT arms this
 * point, as `write=ENOSPC*2` (the first two hits) or `publish=EIO` (every hit). Inert otherwise.
 */
export function fault(name: string): void {
  const f = faults.get(name);
  if (f === undefined || f.left <= 0) return;
  f.left--;
  const err = new Error(`${f.code}: injected fault at ${name}`) as NodeJS.ErrnoException;
  err.code = f.code;
  throw err;
}
