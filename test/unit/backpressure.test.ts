// Backpressure, end to end: rows in flight (emitted by the source, not yet durably written) stay under an
// exact bound while a deliberately slow sink holds its writes; reading stops while the sink is blocked and
// resumes when it catches up; the same with N files at once; maxWaitMs still flushes trickling rows; an
// abort while the source waits on the gate leaves nothing behind. The slow sink waits on promises the test
// resolves, never on the clock, so nothing here depends on machine speed.
//
// The bound. fileBytes() checks the gate before each read, and a chunk's rows go through parseCsv ->
// dropNulls -> batch synchronously, each row that reaches batch() taking one credit. So reading stops at
// the first chunk boundary where the level is >= highWaterMark, and the peak is
//     (highest level below highWaterMark reached at a chunk boundary) + (credit rows in one chunk)
//   <= highWaterMark - 1 + (rows per chunk).
// The fixture makes every chunk carry the same number of credit rows, so the levels at chunk boundaries are
// the multiples of that number and the peak is exact:
//   - every line is LINE = 10 bytes (the header too), CHUNK = 100 bytes = 10 lines, so reads are row-aligned;
//   - data row i is null (an empty field, dropped by dropNulls, never credited) when i % 5 === 0, so
//     every chunk carries exactly 8 credit rows (chunk 1: header + rows 1-9, row 5 null; chunk m >= 2:
//     rows 10(m-1) .. 10m-1, two of them multiples of 5);
//   - HWM = 17: after 2 chunks the level is 16 < 17, a third chunk is read, 24 >= 17 closes the gate.
//   PEAK = HWM - 1 + 8 = 24, the worst case the formula allows.
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { concatMap, lastValueFrom, Subject, tap } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FileContext } from '../../src/file-context.js';
import type { FlowGate } from '../../src/flow-gate.js';
import { batch } from '../../src/operators/batch.js';
import { dropNulls } from '../../src/operators/drop-nulls.js';
import { parseCsv } from '../../src/operators/parse-csv.js';
import { type FileReport, type PipelineHooks, processFile, type PipelineSettings } from '../../src/pipeline/process-file.js';
import type { RowBatch } from '../../src/row.js';
import { csvFileSink } from '../../src/sinks/csv-file.js';
import type { RowSink, SinkResult } from '../../src/outputs/driver.js';
import { fileBytes } from '../../src/sources/file-bytes.js';

const LINE = 10;
const CHUNK = 10 * LINE;
const CREDIT_ROWS_PER_CHUNK = 8;
const HWM = 17;
const PEAK = HWM - 1 + CREDIT_ROWS_PER_CHUNK; // 24
const BATCH = 4;
const DATA_ROWS = 200;
const KEPT_ROWS = DATA_ROWS - DATA_ROWS / 5; // 160

/** The fixture: fixed-width lines; every 5th data row has an empty field. */
function fixture(rows = DATA_ROWS): { text: string; kept: string } {
  let text = 'ident,val\n';
  let kept = 'ident,val\n';
  for (let i = 1; i <= rows; i++) {
    const line = i % 5 === 0 ? `${String(i).padStart(8, '0')},\n` : `${String(i).padStart(6, '0')},xx\n`;
    if (line.length !== LINE) throw new Error('fixture lines must be LINE bytes');
    text += line;
    if (i % 5 !== 0) kept += line;
  }
  return { text, kept };
}

/** A sink that hands each batch to `inner` and then holds the write until the test releases it. */
class HeldSink implements RowSink {
  rowsWritten = 0;
  writes: number[] = [];
  private held: Array<() => void> = [];
  private waiting: Array<() => void> = [];

  constructor(
    private readonly inner: RowSink,
    private readonly onWritten?: (rows: number) => void,
  ) {}

  async write(b: RowBatch): Promise<void> {
    await this.inner.write(b);
    await new Promise<void>((resolve) => {
      this.held.push(resolve);
      for (const w of this.waiting.splice(0)) w();
    });
    this.rowsWritten += b.rows.length;
    this.writes.push(b.rows.length);
    this.onWritten?.(b.rows.length);
  }

