// Worker threads end to end: the same inputs through `--workers 1` and `--workers 2` give byte-identical
// outputs, rejects and counts, whether a file runs whole in a worker or is cut into slices (small slices
// here, so that a 2 MB file is cut in dozens of places); a quoted field across a cut makes the file run
// whole; a worker that dies fails its file's attempt with WORKER_FAILED and the retry succeeds.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, cleanup, Daemon, dirFlags, type Dirs, list, logLines, makeDirs, runCli, waitFor } from './harness.js';

const GEN = resolve(import.meta.dirname, '../fixtures/gen.mjs');
let dirs: Dirs[] = [];
afterEach(async () => {
  for (const d of dirs) await cleanup(d);
  dirs = [];
});

/** The reference workload (`rows` rows), with malformed records, blank lines and cast failures spread through it. */
function workload(rows: number, every = 997): Buffer {
  const lines = execFileSync(process.execPath, [GEN, String(rows), '5'], { maxBuffer: 1 << 30 })
    .toString('utf8')
    .split('\n');
  const parts: Buffer[] = [];
  for (const [i, line] of lines.entries()) {
    if (line === '' && i === lines.length - 1) break;
    parts.push(Buffer.from(`${line}\n`));
    if (i === 0 || i % every !== 0) continue;
    switch ((i / every) % 6) {
      case 0:
        parts.push(Buffer.from('1,2,3\n')); // too few fields
        break;
      case 1:
        parts.push(Buffer.concat([Buffer.from(`${i},x,`), Buffer.from([0xff]), Buffer.from(',a,DE,1,1,new,n/a,0.5\n')])); // invalid UTF-8
        break;
      case 2:
        parts.push(Buffer.from(`${i},"bad"quote,u,e,DE,1,1,new,n/a,0.5\n`)); // text after a closing quote
        break;
      case 3:
        parts.push(Buffer.from('\n\n')); // blank lines
        break;
      case 4:
        parts.push(Buffer.from(`${i},2024-01-01T00:00:00.000Z,u,e,DE,not-a-number,1,new,n/a,0.5\n`)); // cast fails
        break;
      default:
        parts.push(Buffer.from(`${i},2024-01-01T00:00:00.000Z,u,e,DE,1.5,1,new,"two\r\nlines",0.5\r\n`)); // CRLF, a quoted line end
    }
  }
  return Buffer.concat(parts);
}

const CONFIG = `pipelines:
  - name: default
    steps:
      - dropNulls: {}
      - cast: { amount: number, qty: integer }
      - filter: { column: status, op: ne, value: refunded }
`;

/** Runs --once over `files` with `flags`; returns the folders and the file log lines by name. */
async function runOnce(files: Record<string, Buffer>, flags: string[], config = CONFIG): Promise<{ d: Dirs; done: Record<string, Record<string, unknown>> }> {
  const d = await makeDirs();
  dirs.push(d);
  await writeFile(join(d.root, 'sluice.yaml'), config);
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(d.watch, name), bytes);
  const r = await runCli(['run', '--once', '--config', join(d.root, 'sluice.yaml'), '--metrics-port', '0', ...dirFlags(d), ...flags]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const lines = logLines(r.stdout);
  const done = Object.fromEntries(lines.filter((l) => l.msg === 'file processed').map((l) => [l.file as string, l]));
  return { d, done };
}

/** Every output and rejects file, by folder and name. */
async function contents(d: Dirs): Promise<Record<string, Buffer>> {
  const all: Record<string, Buffer> = {};
  for (const [k, dir] of [
    ['out', d.out],
    ['rejects', d.rejects],
  ] as const) {
    for (const f of await readdir(dir)) all[`${k}/${f}`] = await readFile(join(dir, f));
  }
  return all;
}

const counts = (l: Record<string, unknown> | undefined) => ({ read: l?.read, written: l?.written, filtered: l?.filtered, rejected: l?.rejected });

