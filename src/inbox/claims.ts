// The input's lifecycle on disk: inbox -> claimed (atomic rename, instance id in the path) -> archive/ or
// failed/ (+ error file), or back to the inbox when processing was stopped.
import { mkdir, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { SluiceError } from '../errors.js';
import { moveNoClobber } from '../fs/no-clobber.js';
import { AtomicFile } from '../sinks/atomic-file.js';

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
    private readonly dirs: { inbox: string; archive: string; failed: string },
    private readonly fsync: boolean,
  ) {
    this.dir = join(stateDir, 'claimed', instanceId);
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  /** Moves `name` out of the inbox into this instance's claim folder; undefined if another took it first. */
  async claim(name: string): Promise<ClaimedFile | undefined> {
    const claimId = `${Date.now().toString(36)}${(this.counter++ % 36 ** 4).toString(36).padStart(4, '0')}`;
    const path = join(this.dir, `${claimId}-${name}`);
    try {
      await rename(join(this.dirs.inbox, name), path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return { name, claimId, path };
  }

  /** Claims left by an earlier run of this instance (it stopped without finishing them). */
  async leftovers(): Promise<ClaimedFile[]> {
    const entries = await readdir(this.dir);
    return entries
      .filter((e) => e.includes('-'))
      .sort()
      .map((e) => {
        const dash = e.indexOf('-');
        return { claimId: e.slice(0, dash), name: e.slice(dash + 1), path: join(this.dir, e) };
      });
  }

  /** Success: the input goes to archive/ (never replacing a file there). */
  archive(c: ClaimedFile): Promise<string> {
    return moveNoClobber(c.path, this.dirs.archive, c.name);
  }

  /** Failure: the input goes to failed/ and `<its name>.error.json` beside it says why. */
  async fail(c: ClaimedFile, error: SluiceError, details: Record<string, unknown> = {}): Promise<string> {
    const dest = await moveNoClobber(c.path, this.dirs.failed, c.name);
    const finalName = dest.slice(this.dirs.failed.length + 1);
    const body = {
      file: c.name,
      code: error.code,
      message: error.message,
      ...(error.line === undefined ? {} : { line: error.line }),
      ...(error.field === undefined ? {} : { field: error.field }),
      claimId: c.claimId,
      instance: this.instanceId,
      time: new Date().toISOString(),
      ...details,
    };
    const file = await AtomicFile.create(this.dirs.failed, `${finalName}.error.json`, { fsync: this.fsync, tempTag: this.instanceId });
    try {
      await file.write(`${JSON.stringify(body, null, 2)}\n`);
      await file.commit();
    } catch (err) {
      await file.abort();
      throw err;
    }
    return dest;
  }

  /** Stopped before it finished: the input goes back to the inbox, to be done again. */
  release(c: ClaimedFile): Promise<string> {
    return moveNoClobber(c.path, this.dirs.inbox, c.name);
  }
}
