#!/usr/bin/env node
// Memory benchmark: peak RSS and throughput must stay flat in the file's size, with a fast and a slow sink.
//
//   npm run bench:memory                      1M rows (~100 MB) and 10M rows (~1 GB), both sinks
//   node bench/memory.mjs --rows 5000000      other sizes (comma-separated)
//   node bench/memory.mjs --only cli          only the real CLI (`--only throttled` for the slow sink)
//   node bench/memory.mjs --mbps 5            the throttled sink's rate (MB/s of CSV written), default 5
//
// Inputs come from test/fixtures/gen.mjs, the repository's copy of the reference generator (or $SLUICE_BENCH_GEN; deterministic) into bench/.data/ (gitignored), made once.
// (a) cli:       `node dist/cli.js run --once` on an inbox holding the file (defaults: dropna, CSV out,
//                fsync on, batch 1000 rows, highWaterMark 4096), under /usr/bin/time -v.
// (b) throttled: this script as a child (`--child`): processFile from dist/index.js with the same settings
//                and a sink that writes the CSV file and then waits so it never exceeds --mbps.
// Peak RSS is the child's "Maximum resident set size" (/usr/bin/time -v), or its own maxRSS in (b).
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, linkSync, mkdirSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const dataDir = join(here, '.data');
const gen = process.env.SLUICE_BENCH_GEN ?? resolve(root, 'test/fixtures/gen.mjs');
const TIME = '/usr/bin/time';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000,10000000' },
    only: { type: 'string' },
    mbps: { type: 'string', default: '5' },
    child: { type: 'string' },
    out: { type: 'string' },
  },
});

if (values.child !== undefined) {
  await child(values.child, values.out, Number(values.mbps));
} else {
  main();
}

function main() {
  if (!existsSync(join(root, 'dist/cli.js'))) throw new Error('dist/ is missing: run npm run build first');
  const sizes = values.rows.split(',').map(Number);
  const modes = values.only === undefined ? ['cli', 'throttled'] : [values.only];
  const results = [];
  console.log(`node ${process.version}, ${cpus().length} cores; rows x ~100 bytes; peak RSS of the process that runs the pipeline`);
  for (const mode of modes) {
    for (const rows of sizes) {
      const input = ensureInput(rows);
      const r = mode === 'cli' ? runCli(input) : runThrottled(input, Number(values.mbps));
      const mb = statSync(input).size / 1e6;
      const line = {
        mode: mode === 'cli' ? 'cli --once (CSV sink)' : `throttled sink ${values.mbps} MB/s`,
        rows,
        inputMB: Math.round(mb),
        peakRssMB: Math.round(r.peakKB / 1024),
        seconds: Number(r.seconds.toFixed(1)),
        inputMBps: Number((mb / r.seconds).toFixed(1)),
        rowsPerSec: Math.round(rows / r.seconds),
      };
      results.push(line);
      console.log(JSON.stringify(line));
    }
  }
  console.log('');
  console.log('| sink | rows | input | peak RSS | wall | input rate | rows/s |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    console.log(
      `| ${r.mode} | ${r.rows.toLocaleString('en')} | ${r.inputMB} MB | ${r.peakRssMB} MB | ${r.seconds} s | ${r.inputMBps} MB/s | ${r.rowsPerSec.toLocaleString('en')} |`,
    );
  }
  const worst = Math.max(...results.map((r) => r.peakRssMB));
  console.log(`\nworst peak RSS: ${worst} MB (target < 150 MB)`);
  process.exitCode = worst < 150 ? 0 : 1;
}

/** bench/.data/rows-N.csv, generated once (written under a temporary name, then renamed). */
function ensureInput(rows) {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, `rows-${rows}.csv`);
  if (existsSync(file)) return file;
  console.log(`generating ${file} ...`);
  const part = `${file}.part`;
  const fd = openSync(part, 'w');
  try {
    const r = spawnSync(process.execPath, [gen, String(rows)], { stdio: ['ignore', fd, 'inherit'] });
    if (r.status !== 0) throw new Error(`gen.mjs failed (${r.status})`);
  } finally {
    closeSync(fd);
  }
  renameSync(part, file);
  return file;
}

