// Loading the configuration: file (sluice.yaml or JSON) < SLUICE_* environment < flags, checked by the
// one schema, normalized once into the Readonly SluiceConfig the daemon sees.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import type * as Yaml from 'yaml';
import type { z } from 'zod';
import { SluiceError } from '../errors.js';
import { configJsonSchema, configSchema, type ConfigFile, type ParsedConfig } from './schema.js';
import { SETTINGS } from './settings-table.js';
import { closest } from './closest.js';

export { closest };

/** The settings as checked: nested settings and lists read-only too (not the pipelines' own insides). */
type ReadonlySettings<T> = { readonly [K in keyof T]: T[K] extends readonly (infer E)[] ? readonly E[] : T[K] extends object ? Readonly<T[K]> : T[K] };

/**
 * The configuration the daemon sees: the schema's output (so every setting is declared once, there),
 * its folders absolute, and where it came from.
 */
export type SluiceConfig = ReadonlySettings<Omit<ParsedConfig, 'state'>> & {
  /** The state folder: the setting, or `.sluice` beside the inbox. */
  readonly state: string;
  /** The config file read, if any. */
  readonly source?: string;
  /** The folders set by the config file, a SLUICE_* variable or a flag (not left to their defaults), and `batch` if the file sets it. */
  readonly given: ReadonlySet<FolderKey | 'batch'>;
};

/** The folders of the configuration. */
export const FOLDER_KEYS = ['watch', 'out', 'rejects', 'archive', 'failed', 'state'] as const;
export type FolderKey = (typeof FOLDER_KEYS)[number];

/** The settings the SLUICE_* environment variables may set (the settings table's), and their config paths. */
export const ENV_VARS: Readonly<Record<string, string>> = Object.fromEntries(SETTINGS.flatMap((s) => ('env' in s ? [[s.env, s.path]] : [])));

/** The config paths whose variables hold whole numbers. */
const NUMERIC = new Set<string>(SETTINGS.filter((s) => s.kind === 'count').map((s) => s.path));
const DEFAULT_FILES = ['sluice.yaml', 'sluice.yml', 'sluice.json'];

export interface LoadOptions {
  /** `--config FILE`; else SLUICE_CONFIG; else ./sluice.yaml (.yml, .json) if present; else defaults. */
  configPath?: string;
  env?: NodeJS.ProcessEnv;
  /** Settings from flags, as config paths (`metrics.port`) to values. */
  flags?: Record<string, string | number | boolean | undefined>;
  cwd?: string;
  /** Defaults that differ for this run (below the file, env and flags), as config paths (`metrics.port`) to values. */
  defaults?: Record<string, unknown>;
}

/** Finds, reads, merges and checks the configuration. Throws CONFIG_INVALID naming the field. */
export function loadConfig(options: LoadOptions = {}): SluiceConfig {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const path = configFileOf(options);
  const source = path === undefined ? undefined : resolve(cwd, path);
  const raw: Record<string, unknown> = source === undefined ? {} : readConfigFile(source);
  const given = new Set<FolderKey | 'batch'>();
  // a batch policy set in the file overrides the output drivers' own defaults (pipeline/settings.ts)
  if (raw.batch !== undefined) given.add('batch');
  // folders in the file are relative to the file's folder (as Prometheus's rule files are): under systemd
  // the working directory is /; those from variables and flags are relative to the working directory
  for (const key of FOLDER_KEYS) {
    const v = raw[key];
    if (typeof v === 'string' && v !== '') {
      raw[key] = resolve(dirname(source!), v);
      given.add(key);
    }
  }
  const textfile = getPath(raw, 'metrics.textfile');
  if (typeof textfile === 'string' && textfile !== '') setPath(raw, 'metrics.textfile', resolve(dirname(source!), textfile));
  for (const [key, value] of Object.entries(options.defaults ?? {})) if (getPath(raw, key) === undefined) setPath(raw, key, value);
  for (const [name, key] of Object.entries(ENV_VARS)) {
    const value = env[name];
    if (value !== undefined && value !== '') {
      setPath(raw, key, NUMERIC.has(key) ? toNumber(value, name) : value);
      if ((FOLDER_KEYS as readonly string[]).includes(key)) given.add(key as FolderKey);
    }
  }
  for (const [key, value] of Object.entries(options.flags ?? {})) {
    if (value === undefined) continue;
    setPath(raw, key, value);
    if ((FOLDER_KEYS as readonly string[]).includes(key)) given.add(key as FolderKey);
  }
  const parsed = parseConfig(raw, path);
  const abs = (p: string): string => resolve(cwd, p);
  const watch = abs(parsed.watch);
  const cfg: SluiceConfig = {
    ...parsed,
    watch,
    out: abs(parsed.out),
    rejects: abs(parsed.rejects),
    archive: abs(parsed.archive),
    failed: abs(parsed.failed),
    state: parsed.state === undefined ? resolve(dirname(watch), '.sluice') : abs(parsed.state),
    metrics: { ...parsed.metrics, ...(parsed.metrics.textfile === undefined ? {} : { textfile: abs(parsed.metrics.textfile) }) },
    ...(parsed.instanceId === undefined ? {} : { instanceId: sanitizeId(parsed.instanceId) }),
    ...(source === undefined ? {} : { source }),
    given,
  };
  return cfg;
}

