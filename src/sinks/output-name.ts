// Output names: a template such as `{stem}.csv` or `{date}/{stem}.ndjson`, filled with a sanitised stem.
import { SluiceError } from '../errors.js';
import { stemOf } from '../fs/no-clobber.js';

/** Control characters, path separators and a leading dot are replaced, so a file name cannot escape or hide. */
export function sanitizeName(name: string): string {
  const s = name.replace(/[\x00-\x1f\x7f/\\]/g, '_');
  return s.startsWith('.') ? `_${s.slice(1)}` : s;
}

export interface NameParts {
  /** The input file name. */
  name: string;
  pipeline: string;
  /** The output's extension without the dot (csv, ndjson, csv.gz). */
  ext: string;
  /** The output is gzip-compressed. */
  gzip?: boolean;
  now?: Date;
}

/**
 * Fills `{name} {stem} {ext} {pipeline} {date}`; the result is a relative path (folders from the template
 * only). An output is what its name says: `{name}` and `{stem}` leave out the input's `.gz` (the output is
 * plain text unless gzip is asked for), and a gzip output's name ends in `.gz`. A JSON input written as
 * another format takes that format's extension in `{name}` (`events.ndjson` -> `events.csv`).
 */
export function outputName(template: string, parts: NameParts): string {
  let name = sanitizeName(parts.name).replace(/(.)\.gz$/i, '$1');
  // a JSON input written as another format is named for what it now is: events.ndjson -> events.csv
  const ext = parts.ext.replace(/\.gz$/i, '');
  if (/\.(ndjson|jsonl|json)$/i.test(name) && !name.toLowerCase().endsWith(`.${ext.toLowerCase()}`)) name = `${stemOf(name)}.${ext}`;
  const date = (parts.now ?? new Date()).toISOString().slice(0, 10);
  const values: Record<string, string> = { name, stem: stemOf(name), ext: parts.ext, pipeline: parts.pipeline, date };
  const filled = template.replace(/\{(\w+)\}/g, (m, key: string) => values[key] ?? m);
  return parts.gzip === true && !/\.gz$/i.test(filled) ? `${filled}.gz` : filled;
}

/** Checks a template at load time: known placeholders, no absolute path, no `..`. */
export function checkNameTemplate(template: string, field: string): void {
  const bad = [...template.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).filter((k) => !['name', 'stem', 'ext', 'pipeline', 'date'].includes(k!));
  const segments = template.split('/');
  if (bad.length > 0 || template.startsWith('/') || segments.some((s) => s === '..' || s === '.' || s === '') || !/\{(name|stem)\}/.test(segments.at(-1)!)) {
    throw new SluiceError(
      'CONFIG_INVALID',
      `${field}: got ${JSON.stringify(template)}, expected a relative name template using {name} or {stem} in its last part, with only {name} {stem} {ext} {pipeline} {date} and no '..'`,
      { field },
    );
  }
}
