// Instances sharing a state folder: each writes a heartbeat; the claims of an instance whose heartbeat went
// stale (it died, and nobody restarted it under its id) are adopted by a live one, so no file stays stuck.
import { mkdir, readdir, readFile, rename, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

export interface Heartbeat {
  instance: string;
  host: string;
  pid: number;
  startedAt: string;
  heartbeatAt: string;
}

export class Instances {
  private readonly dir: string;
  private readonly claimedRoot: string;
  private readonly startedAt = new Date().toISOString();

  constructor(
    stateDir: string,
    private readonly instanceId: string,
    private readonly staleAfterMs: number,
  ) {
    this.dir = join(stateDir, 'instances');
    this.claimedRoot = join(stateDir, 'claimed');
  }

  /** Writes this instance's heartbeat. */
  async beat(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const hb: Heartbeat = { instance: this.instanceId, host: hostname(), pid: process.pid, startedAt: this.startedAt, heartbeatAt: new Date().toISOString() };
    const tmp = join(this.dir, `.${this.instanceId}.json.tmp`);
    await writeFile(tmp, JSON.stringify(hb));
    await rename(tmp, join(this.dir, `${this.instanceId}.json`));
  }

  /** Removes this instance's heartbeat (a clean stop). */
  async retire(): Promise<void> {
    await unlink(join(this.dir, `${this.instanceId}.json`)).catch(() => undefined);
  }

  /**
   * Moves the claims (inputs and commit records) of stale instances into `ownClaimDir`. Returns the instances
   * adopted from and the claim ids moved. A rename is atomic: when two live instances race, each entry goes to one.
   */
  async adoptStale(ownClaimDir: string): Promise<{ instances: string[]; claimIds: Set<string> }> {
    const adopted: string[] = [];
    const claimIds = new Set<string>();
    for (const other of await readdir(this.claimedRoot).catch(() => [] as string[])) {
      if (other === this.instanceId || !(await this.isStale(other))) continue;
      const from = join(this.claimedRoot, other);
      const entries = await readdir(from).catch(() => [] as string[]);
      if (entries.length === 0) {
        await rmdir(from).catch(() => undefined);
        continue;
      }
      for (const e of entries) {
        if (e.endsWith('.tmp')) continue;
        const moved = await rename(join(from, e), join(ownClaimDir, e)).then(
          () => true,
          (err: NodeJS.ErrnoException) => {
            if (err.code !== 'ENOENT') throw err;
            return false;
          },
        );
        if (moved) claimIds.add(/^[0-9a-z]+/.exec(e)![0]);
      }
      adopted.push(other);
    }
    return { instances: adopted, claimIds };
  }

  private async isStale(instance: string): Promise<boolean> {
    const path = join(this.dir, `${instance}.json`);
    try {
      const hb = JSON.parse(await readFile(path, 'utf8')) as Heartbeat;
      return Date.now() - Date.parse(hb.heartbeatAt) > this.staleAfterMs;
    } catch {
      // no heartbeat: an instance that stopped cleanly leaves no claims; one that never beat is judged by its folder's age
      const st = await stat(join(this.claimedRoot, instance)).catch(() => undefined);
      return st === undefined || Date.now() - st.mtimeMs > this.staleAfterMs;
    }
  }
}
