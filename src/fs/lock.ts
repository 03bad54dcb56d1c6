// Exclusive locks on files, held by the operating system: an open file description lock (fcntl F_OFD_SETLK on
// Linux, flock elsewhere) through fs-native-extensions. The kernel (or an NFSv4 server's lock manager) drops
// the lock when the process dies, however it dies; a paused process keeps it. So "the holder is dead" is
// exactly "its lock can be taken", with no clock involved.
//
// Lock files are removed only by their holder, while holding the lock. A taker therefore checks, once it holds
// the lock, that its file is still the one under the name (same inode): if the name was removed or made anew
// in between, it holds a lock on a file nobody else will ever look at, and tries again.
import { closeSync, constants, existsSync, fstatSync, openSync, statSync, unlinkSync, writeSync, ftruncateSync } from 'node:fs';
import { createRequire } from 'node:module';
import { SluiceError } from '../errors.js';

interface NativeLocks {
  tryLock(fd: number, offset?: number, length?: number, opts?: { shared?: boolean }): boolean;
}

let native: NativeLocks | undefined;
function locks(): NativeLocks {
  // loaded at first use (a native addon; the CLI bundle leaves it outside)
  native ??= prebuiltLocks() ?? (createRequire(import.meta.url)('fs-native-extensions') as NativeLocks);
  return native;
}

/** The addon's own binding, as its index.js calls it: tryLock(fd, offset, length, exclusive), EAGAIN when held. */
interface Binding {
  tryLock(fd: number, offset: number, length: number, exclusive: boolean): void;
}

/**
 * The package's prebuilt binary for this platform, loaded directly. Its index.js finds the same file through
 * require-addon and its resolver (bare-addon-resolve, bare-module-resolve, bare-semver): 30-60 ms of a
 * process's start here, against 1-3 ms for the binary. Undefined where there is no such file (musl, another
 * platform, a binary built from source): the package's own loader then finds what fits.
 */
function prebuiltLocks(): NativeLocks | undefined {
  if ((process.platform !== 'linux' && process.platform !== 'darwin') || existsSync('/etc/alpine-release')) return undefined;
  let binding: Binding;
  try {
    binding = createRequire(import.meta.url)(`fs-native-extensions/prebuilds/${process.platform}-${process.arch}/fs-native-extensions.node`) as Binding;
  } catch {
    return undefined;
  }
  if (typeof binding.tryLock !== 'function') return undefined;
  return {
    tryLock(fd, offset = 0, length = 0, opts = {}) {
      try {
        binding.tryLock(fd, offset, length, opts.shared !== true);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return false;
        throw err;
      }
      return true;
    },
  };
}

export class FileLock {
  private constructor(
    readonly path: string,
    private fd: number | undefined,
  ) {}

  /**
   * Takes the exclusive lock on `path` (created if missing) without waiting. Undefined when another open file
   * holds it (a live process, or this one through another lock). Throws LOCK_UNSUPPORTED where the
   * filesystem has no locks.
   */
  static tryTake(path: string): FileLock | undefined {
    for (let tries = 0; tries < 100; tries++) {
      const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o640);
      let held: boolean;
      try {
        held = locks().tryLock(fd);
      } catch (err) {
        closeSync(fd);
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOLCK' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'EINVAL') {
          throw new SluiceError('LOCK_UNSUPPORTED', `cannot lock ${path} (${code}): the state folder must be on a filesystem with locks (local, or NFSv4)`, {
            cause: err,
          });
        }
        throw err;
      }
      if (!held) {
        closeSync(fd);
        return undefined;
      }
      // held: is the file still the one under this name? (its holder may have removed it just before)
      let same = false;
      try {
        const a = fstatSync(fd);
        const b = statSync(path);
        same = a.ino === b.ino && a.dev === b.dev;
      } catch {
        same = false;
      }
      if (same) return new FileLock(path, fd);
      closeSync(fd);
    }
    throw new Error(`cannot take the lock ${path}: its file keeps being replaced`);
  }

  get held(): boolean {
    return this.fd !== undefined;
  }

  /** Writes `text` as the lock file's content (who holds it: for people and `sluice status`). */
  describe(text: string): void {
    if (this.fd === undefined) return;
    ftruncateSync(this.fd, 0);
    writeSync(this.fd, text, 0);
  }

  /** Releases the lock; with `remove`, first removes the lock file (safe: we hold it, see above). */
  release(remove = false): void {
    const fd = this.fd;
    if (fd === undefined) return;
    this.fd = undefined;
    if (remove) {
      try {
        unlinkSync(this.path);
      } catch {
        // already gone: nothing to remove
      }
    }
    closeSync(fd);
  }
}

/** True if a live process holds the lock at `path` (a missing file is not held). Takes and drops it otherwise. */
export function isLockHeld(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return false;
  }
  try {
    return !locks().tryLock(fd, 0, 0, { shared: true });
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}
