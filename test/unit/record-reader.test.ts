// Unit tests for CsvRecordReader: records with their start lines, rejects with their raw bytes, and the
// same result however the bytes are chunked.
import { describe, expect, it } from 'vitest';
import { CsvRecordReader, type CsvReadOptions } from '../../src/csv/record-reader.js';
import { SluiceError } from '../../src/errors.js';

type Event = { kind: 'record'; line: number; fields: string[] } | { kind: 'reject'; line: number; code: string; raw: Buffer };

const rec = (line: number, ...fields: string[]): Event => ({ kind: 'record', line, fields });
const rej = (line: number, code: string, raw: string | Buffer): Event => ({
  kind: 'reject',
  line,
  code,
  raw: typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw,
});

/** Feeds `chunks` to a reader and returns what it reported, in order. */
function read(chunks: Buffer[], options: CsvReadOptions = {}): Event[] {
  const events: Event[] = [];
  const reader = new CsvRecordReader(
    {
      record: (fields, line) => events.push({ kind: 'record', line, fields }),
      reject: (line, code, _message, raw) => events.push({ kind: 'reject', line, code, raw: Buffer.from(raw) }),
    },
    options,
  );
  for (const c of chunks) reader.write(c);
  reader.end();
  return events;
}

const bytes = (s: string | Buffer): Buffer => (typeof s === 'string' ? Buffer.from(s, 'utf8') : s);
const whole = (s: string | Buffer, options?: CsvReadOptions): Event[] => read([bytes(s)], options);

/** Copies so that no test can pass by sharing memory with the input. */
const copy = (b: Buffer): Buffer => Buffer.from(b);

/** Every chunking with one cut, with two cuts (small inputs), one byte at a time, and with empty chunks. */
function* chunkings(input: Buffer): Generator<Buffer[]> {
  const n = input.length;
  for (let i = 0; i <= n; i++) yield [copy(input.subarray(0, i)), copy(input.subarray(i))];
  if (n <= 96) {
    for (let i = 1; i < n; i++) {
      for (let j = i + 1; j < n; j++) yield [input.subarray(0, i), input.subarray(i, j), input.subarray(j)].map(copy);
    }
  }
  yield Array.from({ length: n }, (_, i) => copy(input.subarray(i, i + 1)));
  yield [Buffer.alloc(0), copy(input), Buffer.alloc(0)];
}

/** Asserts the whole-buffer result, then that every chunking gives exactly the same. */
function expectEveryChunking(input: string | Buffer, expected: Event[], options?: CsvReadOptions): void {
  const buf = bytes(input);
  expect(whole(buf, options)).toEqual(expected);
  for (const chunks of chunkings(buf)) {
    const got = read(chunks, options);
    if (!isDeepEqual(got, expected)) {
      // report the first failing chunking with its cut points
      expect({ cuts: chunks.map((c) => c.length), got }).toEqual({ cuts: chunks.map((c) => c.length), got: expected });
    }
  }
}

function isDeepEqual(a: Event[], b: Event[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i]!;
    if (x.kind === 'record' && y.kind === 'record') return x.line === y.line && JSON.stringify(x.fields) === JSON.stringify(y.fields);
    if (x.kind === 'reject' && y.kind === 'reject') return x.line === y.line && x.code === y.code && x.raw.equals(y.raw);
    return false;
  });
}

function noReplacementChar(events: Event[]): void {
  for (const e of events) if (e.kind === 'record') for (const f of e.fields) expect(f).not.toContain('\uFFFD');
}

