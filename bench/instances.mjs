// Several daemons on one inbox and state folder, on their defaults (no --instance-id: each takes a free slot).
//   1. small files: N files of 20 rows renamed at once into 1, 2 and 3 running daemons: files/s from the first
//      rename to the last "file processed" line (all inputs archived);
//   2. takeover: 2 daemons, 20 large files dropped, the first daemon SIGKILLed while it holds claims: seconds
//      from the kill until its claim folder is gone and every file it held is archived (by the survivor),
//      against the goal of 5 s (instances.checkMs default 1000 ms).
// Contenders alternate within each round; every run is checked (archive, out/, receipts, exit codes). Medians.
//   node bench/instances.mjs [--runs 3] [--files 10000] [--instances 1,2,3] [--big-files 20] [--big-rows 200000]
//                            [--skip-small] [--skip-kill] [--keep] [--cli dist/cli.js]
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');

const GEN = join(ROOT, 'test/fixtures/gen.mjs');
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    files: { type: 'string', default: '10000' },
    instances: { type: 'string', default: '1,2,3' },
    'big-files': { type: 'string', default: '20' },
    'big-rows': { type: 'string', default: '200000' },
    'skip-small': { type: 'boolean', default: false },
    'skip-kill': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    // another build of the CLI (a snapshot: this checkout's dist/ may be rebuilt while the benchmark runs)
    cli: { type: 'string', default: join(ROOT, 'dist/cli.js') },
  },
});
const CLI = resolve(values.cli);
const RUNS = Number(values.runs);
const FILES = Number(values.files);
const COUNTS = values.instances.split(',').map(Number);
const BIG_FILES = Number(values['big-files']);
const BIG_ROWS = Number(values['big-rows']);
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: cd ${ROOT} && npm run build`);

const BASE = join(tmpdir(), `sluice-bench-instances-${process.pid}`);
rmSync(BASE, { recursive: true, force: true });
mkdirSync(BASE, { recursive: true });
const SMALL = execFileSync(process.execPath, [GEN, '20', '0']);
const bigPath = join(BASE, 'big.csv');
if (!values['skip-kill']) writeFileSync(bigPath, execFileSync(process.execPath, [GEN, String(BIG_ROWS), '0'], { maxBuffer: 2 ** 31 }));

let TICKS = 100;
try {
  TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100;
} catch {
  // not Linux: CPU times are not shown
}
/** User + system CPU seconds of a live process (Linux /proc), or NaN. */
function cpuSeconds(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / TICKS;
  } catch {
    return NaN;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();
/** Problems found by the checks: printed at once, and the exit code is 1 at the end. */
const failures = [];
/** warn and error log lines of every daemon, by contender and message: `contender: level msg` -> count. */
const notes = new Map();

function fail(what, dir) {
  const line = `FAIL ${what}${dir === undefined ? '' : ` (folders kept: ${dir})`}`;
  failures.push(line);
  console.error(line);
}

/** Waits until `cond()` holds (checked every `every` ms); false at the deadline. */
async function until(cond, timeoutMs, every = 20) {
  const end = now() + timeoutMs;
  while (!cond()) {
    if (now() > end) return false;
    await sleep(every);
  }
  return true;
}

function freshDirs(name) {
  const root = join(BASE, name);
  rmSync(root, { recursive: true, force: true });
  for (const d of ['stage', 'watch']) mkdirSync(join(root, d), { recursive: true });
  const dirs = Object.fromEntries(['watch', 'out', 'rejects', 'archive', 'failed'].map((d) => [d, join(root, d)]));
  return { root, ...dirs, stage: join(root, 'stage'), state: join(root, '.sluice'), flags: Object.entries(dirs).flatMap(([k, v]) => [`--${k}`, v]) };
}

/** `sluice run` on its defaults, plus no settle time and no metrics server (several share one host). */
function startDaemon(d, contender, onProcessed = () => undefined) {
  const child = spawn(process.execPath, [CLI, 'run', '--settle-ms', '0', '--metrics-port', '0', ...d.flags], {
    cwd: d.root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p = { child, instance: undefined, processed: 0, stderr: '', lines: [], exit: undefined };
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    buf += chunk;
    const lines = buf.split('\n');
    buf = lines.pop();
    for (const l of lines) {
      if (l.includes('"msg":"file processed"')) {
        p.processed++;
        onProcessed(l);
        continue;
      }
      let j;
      try {
        j = JSON.parse(l);
      } catch {
        fail(`${contender}: a stdout line that is not JSON: ${l.slice(0, 200)}`);
        continue;
      }
      j.at = now();
      p.lines.push(j);
      if (j.msg === 'sluice started') p.instance = j.instance;
      if (j.level === 'warn' || j.level === 'error') {
        const k = `${contender}: ${j.level} ${j.msg}`;
        notes.set(k, (notes.get(k) ?? 0) + 1);
      }
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s) => (p.stderr += s));
  p.exited = new Promise((r) => child.on('close', (code, signal) => r((p.exit = { code, signal }))));
  return p;
}

async function started(ps, contender, d) {
  const ok = await until(() => ps.every((p) => p.instance !== undefined || p.exit !== undefined), 30_000);
  const bad = ps.filter((p) => p.instance === undefined);
  if (!ok || bad.length > 0) {
    for (const p of ps) p.child.kill('SIGKILL');
    throw new Error(`${contender}: a daemon did not start: ${bad.map((p) => `${JSON.stringify(p.exit)} ${p.stderr}`).join('; ')} (${d.root})`);
  }
  const ids = ps.map((p) => p.instance);
  if (new Set(ids).size !== ids.length) fail(`${contender}: two daemons took one instance id: ${ids.join(', ')}`, d.root);
}

/** SIGTERM, and the exit status must be 0 with nothing on stderr. */
async function stop(p, contender, d) {
  const t = now();
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 60_000);
  const { code, signal } = await p.exited;
  clearTimeout(timer);
  const took = (now() - t) / 1000;
  if (took > 2) {
    const k = `${contender}: took more than 2 s to exit on SIGTERM (with nothing left to do)`;
    notes.set(k, (notes.get(k) ?? 0) + 1);
    console.log(`    note: ${p.instance} took ${took.toFixed(1)} s to exit on SIGTERM`);
  }
  if (code !== 0) fail(`${contender}: daemon ${p.instance} exited ${code ?? signal} on SIGTERM; stderr: ${p.stderr.trim().slice(0, 500)}`, d.root);
  else if (p.stderr.trim() !== '') fail(`${contender}: daemon ${p.instance} wrote on stderr: ${p.stderr.trim().slice(0, 500)}`, d.root);
}

function walk(dir, rel = '') {
  let out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const r = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) out = out.concat(walk(join(dir, e.name), r));
    else out.push(r);
  }
  return out;
}

/**
 * Every input exactly once: archived, an output of the same name (and bytes: no row has a null, so the
 * output is the input), no failure, one succeeded receipt each, nothing left claimed or locked.
 */
function verify(d, names, contender, inputBytes) {
  const problems = [];
  const want = [...names].sort();
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const archive = readdirSync(d.archive).sort();
  if (!same(archive, want)) problems.push(`archive/ holds ${archive.length} files, expected the ${want.length} inputs`);
  const out = readdirSync(d.out).sort();
  if (!same(out, want))
    problems.push(
      `out/ holds ${out.length} entries (${out
        .filter((n) => !names.has(n))
        .slice(0, 5)
        .join(', ')}${out.length > want.length ? ' …' : ''}), expected exactly the ${want.length} input names`,
    );
  else {
    const wrong = want.filter((n) => statSync(join(d.out, n)).size !== inputBytes.length);
    if (wrong.length > 0) problems.push(`${wrong.length} outputs differ in size from their input (${wrong.slice(0, 3).join(', ')})`);
    for (const n of [want[0], want[want.length - 1]]) if (!readFileSync(join(d.out, n)).equals(inputBytes)) problems.push(`out/${n} differs from its input`);
  }
  const failed = readdirSync(d.failed);
  if (failed.length > 0) problems.push(`failed/ holds ${failed.length} entries (${failed.slice(0, 3).join(', ')})`);
  const inbox = readdirSync(d.watch);
  if (inbox.length > 0) problems.push(`the inbox still holds ${inbox.length} entries`);
  let receipts = [];
  try {
    receipts = readFileSync(join(d.state, 'receipts.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l));
  } catch (err) {
    problems.push(`receipts.jsonl: ${err.message}`);
  }
  const per = new Map();
  for (const r of receipts) per.set(r.file, (per.get(r.file) ?? 0) + 1);
  const dup = [...per].filter(([, n]) => n > 1).map(([f]) => f);
  const missing = want.filter((n) => !per.has(n));
  const extra = [...per.keys()].filter((f) => !names.has(f));
  const notOk = receipts.filter((r) => r.outcome !== 'succeeded');
  if (receipts.length !== want.length || dup.length + missing.length + extra.length + notOk.length > 0) {
    problems.push(
      `${receipts.length} receipts for ${want.length} inputs (duplicated: ${dup.slice(0, 3).join(', ') || 'none'}; missing: ${missing.slice(0, 3).join(', ') || 'none'}; unknown: ${extra.slice(0, 3).join(', ') || 'none'}; not succeeded: ${notOk.length})`,
    );
  }
  // after clean stops (and a dead instance adopted) the state folder holds the ledger only
  const left = walk(d.state).filter((f) => f !== 'receipts.jsonl');
  if (left.length > 0) problems.push(`the state folder still holds ${left.slice(0, 5).join(', ')}`);
  for (const p of problems) fail(`${contender}: ${p}`, d.root);
  return { ok: problems.length === 0, instances: new Set(receipts.map((r) => r.instance)) };
}

/** Part 1: `count` daemons started together, then FILES small files renamed into the inbox at once. */
async function smallRun(count, round) {
  const contender = `${count} instance${count > 1 ? 's' : ''}`;
  const s0 = now();
  const d = freshDirs(`small-${count}-${round}`);
  const names = new Set();
  for (let i = 1; i <= FILES; i++) {
    const n = `s${String(i).padStart(5, '0')}.csv`;
    writeFileSync(join(d.stage, n), SMALL);
    names.add(n);
  }
  let total = 0;
  let last = 0;
  const ps = Array.from({ length: count }, () =>
    startDaemon(d, contender, () => {
      total++;
      last = now();
    }),
  );
  await started(ps, contender, d);
  const t0 = now();
  for (const n of names) renameSync(join(d.stage, n), join(d.watch, n));
  const renamed = now() - t0;
  const done = await until(() => total >= FILES || ps.some((p) => p.exit !== undefined), 300_000, 20);
  if (!done || total < FILES)
    fail(
      `${contender}: only ${total} of ${FILES} files processed (${
        ps
          .filter((p) => p.exit)
          .map((p) => `${p.instance} exited ${JSON.stringify(p.exit)}`)
          .join(', ') || 'timeout'
      })`,
      d.root,
    );
  // the log line comes after the move to archive/: archive/ must hold them all now
  const archived = readdirSync(d.archive).length;
  if (archived !== FILES) fail(`${contender}: ${total} "file processed" lines but ${archived} files in archive/`, d.root);
  const seconds = (last - t0) / 1000;
  const cpu = ps.reduce((n, p) => n + cpuSeconds(p.child.pid), 0);
  const s1 = now();
  for (const p of ps) await stop(p, contender, d);
  const s2 = now();
  const { ok, instances } = verify(d, names, contender, SMALL);
  const share = ps.map((p) => p.processed);
  const s3 = now();
  if (ok && !values.keep) rmSync(d.root, { recursive: true, force: true });
  const rate = FILES / seconds;
  console.log(
    `  ${contender.padEnd(11)} ${rate.toFixed(0).padStart(5)} files/s  (${seconds.toFixed(2)} s; renames took ${(renamed / 1000).toFixed(2)} s; daemons' CPU ${cpu.toFixed(1)} s, ${((cpu * 1000) / FILES).toFixed(2)} ms a file; ` +
      `files per instance ${share.join('/')}; receipts from ${instances.size} instance(s); setup ${((t0 - s0) / 1000).toFixed(1)} s, stop ${((s2 - s1) / 1000).toFixed(1)} s, checks ${((s3 - s2) / 1000).toFixed(1)} s, cleanup ${((now() - s3) / 1000).toFixed(1)} s)${ok ? '' : '  CHECK FAILED'}`,
  );
  return rate;
}

