// The disk-full pause: after a full disk, no file is claimed until the output and state folders have room
// again for what failed.
import { statfs } from 'node:fs/promises';
import type { Logger } from '../log.js';

export interface DiskPauseOptions {
  /** The folders whose filesystems must have room: out, rejects, state. */
  dirs: readonly string[];
  /** How often free space is checked (ms), and the most any file needs (retry.minFreeBytes). */
  settings: () => { diskCheckMs: number; minFreeBytes: number };
  log: Logger;
  onDiskFull?: (full: boolean) => void;
  /** Stopping ends the pause. */
  stopping: () => boolean;
  /** Free and total bytes of a folder's filesystem (statfs; replaceable in tests). */
  space?: (dir: string) => Promise<{ free: number; size: number }>;
}

async function statSpace(dir: string): Promise<{ free: number; size: number }> {
  const s = await statfs(dir);
  return { free: s.bavail * s.bsize, size: s.blocks * s.bsize };
}

export class DiskPause {
  private paused: Promise<void> | undefined;
  /** What the file that filled the disk needed. */
  private need = 0;

  constructor(private readonly opts: DiskPauseOptions) {}

  /** While paused, resolves when claiming may resume; undefined when not paused. */
  get wait(): Promise<void> | undefined {
    return this.paused;
  }

  /**
   * Pauses until there is room for what failed: the file that hit the full disk (`need`: its input's size,
   * an estimate of its outputs), at least 1 MiB, at most `minFreeBytes` and half the smallest filesystem's
   * size (on a filesystem smaller than minFreeBytes, a fixed threshold would never be reached).
   */
  pause(need: number): void {
    this.need = Math.max(this.need, need);
    if (this.paused !== undefined) return;
    const { log } = this.opts;
    log.error('disk full: no new files are claimed until space returns', { out: this.opts.dirs[0] });
    this.opts.onDiskFull?.(true);
    const space = this.opts.space ?? statSpace;
    this.paused = new Promise<void>((resolve) => {
      const check = async (): Promise<void> => {
        const { diskCheckMs, minFreeBytes } = this.opts.settings();
        const all = await Promise.all(this.opts.dirs.map(space)).catch(() => [{ free: 0, size: 0 }]);
        const free = Math.min(...all.map((x) => x.free));
        const wanted = Math.min(minFreeBytes, Math.max(this.need, 1024 * 1024), Math.min(...all.map((x) => x.size)) / 2);
        if (free >= wanted || this.opts.stopping()) {
          this.paused = undefined;
          this.need = 0;
          this.opts.onDiskFull?.(false);
          log.info('disk space is back: claiming files again', { freeBytes: free });
          resolve();
        } else setTimeout(() => void check(), diskCheckMs).unref();
      };
      setTimeout(() => void check(), this.opts.settings().diskCheckMs).unref();
    });
  }
}
