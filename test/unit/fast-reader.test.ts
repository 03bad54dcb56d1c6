// The fast path must give exactly what csv-parse gives (records, lines, rejects with code, message and raw
// bytes), for a corpus of tricky inputs and for fuzzed input cut into random chunks. Its `raw` text, when
// given, must be exactly what csv-stringify writes for the fields.
import { stringify } from 'csv-stringify/sync';
import { describe, expect, it } from 'vitest';
import { FastCsvReader } from '../../src/csv/fast-reader.js';
import { CsvRecordReader, type CsvReadOptions } from '../../src/csv/record-reader.js';

type Event = string;

function run(kind: 'fast' | 'slow', input: Buffer, cuts: number[], options: CsvReadOptions = {}): { events: Event[]; raws: Array<[string[], string]> } {
  const events: Event[] = [];
  const raws: Array<[string[], string]> = [];
  const handler = {
    record(fields: string[], line: number, raw?: string) {
      events.push(`rec ${line} ${JSON.stringify(fields)}`);
      if (raw !== undefined) raws.push([fields, raw]);
    },
    reject(line: number, code: string, message: string, raw: Buffer) {
      events.push(`rej ${line} ${code} ${message} ${raw.toString('hex')}`);
    },
  };
  const reader = kind === 'fast' ? new FastCsvReader(handler, options) : new CsvRecordReader(handler, options);
  try {
    let at = 0;
    for (const cut of [...cuts, input.length]) {
      reader.write(input.subarray(at, cut));
      at = cut;
    }
    reader.end();
  } catch (err) {
    events.push(`throw ${(err as { code?: string }).code ?? String(err)}`);
  }
  return { events, raws };
}

function same(input: Buffer | string, cuts: number[] = [], options: CsvReadOptions = {}): void {
  const buf = typeof input === 'string' ? Buffer.from(input) : input;
  const fast = run('fast', buf, cuts, options);
  const slow = run('slow', buf, cuts, options);
  expect(fast.events, `input ${JSON.stringify(buf.toString('latin1'))} cuts ${JSON.stringify(cuts)}`).toEqual(slow.events);
  const delimiter = options.delimiter ?? ',';
  for (const [fields, raw] of fast.raws) expect(stringify([fields], { delimiter })).toBe(`${raw}\n`);
}

const CORPUS = [
  'a,b\n1,2\n3,4\n',
  'a,b\r\n1,2\r\n3,4',
  'a,b\n1,2\n\n\n3,4\n',
  'a,b\r\n\r\n1,2\r\n',
  '\uFEFFa,b\n1,2\n',
  'a,b\n"x,y","say ""hi"""\n"multi\nline",z\n',
  'a,b\n"",""\n"a",b\n',
  'a,b\n1,2,3\n4\n5,6\n',
  'a,b\n"x"y,2\n3,4\n',
  'a,b\n1,a"b\n3,4\n',
  'a,b\n1,2\n"3,4\n5,6\n',
  'a,b\n1,2\r3,4\n',
  'a,b\n"x\r\ny",2\n3,4\n',
  'a,b\n1,2,\n',
  'a,b\n1,\n,\n',
  'a\n\n""\nx\n',
  'a,b\n1, 2 \n',
  'a;b\n1;2\n"x;y";z\n',
  'a,b\n1,2\n3,4\r',
  'a,b\n1,2\n3,4\r\n',
  'a\n"',
  'a,b\n"a""b",c\n',
];

describe('FastCsvReader against csv-parse (CsvRecordReader)', () => {
  it.each(CORPUS.map((c) => [c]))('agrees on %j, whole and cut at every position', (input) => {
    const delimiter = input.includes(';') ? ';' : ',';
    same(input, [], { delimiter });
    const buf = Buffer.from(input);
    for (let i = 1; i < buf.length; i++) same(buf, [i], { delimiter });
  });

  it('agrees on invalid UTF-8, split multi-byte characters and a NUL byte', () => {
    same(Buffer.concat([Buffer.from('a,b\n1,'), Buffer.from([0xff, 0xfe]), Buffer.from(',x\n2,3\n')]));
    const e = Buffer.from('a,b\né,日本\n');
    for (let i = 1; i < e.length; i++) same(e, [i]);
    same(Buffer.from('a,b\n1,\0\n'));
    same(Buffer.from('a,b\n1,2\n\0'), [6]);
  });

  it('agrees on fuzzed input cut into random chunks (seeded, 4000 cases)', () => {
    let seed = 20261125;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return Math.floor((seed / 2147483648) * n);
    };
    const alphabet = ['a', 'b', 'é', '日', ',', ',', '"', '"', '\n', '\n', '\r\n', '\r', ' ', 'x', '\xff'];
    for (let k = 0; k < 4000; k++) {
      const header = ['h1,h2\n', 'h1\n', 'h1,h2,h3\n', ''][rnd(4)]!;
      let body = header;
      const len = rnd(120);
      for (let i = 0; i < len; i++) body += alphabet[rnd(alphabet.length)];
      const buf = Buffer.from(body.replace(/\xff/g, '\u0000'), 'utf8');
      for (let i = 0; i < buf.length; i++) if (buf[i] === 0) buf[i] = 0xff; // an invalid byte, not NUL
      const cuts: number[] = [];
      for (let at = rnd(12) + 4; at < buf.length; at += rnd(20) + 1) cuts.push(at);
      same(buf, cuts);
    }
  });
});
