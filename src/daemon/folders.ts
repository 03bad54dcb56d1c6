// The folders sluice works in: made (or, for a batch job, checked) at start, made again if one is removed.
import { existsSync, lstatSync, mkdirSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import type { SluiceConfig } from '../config/load.js';
import { SluiceError } from '../errors.js';
import type { Logger } from '../log.js';

type Folders = Pick<SluiceConfig, 'watch' | 'out' | 'rejects' | 'archive' | 'failed' | 'state' | 'given'>;

/**
 * Creates the folders and checks that inputs only ever move within one filesystem. A batch job (`once`)
 * creates only the folders left to their defaults: one it was given that is missing is a typo, not a
 * folder to make (DIR_MISSING, and nothing is created).
 */
export async function prepareFolders(cfg: Folders, once = false): Promise<void> {
  const all = { watch: cfg.watch, out: cfg.out, rejects: cfg.rejects, archive: cfg.archive, failed: cfg.failed, state: cfg.state };
  if (once) {
    const missing = (Object.entries(all) as Array<[keyof typeof all, string]>).filter(
      ([key, dir]) => key !== 'state' && cfg.given.has(key) && !existsSync(dir),
    );
    if (missing.length > 0) {
      throw new SluiceError(
        'DIR_MISSING',
        `${missing.map(([k, dir]) => `${k} folder ${dir}`).join(', ')} ${missing.length > 1 ? 'do' : 'does'} not exist (a --once run creates only the default folders)`,
        { field: missing[0]![0] },
      );
    }
  }
  const devs = new Map<string, number>();
  for (const [key, dir] of Object.entries(all)) {
    try {
      await mkdir(dir, { recursive: true });
      const st = await stat(dir);
      if (!st.isDirectory()) throw new Error('not a directory');
      devs.set(key, st.dev);
    } catch (err) {
      throw new SluiceError('DIR_UNUSABLE', `${key} folder ${dir}: ${(err as Error).message}`, { field: key, cause: err });
    }
  }
  const moves = ['watch', 'state', 'archive', 'failed'];
  const dev = devs.get('watch');
  const off = moves.filter((k) => devs.get(k) !== dev);
  if (off.length > 0) {
    throw new SluiceError(
      'DIRS_NOT_ONE_FILESYSTEM',
      `inputs move by rename between the inbox (${cfg.watch}) and the ${off.join(', ')} folder(s), which are on another filesystem; put them on one filesystem`,
      { field: off[0] },
    );
  }
}

/**
 * Makes again the folders a running daemon writes in, if one was removed (by hand, by a cleanup job).
 * True if one was missing. Synchronous: a few name operations, and rare.
 */
export function remakeFolders(dirs: Readonly<Record<string, string>>, log: Logger): boolean {
  let made = false;
  for (const [key, dir] of Object.entries(dirs)) {
    try {
      lstatSync(dir);
    } catch {
      try {
        mkdirSync(dir, { recursive: true });
        made = true;
        log.warn('a folder was missing: made it again', { folder: key, dir });
      } catch (err) {
        log.error('a folder is missing and cannot be made again', { folder: key, dir, error: String(err) });
      }
    }
  }
  return made;
}
