// Unit tests for the CSV dialects of real exports (input.header/columns/skipLines/comment/relaxQuotes and
// duplicate header names): exact rows and line numbers at every chunk boundary, on both readers.
import { from } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { PreambleSkipper } from '../../src/csv/preamble.js';
import { SluiceError } from '../../src/errors.js';
import { FileContext } from '../../src/file-context.js';
import { type ParseCsvOptions, parseCsv } from '../../src/operators/parse-csv.js';

type Event = { row: string[]; line: number } | { reject: string; line: number; raw: string } | { error: string; line?: number };
interface Result {
  events: Event[];
  comments: number;
}

/** Runs parseCsv over `chunks` synchronously and lists rows (with ctx.line), rejects and the error. */
function run(chunks: Buffer[], options: ParseCsvOptions): Result {
  const events: Event[] = [];
  const ctx = new FileContext('t.csv', {
    onReject: (r) => events.push({ reject: r.code, line: r.line, raw: Buffer.from(r.raw).toString('utf8') }),
  });
  from(chunks)
    .pipe(parseCsv({ ...options, context: ctx }))
    .subscribe({
      next: (row) => events.push({ row: [...row], line: ctx.line }),
      error: (err: unknown) => events.push(err instanceof SluiceError ? { error: err.code, line: err.line } : { error: String(err) }),
    });
  return { events, comments: ctx.comments };
}

/** Every cut in one place, every pair of cuts (short inputs), and one byte at a time. */
function* chunkings(input: Buffer): Generator<Buffer[]> {
  const n = input.length;
  for (let i = 0; i <= n; i++) yield [input.subarray(0, i), input.subarray(i)].map((b) => Buffer.from(b));
  if (n <= 64) {
    for (let i = 1; i < n; i++) for (let j = i + 1; j < n; j++) yield [input.subarray(0, i), input.subarray(i, j), input.subarray(j)];
  }
  yield Array.from({ length: n }, (_, i) => input.subarray(i, i + 1));
}

/** The expected result from the whole input, from every chunking, on the fast path and on csv-parse alone. */
function expectEveryChunking(input: string, options: ParseCsvOptions, expected: Event[], comments = 0): void {
  const buf = Buffer.from(input, 'utf8');
  for (const fast of [true, false]) {
    expect(run([buf], { ...options, fast })).toEqual({ events: expected, comments });
    for (const chunks of chunkings(buf)) {
      const got = run(chunks, { ...options, fast });
      if (JSON.stringify(got) !== JSON.stringify({ events: expected, comments })) {
        expect({ fast, cuts: chunks.map((c) => c.length), got }).toEqual({ fast, cuts: chunks.map((c) => c.length), got: { events: expected, comments } });
      }
    }
  }
}

describe('input.header false with columns', () => {
  it('reads the first line as data under the given header', () => {
    expectEveryChunking('1,2\n3,4\n', { header: false, columns: ['a', 'b'] }, [
      { row: ['a', 'b'], line: 0 },
      { row: ['1', '2'], line: 1 },
      { row: ['3', '4'], line: 2 },
    ]);
  });

  it('rejects a first line of another width as a row, not the file', () => {
    expectEveryChunking('1,2,3\n3,4\n5\n', { header: false, columns: ['a', 'b'] }, [
      { row: ['a', 'b'], line: 0 },
      { reject: 'CSV_RECORD_INCONSISTENT_COLUMNS', line: 1, raw: '1,2,3' },
      { row: ['3', '4'], line: 2 },
      { reject: 'CSV_RECORD_INCONSISTENT_COLUMNS', line: 3, raw: '5' },
    ]);
  });

  it('gives the header alone for an empty file', () => {
    expect(run([], { header: false, columns: ['a'] }).events).toEqual([{ row: ['a'], line: 0 }]);
  });

  it('is a config error without columns, naming the field', () => {
    let err: unknown;
    try {
      parseCsv({ header: false });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SluiceError);
    expect((err as SluiceError).code).toBe('CONFIG_INVALID');
    expect((err as SluiceError).field).toBe('input.columns');
  });
});

describe('input.columns with a header in the file', () => {
  it("replaces the file's header when the counts match", () => {
    expectEveryChunking('x,y\n1,2\n', { columns: ['a', 'b'] }, [
      { row: ['a', 'b'], line: 1 },
      { row: ['1', '2'], line: 2 },
    ]);
  });

  it('fails the file with COLUMNS_MISMATCH when they do not', () => {
    expectEveryChunking('x,y,z\n1,2,3\n', { columns: ['a', 'b'] }, [{ error: 'COLUMNS_MISMATCH', line: 1 }]);
  });

  it('replaces a header that names a column twice (the file is then taken)', () => {
    expectEveryChunking('a,a\n1,2\n', { columns: ['a', 'b'] }, [
      { row: ['a', 'b'], line: 1 },
      { row: ['1', '2'], line: 2 },
    ]);
  });
});

describe('duplicate header names', () => {
  it('fail the file with DUPLICATE_HEADER naming the column and its positions', () => {
    expectEveryChunking('a,a,b\n1,2,3\n', {}, [{ error: 'DUPLICATE_HEADER', line: 1 }]);
    const r = run([Buffer.from('id,x,id\n')], {});
    expect(r.events).toEqual([{ error: 'DUPLICATE_HEADER', line: 1 }]);
    let message = '';
    from([Buffer.from('id,x,id\n')])
      .pipe(parseCsv())
      .subscribe({ error: (e: Error) => (message = e.message) });
    expect(message).toContain('"id" twice (columns 1 and 3)');
  });

  it('are refused in input.columns with header: false too', () => {
    expect(run([Buffer.from('1,2\n')], { header: false, columns: ['a', 'a'] }).events).toEqual([{ error: 'DUPLICATE_HEADER', line: 0 }]);
  });
});

