// Structured logs: one JSON object per line, or a short human line when the stream is a terminal.

export type Level = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Human-readable lines instead of JSON. Default: when the stream is a terminal. */
  pretty?: boolean;
  level?: Level;
  /**
   * Lines of one turn of the event loop go out in one write, at its end (and at exit). A daemon logs a line
   * per file, and with thousands of files a write each was a system call each (docs/small-files.md).
   */
  batch?: boolean;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const stream = options.stream ?? process.stdout;
  const pretty = options.pretty ?? stream.isTTY === true;
  const min = RANK[options.level ?? 'info'];
  let pending = '';
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    const text = pending;
    pending = '';
    if (text !== '') stream.write(text);
  };
  if (options.batch === true) process.on('exit', flush);
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>): void => {
    if (RANK[level] < min) return;
    const time = new Date().toISOString();
    const line = pretty ? prettyLine(time, level, msg, fields) : `${JSON.stringify({ time, level, msg, ...fields })}\n`;
    if (options.batch !== true) {
      stream.write(line);
      return;
    }
    pending += line;
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

function prettyLine(time: string, level: Level, msg: string, fields?: Record<string, unknown>): string {
  const parts = [time.slice(11, 23), level.toUpperCase().padEnd(5), msg];
  for (const [k, v] of Object.entries(fields ?? {})) {
    if (v === undefined) continue;
    parts.push(`${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  return `${parts.join(' ')}\n`;
}

/** A logger that drops everything (library use, tests). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
