// Metrics cost: one file through processFile in this process, with the metrics hooks (a fresh prom-client
// Registry, every counter, gauge and histogram the daemon updates) and without, alternating, medians.
// Loading prom-client is left out on purpose: this measures the per-row/per-batch work, which must be nil.
// Usage: npm run bench:metrics -- [ROWS] [RUNS], or node bench/metrics-cost.mjs [ROWS=1000000] [RUNS=7]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = resolve(import.meta.dirname, '..');
const rows = Number(process.argv[2] ?? 1_000_000);
const runs = Number(process.argv[3] ?? 7);
const lib = await import(pathToFileURL(join(ROOT, 'dist/index.js')).href);
const { SluiceMetrics } = await import(pathToFileURL(join(ROOT, 'dist/metrics/metrics.js')).href);
const { Registry } = await import('prom-client');

const dir = mkdtempSync(join(tmpdir(), 'sluice-metrics-cost-'));
const input = join(dir, 'input.csv');
writeFileSync(input, execFileSync(process.execPath, [join(ROOT, 'test/fixtures/gen.mjs'), String(rows), '5'], { maxBuffer: 1 << 30 }));

async function once(withMetrics) {
  const out = mkdtempSync(join(dir, 'out-'));
  const metrics = withMetrics ? new SluiceMetrics(new Registry(), { version: 'bench', pipelines: ['default'] }) : undefined;
  const hooks = metrics?.hooks() ?? {};
  const t0 = performance.now();
  // the daemon's defaults: dropna, batches of 1000, high-water mark 4096 (fsync off: disk noise is not the question)
  const report = await lib.processFile(
    input,
    'input.csv',
    {
      outDir: out,
      rejectsDir: out,
      csv: {},
      steps: [lib.dropNulls({ how: 'any' })],
      batch: { size: 1000, maxWaitMs: 1000 },
      highWaterMark: 4096,
      fsync: false,
      tempTag: 'bench',
    },
    hooks,
  );
  hooks.onFileDone?.(report);
  const seconds = (performance.now() - t0) / 1000;
  if (report.outcome !== 'succeeded') throw new Error(`failed: ${report.error?.message}`);
  if (metrics !== undefined) {
    // the scrape sees exactly the report's counts
    const text = await metrics.registry.metrics();
    const read = Number(/sluice_rows_total\{pipeline="default",stage="read"\} (\d+)/.exec(text)?.[1]);
    if (read !== report.rows.read) throw new Error(`scrape says ${read} rows read, the report ${report.rows.read}`);
  }
  rmSync(out, { recursive: true, force: true });
  return seconds;
}

const times = { off: [], on: [] };
await once(false); // warm-up: page cache, JIT
await once(true);
for (let i = 0; i < runs; i++) {
  // alternate the order too, so neither side always runs second
  for (const k of i % 2 === 0 ? ['off', 'on'] : ['on', 'off']) times[k].push(await once(k === 'on'));
}
rmSync(dir, { recursive: true, force: true });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const [off, on] = [median(times.off), median(times.on)];
const spread = (xs) => `${Math.min(...xs).toFixed(3)}-${Math.max(...xs).toFixed(3)} s`;
console.log(`${rows} rows, ${runs} runs each, Node ${process.version}`);
console.log(`metrics off: median ${off.toFixed(3)} s (${spread(times.off)})`);
console.log(`metrics on:  median ${on.toFixed(3)} s (${spread(times.on)})`);
console.log(`on / off: ${(on / off).toFixed(3)} (counts per file and per batch; the per-row in-flight level is a plain number read at scrape time)`);
