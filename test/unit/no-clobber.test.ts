// Unit tests for the no-clobber moves: numbered names, never replacing, idempotent publish.
import { link, lstat, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findByIno, moveNoClobber, moveOnce, numberedName, publishStaged, stemOf } from '../../src/fs/no-clobber.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-unit-noclobber-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ls = async (d = dir): Promise<string[]> => (await readdir(d)).sort();

describe('names', () => {
  it('numberedName puts -n before the first extension', () => {
    expect(numberedName('orders.csv', 0)).toBe('orders.csv');
    expect(numberedName('orders.csv', 1)).toBe('orders-1.csv');
    expect(numberedName('a.rejects.csv', 2)).toBe('a-2.rejects.csv');
    expect(numberedName('README', 3)).toBe('README-3');
    expect(numberedName('.hidden', 1)).toBe('.hidden-1');
    expect(numberedName('.env.csv', 1)).toBe('.env-1.csv');
  });

  it('stemOf drops the last extension', () => {
    expect(stemOf('orders.csv')).toBe('orders');
    expect(stemOf('a.b.csv')).toBe('a.b');
    expect(stemOf('noext')).toBe('noext');
    expect(stemOf('.hidden')).toBe('.hidden');
  });
});

describe('moveNoClobber', () => {
  it('moves a file under its name, then under numbered names when taken, never replacing', async () => {
    const dest = join(dir, 'out');
    await mkdir(dest);
    await writeFile(join(dest, 'f.csv'), 'existing');
    const got: string[] = [];
    for (const text of ['a', 'b']) {
      const src = join(dir, `src-${text}`);
      await writeFile(src, text);
      got.push(await moveNoClobber(src, dest, 'f.csv'));
    }
    expect(got).toEqual([join(dest, 'f-1.csv'), join(dest, 'f-2.csv')]);
    expect(await ls(dest)).toEqual(['f-1.csv', 'f-2.csv', 'f.csv']);
    expect(await readFile(join(dest, 'f.csv'), 'utf8')).toBe('existing');
    expect(await readFile(join(dest, 'f-2.csv'), 'utf8')).toBe('b');
    expect(await ls()).toEqual(['out']);
  });

  it('moveOnce repeated after the move finds the file by inode; a missing destination is still an error', async () => {
    const dest = join(dir, 'archive');
    await mkdir(dest);
    await writeFile(join(dest, 'in.csv'), 'older');
    const src = join(dir, 'in.csv');
    await writeFile(src, 'mine');
    const { ino } = await lstat(src);
    const first = await moveOnce(src, dest, 'in.csv', ino);
    expect(first).toBe(join(dest, 'in-1.csv'));
    expect(await moveOnce(src, dest, 'in.csv', ino)).toBe(first);
    expect(await moveOnce(src, dest, 'in.csv', ino + 1)).toBeUndefined();
    await writeFile(src, 'again');
    await expect(moveOnce(src, join(dir, 'nowhere'), 'in.csv', ino)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readFile(src, 'utf8')).toBe('again');
  });

  it('moves a directory by rename, to a free name', async () => {
    await mkdir(join(dir, 'd'));
    await writeFile(join(dir, 'd', 'x'), 'x');
    await mkdir(join(dir, 'dest'));
    await mkdir(join(dir, 'dest', 'd'));
    expect(await moveNoClobber(join(dir, 'd'), join(dir, 'dest'), 'd')).toBe(join(dir, 'dest', 'd-1'));
    expect(await ls(join(dir, 'dest', 'd-1'))).toEqual(['x']);
  });
});

describe('publishStaged', () => {
  it('is idempotent: a second call after success finds the same name and publishes no copy', async () => {
    const tmp = join(dir, '.tmp-x');
    await writeFile(tmp, 'data');
    const { ino, size } = await lstat(tmp);
    const staged = { tmp, dir, name: 'o.csv', ino, bytes: size };
    const first = await publishStaged(staged);
    expect(first).toBe(join(dir, 'o.csv'));
    expect(await publishStaged(staged)).toBe(first);
    expect(await ls()).toEqual(['o.csv']);
  });

  it('finishes a publish interrupted between link and unlink', async () => {
    await writeFile(join(dir, 'o.csv'), 'someone else');
    const tmp = join(dir, '.tmp-y');
    await writeFile(tmp, 'mine');
    const { ino, size } = await lstat(tmp);
    await link(tmp, join(dir, 'o-1.csv')); // the crash happened right after the link
    expect(await publishStaged({ tmp, dir, name: 'o.csv', ino, bytes: size })).toBe(join(dir, 'o-1.csv'));
    expect(await ls()).toEqual(['o-1.csv', 'o.csv']);
    expect(await readFile(join(dir, 'o.csv'), 'utf8')).toBe('someone else');
    expect(await findByIno(dir, 'o.csv', ino)).toBe(join(dir, 'o-1.csv'));
  });
});
