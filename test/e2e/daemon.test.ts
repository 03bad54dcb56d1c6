// The daemon end to end: files dropped while it runs, a file written slowly in place, names reused,
// and SIGTERM (drain) / a second signal (abort) ending it with exit 0 and nothing half-done.
import { execFileSync } from 'node:child_process';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, Daemon, dirFlags, type Dirs, freePort, list, makeDirs, waitFor } from './harness.js';

let d: Dirs;
afterEach(() => cleanup(d));

const GEN = resolve(import.meta.dirname, '../fixtures/gen.mjs');
const gen = (rows: number, nullPct = 0): Buffer => execFileSync(process.execPath, [GEN, String(rows), String(nullPct)], { maxBuffer: 1 << 30 });

async function exists(dir: string, name: string): Promise<boolean> {
  return (await list(dir)).includes(name);
}

describe('sluice run (daemon)', () => {
  it('processes files renamed into the inbox while running, and exits 0 on SIGTERM', async () => {
    d = await makeDirs();
    const daemon = await Daemon.start([...dirFlags(d), '--settle-ms', '200']);
    const data: Buffer[] = [];
    for (let i = 0; i < 5; i++) {
      data.push(gen(100 + i));
      await writeFile(join(d.root, `f${i}.csv`), data[i]!);
      await rename(join(d.root, `f${i}.csv`), join(d.watch, `f${i}.csv`));
    }
    await waitFor(async () => (await list(d.archive)).length === 5, 'five archived inputs');
    for (let i = 0; i < 5; i++) expect(await readFile(join(d.out, `f${i}.csv`))).toEqual(data[i]);
    expect(await list(d.watch)).toEqual([]);
    const r = await daemon.stop('SIGTERM');
    expect(r).toEqual({ code: 0, signal: null });
    expect(daemon.logs().at(-1)).toMatchObject({ msg: 'sluice stopped' });
  });

  it('waits for a file written slowly in place and processes it complete', async () => {
    d = await makeDirs();
    const daemon = await Daemon.start([...dirFlags(d), '--settle-ms', '1500']);
    const data = gen(3000);
    const fh = await open(join(d.watch, 'slow.csv'), 'w');
    const step = Math.ceil(data.length / 8);
    for (let off = 0; off < data.length; off += step) {
      await fh.write(data.subarray(off, off + step));
      await new Promise((r) => setTimeout(r, 100)); // a slow writer, not a wait for sluice
    }
    await fh.close();
    await waitFor(() => exists(d.archive, 'slow.csv'), 'slow.csv archived');
    expect(await readFile(join(d.out, 'slow.csv'))).toEqual(data);
    expect(await list(d.out)).toEqual(['slow.csv']);
    await daemon.stop();
  });

  it('processes the same name dropped twice, without overwriting the first output', async () => {
    d = await makeDirs();
    const daemon = await Daemon.start([...dirFlags(d), '--settle-ms', '100']);
    await writeFile(join(d.root, 'x.csv'), 'a\n1\n');
    await rename(join(d.root, 'x.csv'), join(d.watch, 'x.csv'));
    await waitFor(() => exists(d.archive, 'x.csv'), 'first x.csv archived');
    await writeFile(join(d.root, 'x.csv'), 'a\n2\n');
    await rename(join(d.root, 'x.csv'), join(d.watch, 'x.csv'));
    await waitFor(() => exists(d.archive, 'x-1.csv'), 'second x.csv archived');
    expect(await readFile(join(d.out, 'x.csv'), 'utf8')).toBe('a\n1\n');
    expect(await readFile(join(d.out, 'x-1.csv'), 'utf8')).toBe('a\n2\n');
    await daemon.stop();
  });

  it('notices an inbox folder removed and recreated, and takes files dropped into the new one', async () => {
    d = await makeDirs();
    const cfg = join(d.root, 'sluice.yaml');
    await writeFile(cfg, 'rescanMs: 100\n');
    const daemon = await Daemon.start([...dirFlags(d), '--settle-ms', '50', '--config', cfg]);
    await rm(d.watch, { recursive: true });
    await waitFor(() => daemon.stdout.includes('the inbox folder is gone'), 'the daemon to notice the inbox is gone');
    await mkdir(d.watch);
    await waitFor(() => daemon.stdout.includes('the inbox folder is back'), 'the daemon to notice the inbox is back');
    await writeFile(join(d.root, 'n.csv'), 'a\n1\n');
    await rename(join(d.root, 'n.csv'), join(d.watch, 'n.csv'));
    await waitFor(() => exists(d.archive, 'n.csv'), 'n.csv archived');
    expect(await readFile(join(d.out, 'n.csv'), 'utf8')).toBe('a\n1\n');
    expect(await daemon.stop()).toEqual({ code: 0, signal: null });
  });

  it('poll: true watches the inbox by polling (network filesystems)', async () => {
    d = await makeDirs();
    const cfg = join(d.root, 'sluice.yaml');
    await writeFile(cfg, 'poll: true\npollIntervalMs: 50\nrescanMs: 600000\n');
    const daemon = await Daemon.start([...dirFlags(d), '--settle-ms', '50', '--config', cfg]);
    await writeFile(join(d.root, 'p.csv'), 'a\n1\n');
    await rename(join(d.root, 'p.csv'), join(d.watch, 'p.csv'));
    await waitFor(() => exists(d.archive, 'p.csv'), 'p.csv archived');
    expect(await readFile(join(d.out, 'p.csv'), 'utf8')).toBe('a\n1\n');
    await daemon.stop();
  });

  it('on SIGTERM then a second signal mid-file, either finishes the file or puts it back: never half-done', async () => {
    d = await makeDirs();
    const daemon = await Daemon.start([...dirFlags(d), '--settle-ms', '1']);
    const data = gen(300_000, 5);
    await writeFile(join(d.root, 'big.csv'), data);
    await rename(join(d.root, 'big.csv'), join(d.watch, 'big.csv'));
    await waitFor(async () => !(await exists(d.watch, 'big.csv')), 'big.csv claimed');
    daemon.child.kill('SIGTERM');
    daemon.child.kill('SIGINT');
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
    const out = await list(d.out);
    expect(out.filter((n) => n.startsWith('.'))).toEqual([]);
    if (out.includes('big.csv')) {
      expect(await list(d.archive)).toEqual(['big.csv']);
      expect((await readFile(join(d.archive, 'big.csv'))).equals(data)).toBe(true);
      expect(await list(d.watch)).toEqual([]);
    } else {
      expect(out).toEqual([]);
      expect((await readFile(join(d.watch, 'big.csv'))).equals(data)).toBe(true); // toEqual on 30 MB is far too slow
      expect(await list(d.archive)).toEqual([]);
    }
  });
});

