// Claims: inbox -> claimed (an atomic rename into <state>/claimed/<instance id>/<claimId>-<name>), or back to
// the inbox when processing was stopped. What happens after a claim is the commit protocol's (daemon/commit.ts).
import { renameSync } from 'node:fs';
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { moveNoClobber } from '../fs/no-clobber.js';
import { randomUint32 } from '../random.js';

/** Dotfiles, `*.tmp` and `*.part` are never picked up: they are how writers stage files. */
export function isIgnoredName(name: string): boolean {
  return name.startsWith('.') || name.endsWith('.tmp') || name.endsWith('.part');
}

export interface ClaimedFile {
  /** The name the file had in the inbox. */
  name: string;
  /** Unique per instance; stable for the life of the claim (it is in the path). */
  claimId: string;
  /** Where the file is now. */
  path: string;
}

export class Claims {
  private counter = 0;
  readonly dir: string;

  constructor(
    stateDir: string,
    readonly instanceId: string,
    private readonly dirs: { inbox: string },
  ) {
    this.dir = join(stateDir, 'claimed', instanceId);
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  /** Moves `name` out of the inbox into this instance's claim folder; undefined if another took it first. */
  async claim(name: string): Promise<ClaimedFile | undefined> {
    // unique across instances too (it keys a database load): time, a counter and randomness
    const claimId = `${Date.now().toString(36)}${(this.counter++ % 36 ** 4).toString(36).padStart(4, '0')}${randomUint32().toString(36).padStart(7, '0')}`;
    const path = join(this.dir, `${claimId}-${name}`);
    try {
      // a name operation: synchronous (microseconds; see fs/no-clobber.ts)
      renameSync(join(this.dirs.inbox, name), path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return { name, claimId, path };
  }

  /**
   * Claims left by an earlier run of this instance (it stopped without finishing them): claimed inputs, and
   * commit records whose input already moved on. Leftover record temporaries are removed.
   */
  async leftovers(): Promise<ClaimedFile[]> {
    const byId = new Map<string, ClaimedFile>();
    for (const e of await readdir(this.dir)) {
      const claim = /^([0-9a-z]+)-(.+)$/.exec(e);
      const record = /^([0-9a-z]+)\.commit\.json(\.tmp)?$/.exec(e);
      if (claim !== null) byId.set(claim[1]!, { claimId: claim[1]!, name: claim[2]!, path: join(this.dir, e) });
      else if (record !== null && record[2] !== undefined) await unlink(join(this.dir, e));
      else if (record !== null && !byId.has(record[1]!)) {
        const { file } = JSON.parse(await readFile(join(this.dir, e), 'utf8')) as { file: string };
        byId.set(record[1]!, { claimId: record[1]!, name: file, path: join(this.dir, `${record[1]}-${file}`) });
      }
    }
    return [...byId.values()].sort((x, y) => (x.claimId < y.claimId ? -1 : 1));
  }

  /** Stopped before it finished: the input goes back to the inbox, to be done again. */
  release(c: ClaimedFile): Promise<string> {
    return moveNoClobber(c.path, this.dirs.inbox, c.name);
  }
}
