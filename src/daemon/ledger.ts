// The receipt ledger: one JSON line per finished file in <state>/receipts.jsonl, appended and fsync'ed.
import { closeSync, openSync, writeSync } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SyncGroup, syncFd } from '../fs/fd.js';
import type { Outcome } from '../outcome.js';

export interface Receipt extends Outcome<{ code: string; message: string; line?: number }> {
  claimId: string;
  instance: string;
  file: string;
  size: number;
  sha256?: string;
  outputs: Array<{ role: 'output' | 'rejects'; path: string; rows: number; bytes: number }>;
  input: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
}

/** How far back `has` looks: recovery only ever asks about the files of the last moments. */
const TAIL_BYTES = 8 * 1024 * 1024;

export class Ledger {
  readonly path: string;
  constructor(
    stateDir: string,
    private readonly fsync: boolean,
  ) {
    this.path = join(stateDir, 'receipts.jsonl');
  }

  /**
   * Appends one receipt: one write of one line (O_APPEND: lines of several instances never interleave),
   * then an fdatasync shared with the receipts appended at the same moment (group commit).
   */
  async append(r: Receipt): Promise<void> {
    if (this.fd === undefined) {
      const fd = openSync(this.path, 'a', 0o640);
      this.fd = fd;
      this.group = new SyncGroup(() => syncFd(fd, true));
    }
    const line = Buffer.from(`${JSON.stringify(r)}\n`);
    // one call, so that the line stays whole among other instances' lines; a short write is a full disk
    if (writeSync(this.fd, line) !== line.length) {
      // end the fragment (best effort), so that the receipt written on the retry is a line of its own
      try {
        writeSync(this.fd, '\n');
      } catch {
        // still full: readers skip the fragment, which does not parse
      }
      throw Object.assign(new Error('ENOSPC: the receipt was written only in part'), { code: 'ENOSPC' });
    }
    const group = this.group;
    if (this.fsync && group !== undefined) await group.sync();
  }

  async close(): Promise<void> {
    const fd = this.fd;
    const group = this.group;
    if (fd === undefined) return;
    // detached first: an append from now on opens the ledger anew instead of syncing an fd being closed
    this.fd = undefined;
    this.group = undefined;
    await group?.idle();
    closeSync(fd);
  }

  private fd: number | undefined;
  private group: SyncGroup | undefined;

  /** True if a receipt for this claim was written (looks at the end of the ledger). */
  async has(claimId: string): Promise<boolean> {
    const tail = await this.tail();
    // whole receipts only: a fragment a full disk cut short names the claim but proves nothing
    return tail.includes(`"claimId":${JSON.stringify(claimId)}`) && receiptsIn(tail).some((r) => r.claimId === claimId);
  }

  /** The receipts at the end of the ledger (up to the last 8 MiB), oldest first. */
  async recent(): Promise<Receipt[]> {
    return receiptsIn(await this.tail());
  }

  private async tail(): Promise<string> {
    let size: number;
    try {
      size = (await stat(this.path)).size;
    } catch {
      return '';
    }
    if (size <= TAIL_BYTES) return readFile(this.path, 'utf8');
    const fh = await open(this.path, 'r');
    try {
      const buf = Buffer.alloc(TAIL_BYTES);
      await fh.read(buf, 0, TAIL_BYTES, size - TAIL_BYTES);
      return buf.toString('utf8');
    } finally {
      await fh.close();
    }
  }
}

/** The whole receipts in a stretch of the ledger (a line cut by the tail window, or by a full disk, is skipped). */
function receiptsIn(text: string): Receipt[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Receipt];
      } catch {
        return [];
      }
    });
}