  /** Writes started and not yet released (concatMap: at most one). */
  get holding(): number {
    return this.held.length;
  }

  /** Resolves once a write is being held. */
  held$(): Promise<void> {
    return this.held.length > 0 ? Promise.resolve() : new Promise((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const r = this.held.shift();
    if (r === undefined) throw new Error('no write is held');
    r();
  }

  commit(): Promise<SinkResult> {
    return this.inner.commit();
  }
  abort(): Promise<void> {
    return this.inner.abort();
  }
}

/** A sink that keeps the rows in memory. */
function memorySink(): RowSink & { text: () => string } {
  const lines: string[] = [];
  return {
    write: async (b) => {
      if (b.header !== undefined) lines.push(b.header.join(','));
      for (const r of b.rows) lines.push(r.join(','));
    },
    commit: async () => ({ rows: lines.length, bytes: 0 }),
    abort: async () => undefined,
    text: () => `${lines.join('\n')}\n`,
  };
}

/** Watches the gate: `pause()` resolves the next time the source waits on it (it only waits when closed). */
function watchGate(gate: FlowGate): { pauses: () => number; pause: () => Promise<void> } {
  let pauses = 0;
  const next: Array<() => void> = [];
  const wait = gate.wait.bind(gate);
  gate.wait = () => {
    pauses++;
    for (const n of next.splice(0)) n();
    return wait();
  };
  return {
    pauses: () => pauses,
    pause: () => new Promise<void>((resolve) => next.push(resolve)),
  };
}

/** Lets pending I/O callbacks and timers-free continuations run (a check that nothing moves, not a wait for something). */
async function quiesce(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Releases held writes until `done` settles. */
async function releaseUntil(done: Promise<unknown>, ...sinks: HeldSink[]): Promise<void> {
  let finished = false;
  void done.finally(() => (finished = true));
  while (!finished) {
    await Promise.race([done, ...sinks.map((s) => s.held$())]);
    for (const s of sinks) if (s.holding > 0) s.release();
  }
}

let dir: string;
let out: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-bp-'));
  out = join(dir, 'out');
  await mkdir(out);
});
afterEach(async () => {
  vi.useRealTimers();
  await rm(dir, { recursive: true, force: true });
});

describe('backpressure: fileBytes -> parseCsv -> dropNulls -> batch -> slow sink', () => {
  it('holds rows in flight to exactly highWaterMark - 1 + rows per chunk, stops reading while the sink is blocked and resumes when it is released', async () => {
    const input = join(dir, 'in.csv');
    const { kept } = fixture();
    await writeFile(input, fixture().text);
    const fh = await open(input);
    // count the reads actually issued to the disk (fileBytes keeps one read ahead while the gate is open)
    let readsIssued = 0;
    const read = fh.read.bind(fh) as (...a: unknown[]) => unknown;
    (fh as unknown as { read: (...a: unknown[]) => unknown }).read = (...a: unknown[]) => {
      readsIssued++;
      return read(...a);
    };
    const ctx = new FileContext('in.csv', { highWaterMark: HWM });
    const gate = watchGate(ctx.gate);
    const mem = memorySink();
    // in flight, counted apart from the gate: rows out of dropNulls (the header excluded) minus rows written
    let passed = -1;
    let inFlightPeak = 0;
    const sink = new HeldSink(mem);
    let bytesParsed = 0;
    const done = lastValueFrom(
      fileBytes(fh, { gate: ctx.gate, chunkSize: CHUNK, onRead: (c) => (bytesParsed += c.length) }).pipe(
        parseCsv({ context: ctx }),
        dropNulls(),
        tap(() => {
          passed++;
          inFlightPeak = Math.max(inFlightPeak, passed - sink.rowsWritten);
        }),
        batch({ size: BATCH, maxWaitMs: Infinity, context: ctx }),
        concatMap(async (b) => {
          await sink.write(b);
          ctx.gate.give(b.rows.length);
        }),
      ),
      { defaultValue: undefined },
    );
    try {
      // blocked: three chunks parsed (8 credit rows each), at most one more read ahead, then nothing more
      await gate.pause();
      await quiesce();
      const reads = readsIssued;
      expect(reads === 3 || reads === 4).toBe(true);
      expect(ctx.gate.inFlight).toBe(PEAK);
      expect([bytesParsed, readsIssued, gate.pauses()]).toEqual([3 * CHUNK, reads, 1]);
      expect(sink.holding).toBe(1);
      expect(sink.rowsWritten).toBe(0);

      // one batch of 4 written: 20 in flight, still >= 17, so still no reading
      sink.release();
      await sink.held$();
      await quiesce();
      expect(ctx.gate.inFlight).toBe(PEAK - BATCH);
      expect([bytesParsed, readsIssued, gate.pauses()]).toEqual([3 * CHUNK, reads, 1]);

      // a second batch: 16 < 17, the source resumes, parses the chunk read ahead (+8 = 24) and stops again
      const again = gate.pause();
      sink.release();
      await again;
      expect(ctx.gate.inFlight).toBe(PEAK);
      expect([bytesParsed, readsIssued, gate.pauses()]).toEqual([4 * CHUNK, reads + 1, 2]);

      await releaseUntil(done, sink);
      await done;
    } finally {
      await fh.close();
    }
    expect(ctx.gate.maxInFlight).toBe(PEAK);
    expect(inFlightPeak).toBe(PEAK);
    expect(ctx.gate.inFlight).toBe(0);
    expect(sink.rowsWritten).toBe(KEPT_ROWS);
    expect(mem.text()).toBe(kept);
    expect(ctx.counts).toEqual({ read: DATA_ROWS, batched: KEPT_ROWS, written: 0, rejected: 0 });
    expect(bytesParsed).toBe(fixture().text.length);
  });

  it('bounds every file and the total with N files at once (processFile with a slow sink)', async () => {
    const N = 3;
    const { text, kept } = fixture();
    let total = 0;
    let totalPeak = 0;
    const onInFlight = (d: number): void => {
      total += d;
      totalPeak = Math.max(totalPeak, total);
    };
    const files = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const input = join(dir, `in${i}.csv`);
        await writeFile(input, text);
        return startFile(input, `f${i}.csv`, { onInFlight });
      }),
    );
    // all N files blocked at once: each holds exactly PEAK rows, the sum N * PEAK, and none reads on
    await Promise.all(files.map((f) => f.paused));
    await quiesce();
    for (const f of files) {
      expect(f.ctx.gate.inFlight).toBe(PEAK);
      expect(f.ctx.bytesRead).toBe(3 * CHUNK);
      expect(f.sink.holding).toBe(1);
    }
    expect(total).toBe(N * PEAK);

    const reports = Promise.all(files.map((f) => f.report));
    await releaseUntil(reports, ...files.map((f) => f.sink));
    for (const [i, r] of (await reports).entries()) {
      expect(r.outcome).toBe('succeeded');
      expect(r.rows).toEqual({ read: DATA_ROWS, written: KEPT_ROWS, filtered: DATA_ROWS - KEPT_ROWS, rejected: 0 });
      expect(files[i]!.ctx.gate.maxInFlight).toBe(PEAK);
      expect(await readFile(join(out, `f${i}.csv`), 'utf8')).toBe(kept);
    }
    expect(totalPeak).toBe(N * PEAK);
    expect(total).toBe(0);
    expect((await readdir(out)).sort()).toEqual(files.map((_, i) => `f${i}.csv`));
  });
});

