// Metrics against real Prometheus tools: promtool lints a live scrape and checks the rules and config; a real
// Prometheus server scrapes a real daemon; counters after a known set of files are exact.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, cleanup, Daemon, dirFlags, type Dirs, freePort, list, makeDirs, runCli, waitFor } from '../e2e/harness.js';

const ROOT = resolve(import.meta.dirname, '../..');
const INSTALL = 'apt-get update && apt-get install -y prometheus';

function tool(name: string): string {
  const found = spawnSync('which', [name], { encoding: 'utf8' }).stdout.trim();
  if (found === '') throw new Error(`${name} is missing: run \`${INSTALL}\` (as root); .ci/run does this on CI`);
  return found;
}

let d: Dirs;
let prom: ChildProcess | undefined;
let promDir: string | undefined;
let child: ChildProcess | undefined;
afterEach(async () => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('close', r));
  }
  child = undefined;
  if (prom !== undefined) {
    prom.kill('SIGKILL');
    await new Promise((r) => prom!.once('close', r));
    prom = undefined;
  }
  if (promDir !== undefined) await rm(promDir, { recursive: true, force: true });
  promDir = undefined;
  await cleanup(d);
});

async function scrape(port: number, path = '/metrics'): Promise<{ status: number; body: string }> {
  // bounded: a server that does not answer fails the test with a reason instead of hanging it
  const r = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(15_000) });
  return { status: r.status, body: await r.text() };
}

/** The value of one sample line, e.g. sample(text, 'sluice_rows_total{pipeline="default",stage="read"}'). */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (line === undefined) throw new Error(`no sample ${series}`);
  return Number(line.slice(series.length + 1));
}

async function drop(name: string, content: string | Buffer): Promise<void> {
  await writeFile(join(d.root, name), content);
  await rename(join(d.root, name), join(d.watch, name));
}

const GOOD = 'id,name\n1,a\n2,\n3,c\n4,d\n,e\n';
const MALFORMED = 'id,name\n1,a\n2\n"3"x,c\n4,d\n';

