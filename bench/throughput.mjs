// npm run bench:throughput: the 1M-row throughput figures of docs/throughput.md.
//   node bench/throughput.mjs [--rows 1000000] [--runs 5] [--skip-parse]
// 1. Whole processes, alternating rounds after one warm-up each (so drift hits all alike): `sluice run --once`,
//    the plain pandas script (Debian's python3-pandas; skipped with a note when absent), and the bare Node
//    pipeline csv-parse -> drop rows with an empty field -> csv-stringify (bench/bare-pipeline.mjs). Wall,
//    user and sys seconds and peak RSS come from /usr/bin/time; the ratios are taken round by round and
//    their median printed. sluice's output is checked byte for byte against the bare pipeline's.
// 2. The parse alone, in this process: the fast tokenizer against csv-parse (CsvRecordReader) on the same
//    bytes in 64 KiB chunks, as the file source delivers them.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '5' },
    'skip-parse': { type: 'boolean', default: false },
  },
});
const rows = Number(values.rows);
const runs = Number(values.runs);
const gen = join(ROOT, 'test/fixtures/gen.mjs');
const data = join(ROOT, 'bench/.data');
mkdirSync(data, { recursive: true });
const input = join(data, `gen-${rows}-5.csv`);
if (!existsSync(input)) writeFileSync(input, execFileSync(process.execPath, [gen, String(rows), '5'], { maxBuffer: 2 ** 31 }));
const bytes = statSync(input).size;
const mb = bytes / 1e6;
const python = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import pandas'], { stdio: 'ignore' }).status === 0);
const pandasVersion = python === undefined ? undefined : execFileSync(python, ['-c', 'import pandas; print(pandas.__version__)'], { encoding: 'utf8' }).trim();

/** One whole process under /usr/bin/time: wall, user, sys seconds and peak RSS in MB. */
function timed(cmd, args) {
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %U %S %M', cmd, ...args], { encoding: 'utf8', maxBuffer: 2 ** 26 });
  const m = /TIME (\S+) (\S+) (\S+) (\S+)\s*$/.exec(r.stderr ?? '');
  if (r.status !== 0 || m === null) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { wall: Number(m[1]), user: Number(m[2]), sys: Number(m[3]), rss: Number(m[4]) / 1024 };
}

const work = join(tmpdir(), `sluice-throughput-${process.pid}`);
const sluiceDirs = ['watch', 'out', 'rejects', 'archive', 'failed'];
function sluice() {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'watch'), { recursive: true });
  linkSync(input, join(work, 'watch', 'big.csv'));
  const dirs = sluiceDirs.flatMap((d) => [`--${d}`, join(work, d)]);
  return timed(process.execPath, [join(ROOT, 'dist/cli.js'), 'run', '--once', '--metrics-port', '0', ...dirs]);
}
const bareOut = join(data, 'bare-out.csv');
const pandasOut = join(data, 'pandas-out.csv');
const contenders = {
  sluice,
  ...(python === undefined ? {} : { pandas: () => timed(python, [join(ROOT, 'bench/pandas-dropna.py'), input, pandasOut]) }),
  bare: () => timed(process.execPath, [join(ROOT, 'bench/bare-pipeline.mjs'), input, bareOut]),
};
if (python === undefined) console.log('pandas skipped: python3 with pandas not found (Debian: apt-get install python3-pandas)');

for (const f of Object.values(contenders)) f(); // warm-up: page cache, code caches
const sha = (p) => createHash('sha256').update(readFileSync(p)).digest('hex');
const outs = readdirSync(join(work, 'out'));
const identical = outs.length === 1 && sha(join(work, 'out', outs[0])) === sha(bareOut);

const results = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
for (let i = 0; i < runs; i++) for (const [k, f] of Object.entries(contenders)) results[k].push(f());
rmSync(work, { recursive: true, force: true });

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (x, d = 2) => x.toFixed(d);
console.log(
  `machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), ${fmt(totalmem() / 2 ** 30, 1)} GiB, Node ${process.version}${pandasVersion ? `, pandas ${pandasVersion}` : ''}`,
);
console.log(
  `workload: ${rows.toLocaleString('en')} rows, ${fmt(mb, 0)} MB (gen.mjs ${rows} 5); ${runs} alternating rounds after a warm-up; medians (min-max wall)`,
);
console.log('| contender | wall s | min-max | user s | sys s | MB/s | rows/s | peak RSS MB |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const [k, rs] of Object.entries(results)) {
  const w = median(rs.map((r) => r.wall));
  const walls = rs.map((r) => r.wall);
  console.log(
    `| ${k} | ${fmt(w)} | ${fmt(Math.min(...walls))}-${fmt(Math.max(...walls))} | ${fmt(median(rs.map((r) => r.user)))} | ${fmt(median(rs.map((r) => r.sys)))} | ${fmt(mb / w, 0)} | ${Math.round(rows / w).toLocaleString('en')} | ${fmt(median(rs.map((r) => r.rss)), 0)} |`,
  );
}
const ratio = (a, b) => median(results[a].map((r, i) => r.wall / results[b][i].wall));
if (results.pandas) console.log(`sluice / pandas (median of per-round ratios): ${fmt(ratio('sluice', 'pandas'))}`);
console.log(`sluice / bare csv-parse pipeline (median of per-round ratios): ${fmt(ratio('sluice', 'bare'))}`);
console.log(`sluice's output byte-identical to the bare pipeline's: ${identical ? 'yes' : 'NO'}`);

if (!values['skip-parse']) {
  // the parse alone: same bytes, 64 KiB chunks, a handler that only counts
  const { FastCsvReader } = await import(join(ROOT, 'dist/csv/fast-reader.js'));
  const { CsvRecordReader } = await import(join(ROOT, 'dist/csv/record-reader.js'));
  const buf = readFileSync(input);
  const parse = (Reader) => {
    let records = 0;
    const reader = new Reader({ record: () => void records++, reject: () => void records++ }, {});
    const t0 = performance.now();
    for (let at = 0; at < buf.length; at += 65536) reader.write(buf.subarray(at, at + 65536));
    reader.end();
    return { ms: performance.now() - t0, records };
  };
  const fast = [];
  const slow = [];
  for (let i = 0; i < 3; i++) {
    fast.push(parse(FastCsvReader));
    slow.push(parse(CsvRecordReader));
  }
  if (fast[0].records !== slow[0].records) throw new Error('the readers disagree on the record count');
  const f = median(fast.map((r) => r.ms));
  const s = median(slow.map((r) => r.ms));
  console.log(
    `parse alone (in process, 64 KiB chunks, median of 3): fast path ${fmt(f / 1000)} s (${fmt(mb / (f / 1000), 0)} MB/s), csv-parse ${fmt(s / 1000)} s (${fmt(mb / (s / 1000), 0)} MB/s), ratio ${fmt(f / s)}`,
  );
}