/** Part 2: 2 daemons, BIG_FILES large files, SIGKILL of the first while it holds claims. */
async function killRun(round) {
  const contender = 'takeover after SIGKILL';
  const d = freshDirs(`kill-${round}`);
  const big = readFileSync(bigPath);
  const names = new Set();
  for (let i = 1; i <= BIG_FILES; i++) {
    const n = `L${String(i).padStart(2, '0')}.csv`;
    copyFileSync(bigPath, join(d.stage, n));
    names.add(n);
  }
  const processedAt = new Map();
  const onProcessed = (l) => processedAt.set(JSON.parse(l).file, now());
  const a = startDaemon(d, contender, onProcessed);
  await started([a], contender, d);
  const b = startDaemon(d, contender, onProcessed);
  await started([b], contender, d);
  const claimDir = join(d.state, 'claimed', a.instance);
  const CLAIMED = /^[0-9a-z]+-(.+)$/s;
  const heldNow = () => {
    try {
      return readdirSync(claimDir)
        .map((e) => CLAIMED.exec(e)?.[1])
        .filter((n) => n !== undefined);
    } catch {
      return [];
    }
  };
  for (const n of names) renameSync(join(d.stage, n), join(d.watch, n));
  let before = [];
  const holds = await until(() => (before = heldNow()).length > 0, 60_000, 2);
  if (!holds) {
    fail(`${contender}: the first daemon (${a.instance}) never held a claim`, d.root);
    for (const p of [a, b]) await stop(p, contender, d);
    return undefined;
  }
  const archivedBefore = readdirSync(d.archive).length;
  const t0 = now();
  a.child.kill('SIGKILL');
  const exit = await a.exited;
  // what it held: listed just before the kill, and after its death (a claim taken in between)
  const held = new Set([...before, ...heldNow()]);
  if (exit.signal !== 'SIGKILL') fail(`${contender}: the killed daemon ended with ${JSON.stringify(exit)}`, d.root);
  const inArchive = () => {
    const got = new Set(readdirSync(d.archive));
    return [...held].every((n) => got.has(n));
  };
  const finished = await until(() => !existsSync(claimDir) && inArchive(), 120_000, 5);
  const seconds = (now() - t0) / 1000;
  if (!finished)
    fail(
      `${contender}: 120 s after the kill, ${existsSync(claimDir) ? `${claimDir} still exists (${readdirSync(claimDir).join(', ')})` : 'its claim folder is gone'}, held files archived: ${[...held].filter((n) => existsSync(join(d.archive, n))).length}/${held.size}`,
      d.root,
    );
  const all = await until(() => readdirSync(d.archive).length >= names.size || b.exit !== undefined, 300_000, 20);
  if (!all) fail(`${contender}: only ${readdirSync(d.archive).length} of ${names.size} files archived`, d.root);
  await stop(b, contender, d);
  const adoptedLine = b.lines.find((l) => l.msg === 'adopted the claims of instances that died');
  const adoptedAfter = adoptedLine === undefined ? undefined : (adoptedLine.at - t0) / 1000;
  if (adoptedLine === undefined) fail(`${contender}: the survivor never logged that it adopted ${a.instance}'s claims`, d.root);
  else if (JSON.stringify(adoptedLine.instances) !== JSON.stringify([a.instance]))
    fail(`${contender}: adopted ${JSON.stringify(adoptedLine.instances)}, expected [${a.instance}]`, d.root);
  // when the held files were finished (by the survivor's log, read to its end), and how many other files it finished first
  const heldDone = [...held].map((n) => processedAt.get(n)).filter((t) => t !== undefined && t > t0);
  const firstHeld = heldDone.length === 0 ? undefined : Math.min(...heldDone);
  const othersFirst = firstHeld === undefined ? 0 : [...processedAt].filter(([n, t]) => !held.has(n) && t > t0 && t < firstHeld).length;
  const { ok } = verify(d, names, contender, big);
  if (ok && !values.keep) rmSync(d.root, { recursive: true, force: true });
  console.log(
    `  takeover    ${seconds.toFixed(2).padStart(5)} s     (killed ${a.instance} holding ${[...held].join(', ')}; ${archivedBefore} files archived before the kill; ` +
      `adoption logged after ${adoptedAfter?.toFixed(2) ?? '?'} s; first held file done after ${firstHeld === undefined ? '?' : ((firstHeld - t0) / 1000).toFixed(2)} s, ` +
      `${othersFirst} other files finished by the survivor in between)${ok ? '' : '  CHECK FAILED'}`,
  );
  return seconds;
}

