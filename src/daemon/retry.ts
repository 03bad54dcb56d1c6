// Which failures pass by themselves: errors of the disk or filesystem that a retry after a wait may get past.

/** errno codes of the disk or filesystem that may pass: the file is retried with backoff, not failed at once. */
const TRANSIENT = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EACCES', 'EPERM', 'EROFS', 'EAGAIN', 'EBUSY', 'EMFILE', 'ENFILE']);

/** The errno code of an error (or of its cause), if any. */
export function errnoOf(err: unknown): string | undefined {
  for (
    let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0;
    e !== undefined && e !== null && depth < 4;
    e = e.cause as typeof e, depth++
  ) {
    if (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return e.code;
  }
  return undefined;
}

/** True for an errno code (or an error carrying one) that a retry may get past. */
export function isTransient(err: unknown): boolean {
  const code = typeof err === 'string' ? err : errnoOf(err);
  return code !== undefined && TRANSIENT.has(code);
}

/** A full disk or quota: claiming pauses until there is room again. */
export function isDiskFull(code: string | undefined): boolean {
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** The wait before retry `attempt` (1-based): `backoffMs`, then 4 times longer each time. */
export function backoff(backoffMs: number, attempt: number): number {
  return backoffMs * 4 ** (attempt - 1);
}
