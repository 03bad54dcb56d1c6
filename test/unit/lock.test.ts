// Locks held by the operating system: another process's lock cannot be taken while it lives, however
// long it is paused, and can be the moment it dies.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileLock, isLockHeld } from '../../src/fs/lock.js';

const ROOT = resolve(import.meta.dirname, '../..');
let dir: string;
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** A process that takes the lock at `path` and holds it until killed; resolves once it holds it. */
async function holder(path: string): Promise<ChildProcess> {
  const code = `const fsx = require('fs-native-extensions'); const fs = require('fs');
    const fd = fs.openSync(${JSON.stringify(path)}, 'a+'); if (!fsx.tryLock(fd)) process.exit(3); console.log('held'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', code], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await new Promise<void>((res, rej) => {
    child.stdout!.on('data', (b: Buffer) => b.toString().includes('held') && res());
    child.on('exit', (c) => rej(new Error(`holder exited ${c}`)));
  });
  return child;
}

describe('FileLock', () => {
  it('is exclusive between processes, survives a pause, and is released by the holder dying', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-lock-'));
    const path = join(dir, 'x.lock');
    const child = await holder(path);
    expect(FileLock.tryTake(path)).toBeUndefined();
    expect(isLockHeld(path)).toBe(true);
    child.kill('SIGSTOP');
    expect(FileLock.tryTake(path)).toBeUndefined();
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    expect(isLockHeld(path)).toBe(false);
    const lock = FileLock.tryTake(path);
    expect(lock).toBeDefined();
    // within one process too: a second take of a held lock fails (open file description locks)
    expect(FileLock.tryTake(path)).toBeUndefined();
    lock!.release(true);
    expect(existsSync(path)).toBe(false);
  });

  it('a lock file its holder removed (a clean stop) and that was made anew is free', () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-lock-'));
    const path = join(dir, 'y.lock');
    const a = FileLock.tryTake(path)!;
    // the holder removes its file (a clean stop); someone makes a new file of that name: it is free
    a.release(true);
    writeFileSync(path, '');
    const b = FileLock.tryTake(path);
    expect(b).toBeDefined();
    expect(FileLock.tryTake(path)).toBeUndefined();
    b!.describe('{"pid":1}\n');
    b!.release();
    unlinkSync(path);
  });
});
