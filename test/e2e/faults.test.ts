// Sink faults, injected (SLUICE_FAULT) into the real CLI: full disk, I/O and permission errors on write or
// publish are retried with backoff, then fail the file with the error; nothing is lost or half-written.
import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, cleanup, dirFlags, type Dirs, list, logLines, makeDirs } from './harness.js';

let d: Dirs;
afterEach(() => cleanup(d));

function run(fault: string, args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, SLUICE_FAULT: fault }, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.on('close', (code) => res({ code, stdout }));
  });
}

async function setup(): Promise<string[]> {
  d = await makeDirs();
  const cfg = join(d.root, 'sluice.yaml');
  await writeFile(cfg, 'retry: { attempts: 3, backoffMs: 5, diskCheckMs: 20 }\n');
  await writeFile(join(d.watch, 'a.csv'), 'x,y\n1,2\n3,\n');
  return ['run', '--once', '--settle-ms', '1', '--concurrency', '1', '--config', cfg, ...dirFlags(d)];
}

describe('sink faults', () => {
  it.each([
    ['write=ENOSPC*2', 'writing failed; the file will be retried', 2],
    ['write=EIO*1', 'writing failed; the file will be retried', 1],
    ['publish=EACCES*2', 'publishing failed; it will be retried', 2],
  ])('%s: retried with backoff, then the file comes out complete', async (fault, warning, retries) => {
    const args = await setup();
    const r = await run(fault, args);
    expect(r.code).toBe(0);
    expect(await readFile(join(d.out, 'a.csv'), 'utf8')).toBe('x,y\n1,2\n');
    expect(await list(d.out)).toEqual(['a.csv']);
    expect(await list(d.archive)).toEqual(['a.csv']);
    const logs = logLines(r.stdout);
    expect(logs.filter((l) => l.msg === warning)).toHaveLength(retries);
    if (fault.includes('ENOSPC')) {
      expect(logs.some((l) => l.msg === 'disk full: no new files are claimed until space returns')).toBe(true);
      expect(logs.some((l) => l.msg === 'disk space is back: claiming files again')).toBe(true);
    }
  });

  it('a fault that outlasts the attempts fails the file, with the error, and keeps the input', async () => {
    const args = await setup();
    await rm(join(d.watch, 'a.csv'));
    await writeFile(join(d.watch, 'b.csv'), 'x\n1\n');
    const r = await run('write=EIO*3', args);
    expect(r.code).toBe(1);
    expect(await list(d.failed)).toEqual(['b.csv', 'b.csv.error.json']);
    const error = JSON.parse(await readFile(join(d.failed, 'b.csv.error.json'), 'utf8')) as { code: string; message: string };
    expect(error.code).toBe('WRITE_FAILED');
    expect(error.message).toContain('EIO: injected fault at write');
    expect(logLines(r.stdout).filter((l) => l.msg === 'writing failed; the file will be retried')).toHaveLength(2);
    expect(await list(d.out)).toEqual([]);
  });

  it('while one file waits out its backoff, the next one is processed (--concurrency 1)', async () => {
    const args = await setup();
    await writeFile(join(d.watch, 'b.csv'), 'x\n1\n');
    // a backoff far longer than a small file takes, so the order below is the scheduling's, not chance's
    await writeFile(join(d.root, 'sluice.yaml'), 'retry: { attempts: 3, backoffMs: 1000, diskCheckMs: 20 }\n');
    const r = await run('write=EIO*1', args);
    expect(r.code).toBe(0);
    expect(await list(d.out)).toEqual(['a.csv', 'b.csv']);
    const done = logLines(r.stdout).filter((l) => l.msg === 'writing failed; the file will be retried' || l.msg === 'file processed');
    // the file that met the fault finished after the other one, not before it
    expect(done.map((l) => l.msg)).toEqual(['writing failed; the file will be retried', 'file processed', 'file processed']);
    expect(done[1]!.file).not.toBe(done[0]!.file);
  });

  it('a fault that never passes, even when writing the error file: the file stays claimed and the exit code says so', async () => {
    const args = await setup();
    const r = await run('write=EIO', args);
    expect(r.code).toBe(1);
    expect(logLines(r.stdout).filter((l) => l.msg === 'internal error while finishing a file; it stays claimed and is redone at restart')).toHaveLength(1);
    expect(await list(d.out)).toEqual([]);
  });
});
