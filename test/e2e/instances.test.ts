// Several processes on one inbox and state folder, on their defaults (one host name): daemons SIGKILLed or
// SIGSTOPped while they hold claims, overlapping --once runs, a kill loop. Liveness comes from the
// instances' locks, so every input ends with exactly one outcome, one output and one receipt.
import { execFileSync } from 'node:child_process';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, Daemon, dirFlags, type Dirs, list, makeDirs, receipts, runCli, waitFor, walk } from './harness.js';

let d: Dirs;
afterEach(() => cleanup(d));

const GEN = resolve(import.meta.dirname, '../fixtures/gen.mjs');
const SMALL = 'id,name\n1,a\n2,\n3,c\n';
const SMALL_OUT = 'id,name\n1,a\n3,c\n';

function big(rows: number): Buffer {
  return execFileSync(process.execPath, [GEN, String(rows), '0'], { maxBuffer: 1 << 30 });
}

/** Writes files outside the inbox, then renames them in (as a careful writer does). */
async function drop(files: Record<string, string | Buffer>): Promise<void> {
  for (const [name, body] of Object.entries(files)) {
    await writeFile(join(d.root, name), body);
    await rename(join(d.root, name), join(d.watch, name));
  }
}

function smalls(n: number, prefix = 's'): Record<string, string> {
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${String(i).padStart(4, '0')}.csv`, SMALL]));
}

const state = (): string => join(d.root, '.sluice');

/** Every input exactly once: archived, one complete output, one receipt; nothing claimed, no temporaries. */
async function expectExact(names: string[], outputs: Record<string, string | Buffer>): Promise<void> {
  expect(await list(d.archive)).toEqual([...names].sort());
  expect(await list(d.out)).toEqual([...names].sort());
  expect(await list(d.failed)).toEqual([]);
  for (const [name, body] of Object.entries(outputs)) expect((await readFile(join(d.out, name))).equals(Buffer.from(body))).toBe(true);
  const r = await receipts(state());
  expect(r.map((x) => x.file).sort()).toEqual([...names].sort());
  for (const x of r) expect(x.outcome).toBe('succeeded');
  expect((await walk(join(state(), 'claimed'))).filter((f) => !f.endsWith('.lock'))).toEqual([]);
}

async function config(extra = ''): Promise<string> {
  const path = join(d.root, 'sluice.yaml');
  await writeFile(path, `instances: { checkMs: 50 }\n${extra}`);
  return path;
}

describe('instances sharing an inbox', () => {
  it('takes free slots on one host; an explicit id held by a live process is a start error (exit 2, INSTANCE_RUNNING)', async () => {
    d = await makeDirs();
    const a = await Daemon.start(['--settle-ms', '0', ...dirFlags(d)]);
    const b = await Daemon.start(['--settle-ms', '0', ...dirFlags(d)]);
    expect(a.instance).not.toBe(b.instance);
    expect(a.instance).toMatch(/-1$/);
    expect(b.instance).toMatch(/-2$/);
    const x = await Daemon.start(['--settle-ms', '0', '--instance-id', 'x', ...dirFlags(d)]);
    const again = await runCli(['run', '--once', '--instance-id', 'x', ...dirFlags(d)]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('INSTANCE_RUNNING');
    const held = await runCli(['run', '--once', '--instance-id', a.instance, ...dirFlags(d)]);
    expect(held.code).toBe(2);
    for (const p of [a, b, x]) expect((await p.stop()).code).toBe(0);
    // a clean stop removes its lock file and claim folder
    expect(await walk(state())).toEqual([]);
  });

  it('three daemons on their defaults, one SIGKILLed while it holds claims: every input exactly once, nothing stranded', async () => {
    d = await makeDirs();
    const cfg = await config();
    const args = ['--settle-ms', '0', '--config', cfg, ...dirFlags(d)];
    const a = await Daemon.start(args);
    const data = big(150_000);
    await drop({ 'L1.csv': data, 'L2.csv': data });
    // a holds claims: both large files are in its claim folder
    await waitFor(async () => (await list(join(state(), 'claimed', a.instance))).length >= 2, 'the first daemon to claim the large files');
    const b = await Daemon.start(args);
    const c = await Daemon.start(args);
    const files = smalls(200);
    await drop(files);
    await waitFor(async () => (await list(d.archive)).length >= 20, 'some files to be done');
    a.child.kill('SIGKILL');
    await a.exited;
    const names = [...Object.keys(files), 'L1.csv', 'L2.csv'];
    await waitFor(async () => (await list(d.archive)).length >= names.length, 'every input to be archived', 60_000);
    expect((await b.stop()).code).toBe(0);
    expect((await c.stop()).code).toBe(0);
    await expectExact(names, { 'L1.csv': data, 'L2.csv': data, 's0000.csv': SMALL_OUT, 's0199.csv': SMALL_OUT });
    for (const name of Object.keys(files)) expect(await readFile(join(d.out, name), 'utf8')).toBe(SMALL_OUT);
    const adopted = [...b.logs(), ...c.logs()].filter((l) => l.msg === 'adopted the claims of instances that died');
    expect(adopted).toHaveLength(1);
    expect(adopted[0]!.instances).toEqual([a.instance]);
    // the dead instance's lock file and folder went with its claims; the others stopped cleanly
    expect(await walk(state())).toEqual(['receipts.jsonl']);
  });

  it('a SIGSTOPped instance keeps its claims however long it is paused, and finishes them once resumed', async () => {
    d = await makeDirs();
    const cfg = await config();
    const args = ['--settle-ms', '0', '--config', cfg, ...dirFlags(d)];
    const a = await Daemon.start(args);
    const data = big(300_000);
    await drop({ 'big.csv': data });
    await waitFor(async () => (await list(join(state(), 'claimed', a.instance))).length >= 1, 'the first daemon to claim big.csv');
    a.child.kill('SIGSTOP');
    const b = await Daemon.start(args);
    const files = smalls(5);
    await drop(files);
    await waitFor(async () => (await list(d.archive)).length >= 5, 'the second daemon to process the small files');
    // b looks for dead instances every 50 ms: 40 looks and more, none may take a paused process's claims
    await new Promise((r) => setTimeout(r, 2000));
    expect((await list(join(state(), 'claimed', a.instance))).some((e) => e.endsWith('-big.csv'))).toBe(true);
    expect(b.logs().some((l) => l.msg === 'adopted the claims of instances that died')).toBe(false);
    a.child.kill('SIGCONT');
    await waitFor(async () => (await list(d.archive)).includes('big.csv'), 'big.csv to be finished by its own instance', 60_000);
    expect((await a.stop()).code).toBe(0);
    expect((await b.stop()).code).toBe(0);
    await expectExact([...Object.keys(files), 'big.csv'], { 'big.csv': data });
    const r = await receipts(state());
    expect(r.find((x) => x.file === 'big.csv')!.instance).toBe(a.instance);
  });

  it("a dead instance's claims go ahead of the survivor's backlog", async () => {
    d = await makeDirs();
    const cfg = await config();
    const a = await Daemon.start(['--settle-ms', '0', '--config', cfg, ...dirFlags(d)]);
    const data = big(200_000);
    await drop({ 'big.csv': data });
    await waitFor(async () => (await list(join(state(), 'claimed', a.instance))).some((e) => e.endsWith('-big.csv')), 'the first daemon to claim big.csv');
    // paused, it holds big.csv for as long as the test needs (and a SIGKILL ends a paused process too)
    a.child.kill('SIGSTOP');
    // one parsing slot: a backlog of 1,000 small files queues behind it
    const b = await Daemon.start(['--settle-ms', '0', '--concurrency', '1', '--config', cfg, ...dirFlags(d)]);
    const files = smalls(1000);
    await drop(files);
    await waitFor(async () => (await list(d.archive)).length >= 5, 'the survivor to be busy with the backlog');
    a.child.kill('SIGKILL');
    await a.exited;
    await waitFor(async () => (await list(d.archive)).length >= 1001, 'every input to be archived', 60_000);
    expect((await b.stop()).code).toBe(0);
    await expectExact([...Object.keys(files), 'big.csv'], { 'big.csv': data });
    const done = await receipts(state());
    const order = done.map((r) => r.file);
    const redo = b.logs().find((l) => l.msg === 'redoing a file an instance that died had claimed' && l.file === 'big.csv');
    expect(redo).toBeDefined();
    // once adopted, it is taken at the next free slot, ahead of the queued names: after it, only the files
    // that were already parsing or committing (at most 1 + 32) finish before it, however fast the machine
    const before = done.filter((r) => r.finishedAt < String(redo!.time)).length;
    expect(before).toBeLessThan(1000);
    expect(order.indexOf('big.csv') - before).toBeLessThan(40);
  });

  it('two overlapping --once runs on their defaults: both exit 0, every input exactly once', async () => {
    d = await makeDirs();
    const data = big(100_000);
    const files = smalls(150);
    await drop({ ...files, 'big1.csv': data, 'big2.csv': data });
    const args = ['run', '--once', ...dirFlags(d)];
    const [x, y] = await Promise.all([runCli(args), runCli(args)]);
    expect([x.code, y.code, x.stderr, y.stderr]).toEqual([0, 0, '', '']);
    await expectExact([...Object.keys(files), 'big1.csv', 'big2.csv'], { 'big1.csv': data, 'big2.csv': data });
    expect(await walk(state())).toEqual(['receipts.jsonl']);
  });

  it('a kill loop: 20 SIGKILLs over two daemons on one inbox, restarted each time, ends exact', async () => {
    d = await makeDirs();
    const cfg = await config();
    // worker threads, files of 4 MB cut in 1 MiB slices: kills land in workers, slices and their assembly too
    const args = ['--settle-ms', '0', '--config', cfg, '--workers', '2', '--slice-bytes', '1048576', ...dirFlags(d)];
    const data = big(40_000);
    const files = { ...smalls(300), 'm1.csv': data, 'm2.csv': data, 'm3.csv': data };
    const pair = [await Daemon.start(args), await Daemon.start(args)];
    await drop(files);
    for (let k = 0; k < 20; k++) {
      const i = k % 2;
      // a moment that moves with the work: after the next few files are done
      const done = (await list(d.archive)).length;
      await waitFor(
        async () => (await list(d.archive)).length > Math.min(done + 3, Object.keys(files).length - 1) || (k * 7) % 5 === 0,
        'a few files to be done',
      );
      pair[i]!.child.kill('SIGKILL');
      await pair[i]!.exited;
      pair[i] = await Daemon.start(args);
    }
    await waitFor(async () => (await list(d.archive)).length >= Object.keys(files).length, 'every input to be archived', 60_000);
    for (const p of pair) expect((await p.stop()).code).toBe(0);
    await expectExact(Object.keys(files), { 'm1.csv': data, 'm2.csv': data, 'm3.csv': data, 's0000.csv': SMALL_OUT });
    // every temporary file of the killed runs is gone, and so is every dead instance's lock
    expect(await walk(state())).toEqual(['receipts.jsonl']);
  });
});