describe('SIGHUP', () => {
  it('reloads sluice.yaml: a valid one applies to files taken from then on; an invalid one is refused and logged; the daemon runs on', async () => {
    d = await makeDirs();
    const cfg = join(d.root, 'sluice.yaml');
    await writeFile(cfg, 'pipelines:\n  - name: p\n    steps:\n      - dropNulls: { how: any }\n');
    const daemon = await Daemon.start(['--config', cfg, ...dirFlags(d), '--settle-ms', '0']);
    const drop = async (name: string): Promise<string> => {
      await writeFile(join(d.root, name), 'id,name,email\n1,a,a@x\n');
      await rename(join(d.root, name), join(d.watch, name));
      await waitFor(() => exists(d.archive, name), `${name} archived`);
      return readFile(join(d.out, name), 'utf8');
    };
    const count = (msg: string): number => daemon.logs().filter((l) => l.msg === msg).length;
    expect(await drop('one.csv')).toBe('id,name,email\n1,a,a@x\n');
    await writeFile(cfg, `concurrency: 7\npipelines:\n  - name: p\n    steps:\n      - select: [id, email]\n`);
    daemon.child.kill('SIGHUP');
    await waitFor(() => count('configuration reloaded: files taken from now on use it') === 1, 'the reload');
    // concurrency is a setting only a restart changes: said, and kept
    expect(daemon.logs().find((l) => l.msg === 'configuration reloaded: files taken from now on use it')!.needsRestart).toEqual(['concurrency']);
    expect(await drop('two.csv')).toBe('id,email\n1,a@x\n');
    await writeFile(cfg, 'pipelines:\n  - name: p\n    steps:\n      - selekt: [id]\n');
    daemon.child.kill('SIGHUP');
    await waitFor(() => count('configuration reload refused: running on unchanged') === 1, 'the refused reload');
    const refused = daemon.logs().find((l) => l.msg === 'configuration reload refused: running on unchanged')!;
    expect(refused.code).toBe('CONFIG_INVALID');
    expect(String(refused.error)).toContain('selekt');
    expect(await drop('three.csv')).toBe('id,email\n1,a@x\n');
    expect(daemon.child.exitCode).toBeNull();
    expect((await daemon.stop()).code).toBe(0);
  });

  it('a reload that changes the output of a pipeline whose database is down routes its waiting files again', async () => {
    d = await makeDirs();
    const cfg = join(d.root, 'sluice.yaml');
    const port = await freePort(); // nothing listens there
    await writeFile(cfg, `pipelines:\n  - name: orders\n    output: { format: postgres, table: t, url: "postgres://u@127.0.0.1:${port}/x" }\n`);
    const daemon = await Daemon.start(['--config', cfg, ...dirFlags(d), '--settle-ms', '0']);
    await writeFile(join(d.root, 'a.csv'), 'id\n1\n');
    await rename(join(d.root, 'a.csv'), join(d.watch, 'a.csv'));
    await waitFor(
      () => daemon.logs().some((l) => l.msg === 'the database is unavailable: files of this pipeline wait until it is back'),
      'a.csv to wait for the database',
    );
    await writeFile(cfg, 'pipelines:\n  - name: orders\n');
    daemon.child.kill('SIGHUP');
    await waitFor(() => exists(d.archive, 'a.csv'), 'a.csv to be routed again, to the CSV output');
    expect(await readFile(join(d.out, 'a.csv'), 'utf8')).toBe('id\n1\n');
    expect((await daemon.stop()).code).toBe(0);
  });
});
