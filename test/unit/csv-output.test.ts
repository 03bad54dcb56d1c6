// CSV output options: formula escaping for spreadsheets, quoting, header, line endings.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { csvFileSink } from '../../src/sinks/csv-file.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-csvout-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

it('escapeFormulas prefixes fields that a spreadsheet would run as formulas', async () => {
  const sink = csvFileSink(dir, 'o.csv', { fsync: false, escapeFormulas: true });
  await sink.write({
    header: ['a', 'b'],
    rows: [
      ['=SUM(A1)', '+1'],
      ['-2', '@x'],
      ['ok', '3-4'],
    ],
    lines: [2, 3, 4],
  });
  await sink.commit();
  expect(await readFile(join(dir, 'o.csv'), 'utf8')).toBe("a,b\n'=SUM(A1),'+1\n'-2,'@x\nok,3-4\n");
});

it('quote all, no header, CRLF', async () => {
  const sink = csvFileSink(dir, 'o.csv', { fsync: false, quote: 'all', header: false, recordDelimiter: '\r\n' });
  await sink.write({ header: ['a', 'b'], rows: [['1', 'x y']], lines: [2] });
  await sink.commit();
  expect(await readFile(join(dir, 'o.csv'), 'utf8')).toBe('"1","x y"\r\n');
});

it('a one-column file with an empty header: the raw path quotes it as stringify does (not a blank line)', async () => {
  for (const raw of [true, false]) {
    const sink = csvFileSink(dir, `h${raw}.csv`, { fsync: false });
    await sink.write({ header: [''], rows: [['a'], ['b']], lines: [2, 3], ...(raw ? { raw: { delimiter: ',', lines: ['a', 'b'] } } : {}) });
    await sink.commit();
    expect(await readFile(join(dir, `h${raw}.csv`), 'utf8')).toBe('""\na\nb\n');
  }
});
