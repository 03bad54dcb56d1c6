// Property: for random CSV text (nulls, quotes, delimiters and line breaks inside fields, CRLF, malformed
// records), read = written + filtered + rejected, and the written rows are exactly a simple model's.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { csvFileSink } from '../../src/sinks/csv-file.js';
import { dropNulls } from '../../src/operators/drop-nulls.js';
import { processFile } from '../../src/pipeline/process-file.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-prop-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const field = fc.oneof(
  { weight: 2, arbitrary: fc.constant('') },
  { weight: 6, arbitrary: fc.string({ unit: fc.constantFrom('a', 'b', 'é', '日', ' ', ',', '"', '\n', '\r\n', 'x'), maxLength: 6 }) },
);
const quote = (v: string): string => (/[",\r\n]/.test(v) || v === '' ? `"${v.replace(/"/g, '""')}"` : v);

type Line = { kind: 'row'; fields: string[] } | { kind: 'short' } | { kind: 'badquote' };
const csvCase = fc.integer({ min: 1, max: 4 }).chain((width) =>
  fc.record({
    width: fc.constant(width),
    lines: fc.array(
      fc.oneof(
        { weight: 8, arbitrary: fc.array(field, { minLength: width, maxLength: width }).map((fields): Line => ({ kind: 'row', fields })) },
        { weight: 1, arbitrary: fc.constant<Line>({ kind: 'short' }) },
        { weight: 1, arbitrary: fc.constant<Line>({ kind: 'badquote' }) },
      ),
      { maxLength: 30 },
    ),
    crlf: fc.boolean(),
    emptyUnquoted: fc.boolean(),
  }),
);

it('read = written + filtered + rejected, and written rows match the model', async () => {
  let n = 0;
  await fc.assert(
    fc.asyncProperty(csvCase, async ({ width, lines, crlf, emptyUnquoted }) => {
      const eol = crlf ? '\r\n' : '\n';
      const header = Array.from({ length: width }, (_, i) => `c${i}`);
      const enc = (v: string): string => (v === '' && emptyUnquoted ? '' : quote(v));
      // a one-column row whose only field is empty must be quoted, or it is a blank line
      const encRow = (fields: string[]): string => (width === 1 && fields[0] === '' ? '""' : fields.map(enc).join(','));
      let text = header.join(',') + eol;
      const model: string[][] = [];
      let rejected = 0;
      let rows = 0;
      for (const line of lines) {
        if (line.kind === 'row') {
          text += encRow(line.fields) + eol;
          rows++;
          if (!line.fields.includes('')) model.push(line.fields);
        } else if (line.kind === 'short') {
          if (width === 1) continue; // one field cannot be too short
          text += `${Array.from({ length: width - 1 }, () => 'z').join(',')}${eol}`;
          rows++;
          rejected++;
        } else {
          text += `"q"x${',y'.repeat(width - 1)}${eol}`;
          rows++;
          rejected++;
        }
      }
      const input = join(dir, `in-${n}.csv`);
      const name = `out-${n++}.csv`;
      await writeFile(input, text);
      const r = await processFile(input, name, {
        outDir: dir,
        sink: (ctx, file) => csvFileSink(dir, ctx.name, { tempTag: file.tempTag, fsync: file.fsync, mode: file.mode }),
        rejectsDir: dir,
        csv: {},
        steps: [dropNulls()],
        batch: { size: 7, maxWaitMs: 1000 },
        highWaterMark: 5,
        fsync: false,
        tempTag: 'prop',
        chunkSize: 16,
      });
      expect(r.outcome).toBe('succeeded');
      const { read, written, filtered } = r.rows;
      expect(read).toBe(rows);
      expect(read).toBe(written + filtered + r.rows.rejected);
      expect(r.rows.rejected).toBe(rejected);
      expect(written).toBe(model.length);
      const out = parse(await readFile(join(dir, name)), { relax_column_count: true }) as string[][];
      expect(out).toEqual([header, ...model]);
    }),
    { numRuns: 300, seed: 20261125 },
  );
});
