// The edges of one process: a batch job under signals, names at NAME_MAX and names that are not UTF-8,
// leftovers that cannot be finished, folders removed and disks smaller than the free-space threshold, and
// a writer still appending. Each ends with exactly one outcome per input, said with a code.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmdirSync, writeFileSync } from 'node:fs';
import { readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, cleanup, Daemon, dirFlags, type Dirs, list, logLines, makeDirs, receipts, runCli, waitFor, walk } from './harness.js';

let d: Dirs;
afterEach(() => cleanup(d));

const GEN = resolve(import.meta.dirname, '../fixtures/gen.mjs');
const SMALL = 'id,name\n1,a\n2,\n3,c\n';
const SMALL_OUT = 'id,name\n1,a\n3,c\n';
const state = (): string => join(d.root, '.sluice');

function big(rows: number): Buffer {
  return execFileSync(process.execPath, [GEN, String(rows), '0'], { maxBuffer: 1 << 30 });
}

async function claimedEntries(): Promise<string[]> {
  return (await walk(join(state(), 'claimed'))).map((p) => p.slice(p.indexOf('/') + 1));
}

/** Runs `sluice ARGS`, with `env`, and gives its result. */
function runWith(env: Record<string, string>, args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.on('close', (code, signal) => res({ code, signal, stdout }));
  });
}

