// The hostile-input corpus: each input's documented outcome, asserted exactly, through the real CLI.
import { execFileSync, spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { chmod, chown, link, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, cleanup, dirFlags, type Dirs, list, logLines, makeDirs, runCli } from './harness.js';

let d: Dirs;
afterEach(() => cleanup(d));

const once = (): Promise<{ code: number | null; stdout: string; stderr: string }> => runCli(['run', '--once', '--settle-ms', '1', ...dirFlags(d)]);

async function errorCode(name: string): Promise<string> {
  return (JSON.parse(await readFile(join(d.failed, `${name}.error.json`), 'utf8')) as { code: string }).code;
}

describe('hostile inputs', () => {
  it('gives outputs, rejects and error files no more access than their input (or output.mode); refuses a hard-linked input', async () => {
    d = await makeDirs();
    const bad = 'a,b\n1,2\n3\n';
    await writeFile(join(d.watch, 'private.csv'), bad, { mode: 0o600 });
    await chmod(join(d.watch, 'private.csv'), 0o600);
    await writeFile(join(d.watch, 'shared.csv'), bad);
    await chmod(join(d.watch, 'shared.csv'), 0o644);
    await writeFile(join(d.watch, 'bin.csv'), Buffer.from([1, 0, 2]));
    await chmod(join(d.watch, 'bin.csv'), 0o600);
    // a link to another user's file is refused; one to a file of sluice's own user is taken
    await writeFile(join(d.root, 'secret.csv'), 'a\n1\n');
    const root = process.getuid?.() === 0;
    if (root) await chown(join(d.root, 'secret.csv'), 65534, 65534);
    await link(join(d.root, 'secret.csv'), join(d.watch, 'linked.csv'));
    await writeFile(join(d.root, 'mine.csv'), 'a\n2\n');
    await link(join(d.root, 'mine.csv'), join(d.watch, 'mine.csv'));
    const r = await once();
    expect(r.code).toBe(1);
    const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;
    expect(await mode(join(d.out, 'private.csv'))).toBe(0o600);
    expect(await mode(join(d.rejects, 'private.rejects.csv'))).toBe(0o600);
    expect(await mode(join(d.out, 'shared.csv'))).toBe(0o640);
    expect(await mode(join(d.failed, 'bin.csv.error.json'))).toBe(0o600);
    if (root) expect(await errorCode('linked.csv')).toBe('HARDLINK_REFUSED');
    else console.log('part skipped: not root, cannot give a file to another user');
    expect(await list(d.out)).toEqual([...(root ? [] : ['linked.csv']), 'mine.csv', 'private.csv', 'shared.csv']);
    // output.mode sets it; allowHardLinks takes the link
    const cfg = join(d.root, 'sluice.yaml');
    await writeFile(cfg, 'pipelines:\n  - name: p\n    input: { allowHardLinks: true }\n    output: { format: csv, mode: "0604" }\n');
    await writeFile(join(d.root, 'other.csv'), 'a\n1\n');
    if (root) await chown(join(d.root, 'other.csv'), 65534, 65534);
    await link(join(d.root, 'other.csv'), join(d.watch, 'other.csv'));
    const r2 = await runCli(['run', '--once', '--config', cfg, ...dirFlags(d)]);
    expect(r2.code).toBe(0);
    expect(await readFile(join(d.out, 'other.csv'), 'utf8')).toBe('a\n1\n');
    expect(await mode(join(d.out, 'other.csv'))).toBe(0o604 & ~process.umask());
  });

  it('fails JSON named as CSV with FORMAT_UNSUPPORTED instead of "succeeding" as a CSV of junk rows (a .json name is read as JSON); a CSV whose header starts with a bracket is CSV', async () => {
    d = await makeDirs();
    await writeFile(join(d.watch, 'array.csv'), '[\n  {"a": 1, "b": "x"},\n  {"a": 2, "b": "y"}\n]\n');
    await writeFile(join(d.watch, 'doc.json'), '[\n  {"a": 1, "b": "x"},\n  {"a": 2, "b": "y"}\n]\n');
    await writeFile(join(d.watch, 'lines.csv'), '\ufeff{"a":1,"b":"x"}\n{"a":2,"b":"y"}\n');
    await writeFile(join(d.watch, 'brackets.csv'), '[id],name\n1,a\n');
    const r = await once();
    expect(r.code).toBe(1);
    expect(await list(d.failed)).toEqual(['array.csv', 'array.csv.error.json', 'lines.csv', 'lines.csv.error.json']);
    expect(await errorCode('array.csv')).toBe('FORMAT_UNSUPPORTED');
    expect(await errorCode('lines.csv')).toBe('FORMAT_UNSUPPORTED');
    expect(await list(d.out)).toEqual(['brackets.csv', 'doc.csv']);
    expect(await readFile(join(d.out, 'doc.csv'), 'utf8')).toBe('a,b\n1,x\n2,y\n');
    expect(await readFile(join(d.out, 'brackets.csv'), 'utf8')).toBe('[id],name\n1,a\n');
  });

  it('handles odd names (spaces, unicode, a newline, a leading dash) and keeps them as they are', async () => {
    d = await makeDirs();
    const names = ['with space.csv', 'ünïcødé-日本.csv', 'new\nline.csv', '-dash.csv'];
    for (const n of names) await writeFile(join(d.watch, n), 'a\n1\n');
    const r = await once();
    expect(r.code).toBe(0);
    // outputs are named from the sanitised name (control characters become _); the archive keeps the original
    const outNames = names.map((n) => n.replace('\n', '_'));
    expect(await list(d.out)).toEqual([...outNames].sort());
    expect(await list(d.archive)).toEqual([...names].sort());
    for (const n of outNames) expect(await readFile(join(d.out, n), 'utf8')).toBe('a\n1\n');
  });

  it('refuses a FIFO at once, without blocking on it, and a symlink to a file outside the inbox', async () => {
    d = await makeDirs();
    execFileSync('mkfifo', [join(d.watch, 'pipe.csv')]);
    await writeFile(join(d.root, 'secret.csv'), 'a\nsecret\n');
    await symlink(join(d.root, 'secret.csv'), join(d.watch, 'link.csv'));
    const r = await once();
    expect(r.code).toBe(1);
    expect(await list(d.failed)).toEqual(['link.csv', 'link.csv.error.json', 'pipe.csv', 'pipe.csv.error.json']);
    expect(await errorCode('pipe.csv')).toBe('NOT_REGULAR_FILE');
    expect(await errorCode('link.csv')).toBe('SYMLINK_REFUSED');
    expect(await list(d.out)).toEqual([]);
  });

  it('rejects a 60 MB single-line record without holding it in memory, and keeps the rows after it', async () => {
    d = await makeDirs();
    const path = join(d.watch, 'huge.csv');
    await new Promise<void>((res, rej) => {
      const ws = createWriteStream(path);
      ws.on('error', rej);
      ws.write('a,b\n1,2\n');
      const chunk = Buffer.alloc(1024 * 1024, 'x');
      for (let i = 0; i < 60; i++) ws.write(chunk);
      ws.end(',y\n3,4\n', res);
    });
    const r = await runCli(['run', '--once', '--settle-ms', '1', ...dirFlags(d)]);
    expect(r.code).toBe(0);
    expect(await readFile(join(d.out, 'huge.csv'), 'utf8')).toBe('a,b\n1,2\n3,4\n');
    const done = logLines(r.stdout).find((l) => l.msg === 'file processed');
    expect(done).toMatchObject({ read: 3, written: 2, rejected: 1 });
    const rejects = await readFile(join(d.rejects, 'huge.rejects.csv'));
    expect(rejects.subarray(0, 60).toString()).toMatch(/^line,code,message,raw\n3,CSV_MAX_RECORD_SIZE,/);
    // the raw column keeps the first maxRecordSize bytes of the record, not all 60 MB
    expect(rejects.length).toBeLessThan(17 * 1024 * 1024);
  });

  it('peak memory stays bounded while rejecting the 60 MB line', async () => {
    d = await makeDirs();
    await writeFile(join(d.watch, 'huge.csv'), Buffer.concat([Buffer.from('a\n'), Buffer.alloc(60 * 1024 * 1024, 'y'), Buffer.from('\n1\n')]));
    const peakMiB = async (workers: string): Promise<number> => {
      await rm(join(d.out, 'huge.csv'), { force: true });
      await rm(join(d.rejects, 'huge.rejects.csv'), { force: true });
      const r = spawnSync(
        process.execPath,
        ['--import', join(import.meta.dirname, 'rss-preload.mjs'), CLI, 'run', '--once', '--settle-ms', '1', '--workers', workers, ...dirFlags(d)],
        { encoding: 'utf8' },
      );
      expect(r.status).toBe(0);
      expect(await readFile(join(d.out, 'huge.csv'), 'utf8')).toBe('a\n1\n');
      await rename(join(d.archive, 'huge.csv'), join(d.watch, 'huge.csv'));
      return Number(/maxrss-kib:(\d+)/.exec(r.stderr)?.[1]) / 1024;
    };
    // 16 MiB kept for the rejects file's raw column, plus csv-parse's own field buffer: far from 60 MB x2
    expect(await peakMiB('1')).toBeLessThan(200);
    // with workers, each thread's own heap on top: under the bound the workers keep for any file (250 MB)
    expect(await peakMiB('2')).toBeLessThan(250);
  });
});
