// How long to wait before trying again, and which disk errors mean a full disk.
export { errnoOf, isTransient } from '../errors.js';

/** A full disk or quota: claiming pauses until there is room again. */
export function isDiskFull(code: string | undefined): boolean {
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** The wait before retry `attempt` (1-based): `backoffMs`, then 4 times longer each time. */
export function backoff(backoffMs: number, attempt: number): number {
  return backoffMs * 4 ** (attempt - 1);
}