/** The config file `loadConfig` reads with these options (as given: relative to `cwd`), if any. */
function configFileOf(options: LoadOptions): string | undefined {
  const cwd = options.cwd ?? process.cwd();
  return options.configPath ?? (options.env ?? process.env).SLUICE_CONFIG ?? DEFAULT_FILES.map((f) => resolve(cwd, f)).find((f) => existsSync(f));
}

/**
 * The YAML parser, loaded when a config file is read: a run on flags and variables alone does without it.
 * `preloadConfigReader` loads it ahead, without blocking (in the CLI bundle, from its own chunk); else the
 * first config file read requires it.
 */
let yaml: YamlParser | undefined;
type YamlParser = Pick<typeof Yaml, 'parseDocument'>;

/** Loads what `loadConfig(options)` will need to read its config file, if it reads one. */
export async function preloadConfigReader(options: LoadOptions = {}): Promise<void> {
  // a CommonJS module: its exports are its default (the only export of esbuild's chunk of it)
  if (yaml === undefined && configFileOf(options) !== undefined) yaml = (await import('yaml')).default;
}

function yamlParser(): YamlParser {
  yaml ??= createRequire(import.meta.url)('yaml') as YamlParser;
  return yaml;
}

/** Checks a loose config against the schema; every problem is listed with its path, value and expectation. */
export function parseConfig(raw: unknown, source?: string): ParsedConfig {
  // jitless: the schema is checked once per load, and zod's compiled object parsers (built with new
  // Function at their first use) cost more than that one check takes without them
  const r = configSchema.safeParse(raw, { reportInput: true, jitless: true });
  if (r.success) return r.data;
  const issues = r.error.issues.flatMap((i) => unwrapUnion(i));
  // an unknown operator also fails the "exactly one operator" rule: the unknown name is the news
  const unknownAt = new Set(issues.filter((i) => i.code === 'unrecognized_keys').map((i) => formatPath(i.path)));
  const shown = issues.filter((i) => !(i.code === 'custom' && unknownAt.has(formatPath(i.path))));
  const lines = [...new Set(shown.map(formatIssue))];
  const first = shown[0];
  throw new SluiceError(
    'CONFIG_INVALID',
    `${source === undefined ? 'invalid configuration' : `invalid configuration in ${source}`}:\n  ${lines.join('\n  ')}`,
    {
      field: first === undefined ? undefined : formatPath(first.path),
    },
  );
}

/**
 * A value that matches none of a union's forms (a cast type, a filter predicate) is explained by the form it
 * came closest to: the one with the fewest problems, its problems' paths made whole.
 */
