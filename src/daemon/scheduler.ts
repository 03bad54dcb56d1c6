// Permits for the CPU part of files (reading, parsing): a counting semaphore, and one file's hold on it.

/** A counting semaphore: acquire waits while all permits are taken. */
export class Semaphore {
  private waiting: Array<() => void> = [];
  constructor(private permits: number) {}

  /** `first`: ahead of everyone waiting. */
  async acquire(first = false): Promise<void> {
    if (this.permits > 0) {
      this.permits--;
      return;
    }
    await new Promise<void>((resolve) => (first ? this.waiting.unshift(resolve) : this.waiting.push(resolve)));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.permits++;
  }

  /** Callers waiting for a permit now. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Permits free now (for tests and gauges). */
  get free(): number {
    return this.permits;
  }
}

/** One file's hold on a permit: released at most once per acquire, whatever the path. */
export class Slot {
  private held = false;
  /** `first`: its first acquire goes ahead of those waiting (a claim that has waited already). */
  constructor(
    private readonly permits: Semaphore,
    private first = false,
  ) {}

  async acquire(): Promise<void> {
    if (this.held) return;
    await this.permits.acquire(this.first);
    this.first = false;
    this.held = true;
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    this.permits.release();
  }
}

/** Waits `ms`; false if `signal` aborted first. */
export function abortableDelay(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve(false);
      return;
    }
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
