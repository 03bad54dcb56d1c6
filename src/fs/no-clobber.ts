// Moves and publishes that never replace an existing file: link() then unlink(), with numbered names.
import { type FileHandle, link, open, rename, lstat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { failpoint, fault } from '../failpoint.js';

/** `name` with `-n` before its first extension: orders.csv -> orders-1.csv, a.rejects.csv -> a-1.rejects.csv. */
export function numberedName(name: string, n: number): string {
  if (n === 0) return name;
  const dot = name.indexOf('.', 1);
  return dot === -1 ? `${name}-${n}` : `${name.slice(0, dot)}-${n}${name.slice(dot)}`;
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
  const st = await lstat(src);
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
    await rename(src, dst);
    return dst;
  }
  throw new Error(`no free name for ${name} in ${dir} after ${MAX_TRIES} tries`);
}

/** True if something (a file, a link, a folder) is at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
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
      await link(s.tmp, dst);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        if (await sameFile(dst, s.ino)) {
          await unlink(s.tmp).catch(ignoreMissing);
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
    await unlink(s.tmp);
    return dst;
  }
  throw new Error(`no free name for ${s.name} in ${s.dir} after ${MAX_TRIES} tries`);
}

/** The numbered name of `name` in `dir` that is the file with inode `ino`, if any. */
export async function findByIno(dir: string, name: string, ino: number): Promise<string | undefined> {
  let missing = 0;
  for (let n = 0; n < MAX_TRIES && missing < 16; n++) {
    const p = join(dir, numberedName(name, n));
    try {
      if ((await lstat(p)).ino === ino) return p;
      missing = 0;
    } catch {
      missing++;
    }
  }
  return undefined;
}

async function sameFile(path: string, ino: number): Promise<boolean> {
  try {
    return (await lstat(path)).ino === ino;
  } catch {
    return false;
  }
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}

/** Makes a directory's entries (a new name, a removed name) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  // a daemon syncs the same few folders for every file: keep them open (checked against the path's inode,
  // so a folder removed and recreated is opened anew)
  let entry = dirHandles.get(dir);
  if (entry !== undefined) {
    const [held, now] = await Promise.all([entry, lstat(dir).catch(() => undefined)]);
    if (now?.ino !== held.ino) {
      if (dirHandles.get(dir) === entry) dirHandles.delete(dir);
      retire(entry);
      entry = undefined;
    }
  }
  if (entry === undefined) {
    entry = open(dir, 'r').then(async (fh) => ({ fh, ino: (await fh.stat()).ino }));
    dirHandles.set(dir, entry);
    entry.catch(() => dirHandles.delete(dir));
    // a long-lived daemon with name templates may touch many folders: keep the most recent 64
    if (dirHandles.size > 64) {
      const oldest = dirHandles.keys().next().value as string;
      retire(dirHandles.get(oldest)!);
      dirHandles.delete(oldest);
    }
  }
  await (await entry).fh.sync();
}

/** Closes a handle no longer cached, once whoever was using it is surely done. */
function retire(entry: Promise<{ fh: FileHandle }>): void {
  void entry.then(({ fh }) => setTimeout(() => void fh.close().catch(() => undefined), 5000).unref(), () => undefined);
}

/** Open folder handles by path. */
const dirHandles = new Map<string, Promise<{ fh: FileHandle; ino: number }>>();

