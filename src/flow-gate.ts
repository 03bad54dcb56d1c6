// Backpressure as credit: the number of rows emitted by a source and not yet finished (written, filtered
// or rejected) stays under a high-water mark because the source waits here before reading more.

export class FlowGate {
  private level = 0;
  private peak = 0;
  private waiters: Array<() => void> = [];

  /** @param highWaterMark the source pauses while this many rows or more are in flight */
  constructor(readonly highWaterMark: number, private readonly onChange?: (delta: number) => void) {
    if (!(highWaterMark >= 1)) throw new RangeError(`highWaterMark must be at least 1, got ${highWaterMark}`);
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
    this.level += n;
    if (this.level > this.peak) this.peak = this.level;
    this.onChange?.(n);
  }

  give(n: number): void {
    this.level -= n;
    this.onChange?.(-n);
    if (this.level < this.highWaterMark && this.waiters.length > 0) {
      const w = this.waiters;
      this.waiters = [];
      for (const resolve of w) resolve();
    }
  }

  /** Resolves once the level is under the high-water mark. */
  wait(): Promise<void> {
    if (this.open) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Gives back whatever is still taken (a file that ended early) so gauges return to zero. */
  drain(): void {
    if (this.level !== 0) this.give(this.level);
  }
}