describe('CsvRecordReader: records and their start lines', () => {
  it('emits the header then the rows, each with the line it starts on', () => {
    expect(whole('a,b\n1,2\n3,4\n')).toEqual([rec(1, 'a', 'b'), rec(2, '1', '2'), rec(3, '3', '4')]);
  });

  it('parses the last record without a trailing newline', () => {
    expect(whole('a,b\n1,2\n3,4')).toEqual([rec(1, 'a', 'b'), rec(2, '1', '2'), rec(3, '3', '4')]);
  });

  it('keeps a quoted field that spans lines and numbers the next record after it', () => {
    expect(whole('a,b\n"x\ny\nz",1\n2,3\n')).toEqual([rec(1, 'a', 'b'), rec(2, 'x\ny\nz', '1'), rec(5, '2', '3')]);
  });

  it('reads CRLF, CR-only and mixed line endings', () => {
    expect(whole('a,b\r\n1,2\r\n3,4\r\n')).toEqual([rec(1, 'a', 'b'), rec(2, '1', '2'), rec(3, '3', '4')]);
    expect(whole('a,b\r1,2\r3,4\r')).toEqual([rec(1, 'a', 'b'), rec(2, '1', '2'), rec(3, '3', '4')]);
    expect(whole('a,b\r\n1,2\n3,4\r5,6')).toEqual([rec(1, 'a', 'b'), rec(2, '1', '2'), rec(3, '3', '4'), rec(4, '5', '6')]);
  });

  it('counts a CRLF inside a quoted field as one line', () => {
    expect(whole('a,b\r\n"x\r\ny",1\r\n2,3\r\n')).toEqual([rec(1, 'a', 'b'), rec(2, 'x\r\ny', '1'), rec(4, '2', '3')]);
    expect(whole('a,b\n"1\r\n2\r\n3",x\n"\r\n",y\nq,r\n')).toEqual([rec(1, 'a', 'b'), rec(2, '1\r\n2\r\n3', 'x'), rec(5, '\r\n', 'y'), rec(7, 'q', 'r')]);
  });

  it('skips blank lines but counts them in line numbers', () => {
    expect(whole('a,b\n\n1,2\r\n\r\n\r\n3,4\r\r5,6\n\n')).toEqual([rec(1, 'a', 'b'), rec(3, '1', '2'), rec(6, '3', '4'), rec(8, '5', '6')]);
    expect(whole('\n\na,b\n1,2')).toEqual([rec(3, 'a', 'b'), rec(4, '1', '2')]);
  });

  it('strips a UTF-8 BOM, and only at the start of the file', () => {
    expect(whole('\uFEFFa,b\n1,2\n')).toEqual([rec(1, 'a', 'b'), rec(2, '1', '2')]);
    expect(whole('a,b\n\uFEFF1,2\n')).toEqual([rec(1, 'a', 'b'), rec(2, '\uFEFF1', '2')]);
    expect(whole('\uFEFFa,b\n1,2\n', { bom: false })).toEqual([rec(1, '\uFEFFa', 'b'), rec(2, '1', '2')]);
  });

  it('decodes multi-byte UTF-8 fields', () => {
    expect(whole('név,€\nü,😀\n')).toEqual([rec(1, 'név', '€'), rec(2, 'ü', '😀')]);
  });

  it('reads doubled quotes, a quoted delimiter and an empty quoted field', () => {
    expect(whole('a,b,c\n"say ""hi""","x,y",""\n')).toEqual([rec(1, 'a', 'b', 'c'), rec(2, 'say "hi"', 'x,y', '')]);
  });

  it('splits on ";" and on tab', () => {
    expect(whole('a;b\n1,5;"x;y"\n', { delimiter: ';' })).toEqual([rec(1, 'a', 'b'), rec(2, '1,5', 'x;y')]);
    expect(whole('a\tb\n1,5\t"x\ty"\n', { delimiter: '\t' })).toEqual([rec(1, 'a', 'b'), rec(2, '1,5', 'x\ty')]);
    expect(whole('a;b\n1;2;3\n4;5\n', { delimiter: ';' })).toEqual([rec(1, 'a', 'b'), rej(2, 'CSV_RECORD_INCONSISTENT_COLUMNS', '1;2;3'), rec(3, '4', '5')]);
  });

  it('reports nothing for an empty file or a BOM-only file', () => {
    expect(whole('')).toEqual([]);
    expect(whole('\uFEFF')).toEqual([]);
    expect(read([])).toEqual([]);
  });
});

