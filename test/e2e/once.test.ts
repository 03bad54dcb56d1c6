// `sluice run --once` end to end: the real CLI on real folders, exact outputs, rejects, error files, exit codes.
import { mkdir, readFile, symlink, writeFile, lstat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { execFileSync, spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, cleanup, dirFlags, type Dirs, freePort, list, logLines, makeDirs, runCli } from './harness.js';

let d: Dirs;
afterEach(() => cleanup(d));

const GOOD = 'id,name,email\n1,Ann,ann@x.io\n2,,bob@x.io\n3,"Smith, J",j@x.io\n4,"say ""hi""",h@x.io\n5,Eve,\n';
const GOOD_OUT = 'id,name,email\n1,Ann,ann@x.io\n3,"Smith, J",j@x.io\n4,"say ""hi""",h@x.io\n';
const BAD = Buffer.concat([
  Buffer.from('a,b,c\n1,2,3\n4,5\n"6"x,7,8\n9,"multi\nline",10\n11,'),
  Buffer.from([0xff, 0xfe]),
  Buffer.from(',12\n13,14,15\n"16,17,18\n19,20,21\n'),
]);
const BAD_OUT = 'a,b,c\n1,2,3\n9,"multi\nline",10\n13,14,15\n';

async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
}

describe('sluice run --once', () => {
  it('processes a mix of good, malformed, empty, binary and refused inputs exactly', async () => {
    d = await makeDirs();
    await writeFile(join(d.watch, 'good.csv'), GOOD);
    await writeFile(join(d.watch, 'bad.csv'), BAD);
    await writeFile(join(d.watch, 'empty.csv'), '');
    await writeFile(join(d.watch, 'header.csv'), 'a,b\n');
    await writeFile(join(d.watch, 'binary.csv'), Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00, 0x0a]));
    await writeFile(join(d.root, 'outside.csv'), GOOD);
    await symlink(join(d.root, 'outside.csv'), join(d.watch, 'link.csv'));
    await mkdir(join(d.watch, 'folder.csv'));
    for (const ignored of ['.hidden.csv', 'upload.tmp', 'upload.csv.part']) await writeFile(join(d.watch, ignored), GOOD);

    const r = await runCli(['run', '--once', '--settle-ms', '1', ...dirFlags(d)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);

    expect(await list(d.out)).toEqual(['bad.csv', 'empty.csv', 'good.csv', 'header.csv']);
    expect(await readFile(join(d.out, 'good.csv'), 'utf8')).toBe(GOOD_OUT);
    expect(await readFile(join(d.out, 'bad.csv'), 'utf8')).toBe(BAD_OUT);
    expect(await readFile(join(d.out, 'empty.csv'), 'utf8')).toBe('');
    expect(await readFile(join(d.out, 'header.csv'), 'utf8')).toBe('a,b\n');

    expect(await list(d.rejects)).toEqual(['bad.rejects.csv']);
    const rejects = await readFile(join(d.rejects, 'bad.rejects.csv'));
    const expected = Buffer.concat([
      Buffer.from('line,code,message,raw\n3,CSV_RECORD_INCONSISTENT_COLUMNS,"line 3: expected 3 fields as in the header, got 2","4,5"\n'),
      Buffer.from(
        '4,CSV_INVALID_CLOSING_QUOTE,"line 4: Invalid Closing Quote: got ""x"" at line 4 instead of delimiter, record delimiter, trimable character (if activated) or comment","""6""x,7,8"\n',
      ),
      Buffer.from('7,INVALID_UTF8,line 7: the record holds bytes that are not valid UTF-8,"11,'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(',12"\n9,CSV_QUOTE_NOT_CLOSED,line 9: Quote Not Closed: the parsing is finished with an opening quote at line 10,"""16,17,18\n19,20,21"\n'),
    ]);
    expect(rejects.toString('latin1')).toBe(expected.toString('latin1'));

    expect(await list(d.archive)).toEqual(['bad.csv', 'empty.csv', 'good.csv', 'header.csv']);
    expect(await readFile(join(d.archive, 'bad.csv'))).toEqual(BAD);
    expect(await list(d.failed)).toEqual(['binary.csv', 'binary.csv.error.json', 'folder.csv', 'folder.csv.error.json', 'link.csv', 'link.csv.error.json']);
    expect(await readJson(join(d.failed, 'binary.csv.error.json'))).toMatchObject({ file: 'binary.csv', code: 'BINARY_FILE' });
    expect(await readJson(join(d.failed, 'link.csv.error.json'))).toMatchObject({ file: 'link.csv', code: 'SYMLINK_REFUSED' });
    expect(await readJson(join(d.failed, 'folder.csv.error.json'))).toMatchObject({ file: 'folder.csv', code: 'NOT_REGULAR_FILE' });
    expect((await lstat(join(d.failed, 'link.csv'))).isSymbolicLink()).toBe(true);
    expect(await readFile(join(d.root, 'outside.csv'), 'utf8')).toBe(GOOD);
    expect(await list(d.watch)).toEqual(['.hidden.csv', 'upload.csv.part', 'upload.tmp']);

    const done = logLines(r.stdout).filter((l) => l.msg === 'file processed' || l.msg === 'file failed');
    const byFile = Object.fromEntries(done.map((l) => [l.file, l]));
    expect(byFile['good.csv']).toMatchObject({ outcome: 'succeeded', read: 5, written: 3, filtered: 2, rejected: 0 });
    expect(byFile['bad.csv']).toMatchObject({ outcome: 'succeeded', read: 7, written: 3, filtered: 0, rejected: 4 });
    expect(byFile['empty.csv']).toMatchObject({ outcome: 'succeeded', read: 0, written: 0 });
    expect(byFile['binary.csv']).toMatchObject({ outcome: 'failed', code: 'BINARY_FILE' });
    for (const l of done) expect(l.read).toBe((l.written as number) + (l.filtered as number) + (l.rejected as number));
  });

  it('exits 0 when every file succeeds and leaves no temporary files or claims', async () => {
    d = await makeDirs();
    await writeFile(join(d.watch, 'a.csv'), GOOD);
    await writeFile(join(d.watch, 'b.csv'), 'x\n1\n2\n');
    const r = await runCli(['run', '--once', '--settle-ms', '1', ...dirFlags(d)]);
    expect(r.code).toBe(0);
    expect(await list(d.out)).toEqual(['a.csv', 'b.csv']);
    expect(await readFile(join(d.out, 'b.csv'), 'utf8')).toBe('x\n1\n2\n');
    expect(await list(d.rejects)).toEqual([]);
    expect(await list(d.watch)).toEqual([]);
    // a clean stop leaves no claim folder and no lock file
    expect(await list(join(d.root, '.sluice', 'claimed'))).toEqual([]);
    expect(await list(join(d.root, '.sluice', 'instances'))).toEqual([]);
  });

  it('never overwrites an existing output or archived file: it picks a numbered name and logs it', async () => {
    d = await makeDirs();
    await writeFile(join(d.out, 'good.csv'), 'keep me\n');
    await writeFile(join(d.archive, 'good.csv'), 'old input\n');
    await writeFile(join(d.watch, 'good.csv'), GOOD);
    const r = await runCli(['run', '--once', '--settle-ms', '1', ...dirFlags(d)]);
    expect(r.code).toBe(0);
    expect(await readFile(join(d.out, 'good.csv'), 'utf8')).toBe('keep me\n');
    expect(await readFile(join(d.out, 'good-1.csv'), 'utf8')).toBe(GOOD_OUT);
    expect(await readFile(join(d.archive, 'good-1.csv'), 'utf8')).toBe(GOOD);
    const done = logLines(r.stdout).find((l) => l.msg === 'file processed');
    expect(done).toMatchObject({ output: join(d.out, 'good-1.csv'), archived: join(d.archive, 'good-1.csv') });
  });

  it('keeps BOM-less output, CRLF input rows and semicolon-free quoting byte for byte', async () => {
    d = await makeDirs();
    await writeFile(join(d.watch, 'crlf.csv'), '\uFEFFid,v\r\n1,a\r\n2,\r\n3,"b\r\nc"\r\n');
    const r = await runCli(['run', '--once', '--settle-ms', '1', ...dirFlags(d)]);
    expect(r.code).toBe(0);
    expect(await readFile(join(d.out, 'crlf.csv'), 'utf8')).toBe('id,v\n1,a\n3,"b\r\nc"\n');
  });
});

