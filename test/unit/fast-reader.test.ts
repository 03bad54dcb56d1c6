// The fast path must give exactly what csv-parse gives (records, lines, rejects with code, message and raw
// bytes), for a corpus of tricky inputs and for fuzzed input cut into random chunks. Its `raw` text, when
// given, must be exactly what csv-stringify writes for the fields.
import { stringify } from 'csv-stringify/sync';
import { describe, expect, it } from 'vitest';
import { FastCsvReader } from '../../src/csv/fast-reader.js';
import { CsvRecordReader, type CsvReadOptions } from '../../src/csv/record-reader.js';

type Event = string;

function run(
  kind: 'fast' | 'slow',
  input: Buffer,
  cuts: number[],
  options: CsvReadOptions = {},
): { events: Event[]; raws: Array<[string[], string]>; handedOver: boolean } {
  const events: Event[] = [];
  const raws: Array<[string[], string]> = [];
  let comments = 0;
  const handler = {
    comments(count: number) {
      comments += count;
    },
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
  // the readers may tell comments one at a time or several at once: the total must agree
  if (comments > 0) events.push(`comments ${comments}`);
  return { events, raws, handedOver: (reader as unknown as { fallback?: unknown }).fallback !== undefined };
}

/** Asserts both readers agree (and that `raw` is what csv-stringify writes); true when the fast path kept the whole input. */
function same(input: Buffer | string, cuts: number[] = [], options: CsvReadOptions = {}): boolean {
  const buf = typeof input === 'string' ? Buffer.from(input) : input;
  const fast = run('fast', buf, cuts, options);
  const slow = run('slow', buf, cuts, options);
  const what = `input ${JSON.stringify(buf.length > 2000 ? `${buf.length} bytes` : buf.toString('latin1'))} cuts ${JSON.stringify(cuts)} options ${JSON.stringify(options)}`;
  if (fast.events.length !== slow.events.length || fast.events.some((e, i) => e !== slow.events[i])) expect(fast.events, what).toEqual(slow.events);
  const delimiter = options.delimiter ?? ',';
  for (const [fields, raw] of fast.raws) {
    const written = stringify([fields], { delimiter });
    if (written !== `${raw}\n`) expect(written, what).toBe(`${raw}\n`);
  }
  return !fast.handedOver;
}

/** Deterministic PRNG (LCG), so every run checks the same cases. */
function prng(seed: number): (n: number) => number {
  let x = seed;
  return (n) => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return Math.floor((x / 2147483648) * n);
  };
}