describe('workers', () => {
  it('cut into slices, a file gives byte for byte the outputs, rejects and counts of one thread', async () => {
    const big = workload(20_000);
    const one = await runOnce({ 'big.csv': big }, ['--workers', '1']);
    const two = await runOnce({ 'big.csv': big }, ['--workers', '2', '--slice-bytes', '65536']);
    // it was cut (the log says into how many slices), and the single thread's run was not
    expect(two.done['big.csv']?.slices).toBeGreaterThan(20);
    expect(one.done['big.csv']?.slices).toBeUndefined();
    const a = await contents(one.d);
    const b = await contents(two.d);
    expect(Object.keys(b).sort()).toEqual(['out/big.csv', 'rejects/big.rejects.csv']);
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
    for (const k of Object.keys(a)) expect(b[k]!.equals(a[k]!), k).toBe(true);
    expect(counts(two.done['big.csv'])).toEqual(counts(one.done['big.csv']));
    const c = counts(one.done['big.csv']) as unknown as Record<string, number>;
    // every kind of reject is there, at its line
    const rejects = a['rejects/big.rejects.csv']!.toString('latin1');
    for (const code of ['CSV_RECORD_INCONSISTENT_COLUMNS', 'INVALID_UTF8', 'CSV_INVALID_CLOSING_QUOTE', 'CAST_FAILED']) expect(rejects).toContain(code);
    expect(c.rejected).toBeGreaterThanOrEqual(12);
    expect(c.read).toBe(c.written! + c.filtered! + c.rejected!);
    expect(await list(two.d.watch)).toEqual([]);
    expect(await list(two.d.archive)).toEqual(['big.csv']);
  });

  it('comment lines before the header, longer than a slice: no cut before the header, which is never read as a row', async () => {
    // found by test/unit/slices-fuzz.test.ts: the first slice held only comments, and the next one read the header as data
    const licence = Array.from({ length: 100 }, (_, i) => `# licence line ${i}, which says nothing of the data`).join('\n');
    const rows = Array.from({ length: 20_000 }, (_, i) => `${i},name${i},${i % 97}`).join('\n');
    const file = Buffer.from(`${licence}\nid,name,amount\n${rows}\n`);
    const config = `pipelines:\n  - name: default\n    input: { comment: "#" }\n    steps:\n      - cast: { amount: integer }\n`;
    const one = await runOnce({ 'c.csv': file }, ['--workers', '1'], config);
    const two = await runOnce({ 'c.csv': file }, ['--workers', '2', '--slice-bytes', '4096'], config);
    expect(two.done['c.csv']?.slices).toBeGreaterThan(20);
    expect(counts(two.done['c.csv'])).toEqual({ read: 20_000, written: 20_000, filtered: 0, rejected: 0 });
    expect(counts(one.done['c.csv'])).toEqual(counts(two.done['c.csv']));
    const a = await contents(one.d);
    const b = await contents(two.d);
    expect(Object.keys(b)).toEqual(['out/c.csv']);
    expect(b['out/c.csv']!.equals(a['out/c.csv']!)).toBe(true);
    expect(b['out/c.csv']!.toString('utf8').startsWith('id,name,amount\n0,name0,0\n')).toBe(true);
  });

  it('with input.columns, a NUL byte in the first 64 KiB fails the file as one thread does (BINARY_FILE), not only past the first slice', async () => {
    // found by test/unit/slices-fuzz.test.ts: a whole run checks its first 64 KiB read; a first slice of 4 KiB saw less
    const rows = Array.from({ length: 30_000 }, (_, i) => `${i},b${i},c${i}`);
    rows[700] = `700,b\u0000,c`;
    const file = Buffer.from(`${rows.join('\n')}\n`);
    const config = `pipelines:\n  - name: default\n    input: { header: false, columns: [a, b, c] }\n`;
    for (const flags of [
      ['--workers', '1'],
      ['--workers', '2', '--slice-bytes', '4096'],
    ]) {
      const d = await makeDirs();
      dirs.push(d);
      await writeFile(join(d.root, 'sluice.yaml'), config);
      await writeFile(join(d.watch, 'n.csv'), file);
      const r = await runCli(['run', '--once', '--config', join(d.root, 'sluice.yaml'), '--metrics-port', '0', ...dirFlags(d), ...flags]);
      expect(r.code, flags.join(' ')).toBe(1);
      const failed = logLines(r.stdout).find((l) => l.msg === 'file failed');
      expect((failed?.error as { code?: string } | undefined)?.code ?? failed?.code, flags.join(' ')).toBe('BINARY_FILE');
      // the cut was refused, and the failed file's log line says why
      expect(failed?.notCut).toBe(flags.includes('--slice-bytes') ? 'its first bytes are not CSV text' : undefined);
      expect(await list(d.out)).toEqual([]);
      expect(await list(d.failed)).toContain('n.csv');
    }
  });

  it('several files at once run whole (none is cut, though each alone would be), with the outputs of one thread', async () => {
    const files = Object.fromEntries([1, 2, 3, 4].map((k) => [`f${k}.csv`, workload(3000 + k * 500, 211 + k)]));
    const one = await runOnce(files, ['--workers', '1']);
    // all four hold a parsing permit from the start: each finds the others parsing
    const two = await runOnce(files, ['--workers', '2', '--concurrency', '4', '--slice-bytes', '65536']);
    const a = await contents(one.d);
    const b = await contents(two.d);
    expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
    expect(Object.keys(a)).toHaveLength(8);
    for (const k of Object.keys(a)) expect(b[k]!.equals(a[k]!), k).toBe(true);
    for (const f of Object.keys(files)) {
      expect(counts(two.done[f])).toEqual(counts(one.done[f]));
      expect(two.done[f]?.slices).toBeUndefined();
    }
  });

  it('a quoted field across a cut: the file is run whole, with the same outputs', async () => {
    // every record holds a quoted field of many lines: a cut after a line feed is almost always inside one
    // (400 KiB: a file under 256 KiB runs in the main thread, never cut)
    const rows = ['id,text,n'];
    for (let i = 0; i < 12_000; i++) rows.push(`${i},"${'word\n'.repeat(1 + (i % 7))}end",${i % 3 === 0 ? '' : i}`);
    const file = Buffer.from(`${rows.join('\n')}\n`);
    const config = 'pipelines:\n  - name: default\n    steps: [{ dropNulls: {} }, { rename: { n: number } }]\n';
    const one = await runOnce({ 'q.csv': file }, ['--workers', '1'], config);
    const two = await runOnce({ 'q.csv': file }, ['--workers', '2', '--slice-bytes', '16384'], config);
    expect(two.done['q.csv']?.slices).toBeUndefined();
    // the log line says why it was not cut; the single thread's never tried
    expect(two.done['q.csv']?.notCut).toBe('a quoted field runs across a cut');
    expect(one.done['q.csv']?.notCut).toBeUndefined();
    const a = await contents(one.d);
    const b = await contents(two.d);
    expect(Object.keys(b)).toEqual(['out/q.csv']);
    expect(b['out/q.csv']!.equals(a['out/q.csv']!)).toBe(true);
    expect(counts(two.done['q.csv'])).toEqual({ read: 12_000, written: 8000, filtered: 4000, rejected: 0 });
  });

  it('a worker that dies fails the attempt with WORKER_FAILED; the file is retried and succeeds, nothing left behind', async () => {
    const d = await makeDirs();
    dirs.push(d);
    const file = workload(3000);
    await writeFile(join(d.watch, 'w.csv'), file);
    const textfile = join(d.root, 'sluice.prom');
    const res = await runCliEnv(['run', '--once', '--workers', '2', '--metrics-textfile', textfile, ...dirFlags(d)], { SLUICE_FAILPOINT: 'worker-exit' });
    expect(res.code).toBe(0);
    // the death is counted for operators, and the worker's batches reach the metrics once each
    const metrics = await readFile(textfile, 'utf8');
    expect(metrics).toMatch(/^sluice_worker_deaths_total 1$/m);
    // the replacement loaded and ran the retry: one worker thread alive at the end
    expect(metrics).toMatch(/^sluice_worker_threads 1$/m);
    const written = logLines(res.stdout).find((l) => l.msg === 'file processed')?.written as number;
    expect(written).toBeGreaterThan(2000);
    expect(metrics).toContain(`sluice_batch_rows_sum{pipeline="default"} ${written}\n`);
    const lines = logLines(res.stdout);
    expect(lines.some((l) => l.msg === 'a worker thread died; it is replaced')).toBe(true);
    expect(lines.some((l) => l.msg === 'the worker thread processing it died; the file will be retried')).toBe(true);
    expect(lines.filter((l) => l.msg === 'file processed').map((l) => l.file)).toEqual(['w.csv']);
    expect(await list(d.out)).toEqual(['w.csv']);
    expect(await list(d.archive)).toEqual(['w.csv']);
  });
});