describe('sluice run --once as a job', () => {
  it('opens no port unless asked: a daemon beside it holding the default port does not stop it', async () => {
    d = await makeDirs();
    await writeFile(join(d.watch, 'a.csv'), 'x\n1\n');
    // hold 9464 ourselves (or find it held): --once must not need it
    const server = createServer();
    await new Promise<void>((res) => server.once('error', () => res()).listen(9464, '127.0.0.1', () => res()));
    try {
      const flags = dirFlags(d).filter((f, i, a) => f !== '--metrics-port' && a[i - 1] !== '--metrics-port');
      const r = await runCli(['run', '--once', ...flags]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(logLines(r.stdout).some((l) => l.msg === 'metrics server listening')).toBe(false);
    } finally {
      server.close();
    }
  });

  it('a folder it was given that does not exist exits 2 (DIR_MISSING) and creates nothing', async () => {
    d = await makeDirs();
    const missing = join(d.root, 'no', 'such', 'inbox');
    const r = await runCli(['run', '--once', ...dirFlags(d), '--watch', missing]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('DIR_MISSING');
    expect(r.stderr).toContain(missing);
    expect(await list(d.root)).toEqual(['archive', 'failed', 'out', 'rejects', 'watch']);
    const out = await runCli(['run', '--once', ...dirFlags(d), '--out', join(d.root, 'typo')]);
    expect(out.code).toBe(2);
    expect(await list(d.root)).toEqual(['archive', 'failed', 'out', 'rejects', 'watch']);
  });

  it("resolves a config file's relative folders against the file's folder, wherever it is run from", async () => {
    d = await makeDirs();
    const cfgDir = join(d.root, 'cfg');
    for (const f of ['inbox', 'clean', 'bad', 'done', 'broken', 'elsewhere']) await mkdir(join(cfgDir, f), { recursive: true });
    await writeFile(join(cfgDir, 'sluice.yaml'), 'watch: ./inbox\nout: ./clean\nrejects: ./bad\narchive: ./done\nfailed: ./broken\n');
    await writeFile(join(cfgDir, 'inbox', 'c.csv'), 'x\n1\n');
    const r = await runCli(['run', '--once', '--config', '../sluice.yaml'], join(cfgDir, 'elsewhere'));
    expect(r.code).toBe(0);
    expect(await list(join(cfgDir, 'clean'))).toEqual(['c.csv']);
    expect(await list(join(cfgDir, 'done'))).toEqual(['c.csv']);
    expect(await list(join(cfgDir, 'elsewhere'))).toEqual([]);
  });
});

describe('sluice run --once on a terminal', () => {
  it('shows its progress on stderr (bytes, rows, rows/s, ETA, files left); in a pipe it shows none', async (ctx) => {
    const script = spawnSync('which', ['script'], { encoding: 'utf8' }).stdout.trim();
    if (script === '') {
      console.log('skipped: no `script` (util-linux) to give the run a terminal');
      ctx.skip();
      return;
    }
    d = await makeDirs();
    await writeFile(
      join(d.watch, 'big.csv'),
      execFileSync(process.execPath, [resolve(import.meta.dirname, '../fixtures/gen.mjs'), '400000', '5'], { maxBuffer: 1 << 30 }),
    );
    const cmd = [process.execPath, CLI, 'run', '--once', ...dirFlags(d)].map((a) => `'${a}'`).join(' ');
    const tty = spawnSync(script, ['-qfec', cmd, '/dev/null'], { encoding: 'utf8' });
    expect(tty.status).toBe(0);
    expect(tty.stdout).toMatch(/\d+% \| [\d.]+\/[\d.]+ MB \| [\d,]+ rows, [\d,]+ rows\/s \| ETA \d+s \| 1 files left/);
    expect(tty.stdout).toContain('run finished');
    await writeFile(join(d.watch, 'again.csv'), 'x\n1\n');
    const piped = await runCli(['run', '--once', ...dirFlags(d)]);
    expect(piped.stderr).toBe('');
  });
});

describe('sluice run --once and a database that is down', () => {
  it('waits at most --max-wait, says why (code and host:port, never the password), puts the files back and exits 3', async () => {
    d = await makeDirs();
    const port = await freePort(); // nothing listens there
    const cfg = join(d.root, 'sluice.yaml');
    await writeFile(cfg, `pipelines:\n  - name: db\n    output: { format: postgres, table: t, url: "postgres://loader:s3cret@127.0.0.1:${port}/x" }\n`);
    await writeFile(join(d.watch, 'a.csv'), 'x\n1\n');
    await writeFile(join(d.watch, 'b.csv'), 'x\n2\n');
    const r = await runCli(['run', '--once', '--config', cfg, '--max-wait', '1500ms', ...dirFlags(d)]);
    expect(r.code).toBe(3);
    expect(r.stdout + r.stderr).not.toContain('s3cret');
    const logs = logLines(r.stdout);
    const down = logs.find((l) => l.msg === 'the database is unavailable: files of this pipeline wait until it is back')!;
    expect(down).toMatchObject({ code: 'SINK_UNAVAILABLE', maxWaitMs: 1500 });
    expect(String(down.error)).toContain(`127.0.0.1:${port}`);
    expect(logs.some((l) => l.msg === 'the database stayed unavailable past --max-wait: its files go back to the inbox')).toBe(true);
    expect(await list(d.watch)).toEqual(['a.csv', 'b.csv']);
    expect(await readFile(join(d.watch, 'a.csv'), 'utf8')).toBe('x\n1\n');
    expect(await list(join(d.root, '.sluice', 'claimed'))).toEqual([]);
    expect(await list(d.failed)).toEqual([]);
    expect((await runCli(['run', '--once', '--max-wait', 'soon', ...dirFlags(d)])).stderr).toContain('--max-wait: got "soon", expected a duration');
  });
});

describe('sluice status', () => {
  it('summarizes the receipt ledger, the claims in progress and the inbox', async () => {
    d = await makeDirs();
    await writeFile(join(d.watch, 'good.csv'), GOOD);
    await writeFile(join(d.watch, 'bin.csv'), Buffer.from([0]));
    const r = await runCli(['run', '--once', '--settle-ms', '1', ...dirFlags(d)]);
    expect(r.code).toBe(1);
    await writeFile(join(d.watch, 'later.csv'), GOOD);
    const s = await runCli(['status', '--json', '--watch', d.watch]);
    expect(s.code).toBe(0);
    const status = JSON.parse(s.stdout) as {
      totals: { succeeded: number; failed: number; rows: Record<string, number> };
      recent: Array<{ file: string; outcome: string; sha256?: string; size: number; outputs: Array<{ role: string; path: string }> }>;
      inProgress: unknown[];
      inbox: { files: number };
    };
    expect(status.totals).toEqual({ succeeded: 1, failed: 1, rows: { read: 5, written: 3, filtered: 2, rejected: 0 } });
    expect(status.inProgress).toEqual([]);
    expect(status.inbox.files).toBe(1);
    const good = status.recent.find((x) => x.file === 'good.csv')!;
    expect(good.size).toBe(GOOD.length);
    expect(good.sha256).toBe(createHash('sha256').update(GOOD).digest('hex'));
    expect(good.outputs).toEqual([{ role: 'output', path: join(d.out, 'good.csv'), rows: 3, bytes: GOOD_OUT.length }]);
    const text = await runCli(['status', '--watch', d.watch]);
    expect(text.stdout).toContain('1 succeeded, 1 failed');
    expect(text.stdout).toMatch(/FAIL bin\.csv \[default\] .* BINARY_FILE/);
  });
});

describe('sluice usage', () => {
  it('prints help and version with exit 0', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('sluice run [options]');
    expect(help.stdout).toContain('--once');
    const version = await runCli(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect((await runCli(['-V'])).stdout).toBe(version.stdout);
    const runHelp = await runCli(['help', 'run']);
    expect(runHelp.code).toBe(0);
    expect(runHelp.stdout).toMatch(/^Usage:\n {2}sluice run \[options\]/);
    expect(runHelp.stdout).toContain('--metrics-textfile');
    expect((await runCli(['run', '--help'])).stdout).toBe(runHelp.stdout);
    expect((await runCli(['help', 'status'])).stdout).toContain('sluice status [--config FILE] [--json]');
  });

  it.each([
    [['run', '--bogus'], /^sluice: USAGE: unknown option --bogus\n/],
    [['run', '--onse'], /^sluice: USAGE: unknown option --onse \(did you mean --once\?\)/],
    [[], /no command given/],
    [['launch'], /unknown command "launch"/],
    [['rnu'], /unknown command "rnu" \(did you mean run\?\)/],
    [['--version', 'extra'], /--version takes no other arguments/],
    [['help', 'nope'], /help: unknown command "nope"/],
    [['run', '--concurrency', 'many'], /--concurrency: got "many", expected a whole number/],
    [['run', '--metrics-port', '70000'], /metrics\.port: got 70000; Too big: expected number to be <=65535/],
  ])('exits 2 on %j', async (args, message) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('exits 2 on an invalid config file, naming the field', async () => {
    d = await makeDirs();
    const cfg = join(d.root, 'sluice.json');
    await writeFile(cfg, JSON.stringify({ batch: { size: 0 } }));
    const r = await runCli(['run', '--once', '--config', cfg, ...dirFlags(d)]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('batch.size: got 0; Too small: expected number to be >=1');
    await writeFile(cfg, JSON.stringify({ wach: './in' }));
    const r2 = await runCli(['run', '--once', '--config', cfg, ...dirFlags(d)]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain('unknown setting wach');
  });
});
