// Claims: inbox -> claimed (an atomic rename into <state>/claimed/<instance id>/<claimId>-<name>), or back to
// the inbox when processing was stopped. What happens after a claim is the commit protocol's (daemon/commit.ts).
// Only the process holding the instance's lock (daemon/instances.ts) ever writes in its claim folder.
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { moveNoClobber } from '../fs/no-clobber.js';
import { fitName, NAME_MAX } from '../fs/names.js';
import { randomUint32 } from '../random.js';

/** Dotfiles, `*.tmp` and `*.part` are never picked up: they are how writers stage files. */
export function isIgnoredName(name: string): boolean {
  return name.startsWith('.') || name.endsWith('.tmp') || name.endsWith('.part');
}

export interface ClaimedFile {
  /** The name the file had in the inbox (for a name that is not UTF-8: its escaped form). */
  name: string;
  /** Unique across instances; stable for the life of the claim (it is in the path). */
  claimId: string;
  /** Where the file is now. */
  path: string;
  /** A name that is not UTF-8: its bytes, as hex (the file fails with NAME_INVALID). */
  nameHex?: string;
}

/** The claim entries of a folder: `<claimId>-<name>`, `<claimId>.commit.json[.tmp]`, `<claimId>.name`. */
export const CLAIM_ENTRY = /^([0-9a-z]+)(?:-(.+)|\.commit\.json(\.tmp)?|\.name)$/s;

/** The claim id of an entry of a claim folder, if it is one. */
export function claimIdOf(entry: string): string | undefined {
  return CLAIM_ENTRY.exec(entry)?.[1];
}

export class Claims {
  private counter = 0;
  /** Claims known to have a kept name beside them (`<claimId>.name`). */
  private readonly sidecars = new Set<string>();
  readonly dir: string;

  constructor(
    stateDir: string,
    readonly instanceId: string,
    private readonly dirs: { inbox: string },
  ) {
    this.dir = join(stateDir, 'claimed', instanceId);
  }

  /** The inbox folder claims come from. */
  get inbox(): string {
    return this.dirs.inbox;
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  /**
   * Moves `name` out of the inbox into this instance's claim folder; undefined if another took it first.
   * `raw`: the name's bytes, for a name that is not valid UTF-8 (`name` is then its escaped form).
   */
  async claim(name: string, raw?: Buffer): Promise<ClaimedFile | undefined> {
    // unique across instances too (it keys a database load): time, a counter and randomness
    const claimId = `${Date.now().toString(36)}${(this.counter++ % 36 ** 4).toString(36).padStart(4, '0')}${randomUint32().toString(36).padStart(7, '0')}`;
    const entry = `${claimId}-${name}`;
    const fits = Buffer.byteLength(entry) <= NAME_MAX && raw === undefined;
    const path = join(this.dir, fits ? entry : `${claimId}-${fitName(name, NAME_MAX - claimId.length - 1)}`);
    // a name too long to keep in the path (or not UTF-8) is kept beside the claim, for a restart
    const sidecar = fits ? undefined : join(this.dir, `${claimId}.name`);
    if (sidecar !== undefined) writeFileSync(sidecar, JSON.stringify({ name, ...(raw === undefined ? {} : { hex: raw.toString('hex') }) }));
    try {
      // a name operation: synchronous (microseconds; see fs/no-clobber.ts)
      renameSync(raw === undefined ? join(this.dirs.inbox, name) : Buffer.concat([Buffer.from(`${this.dirs.inbox}/`), raw]), path);
    } catch (err) {
      if (sidecar !== undefined) unlinkSync(sidecar);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    if (sidecar !== undefined) this.sidecars.add(claimId);
    return { name, claimId, path, ...(raw === undefined ? {} : { nameHex: raw.toString('hex') }) };
  }

  /**
   * Claims left in this instance's folder (by an earlier run under this id, or adopted from a dead
   * instance): claimed inputs, and commit records whose input already moved on. `only`: just these claim
   * ids. Leftover record temporaries and names of claims that no longer exist are removed.
   */
  async leftovers(only?: ReadonlySet<string>): Promise<ClaimedFile[]> {
    const entries = await readdir(this.dir);
    const byId = new Map<string, ClaimedFile>();
    const names = new Map<string, { name: string; hex?: string }>();
    const records: string[] = [];
    for (const e of entries) {
      const m = CLAIM_ENTRY.exec(e);
      if (m === null || (only !== undefined && !only.has(m[1]!))) continue;
      const id = m[1]!;
      if (m[2] !== undefined) byId.set(id, { claimId: id, name: m[2], path: join(this.dir, e) });
      else if (m[3] !== undefined) await unlink(join(this.dir, e)).catch(() => undefined);
      else if (e.endsWith('.name')) names.set(id, readSidecar(join(this.dir, e)));
      else records.push(id);
    }
    for (const id of records) {
      if (byId.has(id)) continue;
      // the input moved on before a crash: the record has its name (a damaged record: recovery decides)
      const name = names.get(id)?.name ?? (await readRecordName(join(this.dir, `${id}.commit.json`)));
      byId.set(id, { claimId: id, name: name ?? '', path: join(this.dir, `${id}-${fitName(name ?? '', NAME_MAX - id.length - 1)}`) });
    }
    for (const [id, n] of names) {
      const c = byId.get(id);
      if (c === undefined) {
        await unlink(this.sidecarPath(id)).catch(() => undefined);
        continue;
      }
      this.sidecars.add(id);
      if (n.name !== '') Object.assign(c, { name: n.name, ...(n.hex === undefined ? {} : { nameHex: n.hex }) });
    }
    return [...byId.values()].sort((x, y) => (x.claimId < y.claimId ? -1 : 1));
  }

  /** Stopped before it finished: the input goes back to the inbox, to be done again. */
  async release(c: ClaimedFile): Promise<string> {
    let back: string;
    if (c.nameHex !== undefined) {
      // under its own bytes again, unless that name was taken meanwhile
      back = `${this.dirs.inbox}/${c.name}`;
      try {
        linkSync(c.path, Buffer.concat([Buffer.from(`${this.dirs.inbox}/`), Buffer.from(c.nameHex, 'hex')]));
        unlinkSync(c.path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        back = await moveNoClobber(c.path, this.dirs.inbox, c.name);
      }
    } else back = await moveNoClobber(c.path, this.dirs.inbox, c.name);
    this.forget(c);
    return back;
  }

  /** The claim is over (finished or put back): its kept name goes. */
  forget(c: ClaimedFile): void {
    // most claims have none: no failing unlink (and its exception) per file
    if (!this.sidecars.delete(c.claimId) && c.nameHex === undefined && Buffer.byteLength(`${c.claimId}-${c.name}`) <= NAME_MAX) return;
    try {
      unlinkSync(this.sidecarPath(c.claimId));
    } catch {
      // most claims have none
    }
  }

  private sidecarPath(claimId: string): string {
    return join(this.dir, `${claimId}.name`);
  }
}

function readSidecar(path: string): { name: string; hex?: string } {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as { name?: unknown; hex?: unknown };
    if (typeof v.name === 'string') return { name: v.name, ...(typeof v.hex === 'string' ? { hex: v.hex } : {}) };
  } catch {
    // damaged: the name in the claim's path serves
  }
  return { name: '' };
}

async function readRecordName(path: string): Promise<string | undefined> {
  try {
    const { file } = JSON.parse(await readFile(path, 'utf8')) as { file?: unknown };
    return typeof file === 'string' ? file : undefined;
  } catch {
    return undefined;
  }
}
