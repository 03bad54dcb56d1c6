// processFile on real temp files: counts, a file that changes while read, the column cap, staging.
import { createHash } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { take } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { csvFileSink } from '../../src/sinks/csv-file.js';
import { dropNulls } from '../../src/operators/drop-nulls.js';
import { rowOperator } from '../../src/operators/row-operator.js';
import { processFile, type PipelineSettings } from '../../src/pipeline/process-file.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-pf-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const settings = (over: Partial<PipelineSettings> = {}): PipelineSettings => ({
  outDir: dir,
  sink: (ctx, file) => csvFileSink(dir, ctx.name, { tempTag: file.tempTag, fsync: file.fsync, mode: file.mode }),
  rejectsDir: dir,
  csv: {},
  steps: [dropNulls()],
  batch: { size: 2, maxWaitMs: 1000 },
  highWaterMark: 16,
  fsync: false,
  tempTag: 'test',
  ...over,
});

describe('processFile', () => {
  it('a step that ends the stream early (take) is not a changed input: only a read to the end is checked against the size', async () => {
    const input = join(dir, 'big.csv');
    let text = 'a,b\n';
    for (let i = 0; i < 20_000; i++) text += `${i},x${i}\n`; // several 64 KiB chunks
    await writeFile(input, text);
    const r = await processFile(input, 'big.csv', settings({ steps: [take(3)] }));
    expect(r.error).toBeUndefined();
    expect(r.outcome).toBe('succeeded');
    expect(r.rows).toEqual({ read: 2, written: 2, filtered: 0, rejected: 0 });
    expect(await readFile(r.output!, 'utf8')).toBe('a,b\n0,x0\n1,x1\n');
  });

  it('writes the output, counts rows and publishes rejects', async () => {
    const input = join(dir, 'in.csv');
    await writeFile(input, 'a,b\n1,2\n3,\n4\n5,6\n');
    const r = await processFile(input, 'x.csv', settings({ hash: true }));
    expect(r.outcome).toBe('succeeded');
    expect(r.rows).toEqual({ read: 4, written: 2, filtered: 1, rejected: 1 });
    expect(r.sha256).toBe(createHash('sha256').update('a,b\n1,2\n3,\n4\n5,6\n').digest('hex'));
    expect(await readFile(join(dir, 'x.csv'), 'utf8')).toBe('a,b\n1,2\n5,6\n');
    expect((await readFile(join(dir, 'x.rejects.csv'), 'utf8')).split('\n')[1]).toBe(
      '4,CSV_RECORD_INCONSISTENT_COLUMNS,"line 4: expected 2 fields as in the header, got 1","4"',
    );
  });

  it('never stalls when the high-water mark is below the batch size or held by rejects (no time trigger)', async () => {
    const input = join(dir, 'in.csv');
    await writeFile(input, `a,b\n${'1,2\n'.repeat(50)}${'3\n'.repeat(20)}${'4,5\n'.repeat(50)}`);
    // without the flush-on-closed-gate rule this deadlocks: the source waits for credit the batcher holds
    const r = await processFile(input, 'x.csv', settings({ highWaterMark: 3, batch: { size: 100, maxWaitMs: Infinity }, chunkSize: 8 }));
    expect(r.rows).toEqual({ read: 120, written: 100, filtered: 0, rejected: 20 });
  });

  it('fails with INPUT_CHANGED when the file grows while it is read, and leaves no output', async () => {
    const input = join(dir, 'in.csv');
    await writeFile(input, 'a,b\n1,2\n');
    const appendOnce = rowOperator((header) => {
      appendFileSync(input, '3,4\n');
      return { header, row: (r) => r };
    });
    const r = await processFile(input, 'x.csv', settings({ steps: [appendOnce] }));
    expect(r.outcome).toBe('failed');
    expect(r.error?.code).toBe('INPUT_CHANGED');
    expect((await readdir(dir)).sort()).toEqual(['in.csv']);
  });

  it('fails with TOO_MANY_COLUMNS when the header is wider than maxColumns', async () => {
    const input = join(dir, 'in.csv');
    await writeFile(input, 'a,b,c\n1,2,3\n');
    const r = await processFile(input, 'x.csv', settings({ maxColumns: 2 }));
    expect(r.error?.code).toBe('TOO_MANY_COLUMNS');
    expect(r.error?.message).toBe('the header has 3 columns; input.maxColumns allows 2');
    expect(r.rows).toEqual({ read: 0, written: 0, filtered: 0, rejected: 0 });
  });

  it('with stageOnly, leaves durable temporaries to publish and nothing under the final names', async () => {
    const input = join(dir, 'in.csv');
    await writeFile(input, 'a\n1\n');
    const r = await processFile(input, 'x.csv', settings({ stageOnly: true }));
    expect(r.outcome).toBe('succeeded');
    const output = r.staged?.output;
    const file = output?.kind === 'file' ? output.file : undefined;
    expect(file?.name).toBe('x.csv');
    expect(r.staged?.rejects).toBeUndefined();
    expect((await readdir(dir)).sort()).toEqual([file!.tmp.slice(dir.length + 1), 'in.csv'].sort());
    expect(await readFile(file!.tmp, 'utf8')).toBe('a\n1\n');
  });
});
