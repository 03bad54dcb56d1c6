// Recovery: what an earlier run (of this instance, or of a dead one adopted) left in the claim folder is
// brought to an outcome. A claim with a commit record is finished; one without is done again; a database
// record is resolved by asking the database (the caller does that, as part of processing the claim). A
// leftover that cannot be finished (a temporary output deleted, a damaged record) fails with
// RECOVERY_FAILED, its input kept in failed/: no single file can stop a start.
import { lstatSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { ClaimedFile, Claims } from '../inbox/claims.js';
import type { Logger } from '../log.js';
import { TEMP_PREFIX } from '../sinks/atomic-file.js';
import type { Committer, CommitRecord } from './commit.js';
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
 * Resolves the leftovers of the claim folder (all, or the claim ids `only`). Temporary files tagged with
 * one of `tempOwners` (instance ids this process holds the lock of) are removed, except those a record
 * still needs and those of claims held in other instances' folders (`elsewhere`).
 */
export async function recover(deps: RecoveryDeps, opts: { only?: ReadonlySet<string>; tempOwners: readonly string[]; elsewhere: ReadonlySet<string> }): Promise<Recovered> {
  const { claims, committer, log } = deps;
  const redo: ClaimedFile[] = [];
  const later: ClaimedFile[] = [];
  let failed = 0;
  const keep = new Set<string>();
  for (const claimed of await claims.leftovers(opts.only)) {
    let record: CommitRecord | undefined;
    try {
      record = await committer.pending(claimed);
    } catch (err) {
      if (isTransient(err)) {
        later.push(claimed);
        continue;
      }
      if (await failLeftover(deps, claimed, undefined, `its commit record cannot be read (${(err as Error).message})`)) failed++;
      continue;
    }
    if (record?.db === true) {
      // resolved by asking the database (as the claim is processed); its staged files must survive the cleanup
      for (const s of record.staged) if (s.file !== undefined) keep.add(s.file.tmp);
      redo.push(claimed);
    } else if (record !== undefined) {
      try {
        const receipt = await committer.finish(claimed, record);
        log.warn('finished a file whose commit a crash interrupted', { file: claimed.name, claimId: claimed.claimId, outcome: receipt.outcome });
      } catch (err) {
        if (isTransient(err)) later.push(claimed);
        else if (await failLeftover(deps, claimed, record, `its commit could not be finished: ${(err as Error).message}`)) failed++;
      }
    } else if (exists(claimed.path)) {
      log.warn('redoing a file claimed before a stop', { file: claimed.name, claimId: claimed.claimId });
      redo.push(claimed);
    } else {
      // a name kept for a claim whose input is gone: nothing to do
      claims.forget(claimed);
    }
  }
  removeTempFiles(deps, opts.tempOwners, keep, opts.elsewhere);
  return { redo, later, failed };
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
      rows: { read: 0, written: 0, filtered: 0, rejected: 0 },
      startedAt: record?.startedAt ?? new Date().toISOString(),
      durationMs: 0,
      error: { code: 'RECOVERY_FAILED', message: `the file was claimed when a process stopped, and ${why}; what was already published stays` },
    };
    const receipt = await committer.commit(claimed, failed);
    log.error('file failed', { file: claimed.name, failed: receipt.input, code: 'RECOVERY_FAILED', error: failed.error!.message });
    return true;
  } catch (err) {
    log.error('a claim left by a crash could not be recovered; it stays claimed', { file: claimed.name, claimId: claimed.claimId, reason: why, error: String(err) });
    return false;
  }
}

/** Temporary files of the instances in `owners` (killed mid-write, before their commit). */
function removeTempFiles(deps: RecoveryDeps, owners: readonly string[], keep: ReadonlySet<string>, elsewhere: ReadonlySet<string>): void {
  if (owners.length === 0) return;
  const prefixes = owners.map((i) => `${TEMP_PREFIX}${i}~`);
  const walk = (dir: string, depth: number): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory() && depth > 0 && !e.name.startsWith('.')) {
        walk(path, depth - 1);
        continue;
      }
      const prefix = e.isFile() ? prefixes.find((p) => e.name.startsWith(p)) : undefined;
      if (prefix === undefined || keep.has(path)) continue;
      // a claim another instance holds now (it adopted ours) may still need it
      const claimId = /^[0-9a-z]+/.exec(e.name.slice(prefix.length))?.[0];
      if (claimId !== undefined && elsewhere.has(claimId)) continue;
      try {
        unlinkSync(path);
        deps.log.warn('removed a temporary file left by an earlier run', { file: path });
      } catch {
        // gone already
      }
    }
  };
  for (const dir of new Set(deps.tempDirs)) walk(dir, 3);
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