describe('metrics', () => {
  it('counts a known set of files exactly, serves /healthz and /readyz, and passes promtool check metrics', async () => {
    const promtool = tool('promtool');
    d = await makeDirs();
    const port = await freePort();
    const daemon = await Daemon.start([
      ...dirFlags(d).filter((a, i, all) => a !== '--metrics-port' && all[i - 1] !== '--metrics-port'),
      '--metrics-port',
      String(port),
      '--settle-ms',
      '1',
    ]);
    expect((await scrape(port, '/readyz')).status).toBe(200);
    const health = await scrape(port, '/healthz');
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok' });
    expect((await scrape(port, '/nope')).status).toBe(404);
    // one file at a time, so each file's own counts are seen: read = written + filtered + rejected per file
    const stages = async (): Promise<Record<string, number>> => {
      const body = (await scrape(port)).body;
      return Object.fromEntries(
        ['read', 'written', 'filtered', 'rejected'].map((st) => [st, sample(body, `sluice_rows_total{pipeline="default",stage="${st}"}`)]),
      );
    };
    const files: Array<[string, string | Buffer, string, Record<string, number>]> = [
      ['good.csv', GOOD, 'succeeded"} 1', { read: 5, written: 3, filtered: 2, rejected: 0 }],
      ['bad.csv', MALFORMED, 'succeeded"} 2', { read: 4, written: 2, filtered: 0, rejected: 2 }],
      ['bin.csv', Buffer.from([0, 1, 2]), 'failed"} 1', { read: 0, written: 0, filtered: 0, rejected: 0 }],
    ];
    for (const [name, content, done, counts] of files) {
      const before = await stages();
      await drop(name, content);
      await waitFor(async () => (await scrape(port)).body.includes(`sluice_files_total{pipeline="default",outcome="${done}`), `${name} done`);
      const after = await stages();
      const delta = Object.fromEntries(Object.keys(after).map((st) => [st, after[st]! - before[st]!]));
      expect(delta, name).toEqual(counts);
      expect(delta.read, name).toBe(delta.written! + delta.filtered! + delta.rejected!);
    }
    const text = (await scrape(port)).body;
    const s = (series: string): number => sample(text, series);
    expect(s('sluice_files_total{pipeline="default",outcome="succeeded"}')).toBe(2);
    expect(s('sluice_files_total{pipeline="default",outcome="failed"}')).toBe(1);
    const rows = { read: 9, written: 5, filtered: 2, rejected: 2 };
    for (const [stage, n] of Object.entries(rows)) expect(s(`sluice_rows_total{pipeline="default",stage="${stage}"}`)).toBe(n);
    expect(rows.read).toBe(rows.written + rows.filtered + rows.rejected);
    expect(s('sluice_errors_total{pipeline="default",code="CSV_RECORD_INCONSISTENT_COLUMNS"}')).toBe(1);
    expect(s('sluice_errors_total{pipeline="default",code="CSV_INVALID_CLOSING_QUOTE"}')).toBe(1);
    expect(s('sluice_errors_total{pipeline="default",code="BINARY_FILE"}')).toBe(1);
    expect(s('sluice_bytes_read_total{pipeline="default"}')).toBe(GOOD.length + MALFORMED.length + 3);
    expect(s('sluice_file_duration_seconds_count{pipeline="default",outcome="succeeded"}')).toBe(2);
    expect(s('sluice_batch_rows_sum{pipeline="default"}')).toBe(5);
    expect(s('sluice_files_in_flight')).toBe(0);
    expect(s('sluice_rows_in_flight')).toBe(0);
    expect(s('sluice_inbox_files')).toBe(0);
    expect(s('sluice_sink_up{pipeline="default"}')).toBe(1);
    expect(s('sluice_build_info{version="0.1.0"}')).toBe(1);
    expect(text).toMatch(/^process_cpu_seconds_total /m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes /m);
    const lint = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(lint.stdout + lint.stderr).toBe('');
    expect(lint.status).toBe(0);
    expect(await daemon.stop()).toEqual({ code: 0, signal: null });
  });

  it('promtool: the rules and the scrape config are valid, and the alert unit tests pass', () => {
    const promtool = tool('promtool');
    const run = (...args: string[]) => spawnSync(promtool, args, { cwd: join(ROOT, 'metrics'), encoding: 'utf8' });
    const rules = run('check', 'rules', 'alerts.yml');
    expect(rules.stdout).toContain('SUCCESS: 7 rules found');
    expect(rules.status).toBe(0);
    const config = run('check', 'config', 'prometheus.yml');
    expect(config.status).toBe(0);
    const tests = run('test', 'rules', 'alerts.test.yml');
    expect(tests.stdout).toContain('SUCCESS');
    expect(tests.status).toBe(0);
  });

  it('a real Prometheus scraping a real daemon reads back sluice_rows_total equal to the rows processed', async () => {
    const prometheus = tool('prometheus');
    d = await makeDirs();
    const port = await freePort();
    const promPort = await freePort();
    promDir = await mkdtemp(join(tmpdir(), 'sluice-prom-'));
    await writeFile(
      join(promDir, 'prometheus.yml'),
      `global: { scrape_interval: 1s }\nscrape_configs:\n  - job_name: sluice\n    static_configs: [ { targets: ["127.0.0.1:${port}"] } ]\n`,
    );
    prom = spawn(
      prometheus,
      [`--config.file=${join(promDir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(promDir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`],
      { stdio: 'ignore' },
    );
    const daemon = await Daemon.start([
      ...dirFlags(d).filter((a, i, all) => a !== '--metrics-port' && all[i - 1] !== '--metrics-port'),
      '--metrics-port',
      String(port),
      '--settle-ms',
      '1',
    ]);
    const csv = execFileSync(process.execPath, [resolve(ROOT, 'test/fixtures/gen.mjs'), '5000', '5']);
    await drop('a.csv', csv);
    await drop('b.csv', GOOD);
    const expected = { written: 0, read: 0 };
    await waitFor(async () => /outcome="succeeded"\} 2/.test((await scrape(port)).body), 'both files done');
    const text = (await scrape(port)).body;
    expected.written = sample(text, 'sluice_rows_total{pipeline="default",stage="written"}');
    expected.read = sample(text, 'sluice_rows_total{pipeline="default",stage="read"}');
    expect(expected.read).toBe(5005);
    const query = async (q: string): Promise<number | undefined> => {
      try {
        const r = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as {
          data?: { result?: Array<{ value: [number, string] }> };
        };
        const v = r.data?.result?.[0]?.value[1];
        return v === undefined ? undefined : Number(v);
      } catch {
        return undefined;
      }
    };
    await waitFor(async () => (await query('sum(sluice_rows_total{stage="written"})')) === expected.written, 'Prometheus to scrape the final counters', 60_000);
    expect(await query('sum(sluice_rows_total{stage="read"})')).toBe(expected.read);
    expect(await query('sum(sluice_rows_total{stage="read"}) - sum(sluice_rows_total{stage=~"written|filtered|rejected"})')).toBe(0);
    expect(await query('up{job="sluice"}')).toBe(1);
    await daemon.stop();
  });

  it('/readyz is 503 while the daemon starts and while it drains, 200 in between; /healthz is 200 throughout', async () => {
    d = await makeDirs();
    const port = await freePort();
    // gate.mjs holds the start (its import waits for startGate) and holds each file's end (until hold exists)
    const startGate = join(d.root, 'start.gate');
    const hold = join(d.root, 'hold.gate');
    const cfg = join(d.root, 'sluice.yaml');
    const gate = join(import.meta.dirname, 'gate.mjs');
    await writeFile(
      cfg,
      [
        'pipelines:',
        '  - name: default',
        '    steps:',
        `      - module: { path: ${JSON.stringify(gate)}, options: { hold: ${JSON.stringify(hold)} } }`,
        '',
      ].join('\n'),
    );
    const flags = [
      ...dirFlags(d).filter((a, i, all) => a !== '--metrics-port' && all[i - 1] !== '--metrics-port'),
      '--metrics-port',
      String(port),
      '--settle-ms',
      '1',
    ];
    const c = spawn(process.execPath, [CLI, 'run', '--config', cfg, ...flags], {
      env: { ...process.env, SLUICE_TEST_START_GATE: startGate },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child = c;
    let stderr = '';
    c.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => c.once('close', (code, signal) => r({ code, signal })));
    const status = async (path: string): Promise<number> => {
      try {
        return (await scrape(port, path)).status;
      } catch {
        return 0; // not listening (yet, or any more)
      }
    };
    await waitFor(async () => (await status('/healthz')) === 200, 'the metrics server to listen');
    expect(await status('/readyz')).toBe(503);
    expect(sample((await scrape(port)).body, 'sluice_files_in_flight')).toBe(0);
    await writeFile(startGate, '');
    await waitFor(async () => (await status('/readyz')) === 200, '/readyz 200 once started');
    await drop('held.csv', GOOD);
    await waitFor(async () => /^sluice_files_in_flight 1$/m.test((await scrape(port)).body), 'the file to be in flight');
    c.kill('SIGTERM');
    await waitFor(async () => (await status('/readyz')) === 503, '/readyz 503 while draining');
    expect(await status('/healthz')).toBe(200);
    expect(sample((await scrape(port)).body, 'sluice_files_in_flight')).toBe(1);
    await writeFile(hold, '');
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(stderr).toBe('');
    expect(await list(d.archive)).toEqual(['held.csv']);
    expect(await status('/readyz')).toBe(0);
  });

  it('a metrics port in use is a clear startup error (exit 2), not a crash', async () => {
    d = await makeDirs();
    const port = await freePort();
    const blocker = createServer().listen(port, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    try {
      const r = await runCli([
        'run',
        '--once',
        ...dirFlags(d).filter((a, i, all) => a !== '--metrics-port' && all[i - 1] !== '--metrics-port'),
        '--metrics-port',
        String(port),
      ]);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(
        `sluice: METRICS_PORT_IN_USE: metrics.port: 127.0.0.1:${port} is already in use (choose another with --metrics-port, or 0 to turn the server off)\n`,
      );
    } finally {
      blocker.close();
    }
  });
});

describe('metrics of a batch job and a crowded server', () => {
  it('--once --metrics-textfile: a textfile that passes promtool, with the run counts and times; the last line sums the run up', async () => {
    d = await makeDirs();
    await writeFile(join(d.watch, 'a.csv'), GOOD);
    await writeFile(join(d.watch, 'm.csv'), MALFORMED);
    const textfile = join(d.root, 'sluice.prom');
    const before = Date.now() / 1000;
    const r = await runCli(['run', '--once', ...dirFlags(d), '--metrics-textfile', textfile]);
    expect(r.code).toBe(0);
    const text = await readFile(textfile, 'utf8');
    const lint = spawnSync(tool('promtool'), ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(lint.stdout + lint.stderr).toBe('');
    expect(lint.status).toBe(0);
    expect(sample(text, 'sluice_files_total{pipeline="default",outcome="succeeded"}')).toBe(2);
    expect(sample(text, 'sluice_rows_total{pipeline="default",stage="read"}')).toBe(9);
    expect(sample(text, 'sluice_rows_total{pipeline="default",stage="written"}')).toBe(5);
    expect(sample(text, 'sluice_errors_total{pipeline="default",code="CSV_RECORD_INCONSISTENT_COLUMNS"}')).toBe(1);
    expect(sample(text, 'sluice_errors_total{pipeline="default",code="BINARY_FILE"}')).toBe(0);
    expect(sample(text, 'sluice_run_success')).toBe(1);
    expect(sample(text, 'sluice_run_exit_code')).toBe(0);
    const start = sample(text, 'sluice_run_start_timestamp_seconds');
    expect(start).toBeGreaterThanOrEqual(Math.floor(before) - 1);
    expect(sample(text, 'sluice_run_end_timestamp_seconds')).toBeGreaterThanOrEqual(start);
    expect((await list(d.root)).filter((n) => n.includes('.tmp'))).toEqual([]);
    const last = JSON.parse(r.stdout.trimEnd().split('\n').at(-1)!) as Record<string, unknown>;
    expect(last).toMatchObject({
      msg: 'run finished',
      files: { succeeded: 2, failed: 0 },
      rows: { read: 9, written: 5, filtered: 2, rejected: 2 },
      exitCode: 0,
    });
    expect(last.summary).toMatch(/^2 files: 2 succeeded, 0 failed; rows: 9 read = 5 written \+ 2 filtered \+ 2 rejected; /);
  });

  it('counts the files that wait for a sink that is down (sluice_files_waiting_for_sink), with sluice_sink_up at 0', async () => {
    d = await makeDirs();
    const port = await freePort();
    const dbPort = await freePort(); // nothing listens there
    const cfg = join(d.root, 'sluice.yaml');
    await writeFile(cfg, `pipelines:\n  - name: db\n    output: { format: postgres, table: t, url: "postgres://u@127.0.0.1:${dbPort}/x" }\n`);
    const daemon = await Daemon.start(['--settle-ms', '0', '--config', cfg, ...dirFlags(d).slice(0, -2), '--metrics-port', String(port)]);
    const before = (await scrape(port)).body;
    expect(sample(before, 'sluice_files_waiting_for_sink{pipeline="db"}')).toBe(0);
    await drop('a.csv', GOOD);
    await drop('b.csv', GOOD);
    await waitFor(async () => sample((await scrape(port)).body, 'sluice_files_waiting_for_sink{pipeline="db"}') === 2, 'two files waiting for the database');
    expect(sample((await scrape(port)).body, 'sluice_sink_up{pipeline="db"}')).toBe(0);
    expect((await daemon.stop()).code).toBe(0);
    // on the stop, the waiting files went back to the inbox
    expect(await list(d.watch)).toEqual(['a.csv', 'b.csv']);
  });

  it('1,100 idle connections under a 1,024 file limit do not stop files from being processed or /healthz from answering', async () => {
    d = await makeDirs();
    const port = await freePort();
    const sh = `ulimit -n 1024 && exec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} run --settle-ms 0 ${dirFlags(d)
      .slice(0, -2)
      .map((a) => JSON.stringify(a))
      .join(' ')} --metrics-port ${port}`;
    child = spawn('bash', ['-c', sh], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    await waitFor(() => out.includes('"sluice started"'), 'the daemon to start');
    // two helper processes hold 550 idle connections each (no request sent)
    const holders = [0, 1].map(() => {
      // in waves of 50, each awaited (connected, or closed by the server): no wave overflows the listen backlog
      const c = spawn(
        process.execPath,
        [
          '-e',
          `const net = require('net');
        const one = () => new Promise((res) => { const s = net.connect(${port}, '127.0.0.1', res); s.on('error', res); s.on('close', res); });
        (async () => { for (let w = 0; w < 11; w++) await Promise.all(Array.from({ length: 50 }, one)); console.log('connected'); })();
        setInterval(() => {}, 1000);`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      return c;
    });
    try {
      let connected = 0;
      for (const c of holders) c.stdout!.on('data', (b: Buffer) => void (b.toString().includes('connected') && connected++));
      await waitFor(() => connected === 2, 'the 1,100 idle connections to be made');
      await drop('x.csv', GOOD);
      await waitFor(async () => (await list(d.archive)).includes('x.csv'), 'x.csv to be processed among the idle connections');
      const h = await scrape(port, '/healthz').catch((e: unknown) => {
        throw new Error(`healthz: ${String(e)}`);
      });
      expect(h.status).toBe(200);
      // the input is archived a moment before the file is counted (the receipt, the log line, then the
      // counters): the count is awaited, not assumed at the archive
      await waitFor(
        async () => (await scrape(port, '/metrics')).body.includes('sluice_files_total{pipeline="default",outcome="succeeded"} 1'),
        'x.csv to be counted as succeeded',
      );
    } finally {
      for (const c of holders) c.kill('SIGKILL');
    }
    child.kill('SIGTERM');
    let code: number | null | undefined;
    child.once('close', (c) => (code = c));
    await waitFor(() => code !== undefined, 'the daemon to stop on SIGTERM');
    expect(code).toBe(0);
  });
});