/** Fresh folders on the data's filesystem, the input hard-linked into the inbox. */
function workDirs(input) {
  const w = join(dataDir, `run-${process.pid}`);
  rmSync(w, { recursive: true, force: true });
  const d = { root: w, watch: join(w, 'watch'), out: join(w, 'out'), rejects: join(w, 'rejects'), archive: join(w, 'archive'), failed: join(w, 'failed') };
  for (const p of Object.values(d)) mkdirSync(p, { recursive: true });
  linkSync(input, join(d.watch, 'input.csv'));
  return d;
}

/** Runs argv under /usr/bin/time -v when present; returns wall seconds and the peak RSS (KB). */
function timed(argv) {
  const useTime = existsSync(TIME);
  const t0 = performance.now();
  const r = spawnSync(useTime ? TIME : argv[0], useTime ? ['-v', ...argv] : argv.slice(1), { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  const self = /^peakRssKB=(\d+)$/m.exec(r.stdout);
  const peakKB = m !== null ? Number(m[1]) : self !== null ? Number(self[1]) : NaN;
  return { seconds, peakKB, stdout: r.stdout };
}

function runCli(input) {
  const d = workDirs(input);
  try {
    const r = timed([
      process.execPath,
      join(root, 'dist/cli.js'),
      'run',
      '--once',
      '--watch',
      d.watch,
      '--out',
      d.out,
      '--rejects',
      d.rejects,
      '--archive',
      d.archive,
      '--failed',
      d.failed,
      '--metrics-port',
      '0',
    ]);
    if (!existsSync(join(d.out, 'input.csv'))) throw new Error('the CLI run left no output');
    return r;
  } finally {
    rmSync(d.root, { recursive: true, force: true });
  }
}

function runThrottled(input, mbps) {
  const d = workDirs(input);
  try {
    return timed([process.execPath, fileURLToPath(import.meta.url), '--child', join(d.watch, 'input.csv'), '--out', d.out, '--mbps', String(mbps)]);
  } finally {
    rmSync(d.root, { recursive: true, force: true });
  }
}

/** The child: one file through processFile (the daemon's settings) into a sink throttled to `mbps`. */
async function child(input, out, mbps) {
  const lib = await import(pathToFileURL(join(root, 'dist/index.js')).href);
  const rate = mbps * 1e6; // bytes per second
  let bytes = 0;
  let t0;
  const throttled = (inner) => ({
    async write(b) {
      await inner.write(b);
      t0 ??= performance.now();
      for (const row of b.rows) {
        bytes += row.length; // delimiters and line end
        for (const f of row) bytes += f.length;
      }
      const due = t0 + (bytes / rate) * 1000;
      const now = performance.now();
      if (due > now) await sleep(due - now);
    },
    commit: () => inner.commit(),
    stage: inner.stage === undefined ? undefined : (info) => inner.stage(info),
    abort: () => inner.abort(),
  });
  const started = performance.now();
  const report = await lib.processFile(input, 'input.csv', {
    outDir: out,
    rejectsDir: out,
    csv: {},
    steps: [lib.dropNulls({ how: 'any' })],
    batch: { size: 1000, maxWaitMs: 1000 },
    highWaterMark: 4096,
    fsync: true,
    tempTag: 'bench',
    sink: (_ctx, file) => throttled(lib.csvFileSink(out, 'input.csv', file)),
  });
  if (report.outcome !== 'succeeded') throw new Error(`failed: ${report.error?.message}`);
  const seconds = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ rows: report.rows, seconds, writtenMBps: bytes / 1e6 / seconds }));
  console.log(`peakRssKB=${process.resourceUsage().maxRSS}`);
}
