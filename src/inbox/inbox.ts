// The inbox: finds files (initial scan, watcher events as hints, periodic rescans) and reports each one
// once it has settled: no change in size or mtime for the settle time.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isUtf8 } from 'node:buffer';
import { type FSWatcher, lstatSync, watch } from 'node:fs';
import { escapeNameBytes } from '../fs/names.js';
import type { Logger } from '../log.js';
import { isIgnoredName } from './claims.js';

export interface InboxOptions {
  dir: string;
  /** A file is ready when it has not changed for this long. */
  settleMs: number;
  /** Rescan the folder this often, in case an event was missed. 0: never. */
  rescanMs: number;
  /** Watch for events (daemon); false for a single scan (--once). */
  watch: boolean;
  /** Poll the folder instead of using inotify (network filesystems). */
  poll?: boolean;
  pollIntervalMs?: number;
  log: Logger;
}

interface Candidate {
  size: number;
  mtimeMs: number;
  /** When the size or mtime last changed (as seen). */
  since: number;
  /** When to look next: at once after an event, else when it would have settled. */
  due: number;
}

export class Inbox {
  private readonly candidates = new Map<string, Candidate>();
  /** Files seen in the inbox and not yet taken, with when each was first seen (for backlog metrics). */
  private readonly waiting = new Map<string, number>();
  /** Names reported ready and not yet forgotten: never reported twice. */
  private readonly reported = new Set<string>();
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private rescanner: NodeJS.Timeout | undefined;
  private soon: NodeJS.Immediate | undefined;
  /** Candidates an event named since the last look. */
  private readonly hinted = new Set<string>();
  /** When each candidate is next due (entries made stale by a later look are skipped). */
  private readonly due = new DueHeap();
  private polling = false;
  private gone = false;
  private retrying = false;
  private closed = false;

  constructor(
    private readonly opts: InboxOptions,
    /** A file is ready; `raw`: the bytes of a name that is not valid UTF-8 (`name` is its escaped form). */
    private readonly onReady: (name: string, raw?: Buffer) => void,
    private readonly onGone: (name: string) => void = () => undefined,
  ) {}

  /** Scans the folder, starts watching; resolves once the watcher is ready. Returns the names found. */
  async start(): Promise<string[]> {
    const names = await this.scan();
    if (this.opts.watch) {
      this.polling = this.opts.poll === true;
      await this.startWatcher();
      // a file that arrived between the scan and the watcher's start is caught here
      await this.scan();
      if (this.opts.rescanMs > 0) this.rescanner = setInterval(() => void this.rescan(), this.opts.rescanMs);
    }
    return names;
  }

  /** Lists the folder and treats every eligible entry as a candidate. Returns the names found. */
  async scan(): Promise<string[]> {
    const names = (await readdir(this.opts.dir)).filter((n) => !isIgnoredName(n));
    // a name that is not UTF-8 is listed with U+FFFD in place of its bad bytes, and cannot be opened by that
    // name: those are looked at again by their bytes
    if (!names.some((n) => n.includes('\uFFFD'))) {
      for (const n of names) this.hint(n);
      return names;
    }
    const found: string[] = [];
    for (const raw of await readdir(this.opts.dir, { encoding: 'buffer' })) {
      const name = escapeNameBytes(raw);
      if (isIgnoredName(name)) continue;
      found.push(name);
      if (isUtf8(raw)) this.hint(name);
      else if (!this.closed && !this.reported.has(name)) {
        // never processed (it fails with NAME_INVALID), so taken at once, without waiting for it to settle
        this.reported.add(name);
        this.waiting.delete(name);
        this.onReady(name, raw);
      }
    }
    return found;
  }

