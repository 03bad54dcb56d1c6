// Date and timestamp formats for cast: a format (date-fns/Luxon tokens such as `dd/MM/yyyy HH:mm`) compiled
// once into a parser, and wall times in an IANA time zone turned into UTC instants with Intl.
import { SluiceError } from '../errors.js';

/** The fields a format read from one value; `offset` (minutes east of UTC) only when the value had one. */
export interface DateTimeParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** Fraction-of-second digits as written (may be empty). */
  fraction: string;
  offset: number | undefined;
}

/** A compiled format: the parts of a value, or undefined when the value is not in the format. */
export type DateTimeParser = (text: string) => DateTimeParts | undefined;

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

type Field = 'year' | 'year2' | 'month' | 'monthName' | 'day' | 'hour' | 'hour12' | 'minute' | 'second' | 'fraction' | 'ampm' | 'offset';

/** The tokens a format may use (date-fns / Unicode TR35 spelling; Luxon writes these ones the same). */
const TOKENS: Record<string, { re: string; field: Field }> = {
  yyyy: { re: '(\\d{4})', field: 'year' },
  yy: { re: '(\\d{2})', field: 'year2' },
  MMM: { re: `(${MONTHS.join('|')})`, field: 'monthName' },
  MM: { re: '(\\d{2})', field: 'month' },
  M: { re: '(\\d{1,2})', field: 'month' },
  dd: { re: '(\\d{2})', field: 'day' },
  d: { re: '(\\d{1,2})', field: 'day' },
  HH: { re: '(\\d{2})', field: 'hour' },
  H: { re: '(\\d{1,2})', field: 'hour' },
  hh: { re: '(\\d{2})', field: 'hour12' },
  h: { re: '(\\d{1,2})', field: 'hour12' },
  mm: { re: '(\\d{2})', field: 'minute' },
  m: { re: '(\\d{1,2})', field: 'minute' },
  ss: { re: '(\\d{2})', field: 'second' },
  s: { re: '(\\d{1,2})', field: 'second' },
  a: { re: '(am|pm)', field: 'ampm' },
  // offsets: X forms accept Z for UTC, x forms do not (as date-fns); Luxon's ZZ is XXX without the Z
  X: { re: '(Z|[+-]\\d{2}(?:\\d{2})?)', field: 'offset' },
  XX: { re: '(Z|[+-]\\d{4})', field: 'offset' },
  XXX: { re: '(Z|[+-]\\d{2}:\\d{2})', field: 'offset' },
  x: { re: '([+-]\\d{2}(?:\\d{2})?)', field: 'offset' },
  xx: { re: '([+-]\\d{4})', field: 'offset' },
  xxx: { re: '([+-]\\d{2}:\\d{2})', field: 'offset' },
  ZZ: { re: '([+-]\\d{2}:\\d{2})', field: 'offset' },
};

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

/**
 * Compiles `format` once. Tokens: yyyy yy MMM MM M dd d HH H hh h (with a) mm m ss s S… (fraction, as many
 * digits as S) a X XX XXX x xx xxx ZZ; text in single quotes is literal (`''` is a quote); other letters
 * are refused, any other character is literal. `yy` is 2000-2099. Matching ignores case (MMM, a, literals).
 *
 * @param field The setting's path, for the error.
 * @throws CONFIG_INVALID for an unknown token, a field given twice, or a format without year, month and
 * day (and, for a timestamp, the hour; `h` needs `a`).
 */