describe('--once under signals', () => {
  it.each([['SIGTERM'], ['SIGINT'], ['SIGTERM then SIGINT']])('%s: drains, leaves nothing half-done, and a rerun finishes exactly', async (how) => {
    d = await makeDirs();
    const data = big(400_000);
    await writeFile(join(d.watch, 'big.csv'), data);
    for (let i = 0; i < 30; i++) await writeFile(join(d.watch, `s${i}.csv`), SMALL);
    const child = spawn(process.execPath, [CLI, 'run', '--once', '--concurrency', '1', ...dirFlags(d)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    await waitFor(async () => (await claimedEntries()).some((e) => e.endsWith('-big.csv')), 'big.csv to be in progress');
    const signals = how.split(' then ') as NodeJS.Signals[];
    for (const s of signals) child.kill(s);
    const code = await exited;
    // nothing half-done: no temporary file, nothing claimed
    expect((await readdir(d.out)).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(await claimedEntries()).toEqual([]);
    const left = await list(d.watch);
    if (signals.length === 2) {
      // aborted at once: big.csv is back in the inbox, byte for byte
      expect(left).toContain('big.csv');
      expect((await readFile(join(d.watch, 'big.csv'))).equals(data)).toBe(true);
      expect(logLines(stdout).some((l) => l.msg === 'file put back in the inbox: stopped before it finished')).toBe(true);
    } else {
      // drained: big.csv finished, complete
      expect(await list(d.archive)).toContain('big.csv');
      expect((await readFile(join(d.out, 'big.csv'))).equals(data)).toBe(true);
    }
    // 3: interrupted with files left in the inbox; 0: everything got done in the drain
    expect(code).toBe(left.length > 0 ? 3 : 0);
    const again = await runCli(['run', '--once', ...dirFlags(d)]);
    expect(again.code).toBe(0);
    expect((await list(d.archive)).length).toBe(31);
    expect((await list(d.out)).length).toBe(31);
    expect((await readFile(join(d.out, 'big.csv'))).equals(data)).toBe(true);
    const r = await receipts(state());
    expect(r).toHaveLength(31);
    expect(new Set(r.map((x) => x.file)).size).toBe(31);
  });
});

describe('names at the edges', () => {
  const n200 = `${'a'.repeat(196)}.csv`;
  const n230 = `${'b'.repeat(226)}.csv`;
  const n255 = `${'c'.repeat(251)}.csv`;
  const bytes = (s: string): number => Buffer.byteLength(s);

  it('names of 200, 230 and 255 bytes and one that is not UTF-8 each get an outcome; every name built fits NAME_MAX', async () => {
    d = await makeDirs();
    const bad = 'id,name\n1,a\n2\n3,c\n';
    for (const n of [n200, n230, n255]) await writeFile(join(d.watch, n), bad);
    // the archive already holds one: the numbered name must fit too
    await writeFile(join(d.archive, n255), 'older\n');
    const invalid = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x63, 0x73, 0x76]); // "caf\xe9.csv" (latin1)
    writeFileSync(Buffer.concat([Buffer.from(`${d.watch}/`), invalid]), SMALL);
    const r = await runCli(['run', '--once', ...dirFlags(d)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    expect(await list(d.watch)).toEqual([]);
    expect(await list(d.out)).toEqual([n200, n230, n255].sort());
    for (const n of [n200, n230, n255]) expect(await readFile(join(d.out, n), 'utf8')).toBe(SMALL_OUT);
    const rejects = await list(d.rejects);
    expect(rejects).toHaveLength(3);
    for (const n of rejects) {
      expect(bytes(n)).toBeLessThanOrEqual(255);
      expect(n.endsWith('.rejects.csv')).toBe(true);
      expect(await readFile(join(d.rejects, n), 'utf8')).toContain('CSV_RECORD_INCONSISTENT_COLUMNS');
    }
    const archived = await list(d.archive);
    expect(archived).toHaveLength(4);
    expect(archived).toEqual(expect.arrayContaining([n200, n230, n255]));
    const numbered = archived.find((n) => ![n200, n230, n255].includes(n))!;
    expect(bytes(numbered)).toBe(255);
    expect(numbered).toMatch(/^c+~[0-9a-f]{8}-1\.csv$/);
    expect(await readFile(join(d.archive, numbered), 'utf8')).toBe(bad);
    expect(await list(d.failed)).toEqual(['caf%E9.csv', 'caf%E9.csv.error.json']);
    const error = JSON.parse(await readFile(join(d.failed, 'caf%E9.csv.error.json'), 'utf8')) as Record<string, unknown>;
    expect(error).toMatchObject({ code: 'NAME_INVALID', file: 'caf%E9.csv', nameBytes: invalid.toString('hex') });
    expect(await readFile(join(d.failed, 'caf%E9.csv'), 'utf8')).toBe(SMALL);
    const receiptNames = (await receipts(state())).map((x) => `${x.file}:${x.outcome}`).sort();
    expect(receiptNames).toEqual([`${n200}:succeeded`, `${n230}:succeeded`, `${n255}:succeeded`, 'caf%E9.csv:failed'].sort());
    expect(await walk(state())).toEqual(['receipts.jsonl']);
  });

  it('a 250-byte name claimed when the process is killed keeps its whole name through the restart', async () => {
    d = await makeDirs();
    const long = `${'d'.repeat(246)}.csv`;
    await writeFile(join(d.watch, long), SMALL);
    const args = ['run', '--once', ...dirFlags(d)];
    const crashed = await runWith({ SLUICE_FAILPOINT: 'before-commit-record' }, args);
    expect(crashed.signal).toBe('SIGKILL');
    // the claim's path holds a shortened name; the whole one is kept beside it
    const entries = await claimedEntries();
    expect(entries.some((e) => e.endsWith('.name'))).toBe(true);
    const again = await runCli(args);
    expect(again.code).toBe(0);
    expect(await list(d.out)).toEqual([long]);
    expect(await list(d.archive)).toEqual([long]);
    expect((await receipts(state())).map((x) => x.file)).toEqual([long]);
    expect(await walk(state())).toEqual(['receipts.jsonl']);
  });

  it('sluice status shows control characters in names escaped', async () => {
    d = await makeDirs();
    const name = 'x\x1b[2Jy.csv';
    await writeFile(join(d.watch, name), SMALL);
    expect((await runCli(['run', '--once', ...dirFlags(d)])).code).toBe(0);
    const s = await runCli(['status', '--watch', d.watch]);
    expect(s.code).toBe(0);
    expect(s.stdout).not.toContain('\x1b');
    expect(s.stdout).toContain('x\\x1b[2Jy.csv');
  });
});

describe('leftovers that cannot be finished', () => {
  it.each([['temporary output was deleted'], ['commit record is damaged']])(
    'a claim whose %s fails with RECOVERY_FAILED, and the start goes on',
    async (what) => {
      d = await makeDirs();
      await writeFile(join(d.watch, 'left.csv'), SMALL);
      const args = ['run', '--once', ...dirFlags(d)];
      expect((await runWith({ SLUICE_FAILPOINT: 'after-commit-record' }, args)).signal).toBe('SIGKILL');
      const [instance] = await list(join(state(), 'claimed'));
      const dir = join(state(), 'claimed', instance!);
      if (what.includes('temporary')) {
        for (const t of (await readdir(d.out)).filter((n) => n.startsWith('.sluice-'))) await unlink(join(d.out, t));
      } else {
        const record = (await readdir(dir)).find((n) => n.endsWith('.commit.json'))!;
        await writeFile(join(dir, record), '{"claimId": "trunc');
      }
      // another file waits in the inbox: the start must go on to it
      await writeFile(join(d.watch, 'next.csv'), SMALL);
      const again = await runCli(args);
      expect(again.stderr).toBe('');
      expect(again.code).toBe(1);
      expect(await list(d.failed)).toEqual(['left.csv', 'left.csv.error.json']);
      expect(await readFile(join(d.failed, 'left.csv'), 'utf8')).toBe(SMALL);
      const error = JSON.parse(await readFile(join(d.failed, 'left.csv.error.json'), 'utf8')) as { code: string };
      expect(error.code).toBe('RECOVERY_FAILED');
      expect(await list(d.out)).toEqual(['next.csv']);
      expect((await receipts(state())).map((x) => `${x.file}:${x.outcome}:${x.error?.code ?? ''}`).sort()).toEqual([
        'left.csv:failed:RECOVERY_FAILED',
        'next.csv:succeeded:',
      ]);
      expect(await walk(state())).toEqual(['receipts.jsonl']);
      // and the next start is clean
      expect((await runCli(args)).code).toBe(0);
    },
  );
});

describe('a leftover commit that meets a passing fault', () => {
  it('keeps its staged output through the fault, and the next run publishes it', async () => {
    d = await makeDirs();
    await writeFile(join(d.watch, 'a.csv'), SMALL);
    const args = ['run', '--once', ...dirFlags(d)];
    expect((await runWith({ SLUICE_FAILPOINT: 'after-commit-record' }, args)).signal).toBe('SIGKILL');
    // the commit cannot be finished now (one I/O error): it stays claimed, its staged output kept
    const faulty = await runWith({ SLUICE_FAULT: 'publish=EIO*1' }, args);
    expect(faulty.code).toBe(1);
    expect((await readdir(d.out)).filter((n) => n.startsWith('.sluice-'))).toHaveLength(1);
    const again = await runCli(args);
    expect(again.code).toBe(0);
    expect(await list(d.out)).toEqual(['a.csv']);
    expect(await readFile(join(d.out, 'a.csv'), 'utf8')).toBe(SMALL_OUT);
    expect(await list(d.archive)).toEqual(['a.csv']);
    expect(await list(d.failed)).toEqual([]);
    expect((await receipts(state())).map((x) => `${x.file}:${x.outcome}`)).toEqual(['a.csv:succeeded']);
    expect(await walk(state())).toEqual(['receipts.jsonl']);
  });
});

describe('disks and folders', () => {
  it('out/ and archive/ removed while the daemon runs are made again, and the next file comes out', async () => {
    d = await makeDirs();
    const daemon = await Daemon.start(['--settle-ms', '0', ...dirFlags(d)]);
    await writeFile(join(d.root, 'a.csv'), SMALL);
    await rename(join(d.root, 'a.csv'), join(d.watch, 'a.csv'));
    await waitFor(async () => (await list(d.archive)).includes('a.csv'), 'a.csv to be done');
    await rm(d.out, { recursive: true });
    await rm(d.archive, { recursive: true });
    await writeFile(join(d.root, 'b.csv'), SMALL);
    await rename(join(d.root, 'b.csv'), join(d.watch, 'b.csv'));
    await waitFor(async () => (await list(d.archive)).includes('b.csv'), 'b.csv to be done');
    expect(await list(d.out)).toEqual(['b.csv']);
    expect(await readFile(join(d.out, 'b.csv'), 'utf8')).toBe(SMALL_OUT);
    expect(await list(d.failed)).toEqual([]);
    expect(
      daemon
        .logs()
        .filter((l) => l.msg === 'a folder was missing: made it again')
        .map((l) => l.folder)
        .sort(),
    ).toEqual(['archive', 'out']);
    expect((await daemon.stop()).code).toBe(0);
  });

  it('out/ on a 20 MiB filesystem (below retry.minFreeBytes): a full disk fails the file that cannot fit, and claiming resumes', async (ctx) => {
    d = await makeDirs();
    const mnt = mkdtempSync(join(tmpdir(), 'sluice-tmpfs-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=20m', 'tmpfs', mnt], { stdio: 'ignore' });
    } catch (err) {
      rmdirSync(mnt);
      console.log(`skipped: cannot mount a tmpfs here (${(err as Error).message.split('\n')[0]})`);
      ctx.skip();
      return;
    }
    try {
      const out = join(mnt, 'out');
      mkdirSync(out);
      const cfg = join(d.root, 'sluice.yaml');
      await writeFile(cfg, 'retry: { attempts: 2, backoffMs: 50, diskCheckMs: 50 }\n');
      const daemon = await Daemon.start(['--settle-ms', '0', '--config', cfg, ...dirFlags(d), '--out', out]);
      await writeFile(join(d.root, 'huge.csv'), big(300_000)); // about 30 MB: cannot fit in 20 MiB
      await rename(join(d.root, 'huge.csv'), join(d.watch, 'huge.csv'));
      await waitFor(async () => (await list(d.failed)).includes('huge.csv'), 'huge.csv to fail', 60_000);
      await writeFile(join(d.root, 'small.csv'), SMALL);
      await rename(join(d.root, 'small.csv'), join(d.watch, 'small.csv'));
      await waitFor(async () => (await list(d.archive)).includes('small.csv'), 'small.csv to be claimed and done after the full disk');
      expect(await list(out)).toEqual(['small.csv']);
      expect(await readFile(join(out, 'small.csv'), 'utf8')).toBe(SMALL_OUT);
      const error = JSON.parse(await readFile(join(d.failed, 'huge.csv.error.json'), 'utf8')) as { code: string; message: string };
      expect(error.code).toBe('WRITE_FAILED');
      expect(error.message).toContain('ENOSPC');
      const logs = daemon.logs().map((l) => l.msg);
      expect(logs).toContain('disk full: no new files are claimed until space returns');
      expect(logs).toContain('disk space is back: claiming files again');
      expect((await daemon.stop()).code).toBe(0);
    } finally {
      execFileSync('umount', [mnt]);
      rmdirSync(mnt);
    }
  });
});

describe('a writer still appending', () => {
  it('--once on a file being appended to (settle 0): the change is caught and the file read again; no row is lost in silence', async () => {
    d = await makeDirs();
    const path = join(d.watch, 'grow.csv');
    await writeFile(path, 'id,v\n');
    // the writer keeps its file open, as a logger or a slow copy does: the claim's rename does not stop it
    const writer = spawn(process.execPath, [
      '-e',
      `const fs = require('fs'); const fd = fs.openSync(${JSON.stringify(path)}, 'a'); let i = 0;
      const t = setInterval(() => { fs.writeSync(fd, i + ',x\\n'); if (++i === 600) { clearInterval(t); fs.closeSync(fd); } }, 2);`,
    ]);
    const written = new Promise((r) => writer.on('close', r));
    await waitFor(async () => (await readFile(path, 'utf8').catch(() => '')).split('\n').length > 3, 'the writer to start');
    const cfg = join(d.root, 'sluice.yaml');
    await writeFile(cfg, 'retry: { attempts: 5, backoffMs: 300 }\n');
    const r = await runCli(['run', '--once', '--config', cfg, ...dirFlags(d)]);
    await written;
    const logs = logLines(r.stdout);
    const archived = await readFile(join(d.archive, 'grow.csv'), 'utf8');
    expect(archived.split('\n')).toHaveLength(602);
    const out = await readFile(join(d.out, 'grow.csv'), 'utf8');
    if (logs.some((l) => l.msg === 'the input grew while it was committed: the archived file holds bytes the output does not')) {
      // the window that remains (from the last check to the archive move) is said, and fails the batch job
      expect(r.code).toBe(1);
      expect(archived.startsWith(out)).toBe(true);
    } else {
      expect(r.code).toBe(0);
      expect(logs.some((l) => l.msg === 'the input changed while it was read; it will be read again')).toBe(true);
      expect(out).toBe(archived);
    }
    const [receipt] = await receipts(state());
    expect(receipt!.rows.read).toBe(out.split('\n').length - 2);
  });
});