  /**
   * Watches with fs.watch (inotify on Linux): one event per change, naming the file, taken as a hint. Not
   * chokidar: it re-reads and stats the whole folder on every new file, which made a 10,000-file inbox
   * quadratic. Polling (`poll: true`, or at the inotify limit) is a rescan every `pollIntervalMs`.
   */
  private async startWatcher(): Promise<void> {
    this.stopWatcher();
    if (this.polling) {
      this.poller = setInterval(() => void this.rescan(), this.opts.pollIntervalMs ?? 1000);
      return;
    }
    try {
      const w = watch(this.opts.dir, { persistent: true }, (_event, filename) => {
        const name = filename?.toString();
        // the platform did not say which file, or the name is not UTF-8: look
        if (name === undefined || name.includes('\uFFFD')) void this.rescan();
        else this.hint(name);
      });
      w.on('error', (err) => void this.onWatchError(err));
      this.watcher = w;
    } catch (err) {
      await this.onWatchError(err);
    }
  }

  private stopWatcher(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.poller !== undefined) clearInterval(this.poller);
    this.poller = undefined;
  }

  /** The inotify watch limit (ENOSPC) or file table (EMFILE): fall back to polling; anything else: rescans. */
  private async onWatchError(err: unknown): Promise<void> {
    const code = (err as NodeJS.ErrnoException).code;
    if ((code === 'ENOSPC' || code === 'EMFILE') && !this.polling && !this.closed) {
      this.opts.log.warn('inotify watch limit reached: watching the inbox by polling instead', { error: String(err) });
      this.polling = true;
      await this.startWatcher();
      return;
    }
    this.opts.log.warn('inbox watcher error; relying on rescans', { error: String(err) });
  }

  /** The periodic rescan; notices an inbox folder that was removed, and watches it again once it is back. */
  private async rescan(): Promise<void> {
    if (this.closed) return;
    try {
      await this.scan();
      if (this.gone) {
        this.gone = false;
        this.opts.log.info('the inbox folder is back: watching it again', { dir: this.opts.dir });
        await this.startWatcher();
        await this.scan();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.opts.log.warn('inbox rescan failed', { error: String(err) });
        return;
      }
      if (!this.gone) this.opts.log.error('the inbox folder is gone; waiting for it to come back', { dir: this.opts.dir });
      this.gone = true;
      // look again soon rather than at the next full rescan (one retry pending at a time)
      if (!this.retrying) {
        this.retrying = true;
        setTimeout(
          () => {
            this.retrying = false;
            void this.rescan();
          },
          Math.min(1000, this.opts.rescanMs || 1000),
        ).unref();
      }
    }
  }

  /** Something may have happened to `name`: watch it until it settles. */
  hint(name: string): void {
    if (this.closed || isIgnoredName(name) || this.reported.has(name)) return;
    if (!this.candidates.has(name)) {
      if (!this.waiting.has(name)) this.waiting.set(name, Date.now());
      this.candidates.set(name, { size: -1, mtimeMs: -1, since: 0, due: 0 });
    }
    // the hints of one burst of events are looked at together, on the next turn
    this.hinted.add(name);
    this.soon ??= setImmediate(() => this.tick());
  }

  /** `name` was handled: a new file with that name may be reported again. */
  forget(name: string): void {
    this.reported.delete(name);
    if (this.opts.watch) this.hint(name);
  }

  /** `name` was claimed: it no longer waits. */
  taken(name: string): void {
    this.waiting.delete(name);
  }

  /** Files waiting in the inbox (settling or queued, not yet claimed) and how long the oldest has waited. */
  stats(now = Date.now()): { files: number; oldestAgeSeconds: number } {
    let oldest = now;
    for (const t of this.waiting.values()) if (t < oldest) oldest = t;
    return { files: this.waiting.size, oldestAgeSeconds: (now - oldest) / 1000 };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.ticker !== undefined) clearTimeout(this.ticker);
    if (this.soon !== undefined) clearImmediate(this.soon);
    if (this.rescanner !== undefined) clearInterval(this.rescanner);
    this.candidates.clear();
    this.hinted.clear();
    this.due.clear();
    this.stopWatcher();
  }

  /**
   * Looks at the hinted candidates and those due, then sleeps until the next is due. Work is per file
   * looked at (a heap orders the due times), not per file waiting: thousands may be settling at once.
   */
  private tick(): void {
    this.soon = undefined;
    if (this.ticker !== undefined) clearTimeout(this.ticker);
    this.ticker = undefined;
    if (this.closed) return;
    const now = Date.now();
    const look = (name: string): void => {
      const c = this.candidates.get(name);
      if (c === undefined) return;
      this.check(name, c, now);
      if (this.candidates.get(name) === c) this.due.push(c.due, name);
    };
    const hinted = [...this.hinted];
    this.hinted.clear();
    for (const name of hinted) look(name);
    // an entry is stale when its file was looked at since (it has a newer one) or is gone
    const stale = (at: number, name: string): boolean => this.candidates.get(name)?.due !== at || this.hinted.has(name);
    for (let top = this.due.peek(); top !== undefined && top.at <= now; top = this.due.peek()) {
      this.due.pop();
      if (!stale(top.at, top.name)) look(top.name);
    }
    let next = this.due.peek();
    while (next !== undefined && stale(next.at, next.name)) {
      this.due.pop();
      next = this.due.peek();
    }
    // (setTimeout takes at most 2^31 - 1 ms; a longer settle time is reached in several sleeps)
    if (next !== undefined) this.ticker = setTimeout(() => this.tick(), Math.min(2 ** 31 - 1, Math.max(1, next.at - now)));
  }

  /** Synchronous: an lstat takes microseconds, a thread-pool round trip several times more (fs/no-clobber.ts). */
  private check(name: string, c: Candidate, now: number): void {
    let st: import('node:fs').Stats | undefined;
    try {
      // undefined rather than an exception when it is gone: every claimed file is looked at once more
      // (forget), and building an ENOENT error costs more than the lstat
      st = lstatSync(join(this.opts.dir, name), { throwIfNoEntry: false });
    } catch (err) {
      this.opts.log.warn('cannot stat inbox file', { file: name, error: String(err) });
    }
    if (st === undefined) {
      this.candidates.delete(name);
      this.waiting.delete(name);
      this.onGone(name);
      return;
    }
    let ready: boolean;
    if (!st.isFile()) {
      ready = true; // links, folders, FIFOs: refused at once, never waited on
    } else if (st.size !== c.size || st.mtimeMs !== c.mtimeMs) {
      const first = c.size === -1;
      // waiting since it arrived: a rename into the inbox sets its ctime, which a restart does not reset
      // (its mtime could be anything: a copy may keep it)
      const seen = this.waiting.get(name);
      if (first && seen !== undefined && st.ctimeMs < seen) this.waiting.set(name, st.ctimeMs);
      c.size = st.size;
      c.mtimeMs = st.mtimeMs;
      c.since = now;
      ready = first && now - st.mtimeMs >= this.opts.settleMs;
    } else {
      ready = now - c.since >= this.opts.settleMs || now - st.mtimeMs >= this.opts.settleMs;
    }
    // unchanged: look again when it would have settled (an event, or a rescan, brings that forward)
    c.due = Math.min(c.since, Math.max(st.mtimeMs, 0)) + this.opts.settleMs;
    if (ready && !this.closed) {
      this.candidates.delete(name);
      this.reported.add(name);
      this.onReady(name);
    }
  }
}

/** A binary min-heap of (due time, name). */
class DueHeap {
  private items: Array<{ at: number; name: string }> = [];

  push(at: number, name: string): void {
    const a = this.items;
    a.push({ at, name });
    for (let i = a.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (a[p]!.at <= a[i]!.at) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }

  peek(): { at: number; name: string } | undefined {
    return this.items[0];
  }

  pop(): void {
    const a = this.items;
    const last = a.pop();
    if (last === undefined || a.length === 0) return;
    a[0] = last;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && a[l]!.at < a[m]!.at) m = l;
      if (r < a.length && a[r]!.at < a[m]!.at) m = r;
      if (m === i) break;
      [a[m], a[i]] = [a[i]!, a[m]!];
      i = m;
    }
  }

  clear(): void {
    this.items = [];
  }
}