const cmd = `node bench/instances.mjs ${process.argv.slice(2).join(' ')}`.trim();
console.log(`machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}`);
console.log(`cli: ${CLI} (modified ${statSync(CLI).mtime.toISOString()})`);
console.log(`command: ${cmd}  (runs ${RUNS}, files ${FILES}, instances ${COUNTS.join(',')}, big files ${BIG_FILES} x ${BIG_ROWS} rows)`);
const results = new Map();
const push = (k, v) => {
  if (v === undefined || !Number.isFinite(v)) return;
  if (!results.has(k)) results.set(k, []);
  results.get(k).push(v);
};
const started0 = now();
for (let r = 0; r < RUNS; r++) {
  console.log(`round ${r + 1} of ${RUNS}`);
  if (!values['skip-small']) {
    // the order turns each round, so that no contender always runs first (or after the same one)
    const order = COUNTS.map((_, i) => COUNTS[(i + r) % COUNTS.length]);
    for (const c of order) push(`small files: ${c} instance${c > 1 ? 's' : ''} (files/s)`, await smallRun(c, r));
  }
  if (!values['skip-kill']) push('takeover after SIGKILL (s; goal < 5)', await killRun(r));
}
if (!values.keep && failures.length === 0) rmSync(BASE, { recursive: true, force: true });

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (k, v) => (k.includes('files/s') ? v.toFixed(0) : v.toFixed(2));
console.log(`\nsmall files: ${FILES} files of 20 rows (gen.mjs 20 0) renamed at once into running daemons, first rename to last "file processed"`);
console.log(
  `takeover: ${BIG_FILES} files of ${BIG_ROWS} rows, 2 daemons, the first SIGKILLed once it holds a claim: kill to its claim folder gone and its files archived`,
);
console.log(
  `daemons: sluice run --settle-ms 0 --metrics-port 0 (otherwise defaults: no --instance-id, instances.checkMs 1000, concurrency ${availableParallelism()})\n`,
);
console.log('| contender | median | min | max | runs |');
console.log('|---|---:|---:|---:|---:|');
for (const [k, xs] of results) console.log(`| ${k} | ${fmt(k, median(xs))} | ${fmt(k, Math.min(...xs))} | ${fmt(k, Math.max(...xs))} | ${xs.length} |`);
if (notes.size > 0) {
  console.log("\nwarn/error lines in the daemons' logs (count over all runs):");
  for (const [k, n] of notes) console.log(`  ${k}: ${n}`);
}
console.log(`\n${cmd}: ${((now() - started0) / 1000).toFixed(0)} s`);
if (failures.length > 0) {
  console.error(`\n${failures.length} check(s) FAILED:\n${failures.join('\n')}`);
  process.exitCode = 1;
}
