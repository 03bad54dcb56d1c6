// A batch job's bookkeeping (--once): the files it found still to do, the claims parked waiting for their
// output (their attempt ended, they did not), and the files it put back in the inbox.
import type { ClaimedFile } from '../inbox/claims.js';

/** The key of a claimed file among the names of the inbox. */
export function claimKey(claimed: Pick<ClaimedFile, 'claimId'>): string {
  return `claim:${claimed.claimId}`;
}

export class BatchRun {
  private readonly pending = new Set<string>();
  private readonly parked = new Set<string>();
  private putBack = 0;

  /** A file (a name of the inbox, or a claim key) to do. */
  add(key: string): void {
    this.pending.add(key);
  }

  /** Done with `key`, whatever its outcome. */
  done(key: string): void {
    this.pending.delete(key);
  }

  /** A claim waits for its output: still to do, though its attempt ends. */
  park(key: string): void {
    this.pending.add(key);
    this.parked.add(key);
  }

  /** True if `key` was parked (and now is not). */
  unpark(key: string): boolean {
    return this.parked.delete(key);
  }

  /** A file went back to the inbox without an outcome (a stop, an output that stayed down). */
  putBackOne(): void {
    this.putBack++;
  }

  /** Files found that are not done yet. */
  get left(): number {
    return this.pending.size;
  }

  /** Files found that got no outcome: not done yet, or put back in the inbox. */
  get unfinished(): number {
    return this.pending.size + this.putBack;
  }
}
