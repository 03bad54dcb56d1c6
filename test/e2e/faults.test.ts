// Sink faults, injected (SLUICE_FAULT) into the real CLI: full disk, I/O and permission errors on write or
// publish are retried with backoff, then fail the file with the error; nothing is lost or half-written.
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
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

  it('a fault that persists fails the file after the last attempt, with the error, and keeps the input', async () => {
    const args = await setup();
    await writeFile(join(d.watch, 'b.csv'), 'x\n1\n');
    const r = await run('write=EIO*3', args);
    expect(r.code).toBe(1);
    const failed = await list(d.failed);
    expect(failed).toHaveLength(2);
    const [input, errorFile] = failed as [string, string];
    expect(errorFile).toBe(`${input}.error.json`);
    const error = JSON.parse(await readFile(join(d.failed, errorFile), 'utf8')) as { code: string; message: string };
    expect(error.code).toBe('WRITE_FAILED');
    expect(error.message).toContain('EIO: injected fault at write');
    // the other file was processed after the faults were spent: the daemon went on
    expect((await list(d.out)).filter((n) => !n.startsWith('.'))).toHaveLength(1);
    expect((await list(d.out)).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});
