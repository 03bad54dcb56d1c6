import { describe, expect, it } from 'vitest';
import { numberedName } from '../../src/fs/no-clobber.js';
import { escapeNameBytes, fitName, NAME_MAX, printableName } from '../../src/fs/names.js';

const bytes = (s: string): number => Buffer.byteLength(s);

describe('fitName', () => {
  it('keeps a name that fits', () => {
    expect(fitName('orders.csv')).toBe('orders.csv');
    const n255 = `${'a'.repeat(251)}.csv`;
    expect(fitName(n255)).toBe(n255);
  });

  it('shortens a long name to exactly the limit, with a hash of the whole name and its extensions', () => {
    const long = `${'a'.repeat(300)}.rejects.csv`;
    const fit = fitName(long);
    expect(bytes(fit)).toBe(NAME_MAX);
    expect(fit).toMatch(/^a+~[0-9a-f]{8}\.rejects\.csv$/);
    expect(fitName(long)).toBe(fit); // deterministic
    // two long names that share their start do not collide
    expect(fitName(`${'a'.repeat(300)}x.csv`)).not.toBe(fitName(`${'a'.repeat(300)}y.csv`));
  });

  it('never splits a multi-byte character', () => {
    const long = `${'é'.repeat(200)}.csv`; // 400 bytes
    const fit = fitName(long, 100);
    expect(bytes(fit)).toBeLessThanOrEqual(100);
    expect(fit).not.toContain('\uFFFD');
    expect(Buffer.from(fit).toString()).toBe(fit);
  });

  it('numbered names fit too', () => {
    const n255 = `${'c'.repeat(251)}.csv`;
    expect(numberedName(n255, 0)).toBe(n255);
    for (const n of [1, 12, 1234]) {
      const name = numberedName(n255, n);
      expect(bytes(name)).toBe(NAME_MAX);
      expect(name.endsWith(`-${n}.csv`)).toBe(true);
    }
    expect(numberedName('orders.csv', 2)).toBe('orders-2.csv');
  });
});

describe('escapeNameBytes', () => {
  it('leaves UTF-8 as it is and writes each invalid byte as %XX', () => {
    expect(escapeNameBytes(Buffer.from('café.csv'))).toBe('café.csv');
    expect(escapeNameBytes(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x63, 0x73, 0x76]))).toBe('caf%E9.csv');
    // a valid character after an invalid byte survives; a truncated sequence is escaped byte by byte
    expect(escapeNameBytes(Buffer.concat([Buffer.from([0xff]), Buffer.from('é'), Buffer.from([0xe2, 0x82])]))).toBe('%FFé%E2%82');
  });
});

describe('printableName', () => {
  it('shows control characters escaped', () => {
    expect(printableName('a\nb\x1b[2J\tc\x7f.csv')).toBe('a\\nb\\x1b[2J\\tc\\x7f.csv');
    expect(printableName('plain.csv')).toBe('plain.csv');
  });
});