export function compileFormat(format: string, kind: 'date' | 'timestamp', field: string): DateTimeParser {
  const fields: Field[] = [];
  let re = '';
  const bad = (why: string): never => {
    throw new SluiceError('CONFIG_INVALID', `${field}: the format ${JSON.stringify(format)} ${why}`, { field });
  };
  for (let i = 0; i < format.length; ) {
    const ch = format[i]!;
    if (ch === "'") {
      if (format[i + 1] === "'") {
        re += "'";
        i += 2;
        continue;
      }
      // quoted text up to the closing quote; '' inside it is a quote
      let literal = '';
      let j = i + 1;
      for (;;) {
        if (j >= format.length) bad('has a quote that is not closed');
        if (format[j] === "'") {
          if (format[j + 1] !== "'") break;
          j++;
        }
        literal += format[j];
        j++;
      }
      re += escapeRe(literal);
      i = j + 1;
      continue;
    }
    if (!/[A-Za-z]/.test(ch)) {
      re += escapeRe(ch);
      i++;
      continue;
    }
    let j = i;
    while (format[j] === ch) j++;
    const run = format.slice(i, j);
    if (ch === 'S') {
      fields.push('fraction');
      re += `(\\d{${run.length}})`;
    } else {
      const t = TOKENS[run];
      if (t === undefined) bad(`has the token ${JSON.stringify(run)}, which sluice does not read (put literal text in single quotes)`);
      fields.push(t!.field);
      re += t!.re;
    }
    i = j;
  }
  const has = (f: Field): boolean => fields.includes(f);
  for (const f of new Set(fields)) if (fields.indexOf(f) !== fields.lastIndexOf(f)) bad(`gives ${f} twice`);
  if (!(has('year') || has('year2')) || !(has('month') || has('monthName')) || !has('day')) bad('needs a year, a month and a day (yyyy, MM, dd)');
  if (kind === 'timestamp' && !has('hour') && !has('hour12')) bad('needs an hour (HH, or hh with a)');
  if (has('hour12') !== has('ampm')) bad('needs hh (or h) and a together: a 12-hour clock needs AM/PM');
  if (has('hour') && has('hour12')) bad('gives the hour twice');
  const matcher = new RegExp(`^${re}$`, 'i');
  const n = fields.length;
  return (text) => {
    const m = matcher.exec(text);
    if (m === null) return undefined;
    const p: DateTimeParts = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0, fraction: '', offset: undefined };
    let pm = false;
    for (let k = 0; k < n; k++) {
      const v = m[k + 1]!;
      switch (fields[k]) {
        case 'year':
          p.year = Number(v);
          break;
        case 'year2':
          p.year = 2000 + Number(v);
          break;
        case 'month':
          p.month = Number(v);
          break;
        case 'monthName':
          p.month = MONTHS.indexOf(v.toLowerCase()) + 1;
          break;
        case 'day':
          p.day = Number(v);
          break;
        case 'hour':
          p.hour = Number(v);
          break;
        case 'hour12':
          p.hour = Number(v);
          if (p.hour < 1 || p.hour > 12) return undefined;
          break;
        case 'minute':
          p.minute = Number(v);
          break;
        case 'second':
          p.second = Number(v);
          break;
        case 'fraction':
          p.fraction = v;
          break;
        case 'ampm':
          pm = v.toLowerCase() === 'pm';
          break;
        case 'offset':
          p.offset = parseOffset(v);
          break;
      }
    }
    if (has12(fields)) p.hour = (p.hour % 12) + (pm ? 12 : 0);
    if (p.hour > 23 || p.minute > 59 || p.second > 59) return undefined;
    if (p.offset !== undefined && Math.abs(p.offset) > 23 * 60 + 59) return undefined;
    return p;
  };
}

const has12 = (fields: Field[]): boolean => fields.includes('hour12');

function parseOffset(v: string): number {
  if (v === 'Z' || v === 'z') return 0;
  const sign = v[0] === '-' ? -1 : 1;
  const digits = v.slice(1).replace(':', '');
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0'));
}

/**
 * Checks an IANA time zone name and returns a function giving the UTC instant (ms) of a wall time there,
 * or undefined for a wall time that does not exist (skipped by a daylight-saving change). An ambiguous wall
 * time (the hour repeated when clocks go back) is the earlier instant.
 *
 * @throws CONFIG_INVALID when the zone is not one this Node knows.
 */
export function zoneResolver(timezone: string, field: string): (wallMs: number) => number | undefined {
  let dtf: Intl.DateTimeFormat;
  try {
    dtf = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      era: 'short',
    });
  } catch {
    throw new SluiceError('CONFIG_INVALID', `${field}: ${JSON.stringify(timezone)} is not an IANA time zone (e.g. Europe/Paris, UTC)`, { field });
  }
  // offsets change on quarter hours: one Intl call per quarter hour seen, not per value
  const cache = new Map<number, number>();
  const offsetAt = (utcMs: number): number => {
    const key = Math.floor(utcMs / 900_000);
    let off = cache.get(key);
    if (off === undefined) {
      const parts: Record<string, string> = {};
      for (const part of dtf.formatToParts(new Date(key * 900_000))) parts[part.type] = part.value;
      const year = parts.era === 'BC' || parts.era === 'B' ? 1 - Number(parts.year) : Number(parts.year);
      const d = new Date(0);
      d.setUTCFullYear(year, Number(parts.month) - 1, Number(parts.day));
      d.setUTCHours(Number(parts.hour), Number(parts.minute), Number(parts.second), 0);
      off = (d.getTime() - key * 900_000) / 60_000;
      if (cache.size > 4096) cache.clear();
      cache.set(key, off);
    }
    return off;
  };
  // the offset of each wall-time quarter hour (null: skipped), resolved once
  const resolved = new Map<number, number | null>();
  const resolve = (wallMs: number): number | null => {
    // the two offsets around the wall time: the earlier instant first
    const a = offsetAt(wallMs - 86_400_000);
    const b = offsetAt(wallMs + 86_400_000);
    for (const off of a >= b ? [a, b] : [b, a]) if (offsetAt(wallMs - off * 60_000) === off) return off;
    return null;
  };
  return (wallMs) => {
    const key = Math.floor(wallMs / 900_000);
    let off = resolved.get(key);
    if (off === undefined) {
      off = resolve(key * 900_000);
      if (resolved.size > 4096) resolved.clear();
      resolved.set(key, off);
    }
    return off === null ? undefined : wallMs - off * 60_000;
  };
}
