// Recovery: what an earlier run (of this instance, or of a dead one adopted) left in the claim folder is
// brought to an outcome. A claim with a commit record is finished; one without is done again; a database
// record is resolved by asking the database (the caller does that, as part of processing the claim). A
// leftover that cannot be finished (a temporary output deleted, a damaged record) fails with
// RECOVERY_FAILED, its input kept in failed/: no single file can stop a start.
import { lstatSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { ClaimedFile, Claims } from '../inbox/claims.js';
import type { Logger } from '../log.js';
import { numberedName } from '../fs/no-clobber.js';
import { TEMP_PREFIX } from '../fs/atomic-file.js';
import { holdsTransaction, type Committer, type CommitRecord } from './commit.js';
import { noRows } from '../outcome.js';
import type { Instances } from './instances.js';
import { isTransient } from './retry.js';

export interface RecoveryDeps {
  claims: Claims;
  committer: Committer;
  log: Logger;
  /** The folders temporary files are written in (out, rejects, failed). */
  tempDirs: readonly string[];
}

export interface Recovered {
  /** Claims to process (again): no record (redo), or a database record to resolve. */
  redo: ClaimedFile[];
  /** Claims that hit a transient error (a full disk): to try again later. */
  later: ClaimedFile[];
  /** Leftovers that failed with RECOVERY_FAILED. */
  failed: number;
}

/**
 * Resolves the leftovers of the claim folder (all, or the claim ids `only`). Temporary files are removed
 * when they belong to a claim resolved here (whichever instance wrote them: claim ids are unique, and a
 * claim moves between instances when it is adopted), or are tagged with one of `tempOwners` (instance ids
 * this process holds the lock of); never those a remaining record still needs, nor those of claims held in
 * other instances' folders (`elsewhere`).
 */
export async function recover(
  deps: RecoveryDeps,
  opts: { only?: ReadonlySet<string>; tempOwners: readonly string[]; elsewhere: ReadonlySet<string>; adopted?: ReadonlySet<string> },
): Promise<Recovered> {
  const { claims, committer, log } = deps;
  const redo: ClaimedFile[] = [];
  const later: ClaimedFile[] = [];
  let failed = 0;
  /** Temporaries a record still needs; claims whose temporaries all stay; claims resolved here. */
  const keep = new Set<string>();
  const keepClaims = new Set<string>();
  const handled = new Set<string>();
  for (const claimed of await claims.leftovers(opts.only)) {
    let record: CommitRecord | undefined;
    try {
      record = await committer.pending(claimed);
    } catch (err) {
      if (isTransient(err)) {
        // its record could not be read now: whatever it stages must survive until it is
        keepClaims.add(claimed.claimId);
        later.push(claimed);
        continue;
      }
      handled.add(claimed.claimId);
      if (await failLeftover(deps, claimed, undefined, `its commit record cannot be read (${(err as Error).message})`)) failed++;
      continue;
    }
    if (record !== undefined && holdsTransaction(record)) {
      // resolved by asking the database (as the claim is processed); its staged files must survive the cleanup
      for (const s of record.staged) if (s.kind === 'file') keep.add(s.file.tmp);
      redo.push(claimed);
    } else if (record !== undefined) {
      try {
        const receipt = await committer.finish(claimed, record);
        handled.add(claimed.claimId);
        log.warn('finished a file whose commit a crash interrupted', { file: claimed.name, claimId: claimed.claimId, outcome: receipt.outcome });
      } catch (err) {
        if (isTransient(err)) {
          // tried again later: the record still stands, and so must what it stages
          for (const s of record.staged) if (s.kind === 'file') keep.add(s.file.tmp);
          later.push(claimed);
        } else {
          handled.add(claimed.claimId);
          if (await failLeftover(deps, claimed, record, `its commit could not be finished: ${(err as Error).message}`)) failed++;
        }
      }
    } else if (finishPutBack(claimed, claims.inbox)) {
      // stopped between the link into the inbox and the unlink of the claim: the put-back is finished
      handled.add(claimed.claimId);
      claims.forget(claimed);
      log.warn('finished putting back in the inbox a file a stop had interrupted', { file: claimed.name, claimId: claimed.claimId });
    } else if (exists(claimed.path)) {
      log.warn(opts.adopted?.has(claimed.claimId) === true ? 'redoing a file an instance that died had claimed' : 'redoing a file claimed before a stop', {
        file: claimed.name,
        claimId: claimed.claimId,
      });
      handled.add(claimed.claimId);
      redo.push(claimed);
    } else {
      // a name kept for a claim whose input is gone: nothing to do
      claims.forget(claimed);
    }
  }
  removeTempFiles(deps, { owners: opts.tempOwners, keep, keepClaims, handled, elsewhere: opts.elsewhere });
  return { redo, later, failed };
}

/**
 * Adopts the claims of instances that died (finishing first an adoption a crash interrupted), then recovers:
 * at `start` every leftover of this instance's folder; later (a periodic check) only the claims adopted now,
 * those an interrupted adoption brought and those `later` (a transient fault last time). Undefined when a
 * check finds nothing to do. The dead instances' locks are let go of once their claims are ours.
 */
export async function adoptAndRecover(
  instances: Instances,
  deps: RecoveryDeps & { onAdopted?: (claims: number) => void },
  opts: { start: boolean; later: ReadonlySet<string> },
): Promise<Recovered | undefined> {
  const { claims, log } = deps;
  const unfinished = instances.finishAdoptions(claims.dir);
  const adoptions = instances.adoptDead(claims.dir, (instance, err) => {
    log.error('cannot move the claims of an instance that died; trying again later', { instance, error: String(err) });
  });
  try {
    const adopted = new Set(adoptions.flatMap((a) => [...a.claimIds]));
    if (adoptions.length > 0) {
      // a dead instance without claims (a clean stop leaves none; a crash between files) is only tidied away
      if (adopted.size > 0) log.warn('adopted the claims of instances that died', { instances: adoptions.map((a) => a.instance), claims: adopted.size });
      deps.onAdopted?.(adopted.size);
    }
    const dead = adoptions.map((a) => a.instance);
    if (opts.start) return await recover(deps, { tempOwners: [instances.id, ...dead], elsewhere: instances.othersClaimIds(), adopted });
    const only = new Set([...opts.later, ...unfinished, ...adopted]);
    if (only.size === 0 && adoptions.length === 0) return undefined;
    return await recover(deps, { only, tempOwners: dead, elsewhere: instances.othersClaimIds(), adopted });
  } finally {
    for (const a of adoptions) a.release();
  }
}

/**
 * A leftover that cannot be finished: fails with RECOVERY_FAILED (the input to failed/ with its error file,
 * a receipt), keeping whatever of it was already published. Logs and gives up (the claim stays, for a person
 * or the next start) if even that is impossible. Never throws; true if the failure was committed.
 */
export async function failLeftover(deps: RecoveryDeps, claimed: ClaimedFile, record: CommitRecord | undefined, why: string): Promise<boolean> {
  const { claims, committer, log } = deps;
  try {
    let ino = record?.input.ino;
    let size = record?.input.size ?? 0;
    try {
      const st = lstatSync(claimed.path);
      ino = st.ino;
      size = st.size;
    } catch {
      // moved on already (found by its inode in failed/ or archive/), or gone
    }
    if (ino === undefined) {
      // no input and no record to find it by: only the record can go
      await committer.discard(claimed, { staged: [] });
      claims.forget(claimed);
      log.error('a claim left by a crash could not be recovered and was dropped', { file: claimed.name, claimId: claimed.claimId, reason: why });
      return false;
    }
    const failed: CommitRecord = {
      claimId: claimed.claimId,
      file: claimed.name,
      pipeline: record?.pipeline ?? '(unknown)',
      outcome: 'failed',
      input: { ino, size },
      staged: [],
      rows: noRows(),
      startedAt: record?.startedAt ?? new Date().toISOString(),
      durationMs: 0,
      error: { code: 'RECOVERY_FAILED', message: `the file was claimed when a process stopped, and ${why}; what was already published stays` },
    };
    const receipt = await committer.commit(claimed, failed);
    log.error('file failed', { file: claimed.name, failed: receipt.input, code: 'RECOVERY_FAILED', error: failed.error!.message });
    return true;
  } catch (err) {
    log.error('a claim left by a crash could not be recovered; it stays claimed', {
      file: claimed.name,
      claimId: claimed.claimId,
      reason: why,
      error: String(err),
    });
    return false;
  }
}

interface TempRules {
  /** Instances this process holds the lock of: their temporaries are garbage unless a rule below keeps them. */
  owners: readonly string[];
  keep: ReadonlySet<string>;
  keepClaims: ReadonlySet<string>;
  /** Claims resolved now: their temporaries are garbage, whichever instance wrote them. */
  handled: ReadonlySet<string>;
  elsewhere: ReadonlySet<string>;
}

/** Temporary files left by killed runs (`.sluice-<instance>~<claimId>-…`), as the rules say. */
function removeTempFiles(deps: RecoveryDeps, rules: TempRules): void {
  if (rules.owners.length === 0 && rules.handled.size === 0) return;
  const owners = new Set(rules.owners);
  const garbage = (name: string, path: string): boolean => {
    if (!name.startsWith(TEMP_PREFIX) || rules.keep.has(path)) return false;
    const tag = /^([^~]+)~([0-9a-z]+)-/.exec(name.slice(TEMP_PREFIX.length));
    if (tag === null) return false;
    const [, instance, claimId] = tag as unknown as [string, string, string];
    if (rules.keepClaims.has(claimId)) return false;
    if (rules.handled.has(claimId)) return true;
    // a claim another instance holds now (it adopted ours) may still need it
    return owners.has(instance) && !rules.elsewhere.has(claimId);
  };
  removeTemps(deps.tempDirs, garbage, deps.log, 'removed a temporary file left by an earlier run');
}

/** Removes the files under `dirs` (three folders deep) that `garbage` names, saying so in the log. */
function removeTemps(dirs: readonly string[], garbage: (name: string, path: string) => boolean, log: Logger, said: string): void {
  const walk = (dir: string, depth: number): void => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory() && depth > 0 && !e.name.startsWith('.')) walk(path, depth - 1);
      else if (e.isFile() && garbage(e.name, path)) {
        try {
          unlinkSync(path);
          log.warn(said, { file: path });
        } catch {
          // gone already
        }
      }
    }
  };
  for (const dir of new Set(dirs)) walk(dir, 3);
}