describe('input.skipLines', () => {
  it("skips a preamble and keeps the file's line numbers", () => {
    expectEveryChunking('Report of May\r\nexported by x, "y\n\na,b\n1,2\n3\n"q"x,4\n', { skipLines: 3 }, [
      { row: ['a', 'b'], line: 4 },
      { row: ['1', '2'], line: 5 },
      { reject: 'CSV_RECORD_INCONSISTENT_COLUMNS', line: 6, raw: '3' },
      { reject: 'CSV_INVALID_CLOSING_QUOTE', line: 7, raw: '"q"x,4' },
    ]);
  });

  it('counts a lone CR and a CRLF split across chunks as one line end each', () => {
    expectEveryChunking('p1\rp2\r\na\n1\n', { skipLines: 2 }, [
      { row: ['a'], line: 3 },
      { row: ['1'], line: 4 },
    ]);
  });

  it('leaves nothing when the preamble is longer than the file', () => {
    expectEveryChunking('p1\np2\n', { skipLines: 5 }, []);
    expectEveryChunking('p1\np2', { skipLines: 2 }, []);
  });

  it('works with header: false', () => {
    expectEveryChunking('# generated\n1,2\n', { skipLines: 1, header: false, columns: ['a', 'b'] }, [
      { row: ['a', 'b'], line: 0 },
      { row: ['1', '2'], line: 2 },
    ]);
  });

  it('unit: PreambleSkipper returns the bytes after N lines', () => {
    const s = new PreambleSkipper(1);
    expect(s.take(Buffer.from('ab\r')).toString()).toBe('');
    expect(s.active).toBe(true);
    expect(s.take(Buffer.from('\nc')).toString()).toBe('c');
    expect(s.active).toBe(false);
  });
});

describe('input.comment', () => {
  it('passes over comment lines, counts them, and keeps line numbers and raw bytes exact', () => {
    expectEveryChunking(
      '# exported\na,b\n1,2\n#note, "with quote\n# two\r\n3\n#last',
      { comment: '#' },
      [
        { row: ['a', 'b'], line: 2 },
        { row: ['1', '2'], line: 3 },
        { reject: 'CSV_RECORD_INCONSISTENT_COLUMNS', line: 6, raw: '3' },
      ],
      4,
    );
  });

  it('a comment character inside a quoted field, or not at the start of a record, is data', () => {
    expectEveryChunking(
      'a,b\n"x\n# in quotes",1\n2,#3\n',
      { comment: '#' },
      [
        { row: ['a', 'b'], line: 1 },
        { row: ['x\n# in quotes', '1'], line: 2 },
        { row: ['2', '#3'], line: 4 },
      ],
      0,
    );
  });

  it('a malformed record after a comment is rejected at its own line with its own bytes', () => {
    expectEveryChunking(
      'a,b\n# c\n"x"y,1\n2,3\n',
      { comment: '#' },
      [
        { row: ['a', 'b'], line: 1 },
        { reject: 'CSV_INVALID_CLOSING_QUOTE', line: 3, raw: '"x"y,1' },
        { row: ['2', '3'], line: 4 },
      ],
      1,
    );
  });

  it('combines with skipLines', () => {
    expectEveryChunking(
      'junk "\n#c\na\n1\n',
      { comment: '#', skipLines: 1 },
      [
        { row: ['a'], line: 3 },
        { row: ['1'], line: 4 },
      ],
      1,
    );
  });
});

describe('input.relaxQuotes', () => {
  it('reads a quote inside an unquoted field as text', () => {
    expectEveryChunking(`h,w\n5'3" tall,a"b\n`, { relaxQuotes: true }, [
      { row: ['h', 'w'], line: 1 },
      { row: [`5'3" tall`, 'a"b'], line: 2 },
    ]);
  });

  it('is off by default: the same line is rejected', () => {
    expectEveryChunking(`h,w\n5'3" tall,a"b\n1,2\n`, {}, [
      { row: ['h', 'w'], line: 1 },
      { reject: 'INVALID_OPENING_QUOTE', line: 2, raw: `5'3" tall,a"b` },
      { row: ['1', '2'], line: 3 },
    ]);
  });

  it('still reads a real quoted field, delimiters and line ends inside it included', () => {
    expectEveryChunking('h,w\n"a,""b""\nc",x"y\n', { relaxQuotes: true }, [
      { row: ['h', 'w'], line: 1 },
      { row: ['a,"b"\nc', 'x"y'], line: 2 },
    ]);
  });

  it('its cost: a broken quoted field (a quote closed too early) is taken as text, quotes and all', () => {
    expectEveryChunking('h,w\n"a"b,1\n2,3\n', { relaxQuotes: true }, [
      { row: ['h', 'w'], line: 1 },
      { row: ['"a"b', '1'], line: 2 },
      { row: ['2', '3'], line: 3 },
    ]);
    // without it the same record is rejected
    expectEveryChunking('h,w\n"a"b,1\n2,3\n', {}, [
      { row: ['h', 'w'], line: 1 },
      { reject: 'CSV_INVALID_CLOSING_QUOTE', line: 2, raw: '"a"b,1' },
      { row: ['2', '3'], line: 3 },
    ]);
  });

  it('an unclosed quoted field is still rejected at the end of the file', () => {
    expectEveryChunking('h,w\n1,2\n"a,b\n', { relaxQuotes: true }, [
      { row: ['h', 'w'], line: 1 },
      { row: ['1', '2'], line: 2 },
      { reject: 'CSV_QUOTE_NOT_CLOSED', line: 3, raw: '"a,b' },
    ]);
  });
});
