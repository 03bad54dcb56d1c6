// Failpoints: named places where a test can make the process die at once (SIGKILL), to prove that a crash
// at that instant loses and duplicates nothing. Inert unless SLUICE_FAILPOINT names the point.

const armed = process.env.SLUICE_FAILPOINT;

/** Kills the process right here if SLUICE_FAILPOINT is `name`. */
export function failpoint(name: string): void {
  if (armed !== undefined && armed === name) process.kill(process.pid, 'SIGKILL');
}