describe('workers and small files', () => {
  it('a file that runs whole in the main thread starts no worker thread', async () => {
    const d = await makeDirs();
    dirs.push(d);
    await writeFile(join(d.watch, 'm.csv'), workload(3000));
    const textfile = join(d.root, 'sluice.prom');
    const res = await runCli(['run', '--once', '--workers', '2', '--metrics-textfile', textfile, ...dirFlags(d)]);
    expect(res.code).toBe(0);
    expect(
      logLines(res.stdout)
        .filter((l) => l.msg === 'file processed')
        .map((l) => l.file),
    ).toEqual(['m.csv']);
    expect(await readFile(textfile, 'utf8')).toMatch(/^sluice_worker_threads 0$/m);
  });

  it('a file under 256 KiB runs in the main thread: a worker that would die under it is never given it', async () => {
    const d = await makeDirs();
    dirs.push(d);
    await writeFile(join(d.watch, 's.csv'), workload(200));
    const res = await runCliEnv(['run', '--once', '--workers', '2', '--metrics-port', '0', ...dirFlags(d)], { SLUICE_FAILPOINT: 'worker-exit' });
    expect(res.code).toBe(0);
    const lines = logLines(res.stdout);
    expect(lines.some((l) => l.msg === 'a worker thread died; it is replaced')).toBe(false);
    expect(lines.filter((l) => l.msg === 'file processed').map((l) => l.file)).toEqual(['s.csv']);
  });
});

