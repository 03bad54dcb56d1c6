// JSON lines in (exact rows, lines and rejects at every chunk boundary) and typed JSON lines out.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RecordHandler } from '../../src/csv/record-reader.js';
import { JsonArrayReader, NdjsonReader, valueSources } from '../../src/json/ndjson-reader.js';
import { ndjsonFileSink } from '../../src/sinks/ndjson-file.js';

type Out = Array<[number, string[]] | [number, string, string]>;

function read(
  input: Buffer,
  cuts: number[] = [],
  options: ConstructorParameters<typeof NdjsonReader>[1] = {},
  Reader: typeof NdjsonReader | typeof JsonArrayReader = NdjsonReader,
): { out: Out; extra: string[] } {
  const out: Out = [];
  const extra: string[] = [];
  const handler: RecordHandler = {
    record: (fields, line) => out.push([line, fields]),
    reject: (line, code, _message, raw) => out.push([line, code, raw.toString('latin1')]),
  };
  const r = new Reader(handler, { onExtraKey: (k) => extra.push(k), ...options });
  let from = 0;
  for (const c of [...cuts, input.length]) {
    r.write(input.subarray(from, c));
    from = c;
  }
  r.end();
  return { out, extra };
}

const SAMPLE = Buffer.from(
  '\ufeff{"id":"1","n":2,"ok":true,"nest":{"a":[1,"x"]},"big":12345678901234567890,"s":"caf\\u00e9 \\"q\\""}\r\n' +
    'not json\n' +
    '{"id":null,"extra":1}\n' +
    '\n' +
    '   \n' +
    '[1,2]\n' +
    '{"n":1.50e1,"id":"3"}\n' +
    '{"id":"4"}',
);
const EXPECTED: Out = [
  [1, ['id', 'n', 'ok', 'nest', 'big', 's']],
  [1, ['1', '2', 'true', '{"a":[1,"x"]}', '12345678901234567890', 'café "q"']],
  [2, 'JSON_INVALID', 'not json'],
  [3, ['', '', '', '', '', '']],
  [6, 'JSON_INVALID', '[1,2]'],
  [7, ['3', '1.50e1', '', '', '', '']],
  [8, ['4', '', '', '', '', '']],
];

describe('NdjsonReader', () => {
  it('reads objects as rows in header order, values as written, and rejects what is not an object, at every chunk boundary', () => {
    for (let cut = 0; cut <= SAMPLE.length; cut++) {
      const { out, extra } = read(SAMPLE, [cut]);
      expect(out, `cut at ${cut}`).toEqual(EXPECTED);
      expect(extra).toEqual(['extra']);
    }
    // and cut everywhere at once: one byte per chunk
    expect(
      read(
        SAMPLE,
        Array.from({ length: SAMPLE.length }, (_, i) => i),
      ).out,
    ).toEqual(EXPECTED);
  });

  it("keeps the file's key order for the header, integer-like keys included", () => {
    expect(read(Buffer.from('{"name":"x","2024":"5","2023":"4"}\n')).out).toEqual([
      [1, ['name', '2024', '2023']],
      [1, ['x', '5', '4']],
    ]);
  });

  it('takes the header from columns when given; every key not in it is counted', () => {
    const { out, extra } = read(Buffer.from('{"a":"1","b":"2","c":"3"}\n{"c":"4"}\n'), [], { columns: ['c', 'a'] });
    expect(out).toEqual([
      [1, ['c', 'a']],
      [1, ['3', '1']],
      [2, ['4', '']],
    ]);
    expect(extra).toEqual(['b']);
  });

  it('rejects a line longer than maxRecordSize keeping only its first bytes, invalid UTF-8, and NUL bytes fail the file', () => {
    const long = `{"a":"${'x'.repeat(100)}"}`;
    const input = Buffer.from(`{"a":"1"}\n${long}\n{"a":"2"}\n`);
    for (const cuts of [[15, 40, 70], []]) {
      expect(read(input, cuts, { maxRecordSize: 32 }).out, `cuts ${cuts}`).toEqual([
        [1, ['a']],
        [1, ['1']],
        [2, 'CSV_MAX_RECORD_SIZE', long.slice(0, 32)],
        [3, ['2']],
      ]);
    }
    const bad = Buffer.concat([Buffer.from('{"a":"1"}\n{"a":"'), Buffer.from([0xff]), Buffer.from('"}\n')]);
    expect(read(bad).out[2]).toEqual([2, 'INVALID_UTF8', '{"a":"\xff"}']);
    expect(() => read(Buffer.from('{"a":"\u0000"}\n'.replace('\\u0000', '\0')))).toThrow(/binary/);
  });

  it('finds each top-level value as written, strings with escaped quotes and nesting included', () => {
    expect([...valueSources('{ "a" : 1.0 , "b\\"":"x\\\\", "c":[{"d":"]"}], "e": null }')]).toEqual([
      ['a', '1.0'],
      ['b"', '"x\\\\"'],
      ['c', '[{"d":"]"}]'],
      ['e', 'null'],
    ]);
  });
});

