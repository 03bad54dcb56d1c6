// npm run bench: sluice --once against the plain pandas script and a bare csv-parse stream pipeline on the
// reference workload, alternating runs, then many small files into a running daemon. Prints medians.
//   node bench/run.mjs [--rows 1000000] [--runs 5] [--files 10000] [--rate 500] [--skip-small] [--skip-large]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');
// the repository's copy of the reference workload generator (test/fixtures/gen.mjs): a clone needs nothing else
const GEN = resolve(ROOT, 'test/fixtures/gen.mjs');
const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '5' },
    files: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '500' },
    'skip-small': { type: 'boolean', default: false },
    'skip-large': { type: 'boolean', default: false },
  },
});
if (!values['skip-large']) await large();
if (!values['skip-small']) await smallFiles(Number(values.files), Number(values.rate));

/**
 * Many small files into one running daemon (default settings: 2 s settle, fsync on), in two parts:
 * - burst: N files of 20 rows renamed into the inbox at once (written beforehand, so they are settled on
 *   arrival): files/s from the first rename to the last output;
 * - paced: N more, each written then renamed at `rate` files/s (fresh files: each waits the settle time):
 *   drop-to-output latency p50/p99, less the settle time, against the target of 1 s.
 */
async function smallFiles(n, rate) {
  const t = join(tmpdir(), `sluice-bench-small-${process.pid}`);
  rmSync(t, { recursive: true, force: true });
  for (const d of ['stage', 'watch']) mkdirSync(join(t, d), { recursive: true });
  const one = execFileSync(process.execPath, [GEN, '20', '0']);
  for (let i = 1; i <= n; i++) writeFileSync(join(t, 'stage', `s${i}.csv`), one);
  const dirs = ['watch', 'out', 'rejects', 'archive', 'failed'].flatMap((d) => [`--${d}`, join(t, d)]);
  const daemon = spawn(process.execPath, [join(ROOT, 'dist/cli.js'), 'run', '--metrics-port', '0', ...dirs], { stdio: ['ignore', 'pipe', 'inherit'], cwd: t });
  const done = new Map();
  let buf = '';
  let started = false;
  daemon.stdout.setEncoding('utf8');
  daemon.stdout.on('data', (chunk) => {
    buf += chunk;
    const lines = buf.split('\n');
    buf = lines.pop();
    for (const l of lines) {
      if (l.includes('"file processed"')) done.set(JSON.parse(l).file, Date.now());
      else if (l.includes('"sluice started"')) started = true;
    }
  });
  const waitFor = async (count) => {
    while (done.size < count) await new Promise((r) => setTimeout(r, 20));
  };
  while (!started) await new Promise((r) => setTimeout(r, 20));

  const t0 = Date.now();
  for (let i = 1; i <= n; i++) renameSync(join(t, 'stage', `s${i}.csv`), join(t, 'watch', `s${i}.csv`));
  await waitFor(n);
  const burst = n / ((Date.now() - t0) / 1000);

  const dropped = new Map();
  const p0 = Date.now();
  for (let i = 1; i <= n; i++) {
    // hold the pace: drop file i at p0 + i / rate
    const due = p0 + (i * 1000) / rate;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    const name = `p${i}.csv`;
    writeFileSync(join(t, 'stage', name), one);
    renameSync(join(t, 'stage', name), join(t, 'watch', name));
    dropped.set(name, Date.now());
  }
  await waitFor(2 * n);
  const latencies = [...dropped].map(([name, at]) => done.get(name) - at).sort((a, b) => a - b);
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.on('close', r));
  rmSync(t, { recursive: true, force: true });
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))];
  console.log(`small files, burst: ${n} files of 20 rows renamed into a running daemon at once: ${burst.toFixed(0)} files/s`);
  console.log(
    `small files, paced: ${n} files written and renamed at ${rate} files/s: drop-to-output latency p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms (settle time 2000 ms: p99 less settle ${pct(0.99) - 2000} ms)`,
  );
}

async function large() {
  const rows = Number(values.rows);
  const runs = Number(values.runs);
  const data = join(ROOT, 'bench/.data');
  mkdirSync(data, { recursive: true });
  const input = join(data, `gen-${rows}-5.csv`);
  if (!existsSync(input)) writeFileSync(input, execFileSync(process.execPath, [GEN, String(rows), '5'], { maxBuffer: 2 ** 31 }));
  const mb = statSync(input).size / 1e6;
  const python = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import pandas'], { stdio: 'ignore' }).status === 0);

  /** Runs a command under /usr/bin/time: wall seconds and peak RSS in MB. */
  function timed(cmd, args, env = {}) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
    const kb = Number(r.stderr.trim().split('\n').pop());
    return { wall, rss: kb / 1024 };
  }

  function sluiceOnce(metrics = false) {
    const t = join(tmpdir(), `sluice-bench-${process.pid}`);
    rmSync(t, { recursive: true, force: true });
    mkdirSync(join(t, 'watch'), { recursive: true });
    linkSync(input, join(t, 'watch', 'big.csv'));
    const dirs = ['watch', 'out', 'rejects', 'archive', 'failed'].flatMap((d) => [`--${d}`, join(t, d)]);
    // with metrics: the server on an ephemeral-range port, every counter and histogram updated as in a daemon
    const port = metrics ? String(20000 + (process.pid % 20000)) : '0';
    const r = timed(process.execPath, [join(ROOT, 'dist/cli.js'), 'run', '--once', '--metrics-port', port, ...dirs]);
    rmSync(t, { recursive: true, force: true });
    return r;
  }
  const out = join(data, 'out.csv');
  const contenders = {
    sluice: () => sluiceOnce(false),
    'sluice with metrics': () => sluiceOnce(true),
    ...(python === undefined ? {} : { pandas: () => timed(python, [join(ROOT, 'bench/pandas-dropna.py'), input, out]) }),
    bare: () => timed(process.execPath, [join(ROOT, 'bench/bare-pipeline.mjs'), input, out]),
  };
  if (python === undefined) console.log('python3 with pandas not found (Debian: apt-get install python3-pandas): pandas skipped');

  const results = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
  for (const f of Object.values(contenders)) f(); // warm-up: page cache, module cache
  for (let i = 0; i < runs; i++) for (const [k, f] of Object.entries(contenders)) results[k].push(f());
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const med = Object.fromEntries(Object.entries(results).map(([k, rs]) => [k, { wall: median(rs.map((r) => r.wall)), rss: median(rs.map((r) => r.rss)) }]));
  console.log(`machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}`);
  console.log(`workload: ${rows.toLocaleString('en')} rows, ${mb.toFixed(0)} MB (gen.mjs ${rows} 5), ${runs} alternating runs each, medians`);
  console.log('| contender | wall s | MB/s | rows/s | peak RSS MB |');
  console.log('|---|---:|---:|---:|---:|');
  for (const [k, m] of Object.entries(med))
    console.log(`| ${k} | ${m.wall.toFixed(2)} | ${(mb / m.wall).toFixed(0)} | ${Math.round(rows / m.wall).toLocaleString('en')} | ${m.rss.toFixed(0)} |`);
  if (med.pandas) console.log(`sluice / pandas: ${(med.sluice.wall / med.pandas.wall).toFixed(2)}`);
  console.log(`sluice / bare csv-parse pipeline: ${(med.sluice.wall / med.bare.wall).toFixed(2)}`);
  console.log(`metrics on / off: ${(med['sluice with metrics'].wall / med.sluice.wall).toFixed(2)} (counts are per batch and per file, never per row)`);
}
