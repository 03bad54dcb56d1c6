// npm run bench:cores: every core (README Performance, "Every core").
//   node bench/cores.mjs [--runs 5]
// Whole processes, alternating rounds after one warm-up each, medians (wall, user, sys, peak RSS from
// /usr/bin/time): `sluice run --once` on the defaults (workers = CPUs) and with `--workers 1`, on 1M rows
// (one file, cut across the workers) and on 4 files of 250k rows (a file per worker); DuckDB on 2 threads
// doing the same filter to CSV (the cores check's script), and on 1 thread; two one-thread runs at once
// (what the machine gives two processes sharing nothing); and the floor, `grep -v` of the same rows. The
// outputs of both sluice runs are checked byte for byte against each other.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);
const data = join(ROOT, 'bench/.data');
mkdirSync(data, { recursive: true });
const input = (rows) => {
  const path = join(data, `gen-${rows}-5.csv`);
  if (!existsSync(path)) writeFileSync(path, execFileSync(process.execPath, [join(ROOT, 'test/fixtures/gen.mjs'), String(rows), '5'], { maxBuffer: 2 ** 31 }));
  return path;
};
const big = input(1_000_000);
const quarter = input(250_000);

function timed(cmd, args, options = {}) {
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %U %S %M', cmd, ...args], { encoding: 'utf8', maxBuffer: 2 ** 26, ...options });
  const m = /TIME (\S+) (\S+) (\S+) (\S+)\s*$/.exec(r.stderr ?? '');
  if (r.status !== 0 || m === null) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { wall: Number(m[1]), user: Number(m[2]), sys: Number(m[3]), rss: Number(m[4]) / 1024 };
}

const work = join(tmpdir(), `sluice-cores-${process.pid}`);
const digests = {};
function sluice(name, files, flags) {
  rmSync(work, { recursive: true, force: true });
  for (const d of ['watch', 'out', 'rejects', 'archive', 'failed']) mkdirSync(join(work, d), { recursive: true });
  for (const [i, f] of files.entries()) linkSync(f, join(work, 'watch', `f${i}.csv`));
  const dirs = ['watch', 'out', 'rejects', 'archive', 'failed'].flatMap((d) => [`--${d}`, join(work, d)]);
  const t = timed(process.execPath, [join(ROOT, 'dist/cli.js'), 'run', '--once', '--metrics-port', '0', ...dirs, ...flags]);
  const h = createHash('sha256');
  for (const f of readdirSync(join(work, 'out')).sort()) h.update(readFileSync(join(work, 'out', f)));
  digests[name] = h.digest('hex');
  return t;
}

// two independent one-thread runs at once, each on its own copy of the inbox: what this machine gives two
// processes that share nothing (the ceiling for any split of the work across its cores)
function pairAtOnce() {
  const cmds = [0, 1].map((k) => {
    const w = `${work}-pair${k}`;
    rmSync(w, { recursive: true, force: true });
    for (const d of ['watch', 'out', 'rejects', 'archive', 'failed']) mkdirSync(join(w, d), { recursive: true });
    linkSync(big, join(w, 'watch', 'f0.csv'));
    const dirs = ['watch', 'out', 'rejects', 'archive', 'failed'].map((d) => `--${d} ${join(w, d)}`).join(' ');
    return `${process.execPath} ${join(ROOT, 'dist/cli.js')} run --once --metrics-port 0 --workers 1 ${dirs} >/dev/null`;
  });
  const t = timed('/bin/sh', ['-c', `${cmds[0]} & ${cmds[1]}; wait`]);
  for (const k of [0, 1]) rmSync(`${work}-pair${k}`, { recursive: true, force: true });
  return t;
}

const duckdb = join(data, 'duck-filter.mjs');
writeFileSync(
  duckdb,
  `import { DuckDBInstance } from '@duckdb/node-api';
const [i, o] = process.argv.slice(2);
const db = await DuckDBInstance.create(':memory:', { threads: process.env.DUCK_THREADS ?? '2' }); const c = await db.connect();
const cols = ['id','ts','user','email','country','amount','qty','status','note','score'];
await c.run(\`COPY (SELECT * FROM read_csv('\${i}', header=true, all_varchar=true) WHERE \${cols.map((k) => \`"\${k}" IS NOT NULL\`).join(' AND ')}) TO '\${o}' (HEADER, DELIMITER ',')\`);
`,
);
const four = [quarter, quarter, quarter, quarter];
const contenders = {
  'big default': () => sluice('big default', [big], []),
  'big workers 1': () => sluice('big workers 1', [big], ['--workers', '1']),
  'four default': () => sluice('four default', four, []),
  'four workers 1': () => sluice('four workers 1', four, ['--workers', '1']),
  'duckdb 2 threads': () => timed(process.execPath, [duckdb, big, join(data, 'duck-out.csv')], { cwd: ROOT }),
  'duckdb 1 thread': () => timed(process.execPath, [duckdb, big, join(data, 'duck-out.csv')], { cwd: ROOT, env: { ...process.env, DUCK_THREADS: '1' } }),
  '2 runs of 1M rows at once, workers 1': pairAtOnce,
  'grep -v (floor)': () => timed('/bin/sh', ['-c', `grep -v -E '(^,|,,|,$)' ${big} > ${join(data, 'grep-out.csv')}`]),
};
const results = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
for (const f of Object.values(contenders)) f(); // warm-up
for (let r = 0; r < runs; r++) for (const [k, f] of Object.entries(contenders)) results[k].push(f());
if (digests['big default'] !== digests['big workers 1'] || digests['four default'] !== digests['four workers 1'])
  throw new Error('outputs differ between workers');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const m = (k, f) => median(results[k].map((x) => x[f]));
console.log(`machine: ${availableParallelism()} CPUs (${cpus()[0]?.model}), Node ${process.version}; ${runs} alternating rounds, medians`);
console.log('| run | wall s | user s | sys s | peak RSS MB |\n|---|---:|---:|---:|---:|');
for (const k of Object.keys(results))
  console.log(`| ${k} | ${m(k, 'wall').toFixed(2)} | ${m(k, 'user').toFixed(2)} | ${m(k, 'sys').toFixed(2)} | ${m(k, 'rss').toFixed(0)} |`);
console.log(
  `1M rows: default / workers 1 = ${(m('big default', 'wall') / m('big workers 1', 'wall')).toFixed(2)}; default / DuckDB = ${(m('big default', 'wall') / m('duckdb 2 threads', 'wall')).toFixed(2)}`,
);
console.log(`4 x 250k: default / workers 1 = ${(m('four default', 'wall') / m('four workers 1', 'wall')).toFixed(2)}`);
console.log(`DuckDB 2 threads / 1 thread = ${(m('duckdb 2 threads', 'wall') / m('duckdb 1 thread', 'wall')).toFixed(2)}`);
console.log(
  `the machine's ceiling: 2 runs at once / (2 x one run, workers 1) = ${(m('2 runs of 1M rows at once, workers 1', 'wall') / (2 * m('big workers 1', 'wall'))).toFixed(2)}`,
);
console.log('outputs: byte-identical with 1 and N workers');
rmSync(work, { recursive: true, force: true });
