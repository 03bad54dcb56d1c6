// Moves and publishes that never replace an existing file: link() then unlink(), with numbered names.
import { link, open, rename, lstat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

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
 * link then removes `src`; where links are impossible (a directory, a filesystem without them) it renames
 * after checking that the target is free. Returns the final path.
 */
export async function moveNoClobber(src: string, dir: string, name: string): Promise<string> {
  for (let n = 0; n < MAX_TRIES; n++) {
    const dst = join(dir, numberedName(name, n));
    try {
      await link(src, dst);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') {
        if (await exists(dst)) continue;
        await rename(src, dst);
        return dst;
      }
      throw err;
    }
    await unlink(src);
    return dst;
  }
  throw new Error(`no free name for ${name} in ${dir} after ${MAX_TRIES} tries`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Makes a directory's entries (a new name, a removed name) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The directory and base name of a path. */
export function splitPath(path: string): { dir: string; name: string } {
  return { dir: dirname(path), name: basename(path) };
}
