// castValue: the pure text -> canonical text conversions behind cast, and the number rule filter shares.
import { SluiceError } from '../errors.js';
import { compileFormat, type DateTimeParts, zoneResolver } from './date-format.js';

/** The types `cast` knows (the cast step's schema takes them from here). */
export const CAST_TYPE_NAMES = ['string', 'integer', 'number', 'boolean', 'date', 'timestamp'] as const;

/** A type `cast` knows. `string` changes nothing (it declares a column's type, e.g. for a table). */
export type CastType = (typeof CAST_TYPE_NAMES)[number];

/** Canonical text for a value of the type, or `undefined` when the text is not one. */
export type Converter = (text: string) => string | undefined;

const INTEGER = /^([+-]?)(\d+)$/;
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;
const TRUE = new Set(['true', 't', 'yes', 'y', 'on', '1']);
const FALSE = new Set(['false', 'f', 'no', 'n', 'off', '0']);

/**
 * The number a text holds, by one rule shared by cast and filter: surrounding whitespace ignored, then
 * an optional sign, decimal digits with an optional point and exponent (`12`, `-1.5`, `.5`, `1e3`).
 * Hex, `Infinity`, `NaN`, thousands separators and empty text are not numbers.
 */
export function parseDecimal(text: string): number | undefined {
  const t = text.trim();
  if (!DECIMAL.test(t)) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * integer: a 64-bit signed integer (PostgreSQL `bigint`, pandas `Int64`), kept exactly (no float
 * rounding); written without `+` or leading zeros. A value out of that range is not an integer, so it
 * is refused here rather than by the database (which would roll the whole file back).
 */
export function castInteger(text: string): string | undefined {
  if (canonicalInteger(text)) return text;
  const m = INTEGER.exec(text.trim());
  if (m === null) return undefined;
  const digits = m[2]!.replace(/^0+(?=\d)/, '');
  const out = m[1] === '-' && digits !== '0' ? `-${digits}` : digits;
  if (digits.length >= 19) {
    const n = BigInt(out); // only long values pay for the range check
    if (n < INT64_MIN || n > INT64_MAX) return undefined;
  }
  return out;
}

/** number: a double, written as JavaScript's shortest round-trip text (`1.50` -> `1.5`, `1e3` -> `1000`). */
export function castNumber(text: string): string | undefined {
  if (canonicalNumber(text)) return text;
  const n = parseDecimal(text);
  return n === undefined ? undefined : String(n);
}

/** boolean: true/t/yes/y/on/1 and false/f/no/n/off/0 in any case, written `true` or `false`. */
export function castBoolean(text: string): string | undefined {
  const t = text.trim().toLowerCase();
  if (TRUE.has(t)) return 'true';
  if (FALSE.has(t)) return 'false';
  return undefined;
}

function daysIn(year: number, month: number): number {
  return month === 2 ? (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
}

function validDate(y: number, mo: number, d: number): boolean {
  return y >= 1 && mo >= 1 && mo <= 12 && d >= 1 && d <= daysIn(y, mo);
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** date: an ISO calendar date `YYYY-MM-DD` that exists (no 2023-02-30, no year 0), written as given. */
export function castDate(text: string): string | undefined {
  const t = text.trim();
  const m = DATE.exec(t);
  if (m === null || !validDate(Number(m[1]), Number(m[2]), Number(m[3]))) return undefined;
  return t;
}

/**
 * timestamp: ISO 8601 `YYYY-MM-DDTHH:MM[:SS[.fraction]]` (`T` or a space), with an optional zone `Z`,
 * `+HH:MM`, `+HHMM` or `+HH`. With a zone it is written as the UTC instant `YYYY-MM-DDTHH:MM:SS[.f]Z`;
 * without one it stays a local (zone-less) time `YYYY-MM-DDTHH:MM:SS[.f]`. Seconds default to 00; the
 * fraction (up to 9 digits) is kept, less trailing zeros.
 */
export function castTimestamp(text: string): string | undefined {
  const utc = utcTimestamp(text);
  if (utc !== undefined) return utc;
  const m = TIMESTAMP.exec(text.trim());
  if (m === null) return undefined;
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number) as [number, number, number, number, number, number];
  if (!validDate(y, mo, d) || h > 23 || mi > 59 || s > 59) return undefined;
  const fraction = (m[7] ?? '').replace(/0+$/, '');
  const frac = fraction === '' ? '' : `.${fraction}`;
  const zoned = m[8] !== undefined || m[9] !== undefined;
  if (!zoned) return `${pad(y, 4)}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:${pad(s)}${frac}`;
  const offH = Number(m[10] ?? '0');
  const offM = Number(m[11] ?? '0');
  if (offH > 23 || offM > 59) return undefined;
  const offset = (m[9] === '-' ? -1 : 1) * (offH * 60 + offM);
  const at = new Date(0);
  at.setUTCFullYear(y, mo - 1, d); // not Date.UTC: it maps years 0-99 to 1900-1999
  at.setUTCHours(h, mi - offset, s, 0);
  const year = at.getUTCFullYear();
  if (year < 1 || year > 9999) return undefined;
  return `${pad(year, 4)}-${pad(at.getUTCMonth() + 1)}-${pad(at.getUTCDate())}T${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())}:${pad(at.getUTCSeconds())}${frac}Z`;
}

// Fast paths: text already in the canonical form is returned as it is, without a regex or a new string
// (test/unit/cast-fast.test.ts checks each against the general rule on generated values).

const isDigit = (c: number): boolean => c >= 48 && c <= 57;

/** `0` or `-?[1-9][0-9]{0,17}`: a canonical integer well inside the 64-bit range. */
function canonicalInteger(t: string): boolean {
  const neg = t.charCodeAt(0) === 45 ? 1 : 0;
  const len = t.length;
  if (len - neg < 1 || len - neg > 18) return false;
  const first = t.charCodeAt(neg);
  if (first === 48) return len === 1;
  for (let i = neg; i < len; i++) if (!isDigit(t.charCodeAt(i))) return false;
  return true;
}

/**
 * `-?(0|[1-9]d*)(.d*[1-9])?` with at most 15 digits, and not `-0` or a fraction as small as 1e-7: such a
 * text is exactly what String(Number(text)) writes (15 significant digits round-trip through a double).
 */
function canonicalNumber(t: string): boolean {
  const len = t.length;
  const neg = t.charCodeAt(0) === 45 ? 1 : 0;
  let i = neg;
  const intStart = i;
  while (i < len && isDigit(t.charCodeAt(i))) i++;
  const intLen = i - intStart;
  if (intLen === 0 || (intLen > 1 && t.charCodeAt(intStart) === 48)) return false;
  const zeroInt = intLen === 1 && t.charCodeAt(intStart) === 48;
  let digits = intLen;
  if (i < len) {
    if (t.charCodeAt(i) !== 46) return false;
    i++;
    const fracStart = i;
    while (i < len && isDigit(t.charCodeAt(i))) i++;
    const fracLen = i - fracStart;
    if (i !== len || fracLen === 0 || t.charCodeAt(len - 1) === 48) return false;
    if (zeroInt) {
      let z = fracStart;
      while (t.charCodeAt(z) === 48) z++;
      if (z - fracStart >= 6) return false; // 0.0000001 is written 1e-7
      digits = len - z; // leading zeros of a fraction are not significant
    } else digits += fracLen;
  } else if (zeroInt && neg === 1) return false; // -0 is written 0
  return digits <= 15;
}

/** `YYYY-MM-DDTHH:MM:SS[.f]Z`, a valid UTC instant: itself, less trailing zeros of the fraction. */
function utcTimestamp(t: string): string | undefined {
  const len = t.length;
  if (len < 20 || t.charCodeAt(len - 1) !== 90 || t.charCodeAt(4) !== 45 || t.charCodeAt(7) !== 45 || t.charCodeAt(10) !== 84) return undefined;
  if (t.charCodeAt(13) !== 58 || t.charCodeAt(16) !== 58) return undefined;
  for (const i of [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]) if (!isDigit(t.charCodeAt(i))) return undefined;
  const two = (i: number): number => (t.charCodeAt(i) - 48) * 10 + t.charCodeAt(i + 1) - 48;
  const y = two(0) * 100 + two(2);
  if (!validDate(y, two(5), two(8)) || two(11) > 23 || two(14) > 59 || two(17) > 59) return undefined;
  if (len === 20) return t;
  if (t.charCodeAt(19) !== 46 || len - 21 > 9 || len === 21) return undefined;
  let end = len - 1;
  for (let i = 20; i < end; i++) if (!isDigit(t.charCodeAt(i))) return undefined;
  while (end > 20 && t.charCodeAt(end - 1) === 48) end--;
  if (end === len - 1) return t;
  return end === 20 ? `${t.slice(0, 19)}Z` : `${t.slice(0, end)}Z`;
}

/** The converter of each type. */
export const CONVERTERS: Readonly<Record<CastType, Converter>> = {
  string: (text) => text,
  integer: castInteger,
  number: castNumber,
  boolean: castBoolean,
  date: castDate,
  timestamp: castTimestamp,
};

/** How a date or timestamp column is read beyond ISO 8601 (the cast step's `format` and `timezone`). */
export interface DateTimeOptions {
  /** Tokens as date-fns and Luxon write them, e.g. `dd/MM/yyyy HH:mm` (see compileFormat). */
  format?: string;
  /** IANA zone of timestamps written without an offset, e.g. `Europe/Paris`: they become UTC instants. */
  timezone?: string;
}

function isoInstant(ms: number, frac: string): string | undefined {
  const at = new Date(ms);
  const year = at.getUTCFullYear();
  if (Number.isNaN(ms) || year < 1 || year > 9999) return undefined;
  return `${pad(year, 4)}-${pad(at.getUTCMonth() + 1)}-${pad(at.getUTCDate())}T${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())}:${pad(at.getUTCSeconds())}${frac}Z`;
}

function wallMs(p: DateTimeParts): number {
  const at = new Date(0);
  at.setUTCFullYear(p.year, p.month - 1, p.day); // not Date.UTC: it maps years 0-99 to 1900-1999
  at.setUTCHours(p.hour, p.minute, p.second, 0);
  return at.getTime();
}

/**
 * The converter of a date or timestamp column read with a `format` and/or a `timezone` (compiled once,
 * here): the value must match the format exactly (surrounding whitespace ignored) and be a real date and
 * time. A timestamp with an offset in the value, or without one but with `timezone`, is written as its
 * UTC instant `YYYY-MM-DDTHH:MM:SS[.f]Z`; without either it stays local text. A wall time that the zone
 * skips (a daylight-saving gap) is not a timestamp; a repeated one is its earlier instant.
 *
 * @throws CONFIG_INVALID for a bad format, an unknown zone, or a timezone on a date.
 */
export function dateTimeConverter(type: 'date' | 'timestamp', options: DateTimeOptions, field: string): Converter {
  if (type === 'date' && options.timezone !== undefined) {
    throw new SluiceError('CONFIG_INVALID', `${field}.timezone: a date has no time of day to place in a zone; use type: timestamp`, {
      field: `${field}.timezone`,
    });
  }
  const parse = options.format === undefined ? undefined : compileFormat(options.format, type, `${field}.format`);
  const zone = options.timezone === undefined ? undefined : zoneResolver(options.timezone, `${field}.timezone`);
  if (parse === undefined) {
    // timezone alone: ISO values as castTimestamp reads them, the zone-less ones placed in the zone
    return (text) => {
      const local = castTimestamp(text);
      if (local === undefined || local.endsWith('Z')) return local;
      const frac = local.slice(19);
      const ms = zone!(
        wallMs({
          year: +local.slice(0, 4),
          month: +local.slice(5, 7),
          day: +local.slice(8, 10),
          hour: +local.slice(11, 13),
          minute: +local.slice(14, 16),
          second: +local.slice(17, 19),
          fraction: '',
          offset: undefined,
        }),
      );
      return ms === undefined ? undefined : isoInstant(ms, frac);
    };
  }
  return (text) => {
    const p = parse(text.trim());
    if (p === undefined || !validDate(p.year, p.month, p.day)) return undefined;
    if (type === 'date') return `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)}`;
    const fraction = p.fraction.replace(/0+$/, '');
    const frac = fraction === '' ? '' : `.${fraction}`;
    if (p.offset !== undefined) return isoInstant(wallMs(p) - p.offset * 60_000, frac);
    if (zone !== undefined) {
      const ms = zone(wallMs(p));
      return ms === undefined ? undefined : isoInstant(ms, frac);
    }
    return `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)}T${pad(p.hour)}:${pad(p.minute)}:${pad(p.second)}${frac}`;
  };
}