describe('JsonArrayReader', () => {
  const DOC = Buffer.from('\ufeff[\n  {"id": "1", "n": 2, "s": "a,]}\\"b"},\n  {"id":"2","nest":{"x":[1,{"y":"]"}]}},\n  7,\n  "str" ,\n  {"id":null}\n]\n');
  const WANT: Out = [
    [2, ['id', 'n', 's']],
    [2, ['1', '2', 'a,]}"b']],
    [3, ['2', '', '']],
    [4, 'JSON_INVALID', '7'],
    [5, 'JSON_INVALID', '"str" '],
    [6, ['', '', '']],
  ];

  it('streams the elements of an array of objects as records with the line each starts on, at every chunk boundary', () => {
    for (let cut = 0; cut <= DOC.length; cut++) {
      const { out, extra } = read(DOC, [cut], {}, JsonArrayReader);
      expect(out, `cut at ${cut}`).toEqual(WANT);
      expect(extra).toEqual(['nest']);
    }
    expect(
      read(
        DOC,
        Array.from({ length: DOC.length }, (_, i) => i),
        {},
        JsonArrayReader,
      ).out,
    ).toEqual(WANT);
    expect(read(Buffer.from('[]'), [], {}, JsonArrayReader).out).toEqual([]);
  });

  it('fails a document that is not an array, goes on after it, or is cut short', () => {
    expect(() => read(Buffer.from('{"a":1}'), [], {}, JsonArrayReader)).toThrow(expect.objectContaining({ code: 'FORMAT_UNSUPPORTED' }));
    expect(() => read(Buffer.from('[{"a":1}] x'), [], {}, JsonArrayReader)).toThrow(expect.objectContaining({ code: 'FORMAT_UNSUPPORTED' }));
    expect(() => read(Buffer.from('[{"a":1},{"a":'), [], {}, JsonArrayReader)).toThrow(expect.objectContaining({ code: 'JSON_INCOMPLETE' }));
    expect(() => read(Buffer.from('[{"a":1}'), [], {}, JsonArrayReader)).toThrow(expect.objectContaining({ code: 'JSON_INCOMPLETE' }));
    expect(() => read(Buffer.from(''), [], {}, JsonArrayReader)).toThrow(expect.objectContaining({ code: 'FORMAT_UNSUPPORTED' }));
    for (const damaged of ['[{"a":1}{"a":2}]', '[{"a":1},,{"a":2}]', '[{"a":1},]', '[,{"a":1}]']) {
      expect(() => read(Buffer.from(damaged), [], {}, JsonArrayReader), damaged).toThrow(expect.objectContaining({ code: 'JSON_MALFORMED' }));
    }
  });

  it('keeps an element longer than maxRecordSize out of memory, rejecting it with its first bytes', () => {
    const big = `{"a":"${'x'.repeat(200)}"}`;
    const { out } = read(Buffer.from(`[{"a":"1"},${big},{"a":"2"}]`), [20, 100, 150], { maxRecordSize: 40 }, JsonArrayReader);
    expect(out).toEqual([
      [1, ['a']],
      [1, ['1']],
      [1, 'CSV_MAX_RECORD_SIZE', big.slice(0, 40)],
      [1, ['2']],
    ]);
  });
});

describe('ndjsonFileSink with types', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-ndjson-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes cast numbers and booleans as JSON, an empty cast field as null, other columns as strings', async () => {
    const sink = ndjsonFileSink(dir, 'o.ndjson', { fsync: false, types: { id: 'integer', amount: 'number', paid: 'boolean', day: 'date' } });
    await sink.write({
      header: ['id', 'amount', 'paid', 'day', 'note'],
      rows: [
        ['7', '1.5', 'true', '2024-05-01', ''],
        ['', '', '', '', 'x'],
      ],
      lines: [2, 3],
    });
    const { path } = await sink.commit();
    const rows = readFileSync(path!, 'utf8').trim().split('\n');
    expect(rows).toEqual(['{"id":7,"amount":1.5,"paid":true,"day":"2024-05-01","note":""}', '{"id":null,"amount":null,"paid":null,"day":null,"note":"x"}']);
  });
});
