// Unit tests for cast's date and timestamp formats and time zones: tokens, refusals, DST gaps and overlaps.
import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { sluiceErrorOf } from './sluice-error.js';
import { FileContext } from '../../src/file-context.js';
import { cast } from '../../src/operators/cast.js';
import { dateTimeConverter } from '../../src/operators/cast-values.js';
import { compileFormat } from '../../src/operators/date-format.js';
import type { Rejection } from '../../src/row.js';

const ts = (format: string | undefined, timezone?: string) =>
  dateTimeConverter('timestamp', { ...(format === undefined ? {} : { format }), ...(timezone === undefined ? {} : { timezone }) }, 'cast.t');

const configError = sluiceErrorOf;

describe('cast formats', () => {
  it('reads the tokens of date-fns and Luxon', () => {
    expect(ts('yyyy/MM/dd HH:mm:ss')('2024/05/01 13:04:05')).toBe('2024-05-01T13:04:05');
    expect(ts('dd.MM.yyyy H:m')(' 1.05.2024 7:4 ')).toBeUndefined(); // dd is two digits
    expect(ts('d.M.yyyy H:m')('1.5.2024 7:4')).toBe('2024-05-01T07:04:00');
    expect(ts('dd/MM/yy hh:mm a')('01/05/24 12:30 AM')).toBe('2024-05-01T00:30:00');
    expect(ts('dd/MM/yy hh:mm a')('01/05/24 12:30 pm')).toBe('2024-05-01T12:30:00');
    expect(ts('dd MMM yyyy HH:mm')('01 Jul 2024 10:00')).toBe('2024-07-01T10:00:00');
    expect(ts("yyyy-MM-dd'T'HH:mm:ss.SSSXXX")('2024-05-01T12:00:00.120+02:00')).toBe('2024-05-01T10:00:00.12Z');
    expect(ts("yyyy-MM-dd'T'HH:mm:ssX")('2024-05-01T12:00:00Z')).toBe('2024-05-01T12:00:00Z');
    expect(ts('yyyyMMddHHmmxx')('202405011200-0130')).toBe('2024-05-01T13:30:00Z');
    expect(ts("HH 'o''clock' dd/MM/yyyy")("09 o'clock 02/03/2024")).toBe('2024-03-02T09:00:00');
    const date = dateTimeConverter('date', { format: 'dd.MM.yyyy' }, 'cast.d');
    expect(['01.05.2024', '29.02.2024', '29.02.2023', '2024-05-01', '1.5.2024'].map(date)).toEqual([
      '2024-05-01',
      '2024-02-29',
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('refuses values out of range', () => {
    const f = ts('dd/MM/yyyy HH:mm:ss');
    expect(['31/04/2024 10:00:00', '01/05/2024 24:00:00', '01/05/2024 10:60:00', '01/05/2024 10:00:60', '01/13/2024 10:00:00'].map(f)).toEqual(
      Array(5).fill(undefined),
    );
    expect(ts('dd/MM/yyyy hh:mm a')('01/05/2024 13:00 PM')).toBeUndefined();
  });

  it('refuses a bad format when built, naming the field', () => {
    expect(configError(() => compileFormat('yyyy-MM-dd QQ', 'date', 'cast.d.format')).message).toContain('the token "QQ"');
    expect(configError(() => compileFormat('yyyy-MM', 'date', 'cast.d.format')).message).toContain('needs a year, a month and a day');
    expect(configError(() => compileFormat('yyyy-MM-dd', 'timestamp', 'cast.t.format')).message).toContain('needs an hour');
    expect(configError(() => compileFormat('yyyy-MM-dd hh:mm', 'timestamp', 'cast.t.format')).message).toContain('a 12-hour clock needs AM/PM');
    expect(configError(() => compileFormat("yyyy-MM-dd 'T", 'date', 'cast.t.format')).message).toContain('not closed');
    expect(configError(() => compileFormat('yyyy-MM-dd dd', 'date', 'x')).message).toContain('gives day twice');
    const e = configError(() => cast({ n: { type: 'integer', format: 'yyyy' } }));
    expect(e.field).toBe('cast.n.format');
    expect(configError(() => cast({ d: { type: 'date', timezone: 'UTC' } })).field).toBe('cast.d.timezone');
    const z = configError(() => cast({ t: { type: 'timestamp', timezone: 'Mars/Olympus' } }));
    expect(z.field).toBe('cast.t.timezone');
    expect(z.message).toContain('not an IANA time zone');
  });
});

describe('cast timezones', () => {
  it('places values without an offset in the zone, and keeps the offset a value has', () => {
    const f = ts('dd/MM/yyyy HH:mm', 'Europe/Paris');
    expect(f('01/07/2024 14:30')).toBe('2024-07-01T12:30:00Z'); // summer, +02:00
    expect(f('15/01/2024 14:30')).toBe('2024-01-15T13:30:00Z'); // winter, +01:00
    expect(ts("yyyy-MM-dd'T'HH:mmXXX", 'Europe/Paris')('2024-07-01T14:30Z')).toBe('2024-07-01T14:30:00Z');
    expect(ts(undefined, 'America/New_York')('2024-07-01 14:30')).toBe('2024-07-01T18:30:00Z');
    expect(ts(undefined, 'America/New_York')('2024-07-01T14:30:00.5+00:00')).toBe('2024-07-01T14:30:00.5Z');
    expect(ts(undefined, 'Asia/Kolkata')('2024-07-01T05:30:00')).toBe('2024-07-01T00:00:00Z');
  });

  it('a wall time skipped by daylight saving is not a timestamp; a repeated one is the earlier instant', () => {
    const f = ts('yyyy-MM-dd HH:mm', 'Europe/Paris');
    expect(f('2024-03-31 02:30')).toBeUndefined(); // clocks go 02:00 -> 03:00
    expect(f('2024-03-31 03:00')).toBe('2024-03-31T01:00:00Z');
    expect(f('2024-03-31 01:59')).toBe('2024-03-31T00:59:00Z');
    expect(f('2024-10-27 02:30')).toBe('2024-10-27T00:30:00Z'); // 02:30 happens twice: +02:00 first
    expect(f('2024-10-27 03:00')).toBe('2024-10-27T02:00:00Z');
  });

  it('UTC and fixed zones', () => {
    expect(ts('yyyy-MM-dd HH:mm', 'UTC')('2024-07-01 14:30')).toBe('2024-07-01T14:30:00Z');
  });
});

describe('the cast operator with a format', () => {
  it('rejects a value not in the format with CAST_FAILED naming the format', async () => {
    const rejects: Rejection[] = [];
    const ctx = new FileContext('f.csv', { onReject: (r) => rejects.push(r) });
    const rows = await lastValueFrom(
      from([['when'], ['01/07/2024 14:30'], ['2024-07-01 14:30']]).pipe(
        cast({ when: { type: 'timestamp', format: 'dd/MM/yyyy HH:mm', timezone: 'Europe/Paris' } }, { context: ctx }),
        toArray(),
      ),
    );
    expect(rows).toEqual([['when'], ['2024-07-01T12:30:00Z']]);
    expect(rejects.map((r) => [r.code, r.message])).toEqual([
      ['CAST_FAILED', 'cast: column "when": "2024-07-01 14:30" is not a timestamp in the format dd/MM/yyyy HH:mm'],
    ]);
  });
});
