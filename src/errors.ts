// The registry of coded errors: every failure sluice reports carries one of these stable codes.

/**
 * How the daemon meets a file error: `never` fails the file; `backoff` tries it again after a growing wait
 * (retry.attempts in all); `disk` does so only when the cause is a disk or filesystem error that may pass
 * (full, I/O, permission), and fails it otherwise; `sink` parks it until its output is reachable again;
 * `requeue` puts it back in the inbox untouched (a stop).
 */
export type RetryClass = 'never' | 'backoff' | 'disk' | 'sink' | 'requeue';

/** Codes for whole-file failures (the input goes to failed/ with an error file), each with its retry class. */
const FILE_ERRORS = {
  SYMLINK_REFUSED: { retry: 'never', doc: 'The inbox entry is a symbolic link; sluice never follows links.' },
  NOT_REGULAR_FILE: { retry: 'never', doc: 'The inbox entry is not a regular file (directory, FIFO, socket or device).' },
  HARDLINK_REFUSED: {
    retry: 'never',
    doc: "The input has more than one hard link and belongs to another user than sluice's (input.allowHardLinks: true takes it): a link into the inbox must not copy out a file its dropper could not read.",
  },
  BINARY_FILE: { retry: 'never', doc: 'The file holds NUL bytes: it is binary, not CSV text.' },
  FORMAT_UNSUPPORTED: {
    retry: 'never',
    doc: 'The file is in a format its pipeline does not read: JSON where a CSV header should be (JSON is read from .ndjson, .jsonl and .json names, or with input.format), or a .json document that is not an array.',
  },
  UNKNOWN_COLUMN: { retry: 'never', doc: "An operator names a column that the file's header does not have." },
  NO_PIPELINE: { retry: 'never', doc: "No pipeline's match globs match the file name." },
  GZIP_INVALID: { retry: 'never', doc: 'The input starts like gzip but its compressed data is damaged.' },
  ENCODING_INVALID: { retry: 'never', doc: 'The input is not valid text in its encoding (UTF-16: a lone surrogate or an odd byte at the end).' },
  TOO_MANY_COLUMNS: { retry: 'never', doc: 'The header has more columns than input.maxColumns allows.' },
  DUPLICATE_HEADER: {
    retry: 'never',
    doc: "The file's header names a column twice (a,a,b): which one an operator or a table column means would be a guess. Rename one, or give input.columns.",
  },
  COLUMNS_MISMATCH: { retry: 'never', doc: "input.columns replaces the file's header (input.header: true) but names another number of columns." },
  DEDUPE_TOO_MANY_KEYS: { retry: 'never', doc: 'dedupe saw more distinct keys in one file than its maxKeys allows.' },
  INPUT_CHANGED: { retry: 'backoff', doc: 'The input changed while it was read (still being written?); it is retried, then failed.' },
  WORKER_FAILED: {
    retry: 'backoff',
    doc: 'The worker thread processing the file died (a crash, out of memory); it is replaced, and the file is retried, then failed.',
  },
  TABLE_MISSING: { retry: 'never', doc: 'The output table does not exist (set create: true to create it).' },
  DB_REFUSED: { retry: 'never', doc: 'The database refused the load (a bad value, a constraint); nothing of the file stays in the table.' },
  SINK_UNAVAILABLE: { retry: 'sink', doc: 'The database is unreachable; the file waits and is loaded when it is back.' },
  READ_FAILED: { retry: 'never', doc: 'The input could not be read.' },
  WRITE_FAILED: { retry: 'disk', doc: 'The output could not be written or published.' },
  ABORTED: { retry: 'requeue', doc: 'Processing was stopped (shutdown) before the file finished; the input goes back to the inbox.' },
  DUPLICATE_COLUMN: { retry: 'never', doc: 'An operator (rename, addColumn) would give the header two columns of one name.' },
  MODULE_FAILED: { retry: 'never', doc: 'A module operator failed on the file: its factory threw or returned no operator, or its stream errored.' },
  NAME_INVALID: { retry: 'never', doc: 'The file name is not valid UTF-8; the file goes to failed/ under its name with the bad bytes as %XX.' },
  RECOVERY_FAILED: {
    retry: 'never',
    doc: 'A claim left by a crash could not be finished (a temporary output or the commit record is missing or damaged); the input goes to failed/.',
  },
  JSON_MALFORMED: {
    retry: 'never',
    doc: "A .json document's array is damaged between its elements (a missing, doubled or trailing comma): none of it is kept.",
  },
  JSON_INCOMPLETE: { retry: 'never', doc: 'A .json document ends before its array of objects closes: the file is cut short, and none of it is kept.' },
  INTERNAL: { retry: 'never', doc: 'An unexpected internal error; please report it.' },
} as const satisfies Record<string, { retry: RetryClass; doc: string }>;