function unwrapUnion(issue: z.core.$ZodIssue): z.core.$ZodIssue[] {
  const u = issue as { code: string; errors?: z.core.$ZodIssue[][]; discriminator?: string };
  if (u.code !== 'invalid_union' || u.discriminator !== undefined || u.errors === undefined || u.errors.length === 0) return [issue];
  const score = (branch: z.core.$ZodIssue[]): number =>
    branch.length * 10 - Math.max(0, ...branch.map((i) => i.path.length)) + (branch.some((i) => i.code === 'invalid_type' && i.path.length === 0) ? 5 : 0);
  const best = [...u.errors].sort((a, b) => score(a) - score(b))[0]!;
  // several forms equally close (e.g. an enum or an object): say what each accepts
  const values = u.errors.flatMap((b) => b.flatMap((i) => (i.code === 'invalid_value' && i.path.length === 0 ? (i as { values: unknown[] }).values : [])));
  if (values.length > 0 && best.every((i) => i.path.length === 0)) {
    return [
      {
        ...issue,
        code: 'custom',
        message: `expected one of ${values.map((v) => JSON.stringify(v)).join('|')}${u.errors.some((b) => b.some((i) => i.code === 'invalid_type' && (i as { expected?: string }).expected === 'object')) ? ', or an object' : ''}`,
      } as z.core.$ZodIssue,
    ];
  }
  return best.flatMap((i) => unwrapUnion({ ...i, path: [...issue.path, ...i.path] } as z.core.$ZodIssue));
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const where = formatPath(issue.path) || '(top level)';
  if (issue.code === 'unrecognized_keys') {
    // a setting of another kind of output (gzip under postgres) is said so, not "did you mean gzip"
    const hints = issue.keys.map((k) => closest(k, settingNames())).filter((h, i): h is string => h !== undefined && h !== issue.keys[i]);
    return `${issue.path.length === 0 ? '' : `${where}: `}unknown setting${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `${where === '(top level)' ? '' : `${where}.`}${k}`).join(', ')}${hints.length > 0 ? ` (did you mean ${hints.join(', ')}?)` : ''}`;
  }
  const u = issue as { discriminator?: string; options?: unknown[]; input?: unknown };
  if (issue.code === 'invalid_union' && u.discriminator !== undefined) {
    const value = (u.input as Record<string, unknown> | undefined)?.[u.discriminator];
    const options = (u.options ?? []).map((o) => JSON.stringify(o)).join('|');
    return value === undefined ? `${where}: missing; give one of ${options}` : `${where}: got ${shown(value)}; expected one of ${options}`;
  }
  const got = u.input !== undefined ? `got ${shown(u.input)}; ` : '';
  return `${where}: ${got}${issue.message.replace(/^Invalid (input|option): /, '')}`;
}

/** A value as the user wrote it: JSON, but numbers JSON cannot hold (1e400 is Infinity) as themselves. */
function shown(v: unknown): string {
  return typeof v === 'number' && !Number.isFinite(v) ? `${v} (a number too large)` : (JSON.stringify(v) ?? String(v));
}

/**
 * Every setting name the schema knows, at any depth (for "did you mean"). Built at the first unknown setting:
 * generating the JSON Schema takes 20-30 ms, which a start with a valid configuration need not pay.
 */
let SETTING_NAMES: readonly string[] | undefined;
function settingNames(): readonly string[] {
  SETTING_NAMES ??= collectSettingNames();
  return SETTING_NAMES;
}

function collectSettingNames(): readonly string[] {
  const names = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const n of node) walk(n);
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    const props = (node as { properties?: Record<string, unknown> }).properties;
    if (props !== undefined) for (const k of Object.keys(props)) names.add(k);
    for (const v of Object.values(node)) walk(v);
  };
  walk(configJsonSchema());
  return [...names];
}

/** ['pipelines', 1, 'steps', 0, 'dropNulls', 'how'] -> pipelines[1].steps[0].dropNulls.how */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

/** Reads sluice.yaml or JSON (YAML is a superset). */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new SluiceError('CONFIG_INVALID', `cannot read the config file ${path}: ${(err as Error).message}`, { file: path });
  }
  const doc = yamlParser().parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new SluiceError('CONFIG_INVALID', `${path} is not valid YAML/JSON: ${e.message}`, { file: path, line: e.linePos?.[0]?.line });
  }
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new SluiceError('CONFIG_INVALID', `${path}: the top level must be a mapping of settings, got ${Array.isArray(data) ? 'a list' : typeof data}`, {
      file: path,
    });
  }
  return data as Record<string, unknown>;
}

function getPath(target: Record<string, unknown>, path: string): unknown {
  let o: unknown = target;
  for (const k of path.split('.')) o = typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[k] : undefined;
  return o;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let o = target;
  for (const k of keys.slice(0, -1)) {
    const next = o[k];
    o = o[k] = typeof next === 'object' && next !== null && !Array.isArray(next) ? { ...(next as Record<string, unknown>) } : {};
  }
  o[keys.at(-1)!] = value;
}

function toNumber(value: string, name: string): number {
  if (!/^\d+$/.test(value)) throw new SluiceError('CONFIG_INVALID', `${name}: got ${JSON.stringify(value)}, expected a whole number`, { field: name });
  return Number(value);
}

/** An instance id as it may appear in file names. */
export function sanitizeId(id: string): string {
  return id.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64) || 'sluice';
}

export type { ConfigFile };