describe('CsvRecordReader: rejects', () => {
  it('rejects a record with the wrong field count, then goes on', () => {
    expect(whole('a,b\n1,2,3\n4\n5,6\n')).toEqual([
      rec(1, 'a', 'b'),
      rej(2, 'CSV_RECORD_INCONSISTENT_COLUMNS', '1,2,3'),
      rej(3, 'CSV_RECORD_INCONSISTENT_COLUMNS', '4'),
      rec(4, '5', '6'),
    ]);
  });

  it('keeps a rejected multi-line record whole, without its line terminator', () => {
    expect(whole('a,b\r\n"x\ny",2,3\r\n4,5\r\n')).toEqual([rec(1, 'a', 'b'), rej(2, 'CSV_RECORD_INCONSISTENT_COLUMNS', '"x\ny",2,3'), rec(4, '4', '5')]);
  });

  it('rejects text after a closing quote (CSV_INVALID_CLOSING_QUOTE)', () => {
    expect(whole('a,b\n"x"y,2\n3,4\n')).toEqual([rec(1, 'a', 'b'), rej(2, 'CSV_INVALID_CLOSING_QUOTE', '"x"y,2'), rec(3, '3', '4')]);
  });

  it('rejects a bad closing quote on the later line of a multi-line field, resuming after that line', () => {
    expect(whole('a,b\n"x\ny"z,1\n7,8\n')).toEqual([rec(1, 'a', 'b'), rej(2, 'CSV_INVALID_CLOSING_QUOTE', '"x\ny"z,1'), rec(4, '7', '8')]);
    expect(whole('a,b\r\n"x\r\ny"z,1\r\n7,8\r\n')).toEqual([rec(1, 'a', 'b'), rej(2, 'CSV_INVALID_CLOSING_QUOTE', '"x\r\ny"z,1'), rec(4, '7', '8')]);
  });

  it('resyncs after a bad record the same at every cut when a CRLF is followed by a LF (mixed line endings)', () => {
    // a whole CRLF ending a chunk was taken for a lone CR, and the LF after it swallowed
    expectEveryChunking('a,b\r\n1,"x"y\r\n\n3,4\r\n5\r\n', [
      rec(1, 'a', 'b'),
      rej(2, 'CSV_INVALID_CLOSING_QUOTE', '1,"x"y'),
      rec(4, '3', '4'),
      rej(5, 'CSV_RECORD_INCONSISTENT_COLUMNS', '5'),
    ]);
    expectEveryChunking('a,b\r\n1,"x\r\n\ny"z\r\n3,4\r\n5,6\r\n', [
      rec(1, 'a', 'b'),
      rej(2, 'CSV_INVALID_CLOSING_QUOTE', '1,"x\r\n\ny"z'),
      rec(5, '3', '4'),
      rec(6, '5', '6'),
    ]);
  });

  it('rejects a quote inside an unquoted field (INVALID_OPENING_QUOTE)', () => {
    expect(whole('a,b\na"b,2\n3,4\n')).toEqual([rec(1, 'a', 'b'), rej(2, 'INVALID_OPENING_QUOTE', 'a"b,2'), rec(3, '3', '4')]);
  });

  it('rejects a quote still open at the end of the file (CSV_QUOTE_NOT_CLOSED) with all the bytes after it', () => {
    expect(whole('a,b\n1,2\n"3,4\n5,6\n')).toEqual([rec(1, 'a', 'b'), rec(2, '1', '2'), rej(3, 'CSV_QUOTE_NOT_CLOSED', '"3,4\n5,6')]);
    expect(whole('a,b\n1,2\n"3,4')).toEqual([rec(1, 'a', 'b'), rec(2, '1', '2'), rej(3, 'CSV_QUOTE_NOT_CLOSED', '"3,4')]);
  });

  it('rejects a record with invalid UTF-8, keeping its bytes exactly and no U+FFFD anywhere', () => {
    const input = Buffer.concat([
      bytes('a,b\n'),
      Buffer.from([0x78, 0xff, 0x2c, 0x31]),
      bytes('\nü,2\n'),
      Buffer.from([0xc3, 0x28, 0x2c, 0x33]),
      bytes('\r\n4,5\n'),
    ]);
    const events = whole(input);
    expect(events).toEqual([
      rec(1, 'a', 'b'),
      rej(2, 'INVALID_UTF8', Buffer.from([0x78, 0xff, 0x2c, 0x31])),
      rec(3, 'ü', '2'),
      rej(4, 'INVALID_UTF8', Buffer.from([0xc3, 0x28, 0x2c, 0x33])),
      rec(5, '4', '5'),
    ]);
    noReplacementChar(events);
  });

  it('rejects invalid UTF-8 in the last record when the file has no trailing newline', () => {
    const events = whole(Buffer.concat([bytes('a,b\n1,2\nx,'), Buffer.from([0xe2, 0x82])]));
    expect(events).toEqual([rec(1, 'a', 'b'), rec(2, '1', '2'), rej(3, 'INVALID_UTF8', Buffer.concat([bytes('x,'), Buffer.from([0xe2, 0x82])]))]);
    noReplacementChar(events);
  });

  it('accepts latin1 bytes when the encoding is latin1', () => {
    expect(whole(Buffer.from('a,b\nd\xe9j\xe0,1\n', 'latin1'), { encoding: 'latin1' })).toEqual([rec(1, 'a', 'b'), rec(2, 'déjà', '1')]);
  });

  it('rejects a record larger than maxRecordSize and keeps at most that many raw bytes', () => {
    const big = 'y'.repeat(200);
    expect(whole(`a,b\n1,2\n${big},3\n4,5\n`, { maxRecordSize: 64 })).toEqual([
      rec(1, 'a', 'b'),
      rec(2, '1', '2'),
      rej(3, 'CSV_MAX_RECORD_SIZE', big.slice(0, 64)),
      rec(4, '4', '5'),
    ]);
  });

  it('holds memory near maxRecordSize, not the whole record, while skipping a huge one', () => {
    const events: Event[] = [];
    const reader = new CsvRecordReader(
      {
        record: (fields, line) => events.push({ kind: 'record', line, fields }),
        reject: (line, code, _m, raw) => events.push({ kind: 'reject', line, code, raw: Buffer.from(raw) }),
      },
      { maxRecordSize: 4096 },
    );
    const held = (): number => {
      const r = reader as unknown as { retained: Array<{ buf: Buffer }>; queue: Array<{ buf: Buffer }>; skipRawBytes: number };
      return [...r.retained, ...r.queue].reduce((n, c) => n + c.buf.length, 0) + r.skipRawBytes;
    };
    reader.write(bytes('a,b\n'));
    const chunk = Buffer.alloc(1024, 0x7a);
    let peak = 0;
    for (let i = 0; i < 4096; i++) {
      reader.write(chunk);
      peak = Math.max(peak, held());
    }
    reader.write(bytes(',1\n2,3\n'));
    reader.end();
    expect(peak).toBeLessThanOrEqual(4096 + 2 * 1024);
    expect(events.map((e) => (e.kind === 'record' ? [e.line, ...e.fields] : [e.line, e.code, e.raw.length]))).toEqual([
      [1, 'a', 'b'],
      [2, 'CSV_MAX_RECORD_SIZE', 4096],
      [3, '2', '3'],
    ]);
  });

  it('goes on after several bad records in a row with correct line numbers', () => {
    expect(whole('h1,h2\n"a"b,1\nc"d,2\n1,2,3\n"ok\nok",5\n\n"e"f\r\n6,7')).toEqual([
      rec(1, 'h1', 'h2'),
      rej(2, 'CSV_INVALID_CLOSING_QUOTE', '"a"b,1'),
      rej(3, 'INVALID_OPENING_QUOTE', 'c"d,2'),
      rej(4, 'CSV_RECORD_INCONSISTENT_COLUMNS', '1,2,3'),
      rec(5, 'ok\nok', '5'),
      rej(8, 'CSV_INVALID_CLOSING_QUOTE', '"e"f'),
      rec(9, '6', '7'),
    ]);
  });

  it('reports a malformed header as a reject on line 1 and takes the next good record as the header', () => {
    expect(whole('"a"x,b\n1,2\n3,4\n')).toEqual([rej(1, 'CSV_INVALID_CLOSING_QUOTE', '"a"x,b'), rec(2, '1', '2'), rec(3, '3', '4')]);
  });
});

