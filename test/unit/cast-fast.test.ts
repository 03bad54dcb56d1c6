// The cast fast paths (text already canonical) give exactly what the general rules give.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { castInteger, castNumber, castTimestamp, parseDecimal } from '../../src/operators/cast-values.js';

const digits = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: min, maxLength: max });

describe('cast fast paths', () => {
  it('integer: every short digit string, signed or not, is cast as the general rule says', () => {
    fc.assert(
      fc.property(fc.constantFrom('', '-', '+'), digits(0, 20), (sign, d) => {
        const t = `${sign}${d}`;
        const m = /^([+-]?)(\d+)$/.exec(t);
        const body = m?.[2]?.replace(/^0+(?=\d)/, '');
        const want = m === null || body === undefined ? undefined : m[1] === '-' && body !== '0' ? `-${body}` : body;
        const n = want === undefined ? undefined : BigInt(want);
        expect(castInteger(t)).toBe(n !== undefined && n >= -(2n ** 63n) && n < 2n ** 63n ? want : undefined);
      }),
      { numRuns: 5000 },
    );
  });

  it('number: decimal texts come out as String(Number(text))', () => {
    fc.assert(
      fc.property(fc.constantFrom('', '-'), digits(0, 17), fc.constantFrom('', '.'), digits(0, 12), (sign, a, dot, b) => {
        const t = `${sign}${a}${dot}${b}`;
        const n = parseDecimal(t);
        expect(castNumber(t)).toBe(n === undefined ? undefined : String(n));
      }),
      { numRuns: 20000 },
    );
    // a leading space skips the fast path: the general rule
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        expect(castNumber(String(x))).toBe(castNumber(` ${String(x)}`));
      }),
    );
  });

  it('timestamp: UTC texts with and without fractions are the general rule', () => {
    const slow = (t: string) => castTimestamp(` ${t}`); // a leading space skips the fast path
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10099 }),
        fc.integer({ min: 0, max: 13 }),
        fc.integer({ min: 0, max: 32 }),
        fc.integer({ min: 0, max: 25 }),
        fc.integer({ min: 0, max: 61 }),
        fc.constantFrom('', '.', '.000', '.5', '.120', '.123456789', '.1234567890', '.0'),
        (y, mo, d, h, s, frac) => {
          const p = (n: number, w = 2) => String(n).padStart(w, '0');
          const t = `${p(y, 4)}-${p(mo)}-${p(d)}T${p(h)}:${p(s)}:${p(s)}${frac}Z`;
          expect(castTimestamp(t)).toBe(slow(t));
        },
      ),
      { numRuns: 5000 },
    );
  });
});
