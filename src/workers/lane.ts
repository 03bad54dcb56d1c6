// The main thread's share of the parsing. With `workers: N` the main thread is one of the N: it runs one
// file or slice at a time itself, beside the N - 1 worker threads, and takes the next only when it is free.
// On 2 cores that is one worker thread, not two beside a busy main thread (measured: README Performance,
// "Every core"), and one isolate fewer to start.
import { failpointArmed } from '../failpoint.js';

export class Lane {
  private held = 0;

  /**
   * `open`: the lane takes work. The tests' failpoint `worker-exit` (the first worker dies under its first
   * task) closes it, so that the file under test surely reaches a worker.
   */
  constructor(private readonly open = !failpointArmed('worker-exit')) {}

  /** Nothing runs in this thread's lane now. */
  get free(): boolean {
    return this.open && this.held === 0;
  }

  private readonly waiting = new Set<() => void>();

  /** Calls `fn` each time the lane comes free (a cut file gives it its next slice); returns the unsubscribe. */
  onFree(fn: () => void): () => void {
    this.waiting.add(fn);
    return () => this.waiting.delete(fn);
  }

  /** Holds the lane (also when it is not free: work that must run here, such as a transaction's); returns its release, which does nothing twice. */
  take(): () => void {
    this.held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held--;
      if (this.free) for (const fn of this.waiting) fn();
    };
  }
}