/** Random cut points: chunks of 1 to `max` bytes, sometimes a single chunk. */
function randomCuts(rnd: (n: number) => number, length: number, max: number): number[] {
  const cuts: number[] = [];
  if (rnd(8) === 0) return cuts;
  for (let at = rnd(max) + 1; at < length; at += rnd(max) + 1) cuts.push(at);
  return cuts;
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

  it.each(
    [
      '#c\na,b\n1,2\n',
      'a,b\n# x, "y\n1,2\n#z',
      'a,b\r\n#c\r\n1,2\r\n#\r\n',
      'a,b\n#c\rd\n1,2\n',
      'a,b\n"#x\n#y",2\n#3,4\n 5,#6\n',
      'a,b\n#c\r',
      'a,b\n#\n\n#\n1,2,3\n"x"y,2\n#c\n3,4\n',
      '\uFEFF#c\na\n',
    ].map((c) => [c]),
  )('agrees with comment: "#" on %j, whole and cut at every position', (input) => {
    const buf = Buffer.from(input);
    // inputs without a lone CR or a bad quote stay on the fast path
    expect(same(buf, [], { comment: '#' }) || input.includes('\r') || input.includes('"x"y')).toBe(true);
    for (let i = 1; i < buf.length; i++) same(buf, [i], { comment: '#' });
    same(buf, [], { comment: '#', firstLine: 4 });
    same(buf, [], { comment: '#', width: 2 });
  });

  it('agrees with comment, firstLine and width on fuzzed input cut into random chunks (seeded, 3000 cases)', () => {
    const rnd = prng(17);
    const alphabet = ['a', '#', '#', ',', '"', '\n', '\n', '\r\n', '\r', ' ', 'é'];
    for (let k = 0; k < 3000; k++) {
      let body = ['h1,h2\n', '#h\nh1\n', ''][rnd(3)]!;
      for (let i = rnd(80); i > 0; i--) body += alphabet[rnd(alphabet.length)];
      const buf = Buffer.from(body);
      const options: CsvReadOptions = { comment: '#', ...(rnd(2) === 0 ? { firstLine: 3 } : {}), ...(rnd(3) === 0 ? { width: 2 } : {}) };
      same(
        buf,
        randomCuts(rnd, buf.length, 16).filter((c) => c >= 4),
        options,
      );
    }
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

  const MORE: Array<[string, CsvReadOptions?]> = [
    ['a,b\n"x""",y\n'],
    ['a,b\n"x"\n'],
    ['a,b\n1,"2\n3"\r\n4,5\n'],
    ['a,b\n"",\n'],
    ['a,b\n"a,b","c\nd"\n"""",x\n'],
    ['a,b\n1,2\n3,"4'],
    ['a,b\n1,"2" \n3,4\n'],
    ['a,b\n1,2\n\r\n\r\n3,4\n'],
    ['\n\r\na,b\n1,2\n'],
    ['a,b\r1,2\r'],
    ['a,b\n\uFEFF1,2\n'],
    ['\uFEFF'],
    ['\uFEFF\n'],
    ['\uFEFFa'],
    [''],
    ['a,b\n\u{1F600},"日本\n語"\n'],
    ['a,b\n1,2\n3,4\n\n'],
    ['a,b,c\n,,\n"",,""\n'],
    ['a\n""\n"x"\n\n'],
    ['h\n'],
    ['h'],
    ['a,b\n"x\ny\nz",1\n2,3\n4\n'],
    ['a,b\n"a\n\nb",c\n'],
    ['a,b\n"a\r\nb",c\n'],
    ['a,b\n"a\rb",c\n'],
    ['a,b\n"x"",y\n1,2\n'],
    ['a,b\nx",y\n1,2\n'],
    ['a,b\n1,2"\n'],
    ['a,b\n"1"x,2\n'],
    ['a,b\n1,2\r\r\n3,4\n'],
    ['a\tb\n1\t"x\ty"\n"p""q"\t\n', { delimiter: '\t' }],
    ['a|b\n1|"x|y"\n1|2|3\n', { delimiter: '|' }],
    ['a b\n1 "x y"\n', { delimiter: ' ' }],
    ['a;b\n1,2;3\n"a;b";"c,d"\n', { delimiter: ';' }],
    ['\uFEFFa,b\n1,2\n', { bom: false }],
    ['a,b\n1,\u0000\n', { refuseBinary: false }],
  ];

  it.each(MORE.map(([input, options]) => [input, options ?? {}]))('agrees on %j %j, whole and cut at every position', (input, options) => {
    const buf = Buffer.from(input);
    same(buf, [], options);
    for (let i = 1; i < buf.length; i++) same(buf, [i], options);
    for (let i = 1; i + 1 < buf.length; i++) same(buf, [i, i + 1], options);
  });

  it('agrees on records at and around the size limit, and a record longer than a chunk', () => {
    const limit = 1024 * 1024;
    const options = { maxRecordSize: limit };
    for (const ch of ['x', '日', '\u{1F600}']) {
      const width = Buffer.byteLength(ch);
      // limit / 4 characters is where the fast path hands a record to csv-parse to judge
      for (const bytes of [limit / 4 - 8, limit / 4 + 8, limit - 1, limit + 1]) {
        const field = ch.repeat(Math.max(1, Math.floor(bytes / width)));
        for (const quoted of [false, true]) {
          const f = quoted ? `"${field},"` : field;
          const input = Buffer.from(`a,b\n1,2\n3,${f}\n4,5\n6,${f}`);
          same(input, [], options);
          const cuts: number[] = [];
          for (let at = 65536; at < input.length; at += 65536) cuts.push(at);
          same(input, cuts, options);
        }
      }
    }
  });

  it('agrees on random bytes from a,"\\r\\n\\xc3\\xa9 cut into random chunks (seeded, 3000 cases)', () => {
    const rnd = prng(7);
    const alphabet = [0x61, 0x2c, 0x2c, 0x22, 0x22, 0x0d, 0x0a, 0x0a, 0xc3, 0xa9];
    for (let k = 0; k < 3000; k++) {
      const buf = Buffer.alloc(rnd(80) + 1);
      for (let i = 0; i < buf.length; i++) buf[i] = alphabet[rnd(alphabet.length)]!;
      same(buf, randomCuts(rnd, buf.length, 16));
    }
  });

  it('agrees on well-formed CSV, with and without one random byte changed, cut into random chunks (seeded, 3000 cases; most stay on the fast path)', () => {
    const rnd = prng(20261125);
    const common = ['a', 'bc', 'é', '日本', '\u{1F600}', ' ', '"', ',', ';', '\t', '|', '\n', '0', '-1.5', ''];
    const mutations = [',', '"', '\r', '\n', '\xff', 'x', ''];
    let kept = 0;
    let clean = 0;
    for (let k = 0; k < 3000; k++) {
      const delimiter = [',', ',', ';', '\t', '|'][rnd(5)]!;
      // a CR inside quotes is csv-parse's (it counts lines its own way): only in some inputs
      const pieces = rnd(8) === 0 ? [...common, '\r\n', '\r'] : common;
      const width = rnd(4) + 1;
      const rows = rnd(12) + 1;
      const quoteAll = rnd(6) === 0;
      const lines: string[] = [];
      for (let r = 0; r < rows; r++) {
        let w = width;
        if (r > 0 && rnd(10) === 0) w = rnd(6) + 1; // ragged
        const fields: string[] = [];
        for (let f = 0; f < w; f++) {
          let v = '';
          for (let p = rnd(4); p > 0; p--) v += pieces[rnd(pieces.length)];
          fields.push(v);
        }
        const needs = (v: string): boolean => v.includes(delimiter) || v.includes('"') || v.includes('\n') || v.includes('\r');
        lines.push(fields.map((v) => (quoteAll || needs(v) || (w === 1 && v === '') ? `"${v.replace(/"/g, '""')}"` : v)).join(delimiter));
        if (rnd(15) === 0) lines.push('');
      }
      const eol = rnd(3) === 0 ? '\r\n' : '\n';
      let buf = Buffer.from(lines.join(eol) + (rnd(4) === 0 ? '' : eol));
      const mutate = rnd(3) === 0;
      if (mutate && buf.length > 0) {
        const at = rnd(buf.length);
        const m = Buffer.from(mutations[rnd(mutations.length)]!, 'latin1');
        buf = Buffer.concat([buf.subarray(0, at), m, buf.subarray(at + (rnd(2) === 0 ? 1 : 0))]);
      } else clean++;
      const options = delimiter === ',' ? {} : { delimiter };
      // the first chunk is 4 bytes or more (shorter first chunks, a BOM cut in two, go to csv-parse whole)
      const cuts = randomCuts(rnd, buf.length, 24).filter((c) => c >= 4);
      if (same(buf, cuts, options) && !mutate) kept++;
    }
    // the proof is only worth something if the fast path did the work: most clean inputs never leave it
    expect(kept).toBeGreaterThan(clean * 0.6);
  });

  it('agrees on a benchmark-like file cut at 64 KiB and at random', () => {
    const rnd = prng(42);
    const notes = ['', 'fragile', '"gift, wrapped"', '"call ""before"" delivery"', 'leave at door', 'café', '"日本, 語"'];
    let text = 'id,ts,user,email,note,score\n';
    for (let i = 0; i < 4000; i++) {
      const f = [
        String(i),
        new Date(1.7e12 + i * 1000).toISOString(),
        `user${rnd(1e5)}`,
        `u${rnd(1e5)}@example.com`,
        notes[rnd(notes.length)]!,
        (rnd(1e4) / 1e4).toFixed(4),
      ];
      if (rnd(20) === 0) f[1 + rnd(5)] = '';
      text += `${f.join(',')}\n`;
    }
    const buf = Buffer.from(text);
    const cuts: number[] = [];
    for (let at = 65536; at < buf.length; at += 65536) cuts.push(at);
    expect(same(buf, cuts)).toBe(true);
    expect(same(buf, randomCuts(rnd, buf.length, 5000))).toBe(true);
    // one write of the whole file: the reader cuts it in 64 KiB pieces (multi-byte characters split between)
    expect(same(buf)).toBe(true);
    // an anomaly past the first piece of one large write: the rest of that write goes to csv-parse
    const at = buf.indexOf('\n', 100_000) + 1;
    const bad = Buffer.concat([buf.subarray(0, at), Buffer.from('1,x"y,a,b,c,d\n'), buf.subarray(at)]);
    expect(same(bad)).toBe(false);
    expect(same(bad, [at + 3])).toBe(false);
    // a NUL byte past the first piece: in the first chunk (the whole file refused) or in a later one
    const nul = Buffer.from(buf);
    nul[at + 3] = 0;
    same(nul);
    same(nul, [65536]);
    expect(run('fast', nul, []).events).toEqual(['throw BINARY_FILE']);
  });
});