describe('backpressure: time trigger and abort', () => {
  it('flushes a partial batch after maxWaitMs while rows trickle in, also while the sink holds an earlier batch', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const bytes = new Subject<Buffer>();
    const ctx = new FileContext('trickle.csv', { highWaterMark: 100 });
    const mem = memorySink();
    const sink = new HeldSink(mem);
    const batches: Array<{ rows: number; lines: number[] }> = [];
    const done = lastValueFrom(
      bytes.pipe(
        parseCsv({ context: ctx }),
        dropNulls(),
        // the default scheduler (asyncScheduler), on faked timers
        batch({ size: 10, maxWaitMs: 50, context: ctx }),
        concatMap(async (b) => {
          batches.push({ rows: b.rows.length, lines: b.lines });
          await sink.write(b);
          ctx.gate.give(b.rows.length);
        }),
      ),
      { defaultValue: undefined },
    );
    const push = (s: string): void => bytes.next(Buffer.from(s));
    push('a,b\n1,x\n');
    await vi.advanceTimersByTimeAsync(30);
    push('2,\n3,y\n'); // row 2 is null: dropped, no credit
    await vi.advanceTimersByTimeAsync(19);
    expect(batches).toEqual([]); // 49 ms after the first row: not yet
    await vi.advanceTimersByTimeAsync(1);
    expect(batches).toEqual([{ rows: 2, lines: [2, 4] }]);
    expect(ctx.gate.inFlight).toBe(2);

    // the sink holds that batch; more rows trickle in and are flushed by the timer, queued behind it
    push('4,z\n');
    await vi.advanceTimersByTimeAsync(50);
    expect(sink.holding).toBe(1);
    expect(batches).toHaveLength(1);
    expect(ctx.gate.inFlight).toBe(3);
    sink.release();
    await sink.held$();
    expect(batches).toEqual([
      { rows: 2, lines: [2, 4] },
      { rows: 1, lines: [5] },
    ]);
    expect(ctx.gate.inFlight).toBe(1);

    push('5,w\n');
    bytes.complete(); // the end flushes the rest at once
    sink.release();
    await sink.held$();
    sink.release();
    await done;
    expect(batches.map((b) => b.rows)).toEqual([2, 1, 1]);
    expect(mem.text()).toBe('a,b\n1,x\n3,y\n4,z\n5,w\n');
    expect(ctx.gate.inFlight).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('an abort while the source waits on the gate stops cleanly: no temporary file, gate and gauge at 0, no more reading', async () => {
    const input = join(dir, 'in.csv');
    await writeFile(input, fixture().text);
    let gauge = 0;
    const ac = new AbortController();
    const f = await startFile(input, 'x.csv', { onInFlight: (d) => (gauge += d) }, {}, ac.signal);
    await f.paused;
    expect(f.ctx.gate.inFlight).toBe(PEAK);
    expect((await readdir(out)).filter((n) => n.startsWith('.sluice-'))).toHaveLength(1); // the first batch is in the temp file

    ac.abort();
    const r = await f.report;
    expect(r.outcome).toBe('failed');
    expect(r.error?.code).toBe('ABORTED');
    expect(await readdir(out)).toEqual([]);
    expect([f.ctx.gate.inFlight, gauge]).toEqual([0, 0]);

    // the write the sink still held completes late: it must not move the drained gate or read on
    while (f.sink.holding > 0) f.sink.release();
    await quiesce();
    expect([f.ctx.gate.inFlight, gauge]).toEqual([0, 0]);
    expect(f.ctx.bytesRead).toBe(3 * CHUNK);
    expect(await readdir(out)).toEqual([]);
  });
});

interface Started {
  ctx: FileContext;
  sink: HeldSink;
  /** Resolves when the source first waits on the closed gate. */
  paused: Promise<void>;
  report: Promise<FileReport>;
}

/** processFile with a HeldSink around the CSV sink; resolves once the pipeline is built. */
function startFile(input: string, name: string, hooks: PipelineHooks = {}, over: Partial<PipelineSettings> = {}, signal?: AbortSignal): Promise<Started> {
  return new Promise((resolve) => {
    const report = processFile(
      input,
      name,
      {
        outDir: out,
        rejectsDir: out,
        csv: {},
        steps: [dropNulls()],
        batch: { size: BATCH, maxWaitMs: 60_000 },
        highWaterMark: HWM,
        fsync: false,
        tempTag: 'bp',
        chunkSize: CHUNK,
        sink: (ctx, file) => {
          const sink = new HeldSink(csvFileSink(out, name, file));
          const paused = watchGate(ctx.gate).pause();
          queueMicrotask(() => resolve({ ctx, sink, paused, report }));
          return sink;
        },
        ...over,
      },
      hooks,
      signal,
    );
  });
}
