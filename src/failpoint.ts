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
