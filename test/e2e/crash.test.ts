// Crash safety: the process is SIGKILLed at each step of the commit protocol (failpoints), and at arbitrary
// moments; after a restart every input has exactly one complete, correct outcome and nothing is left behind.
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rename, utimes, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, cleanup, dirFlags, type Dirs, list, logLines, makeDirs, runCli } from './harness.js';

let d: Dirs;
afterEach(() => cleanup(d));

const GEN = resolve(import.meta.dirname, '../fixtures/gen.mjs');
const GOOD = 'id,name\n1,a\n2,\n3,c\n';
const BAD = 'id,name\n1,a\n2\n3,c\n';

function runWith(env: Record<string, string>, args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: 'ignore' });
    child.on('close', (code, signal) => res({ code, signal }));
  });
}

/** Every file under `dir`, recursively, as relative paths. */
async function walk(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.isDirectory()) out.push(...(await walk(join(dir, e.name), `${prefix}${e.name}/`)));
    else out.push(`${prefix}${e.name}`);
  }
  return out.sort();
}

async function expectFinalState(): Promise<void> {
  expect(await list(d.out)).toEqual(['bad.csv', 'good.csv']);
  expect(await readFile(join(d.out, 'good.csv'), 'utf8')).toBe('id,name\n1,a\n3,c\n');
  expect(await readFile(join(d.out, 'bad.csv'), 'utf8')).toBe('id,name\n1,a\n3,c\n');
  expect(await list(d.rejects)).toEqual(['bad.rejects.csv']);
  expect(await list(d.archive)).toEqual(['bad.csv', 'good.csv']);
  expect(await list(d.failed)).toEqual(['bin.csv', 'bin.csv.error.json']);
  expect(await list(d.watch)).toEqual([]);
  const state = await walk(join(d.root, '.sluice'));
  expect(state.filter((f) => f !== 'receipts.jsonl')).toEqual([]);
  const receipts = (await readFile(join(d.root, '.sluice', 'receipts.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { file: string; outcome: string; rows: { read: number; written: number; filtered: number; rejected: number } });
  expect(receipts.map((r) => `${r.file}:${r.outcome}`).sort()).toEqual(['bad.csv:succeeded', 'bin.csv:failed', 'good.csv:succeeded']);
  for (const r of receipts) expect(r.rows.read).toBe(r.rows.written + r.rows.filtered + r.rows.rejected);
}

describe('crash safety', () => {
  it.each(['before-commit-record', 'after-commit-record', 'linked#1', 'linked#2', 'linked#3', 'after-publish', 'after-move', 'after-receipt'])(
    'SIGKILL at %s, then a restart: each file has exactly one outcome, nothing duplicated or left behind',
    async (point) => {
      d = await makeDirs();
      await writeFile(join(d.watch, 'good.csv'), GOOD);
      await writeFile(join(d.watch, 'bad.csv'), BAD);
      await writeFile(join(d.watch, 'bin.csv'), Buffer.from([1, 0, 2]));
      const args = ['run', '--once', '--settle-ms', '1', '--concurrency', '1', '--workers', '2', ...dirFlags(d)];
      const crashed = await runWith({ SLUICE_FAILPOINT: point }, args);
      expect(crashed.signal).toBe('SIGKILL');
      const again = await runCli(args);
      // 1 if bin.csv failed in this run; 0 if its failure was committed before the crash
      expect([0, 1]).toContain(again.code);
      await expectFinalState();
    },
  );

  it('SIGKILL at arbitrary moments of a large load, restart after each: the output is exact and single', async () => {
    d = await makeDirs();
    const data = execFileSync(process.execPath, [GEN, '200000', '5'], { maxBuffer: 1 << 30 });
    await writeFile(join(d.root, 'big.csv'), data);
    await rename(join(d.root, 'big.csv'), join(d.watch, 'big.csv'));
    // cut across two workers in 1 MiB slices: the kills land while slices are out, appended, or staged
    const args = ['run', '--once', '--settle-ms', '1', '--workers', '2', '--slice-bytes', '1048576', ...dirFlags(d)];
    let logs = '';
    for (const delayMs of [50, 150, 300, 500, 800]) {
      const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
      child.stdout.on('data', (b: Buffer) => (logs += b.toString()));
      const done = new Promise((res) => child.on('close', res));
      setTimeout(() => child.kill('SIGKILL'), delayMs);
      await done;
    }
    const last = await runCli(args);
    expect(last.code).toBe(0);
    // the run that processed it (not one that only finished a committed record) cut it into slices
    const processed = logLines(logs + last.stdout).filter((l) => l.msg === 'file processed');
    expect(processed.length).toBeLessThanOrEqual(1);
    for (const l of processed) expect(l.slices).toBeGreaterThan(10);
    const expected = data
      .toString()
      .split('\n')
      .filter((l, i) => i === 0 || (l !== '' && !/(^,|,,|,$|,"",|,""$)/.test(l)))
      .join('\n');
    expect(await list(d.out)).toEqual(['big.csv']);
    expect((await readFile(join(d.out, 'big.csv'))).toString() === `${expected}\n`).toBe(true);
    expect(await list(d.archive)).toEqual(['big.csv']);
    expect((await walk(join(d.root, '.sluice'))).filter((f) => f !== 'receipts.jsonl')).toEqual([]);
    const receipts = (await readFile(join(d.root, '.sluice', 'receipts.jsonl'), 'utf8')).trim().split('\n');
    expect(receipts).toHaveLength(1);
  });
});

describe('instances sharing a state folder', () => {
  it("adopts and finishes the claims of a dead instance (an older version's, with a stale heartbeat)", async () => {
    d = await makeDirs();
    const state = join(d.root, '.sluice');
    const ghost = join(state, 'claimed', 'ghost');
    await mkdir(ghost, { recursive: true });
    await mkdir(join(state, 'instances'), { recursive: true });
    // an older version's heartbeat, long stale (and no lock: the instance is dead)
    await writeFile(join(state, 'instances', 'ghost.json'), JSON.stringify({ instance: 'ghost', heartbeatAt: '2020-01-01T00:00:00.000Z' }));
    await utimes(join(state, 'instances', 'ghost.json'), new Date('2020-01-01'), new Date('2020-01-01'));
    await writeFile(join(ghost, 'abc0001-left.csv'), GOOD);
    await mkdir(d.out, { recursive: true });
    await writeFile(join(d.out, '.sluice-ghost~abc0001-dead-left.csv.tmp'), 'id,name\n1,a\n');
    const r = await runCli(['run', '--once', '--settle-ms', '1', '--instance-id', 'live', ...dirFlags(d)]);
    expect(r.code).toBe(0);
    expect(await list(d.out)).toEqual(['left.csv']);
    expect(await readFile(join(d.out, 'left.csv'), 'utf8')).toBe('id,name\n1,a\n3,c\n');
    expect(await list(d.archive)).toEqual(['left.csv']);
    expect(await walk(join(state, 'claimed'))).toEqual([]);
    expect(await walk(join(state, 'instances'))).toEqual([]);
  });
});
