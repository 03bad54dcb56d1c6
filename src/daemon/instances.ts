// Instances sharing a state folder, coordinated by the operating system's locks (fs/lock.ts), not by clocks.
// Each process holds `<state>/instances/<id>.lock` for its whole life; its claims live in
// `<state>/claimed/<id>/`. A process is dead exactly when its lock can be taken: whoever takes it is the one
// adopter of its claims, moves them into its own folder, and removes the dead instance's lock file and
// folder before letting go of the lock. A paused process (SIGSTOP, a frozen VM) keeps its lock and is
// never adopted.
import { existsSync, readdirSync, renameSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { sanitizeId } from '../config/load.js';
import { SluiceError } from '../errors.js';
import { FileLock, isLockHeld } from '../fs/lock.js';
import { claimIdOf } from '../inbox/claims.js';
import { randomHex } from '../random.js';

/** The prefix of a dead instance's claim folder taken whole into ours, while its claims are moved in. */
const ADOPTING = '.adopting-';

/** A heartbeat file of an older version newer than this means its process is alive. */
const LEGACY_HEARTBEAT_FRESH_MS = 120_000;

/** How many default slots (`<host>-1` …) a process tries before giving up. */
const MAX_SLOTS = 1000;

/** A dead instance whose lock this process now holds: its claims are ours to finish. */
export interface Adoption {
  instance: string;
  /** Claim ids moved into this instance's folder. */
  claimIds: Set<string>;
  /** Lets go of the dead instance's lock, removing its lock file and its (now empty) claim folder. */
  release(): void;
}

export class Instances {
  private constructor(
    private readonly stateDir: string,
    readonly id: string,
    private readonly lock: FileLock,
  ) {}

  /**
   * Takes this process's instance lock: `explicit` (exit 2, INSTANCE_RUNNING, if a live process holds it),
   * else the first free slot `<base>-1`, `<base>-2`, …. A slot whose holder died is taken like a free one:
   * its claims are then this process's own leftovers.
   */
  static async acquire(stateDir: string, explicit: string | undefined, base = defaultBase()): Promise<Instances> {
    const dir = join(stateDir, 'instances');
    await mkdir(dir, { recursive: true });
    const info = (id: string): string => `${JSON.stringify({ instance: id, host: hostname(), pid: process.pid, startedAt: new Date().toISOString() })}\n`;
    if (explicit !== undefined) {
      const lock = FileLock.tryTake(join(dir, `${explicit}.lock`));
      if (lock === undefined) {
        throw new SluiceError(
          'INSTANCE_RUNNING',
          `instance ${explicit} is running (a live process holds ${join(dir, `${explicit}.lock`)}); give another --instance-id, or none to take a free one`,
          { field: 'instanceId' },
        );
      }
      lock.describe(info(explicit));
      removeIfThere(join(dir, `${explicit}.json`));
      return new Instances(stateDir, explicit, lock);
    }
    for (let n = 1; n <= MAX_SLOTS; n++) {
      const id = `${base}-${n}`;
      const lock = FileLock.tryTake(join(dir, `${id}.lock`));
      if (lock === undefined) continue;
      lock.describe(info(id));
      return new Instances(stateDir, id, lock);
    }
    throw new SluiceError('INSTANCE_RUNNING', `all ${MAX_SLOTS} instance slots of ${base} in ${dir} are held by live processes`, { field: 'instanceId' });
  }

  /**
   * Takes the locks of dead instances (a claim folder or a lock file whose lock is free) and moves their
   * claims into `ownClaimDir`. Each adoption must be released once its temporary files are dealt with.
   * An instance whose claims cannot be moved (a permission error) is reported to `onError` and left, its
   * lock released, for a later look; the claims moved so far are in the adoption.
   */
  adoptDead(ownClaimDir: string, onError: (instance: string, err: unknown) => void = () => undefined): Adoption[] {
    const adopted: Adoption[] = [];
    for (const other of this.others()) {
      if (this.olderVersionAlive(other)) continue;
      const lockPath = join(this.stateDir, 'instances', `${other}.lock`);
      const lock = FileLock.tryTake(lockPath);
      if (lock === undefined) continue; // alive (or being adopted by another process right now)
      const from = join(this.stateDir, 'claimed', other);
      let claimIds = new Set<string>();
      try {
        if (existsSync(from)) {
          // one rename takes the whole folder into ours: a crash from here on leaves every claim whole, under
          // our lock (our slot's next holder finishes the move), never split between two instances' folders
          const staging = join(ownClaimDir, `${ADOPTING}${other}-${randomHex(6)}`);
          renameSync(from, staging);
          claimIds = drainInto(staging, ownClaimDir);
        }
      } catch (err) {
        onError(other, err);
        if (claimIds.size === 0) {
          lock.release();
          continue;
        }
      }
      adopted.push({
        instance: other,
        claimIds,
        release: () => {
          removeIfThere(join(this.stateDir, 'instances', `${other}.json`)); // an older version's heartbeat
          lock.release(true);
        },
      });
    }
    return adopted;
  }

  /**
   * Finishes adoptions a crash interrupted: the claims of a folder taken whole into ours (see adoptDead) are
   * moved in among ours. Returns their claim ids.
   */
  finishAdoptions(ownClaimDir: string): Set<string> {
    const ids = new Set<string>();
    for (const e of readdirSafe(ownClaimDir)) {
      if (!e.startsWith(ADOPTING)) continue;
      for (const id of drainInto(join(ownClaimDir, e), ownClaimDir)) ids.add(id);
    }
    return ids;
  }

  /**
   * An instance of an older version (heartbeats, no lock) that beat in the last two minutes: alive, so that
   * a rolling upgrade never adopts the claims of a process still working on them.
   */
  private olderVersionAlive(instance: string): boolean {
    try {
      return Date.now() - statSync(join(this.stateDir, 'instances', `${instance}.json`)).mtimeMs < LEGACY_HEARTBEAT_FRESH_MS;
    } catch {
      return false;
    }
  }

  /** The other instances this state folder knows of (by claim folder or lock file). */
  private others(): string[] {
    const names = new Set<string>();
    for (const e of readdirSafe(join(this.stateDir, 'claimed'))) names.add(e);
    for (const e of readdirSafe(join(this.stateDir, 'instances'))) {
      // lock files, and the heartbeats older versions wrote (their instances are judged by their locks now)
      if (e.endsWith('.lock')) names.add(e.slice(0, -5));
      else if (e.endsWith('.json') && !e.startsWith('.')) names.add(e.slice(0, -5));
    }
    names.delete(this.id);
    return [...names].sort();
  }

  /** Claim ids in the claim folders of other instances (live, or dead and not yet adopted). */
  othersClaimIds(): Set<string> {
    const ids = new Set<string>();
    for (const other of readdirSafe(join(this.stateDir, 'claimed'))) {
      if (other === this.id) continue;
      const dir = join(this.stateDir, 'claimed', other);
      for (const e of readdirSafe(dir)) {
        const id = claimIdOf(e);
        if (id !== undefined) ids.add(id);
        // a dead instance's folder that its adopter took whole, and died before moving in
        else if (e.startsWith(ADOPTING)) for (const inner of readdirSafe(join(dir, e))) if (claimIdOf(inner) !== undefined) ids.add(claimIdOf(inner)!);
      }
    }
    return ids;
  }

  /** A clean stop: the claim folder (if empty) and the lock file go, then the lock. */
  retire(ownClaimDir: string): void {
    try {
      rmdirSync(ownClaimDir);
    } catch {
      // holds claims still (they are finished by the next holder of this slot, or an adopter)
    }
    this.lock.release(true);
  }
}

/** The live instances of a state folder as `sluice status` shows them. */
export function instanceAlive(stateDir: string, id: string): boolean {
  return isLockHeld(join(stateDir, 'instances', `${id}.lock`));
}

function defaultBase(): string {
  return sanitizeId(hostname());
}

/** The claims of `from` moved into `to` (record temporaries dropped); `from` removed once empty. */
function drainInto(from: string, to: string): Set<string> {
  const ids = new Set<string>();
  for (const e of readdirSafe(from)) {
    const id = claimIdOf(e);
    if (id === undefined) continue; // not a claim: left for a person
    if (e.endsWith('.tmp')) {
      unlinkSync(join(from, e)); // a record's temporary: never complete
      continue;
    }
    renameSync(join(from, e), join(to, e));
    ids.add(id);
  }
  try {
    rmdirSync(from);
  } catch {
    // holds something that is not a claim
  }
  return ids;
}

function removeIfThere(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // not there
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
