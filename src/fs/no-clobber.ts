// Moves and publishes that never replace an existing file: link() then unlink(), with numbered names.
// Name operations (link, unlink, rename, lstat) are synchronous system calls: on a local filesystem each
// takes microseconds, and a trip through libuv's thread pool costs several times more CPU than the call
// (measured in docs/throughput.md). Only what waits on the disk (fsync) goes through the pool.
import { closeSync, fstatSync, linkSync, lstatSync, openSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { SyncGroup, syncFd } from './fd.js';
import { fitName, NAME_MAX } from './names.js';
import { failpoint, fault } from '../failpoint.js';

/** `name` with `-n` before its first extension: orders.csv -> orders-1.csv, a.rejects.csv -> a-1.rejects.csv. */
export function numberedName(name: string, n: number): string {
  // within NAME_MAX whatever the name: a long one is shortened (with a hash) to leave room for `-n`
  const base = fitName(name, NAME_MAX - (n === 0 ? 0 : String(n).length + 1));
  if (n === 0) return base;
  const dot = base.indexOf('.', 1);
  return dot === -1 ? `${base}-${n}` : `${base.slice(0, dot)}-${n}${base.slice(dot)}`;
}

/** The file name without its last extension: orders.csv -> orders. */
export function stemOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? name : name.slice(0, dot);
}

const MAX_TRIES = 10_000;

/**
 * Gives `src` the name `dir/name`, or `dir/name-1…` when that exists: never replaces a file. Uses a hard
 * link then removes `src` (so a crash in between is recognised by inode and finished, not duplicated);
 * where links are impossible (a directory, a filesystem without them) it renames after checking that the
 * target is free. Returns the final path.
 */
export async function moveNoClobber(src: string, dir: string, name: string): Promise<string> {
  const st = lstatSync(src);
  if (!st.isDirectory()) {
    try {
      return await publishStaged({ tmp: src, dir, name, ino: st.ino, bytes: st.size });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
    }
  }
  for (let n = 0; n < MAX_TRIES; n++) {
    const dst = join(dir, numberedName(name, n));
    if (await exists(dst)) continue;
    renameSync(src, dst);
    return dst;
  }
  throw new Error(`no free name for ${name} in ${dir} after ${MAX_TRIES} tries`);
}

/**
 * moveNoClobber that may be repeated after a crash: when `src` is gone, the file with inode `ino` is looked
 * for where the move puts it. Returns its path there, or undefined if it is in neither place.
 */
export async function moveOnce(src: string, dir: string, name: string, ino: number): Promise<string | undefined> {
  try {
    return await moveNoClobber(src, dir, name);
  } catch (err) {
    // ENOENT with the source still there is about the destination: a real error
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !(await exists(src))) return findByIno(dir, name, ino);
    throw err;
  }
}

/** True if something (a file, a link, a folder) is at `path`. */
export async function exists(path: string): Promise<boolean> {
  // no exception for a missing file (building one costs more than the lstat); other errors still throw
  return lstatSync(path, { throwIfNoEntry: false }) !== undefined;
}

/** A complete, durable temporary file and where it is to be published. Serializable (commit records). */
export interface StagedFile {
  tmp: string;
  dir: string;
  name: string;
  /** The file's inode: how a publish that already happened is recognised after a crash. */
  ino: number;
  bytes: number;
}

/**
 * Publishes a staged file as `dir/name` (or a numbered name), never replacing anything. Idempotent: after a
 * crash at any point it can be called again, and finds the name the file was already published under.
 */
export async function publishStaged(s: StagedFile): Promise<string> {
  fault('publish');
  for (let n = 0; n < MAX_TRIES; n++) {
    const dst = join(s.dir, numberedName(s.name, n));
    try {
      linkSync(s.tmp, dst);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        if (sameFile(dst, s.ino)) {
          unlinkIfThere(s.tmp);
          return dst;
        }
        continue;
      }
      if (code === 'ENOENT') {
        // the temporary name is gone: published and unlinked before a crash; find where
        const found = await findByIno(s.dir, s.name, s.ino);
        if (found !== undefined) return found;
      }
      throw err;
    }
    failpoint('linked');
    unlinkSync(s.tmp);
    return dst;
  }
  throw new Error(`no free name for ${s.name} in ${s.dir} after ${MAX_TRIES} tries`);
}

/** The numbered name of `name` in `dir` that is the file with inode `ino`, if any. */
export async function findByIno(dir: string, name: string, ino: number): Promise<string | undefined> {
  let missing = 0;
  for (let n = 0; n < MAX_TRIES && missing < 16; n++) {
    const p = join(dir, numberedName(name, n));
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(p, { throwIfNoEntry: false });
    } catch {
      st = undefined;
    }
    if (st === undefined) missing++;
    else if (st.ino === ino) return p;
    else missing = 0;
  }
  return undefined;
}

function sameFile(path: string, ino: number): boolean {
  try {
    return lstatSync(path, { throwIfNoEntry: false })?.ino === ino;
  } catch {
    return false;
  }
}

function unlinkIfThere(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * Makes a directory's entries (a new name, a removed name) durable. Group commit (SyncGroup): files
 * committing at once share one fsync of their folder.
 */
export async function fsyncDir(dir: string): Promise<void> {
  return dirSync(dir).group.sync();
}

interface DirSync {
  dir: string;
  /** The folder's open handle, once a sync opened it. */
  handle: { fd: number; dev: number; ino: number } | undefined;
  group: SyncGroup;
}

/** Folder syncs by path: a daemon syncs the same few folders for every file. */
const dirSyncs = new Map<string, DirSync>();

function dirSync(dir: string): DirSync {
  const held = dirSyncs.get(dir);
  if (held !== undefined) return held;
  const d: DirSync = { dir, handle: undefined, group: new SyncGroup(() => syncDirNow(d)) };
  dirSyncs.set(dir, d);
  // a long-lived daemon with name templates may touch many folders: keep the most recent 64
  if (dirSyncs.size > 64) {
    const [oldest, h] = dirSyncs.entries().next().value as [string, DirSync];
    dirSyncs.delete(oldest);
    retire(h);
  }
  return d;
}

/**
 * One fsync of the folder the path names as the sync starts: the handle is opened anew if the path now
 * names another folder (removed and recreated). Checked once a sync, not once a caller: every caller
 * sharing it made its change before it started.
 */
function syncDirNow(d: DirSync): Promise<void> {
  const held = d.handle;
  if (held !== undefined) {
    // stat, not lstat: a folder given through a symbolic link is the link's target, as open() sees it
    let now: { dev: number; ino: number } | undefined;
    try {
      now = statSync(d.dir);
    } catch {
      now = undefined;
    }
    if (now?.ino === held.ino && now.dev === held.dev) return syncFd(held.fd);
    d.handle = undefined;
    closeQuietly(held.fd);
  }
  const fd = openSync(d.dir, 'r');
  let st: { dev: number; ino: number };
  try {
    st = fstatSync(fd);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  d.handle = { fd, dev: st.dev, ino: st.ino };
  return syncFd(fd);
}

/** Closes the handle of a folder no longer cached, once the syncs using it are done. */
function retire(d: DirSync): void {
  void d.group.idle().then(() => {
    if (d.handle !== undefined) closeQuietly(d.handle.fd);
    d.handle = undefined;
  });
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