describe('CsvRecordReader: whole-file failures', () => {
  it('throws BINARY_FILE when the first chunk holds a NUL byte', () => {
    const reader = new CsvRecordReader({ record: () => undefined, reject: () => undefined });
    let thrown: unknown;
    try {
      reader.write(Buffer.from('a,b\n1,\u00002\n'));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(SluiceError);
    expect((thrown as SluiceError).code).toBe('BINARY_FILE');
  });

  it('reads NUL bytes as text when refuseBinary is false', () => {
    expect(whole('a,b\n1,\u00002\n', { refuseBinary: false })).toEqual([rec(1, 'a', 'b'), rec(2, '1', '\u00002')]);
  });
});

describe('CsvRecordReader: every chunking gives the same result', () => {
  it('line endings, blank lines and no trailing newline', () => {
    expectEveryChunking('a,b\r\n1,2\n\r\n3,4\r\r5,6\r\n\n7,8', [rec(1, 'a', 'b'), rec(2, '1', '2'), rec(4, '3', '4'), rec(6, '5', '6'), rec(8, '7', '8')]);
  });

  it('quoted fields holding delimiters, quotes, CRLF, CR and LF', () => {
    expectEveryChunking('a,b\r\n"x,""y""\r\nz",1\r\n"p\rq\ns",2\r\n3,"4"', [
      rec(1, 'a', 'b'),
      rec(2, 'x,"y"\r\nz', '1'),
      rec(4, 'p\rq\ns', '2'),
      rec(7, '3', '4'),
    ]);
  });

  it('a BOM and multi-byte characters', () => {
    expectEveryChunking('\uFEFFnév,€\r\nü,😀\r\n"€\n😀",ß\n', [rec(1, 'név', '€'), rec(2, 'ü', '😀'), rec(3, '€\n😀', 'ß')]);
  });

  it('bad records of every kind, each followed by a good one', () => {
    expectEveryChunking('a,b\r\n1,2,3\r\n4,5\n"x"y,6\r\n7,8\ra"b,9\n"c\r\nd"e,1\r\n10,11\n"open,12\n13,14', [
      rec(1, 'a', 'b'),
      rej(2, 'CSV_RECORD_INCONSISTENT_COLUMNS', '1,2,3'),
      rec(3, '4', '5'),
      rej(4, 'CSV_INVALID_CLOSING_QUOTE', '"x"y,6'),
      rec(5, '7', '8'),
      rej(6, 'INVALID_OPENING_QUOTE', 'a"b,9'),
      rej(7, 'CSV_INVALID_CLOSING_QUOTE', '"c\r\nd"e,1'),
      rec(9, '10', '11'),
      rej(10, 'CSV_QUOTE_NOT_CLOSED', '"open,12\n13,14'),
    ]);
  });

  it('invalid UTF-8 next to valid multi-byte characters', () => {
    const input = Buffer.concat([
      bytes('a,b\r\n€,1\r\n'),
      Buffer.from([0xe2, 0x82, 0x2c, 0x32]),
      bytes('\r\n😀,3\n'),
      Buffer.from([0x34, 0x2c, 0xf0, 0x9f, 0x98]),
      bytes('\nx,'),
      Buffer.from([0xc3]),
    ]);
    expectEveryChunking(input, [
      rec(1, 'a', 'b'),
      rec(2, '€', '1'),
      rej(3, 'INVALID_UTF8', Buffer.from([0xe2, 0x82, 0x2c, 0x32])),
      rec(4, '😀', '3'),
      rej(5, 'INVALID_UTF8', Buffer.from([0x34, 0x2c, 0xf0, 0x9f, 0x98])),
      rej(6, 'INVALID_UTF8', Buffer.from([0x78, 0x2c, 0xc3])),
    ]);
  });

  it('a record over maxRecordSize', () => {
    expectEveryChunking(
      'a,b\n1,2\n0123456789abcdefghij,x\r\n3,4\n',
      [rec(1, 'a', 'b'), rec(2, '1', '2'), rej(3, 'CSV_MAX_RECORD_SIZE', '0123456789ab'), rec(4, '3', '4')],
      { maxRecordSize: 12 },
    );
  });

  it('a tab delimiter', () => {
    expectEveryChunking(
      'a\tb\r\n"1\t2"\t3\r\n4\t5\t6\n7\t8',
      [rec(1, 'a', 'b'), rec(2, '1\t2', '3'), rej(3, 'CSV_RECORD_INCONSISTENT_COLUMNS', '4\t5\t6'), rec(4, '7', '8')],
      {
        delimiter: '\t',
      },
    );
  });
});