/** runCli with extra environment variables. */
async function runCliEnv(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

describe('cut files under stress', () => {
  it('a file of rejected rows keeps its memory bounded: slices stop at their reject budget and the file runs whole', { timeout: 120_000 }, async () => {
    const d = await makeDirs();
    dirs.push(d);
    // 2 MB: a header and 1,000,000 one-field lines, each rejected (CSV_RECORD_INCONSISTENT_COLUMNS)
    const file = `a,b,c\n${' \n'.repeat(1_000_000)}1,2,3\n`;
    const run = async (workers: string) => {
      for (const f of await readdir(d.archive)) await rename(join(d.archive, f), join(d.watch, f));
      for (const dir of [d.out, d.rejects]) for (const f of await readdir(dir)) await rm(join(dir, f));
      const r = spawnSync(
        process.execPath,
        [
          '--import',
          join(import.meta.dirname, 'rss-preload.mjs'),
          CLI,
          'run',
          '--once',
          '--workers',
          workers,
          '--slice-bytes',
          String(256 * 1024),
          ...dirFlags(d),
        ],
        { encoding: 'utf8', maxBuffer: 1 << 26 },
      );
      expect(r.status).toBe(0);
      const done = logLines(r.stdout).find((l) => l.msg === 'file processed');
      return { mib: Number(/maxrss-kib:(\d+)/.exec(r.stderr)?.[1]) / 1024, done, rejects: await readFile(join(d.rejects, 'junk.rejects.csv')) };
    };
    await writeFile(join(d.watch, 'junk.csv'), file);
    const one = await run('1');
    const two = await run('2');
    // measured before the budget: about 120 MiB in one thread, about 600 MiB cut (a 10 MB file of them: 2 GB)
    expect(one.mib).toBeLessThan(200);
    expect(two.mib).toBeLessThan(250);
    expect(two.rejects.equals(one.rejects)).toBe(true);
    expect(counts(two.done)).toEqual({ read: 1_000_001, written: 1, filtered: 0, rejected: 1_000_000 });
    expect(two.done?.slices).toBeUndefined();
    expect(two.done?.notCut).toBe('many of its rows are rejected');
  });

  it('a line of more than 1 MiB sends the file to a whole run (each slice would rescan it), with the same output', async () => {
    const rows = ['id,text'];
    for (let i = 0; i < 3000; i++) rows.push(i === 1500 ? `${i},${'x'.repeat(1_500_000)}` : `${i},hello ${i}`);
    const file = Buffer.from(`${rows.join('\n')}\n`);
    const plain = 'pipelines:\n  - name: default\n    steps: [{ dropNulls: {} }]\n';
    const one = await runOnce({ 'l.csv': file }, ['--workers', '1'], plain);
    const two = await runOnce({ 'l.csv': file }, ['--workers', '2', '--slice-bytes', '65536'], plain);
    expect(two.done['l.csv']?.slices).toBeUndefined();
    expect(two.done['l.csv']?.notCut).toBe('it has lines of more than 1 MiB');
    expect((await contents(two.d))['out/l.csv']!.equals((await contents(one.d))['out/l.csv']!)).toBe(true);
    expect(counts(two.done['l.csv'])).toEqual({ read: 3000, written: 3000, filtered: 0, rejected: 0 });
  });

  it('reloads while a large file is cut: it finishes on the configuration it was taken with, once', { timeout: 120_000 }, async () => {
    const d = await makeDirs();
    dirs.push(d);
    await writeFile(join(d.root, 'sluice.yaml'), 'retry: { backoffMs: 100 }\n');
    const daemon = await Daemon.start(['--config', join(d.root, 'sluice.yaml'), '--settle-ms', '50', '--slice-bytes', '65536', ...dirFlags(d)]);
    try {
      const staged = join(d.root, 'big.csv');
      await writeFile(staged, workload(200_000));
      await rename(staged, join(d.watch, 'big.csv'));
      await waitFor(async () => (await list(d.watch)).length === 0, 'the file to be claimed');
      // more reloads than a worker holds configurations: each one done before the next
      const reloaded = () => daemon.logs().filter((l) => String(l.msg).startsWith('configuration reloaded')).length;
      for (let i = 1; i <= 12; i++) {
        daemon.child.kill('SIGHUP');
        await waitFor(async () => reloaded() >= i, `reload ${i}`);
      }
      await waitFor(async () => (await list(d.archive)).length + (await list(d.failed)).length > 0, 'the file to finish', 60_000);
    } finally {
      expect((await daemon.stop()).code).toBe(0);
    }
    expect(await list(d.failed)).toEqual([]);
    expect(await list(d.archive)).toEqual(['big.csv']);
    const processed = daemon.logs().filter((l) => l.msg === 'file processed');
    expect(processed.map((l) => [l.file, l.outcome])).toEqual([['big.csv', 'succeeded']]);
  });
});
