// Backpressure as credit: the number of rows emitted by a source and not yet finished (written, filtered
// or rejected) stays under a high-water mark because the source waits here before reading more.
import { SluiceError } from './errors.js';

export class FlowGate {
  private level = 0;
  private peak = 0;
  private waiters: Array<() => void> = [];
  private drained = false;
  private readonly stallListeners = new Set<() => void>();

  /** @param highWaterMark the source pauses while this many rows or more are in flight */
  constructor(
    readonly highWaterMark: number,
    private readonly onChange?: (delta: number) => void,
  ) {
    if (!(highWaterMark >= 1)) throw new SluiceError('CONFIG_INVALID', `highWaterMark: got ${highWaterMark}; expected at least 1`, { field: 'highWaterMark' });
  }

  /** Rows currently in flight. */
  get inFlight(): number {
    return this.level;
  }

  /** The highest in-flight level seen so far. */
  get maxInFlight(): number {
    return this.peak;
  }

  /** True while the source may read more. */
  get open(): boolean {
    return this.level < this.highWaterMark;
  }

  take(n: number): void {
    if (this.drained) return;
    this.level += n;
    if (this.level > this.peak) this.peak = this.level;
    this.onChange?.(n);
  }

  give(n: number): void {
    if (this.drained) return;
    this.level -= n;
    this.onChange?.(-n);
    if (this.level < this.highWaterMark && this.waiters.length > 0) {
      const w = this.waiters;
      this.waiters = [];
      for (const resolve of w) resolve();
    }
  }

  /**
   * Resolves once the level is under the high-water mark. A source about to wait first tells the stall
   * listeners, so that whoever holds rows without writing them (a partial batch) writes them now.
   */
  wait(): Promise<void> {
    if (this.open) return Promise.resolve();
    for (const fn of this.stallListeners) fn();
    if (this.open) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Calls `fn` whenever the source stalls on this gate; returns the unsubscribe function. */
  onStall(fn: () => void): () => void {
    this.stallListeners.add(fn);
    return () => this.stallListeners.delete(fn);
  }

  /**
   * Gives back whatever is still taken (a file that ended early) so gauges return to zero, and ends the
   * gate: later take/give are ignored (a sink write that completes after an abort must not drive the
   * level, and the in-flight gauge, below zero).
   */
  drain(): void {
    if (this.level !== 0) this.give(this.level);
    this.drained = true;
  }
}