/** The temporary files of one file's run (tag `<instance>~<claimId>`), left by a worker thread that died under it. */
export function removeRunTemps(dirs: readonly string[], tempTag: string, log: Logger): void {
  const prefix = `${TEMP_PREFIX}${tempTag}-`;
  removeTemps(dirs, (name) => name.startsWith(prefix), log, 'removed a temporary file of a worker that died');
}

/**
 * A claim whose input is also in the inbox (same inode: two links) was being put back when the process
 * died: its claim link goes, and the inbox's file is claimed again like any other. True if so.
 */
function finishPutBack(claimed: ClaimedFile, inbox: string): boolean {
  let st: import('node:fs').Stats;
  try {
    st = lstatSync(claimed.path);
  } catch {
    return false;
  }
  if (st.nlink < 2) return false;
  // a name that is not UTF-8 went back under its own bytes
  if (claimed.nameHex !== undefined) {
    try {
      if (lstatSync(Buffer.concat([Buffer.from(`${inbox}/`), Buffer.from(claimed.nameHex, 'hex')])).ino === st.ino) {
        unlinkSync(claimed.path);
        return true;
      }
    } catch {
      // not there: look under its escaped name too
    }
  }
  for (let n = 0; n < 16; n++) {
    try {
      if (lstatSync(join(inbox, numberedName(claimed.name, n))).ino === st.ino) {
        unlinkSync(claimed.path);
        return true;
      }
    } catch {
      // not under this name
    }
  }
  return false;
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