/** Codes for whole-file failures and what each means. */
export const FILE_ERROR_CODES = Object.fromEntries(Object.entries(FILE_ERRORS).map(([code, e]) => [code, e.doc])) as {
  readonly [K in keyof typeof FILE_ERRORS]: (typeof FILE_ERRORS)[K]['doc'];
};

/** Codes for single-record rejections (the row goes to rejects/, the file goes on). */
export const ROW_ERROR_CODES = {
  CSV_RECORD_INCONSISTENT_COLUMNS: 'The record has a different number of fields than the header.',
  CSV_INVALID_CLOSING_QUOTE: 'A quoted field is followed by something other than a delimiter or line end.',
  INVALID_OPENING_QUOTE: 'A quote appears inside an unquoted field.',
  CSV_QUOTE_NOT_CLOSED: 'A quoted field is still open at the end of the file.',
  CSV_MAX_RECORD_SIZE: 'The record is larger than the maximum record size.',
  INVALID_UTF8: 'The record holds bytes that are not valid UTF-8.',
  CSV_PARSE_ERROR: 'csv-parse refused the record for another reason (its message says which).',
  CAST_FAILED: 'A value is not of the type its column is cast to (cast with onError: reject).',
  JSON_INVALID: 'A line of a JSON lines file is not a JSON object (not JSON at all, or an array, a string, a number, null).',
} as const;

/** Codes for usage and configuration errors (exit code 2). */
export const USAGE_ERROR_CODES = {
  USAGE: 'The command line is not valid.',
  CONFIG_INVALID: 'A setting has a value that is not allowed.',
  DIRS_NOT_ONE_FILESYSTEM: 'The inbox, output, rejects, archive, failed and state folders are not on one filesystem.',
  DIR_UNUSABLE: 'A folder could not be created or is not writable.',
  DIR_MISSING: 'A folder named for a --once run (on the command line, in a variable or in the config file) does not exist; nothing is created.',
  METRICS_PORT_IN_USE: 'The metrics server cannot listen on its address (the port is taken).',
  INSTANCE_RUNNING: 'The instance id given is held by a live process (its lock in <state>/instances/ is taken).',
  LOCK_UNSUPPORTED: 'The state folder is on a filesystem without file locks, which sluice needs to tell live instances from dead ones.',
  METRICS_LISTEN_FAILED: 'The metrics server cannot listen on its address (a host that is not this machine, no permission).',
} as const;

export type FileErrorCode = keyof typeof FILE_ERRORS;
export type RowErrorCode = keyof typeof ROW_ERROR_CODES;
export type UsageErrorCode = keyof typeof USAGE_ERROR_CODES;
export type ErrorCode = FileErrorCode | RowErrorCode | UsageErrorCode;

export const ERROR_CODES: Readonly<Record<ErrorCode, string>> = {
  ...FILE_ERROR_CODES,
  ...ROW_ERROR_CODES,
  ...USAGE_ERROR_CODES,
};

export interface SluiceErrorContext {
  file?: string;
  line?: number;
  field?: string;
  cause?: unknown;
}

/** The base class of every error sluice raises on purpose: a stable `code` plus where it happened. */
export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly field: string | undefined;

  constructor(code: ErrorCode, message: string, context: SluiceErrorContext = {}) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = 'SluiceError';
    this.code = code;
    this.file = context.file;
    this.line = context.line;
    this.field = context.field;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, file: this.file, line: this.line, field: this.field };
  }
}

export function isUsageError(err: unknown): err is SluiceError {
  return err instanceof SluiceError && err.code in USAGE_ERROR_CODES;
}

/** Wraps anything thrown into a SluiceError, keeping a Node errno code in the message. */
export function toSluiceError(err: unknown, fallback: ErrorCode, file?: string): SluiceError {
  if (err instanceof SluiceError) return err;
  const e = err as NodeJS.ErrnoException;
  const message = e && typeof e.message === 'string' ? e.message : String(err);
  return new SluiceError(fallback, message, { file, cause: err });
}

/** The retry class of an error code (see RetryClass); row and usage codes are `never`. */
export function retryClassOf(code: ErrorCode): RetryClass {
  return code in FILE_ERRORS ? FILE_ERRORS[code as FileErrorCode].retry : 'never';
}

/** errno codes of the disk or filesystem that may pass: the file is retried with backoff, not failed at once. */
const TRANSIENT_ERRNO = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EACCES', 'EPERM', 'EROFS', 'EAGAIN', 'EBUSY', 'EMFILE', 'ENFILE']);

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
  return code !== undefined && TRANSIENT_ERRNO.has(code);
}

/**
 * What to do with a file that ended in `err`: its code's retry class, with `disk` resolved by its cause
 * (`backoff` for a disk error that may pass, else `never`).
 */
export function retryOf(err: SluiceError): Exclude<RetryClass, 'disk'> {
  const retry = retryClassOf(err.code);
  if (retry !== 'disk') return retry;
  return isTransient(err.cause) ? 'backoff' : 'never';
}
