// Unit tests for RejectsFile: the line,code,message,raw format with raw bytes kept, atomic publish, credit.
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FlowGate } from '../../src/flow-gate.js';
import { csvField, rawField } from '../../src/csv/fields.js';
import { RejectsFile } from '../../src/sinks/rejects-file.js';
import { TEMP_PREFIX } from '../../src/fs/atomic-file.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-unit-rejects-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ls = async (): Promise<string[]> => (await readdir(dir)).sort();
const b = (s: string): Buffer => Buffer.from(s, 'utf8');

describe('csvField and rawField', () => {
  it('quotes a text field only when it needs it, doubling quotes', () => {
    expect(csvField('plain text')).toBe('plain text');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "x"')).toBe('"say ""x"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\r')).toBe('"cr\r"');
  });

  it('always quotes raw bytes, doubles quote bytes and keeps every other byte as it is', () => {
    expect(rawField(b(''))).toEqual(b('""'));
    expect(rawField(b('"x"y,2'))).toEqual(b('"""x""y,2"'));
    expect(rawField(b('""'))).toEqual(b('""""""'));
    const bad = Buffer.from([0x61, 0xff, 0x22, 0xc3, 0x0d, 0x0a, 0x00]);
    expect(rawField(bad)).toEqual(Buffer.from([0x22, 0x61, 0xff, 0x22, 0x22, 0xc3, 0x0d, 0x0a, 0x00, 0x22]));
  });
});

describe('RejectsFile', () => {
  it('publishes nothing and creates nothing when no record was rejected', async () => {
    const r = new RejectsFile(dir, 'orders.rejects.csv', { fsync: false });
    expect(await r.commit()).toEqual({ rows: 0, bytes: 0 });
    expect(await ls()).toEqual([]);
  });

  it('writes line,code,message,raw with raw bytes kept exactly, visible only after commit', async () => {
    const gate = new FlowGate(100);
    const r = new RejectsFile(dir, 'orders.rejects.csv', { fsync: false, gate });
    r.add({ line: 3, code: 'CSV_INVALID_CLOSING_QUOTE', message: 'line 3: Invalid Closing Quote: got "y"', raw: b('"x"y,2') });
    r.add({ line: 4, code: 'INVALID_UTF8', message: 'line 4: not UTF-8', raw: Buffer.from([0x66, 0xff, 0xfe, 0x2c, 0x35]) });
    r.add({ line: 5, code: 'CSV_RECORD_INCONSISTENT_COLUMNS', message: 'expected 2, got 1', raw: b('"multi\r\nline"') });
    expect(gate.inFlight).toBe(3);
    expect(await ls()).toEqual([]);
    const result = await r.commit();
    const expected = Buffer.concat([
      b('line,code,message,raw\n'),
      b('3,CSV_INVALID_CLOSING_QUOTE,"line 3: Invalid Closing Quote: got ""y""","""x""y,2"\n'),
      b('4,INVALID_UTF8,line 4: not UTF-8,"'),
      Buffer.from([0x66, 0xff, 0xfe, 0x2c, 0x35]),
      b('"\n'),
      b('5,CSV_RECORD_INCONSISTENT_COLUMNS,"expected 2, got 1","""multi\r\nline"""\n'),
    ]);
    expect(result).toEqual({ path: join(dir, 'orders.rejects.csv'), rows: 3, bytes: expected.length });
    expect(await ls()).toEqual(['orders.rejects.csv']);
    expect(await readFile(join(dir, 'orders.rejects.csv'))).toEqual(expected);
    expect(gate.inFlight).toBe(0);
  });

  it('flushes to a hidden temporary file past 64 KiB, still publishing nothing before commit', async () => {
    const gate = new FlowGate(10_000);
    const r = new RejectsFile(dir, 'big.rejects.csv', { fsync: false, gate });
    const raw = Buffer.alloc(1000, 0x7a);
    for (let i = 0; i < 70; i++) r.add({ line: i + 2, code: 'CSV_MAX_RECORD_SIZE', message: 'too big', raw });
    await (r as unknown as { writing: Promise<void> }).writing; // the background write of the first 64 KiB
    const files = await ls();
    expect(files).toHaveLength(1);
    expect(files[0]!.startsWith(TEMP_PREFIX)).toBe(true);
    const { path, rows } = await r.commit();
    expect(rows).toBe(70);
    const lines = (await readFile(path!, 'latin1')).split('\n');
    expect(lines).toHaveLength(72); // header, 70 records, and the empty string after the last newline
    expect(lines[70]).toBe(`71,CSV_MAX_RECORD_SIZE,too big,"${'z'.repeat(1000)}"`);
    expect(await ls()).toEqual(['big.rejects.csv']);
    expect(gate.inFlight).toBe(0);
  });

  it('never overwrites an earlier rejects file', async () => {
    await writeFile(join(dir, 'orders.rejects.csv'), 'old');
    const r = new RejectsFile(dir, 'orders.rejects.csv', { fsync: false });
    r.add({ line: 2, code: 'INVALID_OPENING_QUOTE', message: 'm', raw: b('a"b') });
    expect((await r.commit()).path).toBe(join(dir, 'orders-1.rejects.csv'));
    expect(await readFile(join(dir, 'orders.rejects.csv'), 'utf8')).toBe('old');
    expect(await readFile(join(dir, 'orders-1.rejects.csv'), 'utf8')).toBe('line,code,message,raw\n2,INVALID_OPENING_QUOTE,m,"a""b"\n');
  });

  it('abort leaves no temporary file', async () => {
    const r = new RejectsFile(dir, 'a.rejects.csv', { fsync: false });
    for (let i = 0; i < 100; i++) r.add({ line: i, code: 'INVALID_UTF8', message: 'm', raw: Buffer.alloc(1000, 0xff) });
    await r.abort();
    expect(await ls()).toEqual([]);
  });

  it('reports a write failure at commit and still gives the flow credit back', async () => {
    const gate = new FlowGate(10);
    const r = new RejectsFile(join(dir, 'missing'), 'a.rejects.csv', { fsync: false, gate });
    r.add({ line: 2, code: 'INVALID_UTF8', message: 'm', raw: b('x') });
    await expect(r.commit()).rejects.toMatchObject({ code: 'ENOENT' });
    expect(gate.inFlight).toBe(0);
  });
});
