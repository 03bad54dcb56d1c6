// A long --once run on a terminal shows its progress on stderr: bytes and rows done, rows/s, ETA, files
// left, redrawn five times a second. Never in a pipe or a log file (stderr is not a terminal there), so
// logs stay clean. Drawn by cli-progress (the ecosystem's progress bar: redraw, ETA, terminal width).
// cli-progress is loaded only for a terminal (a daemon, or a --once run into a pipe, does without it).
import type { DaemonHooks } from './daemon/hooks.js';

export interface Progress {
  /** Hooks that feed the display. */
  hooks: Pick<DaemonHooks, 'onBytesRead' | 'onBatchWritten' | 'onWorkFound'>;
  /** Draws until stop; `left`: the files not done yet. */
  start(left: () => number): void;
  stop(): void;
  /** Before a log line is written to the same terminal. */
  clearLine(): void;
}

/** No display: what progressOn gives a stream that is no terminal. */
export const NO_PROGRESS: Progress = { hooks: {}, start() {}, stop() {}, clearLine() {} };

export async function progressOn(stream: NodeJS.WriteStream): Promise<Progress> {
  if (stream.isTTY !== true) return NO_PROGRESS;
  // a CommonJS module: its exports are its default (the only export of esbuild's chunk of it)
  const { SingleBar } = (await import('cli-progress')).default;
  let bytes = 0;
  let rows = 0;
  let timer: NodeJS.Timeout | undefined;
  let startedAt = 0;
  let active = false;
  const work = { files: 0, bytes: 0 };
  const bar = new SingleBar({
    stream,
    format: '{bar} {percentage}% | {done}/{totalMB} MB | {rows} rows, {rate} rows/s | ETA {eta_formatted} | {left} files left',
    fps: 5,
    hideCursor: true,
    clearOnComplete: true,
    barsize: 24,
    etaBuffer: 20,
  });
  const payload = (left: number): Record<string, string | number> => {
    const seconds = (Date.now() - startedAt) / 1000;
    return { done: (bytes / 1e6).toFixed(1), rows: rows.toLocaleString('en'), rate: seconds > 0 ? Math.round(rows / seconds).toLocaleString('en') : '0', left };
  };
  return {
    hooks: {
      onBytesRead: (n) => void (bytes += n),
      onBatchWritten: (n) => void (rows += n),
      onWorkFound: (files, total) => Object.assign(work, { files, bytes: total }),
    },
    start(left) {
      if (work.files === 0) return;
      startedAt = Date.now();
      bar.start(Math.max(1, work.bytes), 0, { ...payload(left()), totalMB: (work.bytes / 1e6).toFixed(1) });
      active = true;
      timer = setInterval(() => bar.update(Math.min(bytes, Math.max(1, work.bytes)), payload(left())), 200);
      timer.unref();
    },
    stop() {
      if (timer === undefined) return;
      clearInterval(timer);
      timer = undefined;
      active = false;
      bar.stop();
    },
    clearLine() {
      // a log line on the same terminal: the bar's line is cleared first, and redrawn at the next tick
      if (active) stream.write('\r\x1b[2K');
    },
  };
}
