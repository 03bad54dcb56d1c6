// The normalized configuration: defaults in one place, loose input (file, flags) checked and resolved once.
import { readFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { CsvReadOptions } from '../csv/record-reader.js';
import { SluiceError } from '../errors.js';
import type { DropNullsOptions } from '../operators/drop-nulls.js';

export interface SluiceConfig {
  readonly watch: string;
  readonly out: string;
  readonly rejects: string;
  readonly archive: string;
  readonly failed: string;
  readonly state: string;
  readonly concurrency: number;
  readonly settleMs: number;
  readonly rescanMs: number;
  readonly drainTimeoutMs: number;
  readonly metrics: { readonly host: string; readonly port: number };
  readonly batch: { readonly size: number; readonly maxWaitMs: number };
  readonly highWaterMark: number;
  readonly fsync: boolean;
  readonly instanceId: string;
  readonly csv: Readonly<CsvReadOptions>;
  readonly dropNulls: Readonly<DropNullsOptions>;
}

/** A loose config: what a config file or the command line may set. */
export type ConfigInput = {
  [K in keyof SluiceConfig]?: SluiceConfig[K] extends object ? Partial<SluiceConfig[K]> : SluiceConfig[K];
};

type Kind = 'string' | 'int' | 'port' | 'positive' | 'boolean' | 'object' | 'strings';
const SHAPE: Record<string, Kind> = {
  watch: 'string', out: 'string', rejects: 'string', archive: 'string', failed: 'string', state: 'string',
  concurrency: 'int', settleMs: 'positive', rescanMs: 'positive', drainTimeoutMs: 'positive',
  metrics: 'object', 'metrics.host': 'string', 'metrics.port': 'port',
  batch: 'object', 'batch.size': 'int', 'batch.maxWaitMs': 'positive',
  highWaterMark: 'int', fsync: 'boolean', instanceId: 'string',
  csv: 'object', 'csv.delimiter': 'string', 'csv.quote': 'string', 'csv.escape': 'string', 'csv.encoding': 'string',
  'csv.bom': 'boolean', 'csv.maxRecordSize': 'int', 'csv.refuseBinary': 'boolean',
  dropNulls: 'object', 'dropNulls.how': 'string', 'dropNulls.columns': 'strings', 'dropNulls.nullValues': 'strings', 'dropNulls.thresh': 'int',
};

/** Checks a loose config's keys and value types; the error names the field, the value and what was expected. */
export function checkConfigInput(input: unknown, prefix = ''): asserts input is ConfigInput {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalid(prefix || '(root)', input, 'an object');
  }
  for (const [key, value] of Object.entries(input)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const kind = SHAPE[path];
    if (kind === undefined) throw new SluiceError('CONFIG_INVALID', `${path}: unknown setting`, { field: path });
    if (value === undefined) continue;
    const ok =
      kind === 'string' ? typeof value === 'string' && value !== ''
      : kind === 'int' ? Number.isInteger(value) && (value as number) >= 1
      : kind === 'port' ? Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 65535
      : kind === 'positive' ? typeof value === 'number' && value > 0
      : kind === 'boolean' ? typeof value === 'boolean'
      : kind === 'strings' ? Array.isArray(value) && value.every((v) => typeof v === 'string')
      : typeof value === 'object' && value !== null && !Array.isArray(value);
    if (!ok) throw invalid(path, value, EXPECTED[kind]);
    if (kind === 'object') checkConfigInput(value, path);
  }
}

const EXPECTED: Record<Kind, string> = {
  string: 'a non-empty string',
  int: 'a whole number >= 1',
  port: 'a port number 0-65535 (0 turns it off)',
  positive: 'a number > 0',
  boolean: 'true or false',
  object: 'an object',
  strings: 'a list of strings',
};

function invalid(path: string, value: unknown, expected: string): SluiceError {
  return new SluiceError('CONFIG_INVALID', `${path}: got ${JSON.stringify(value)}, expected ${expected}`, { field: path });
}

/** Reads a JSON config file. */
export function readConfigFile(path: string): ConfigInput {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new SluiceError('CONFIG_INVALID', `cannot read the config file ${path}: ${(err as Error).message}`, { file: path });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new SluiceError('CONFIG_INVALID', `${path} is not valid JSON: ${(err as Error).message}`, { file: path });
  }
  checkConfigInput(data);
  return data;
}

/** Merges the layers (later wins) over the defaults and resolves folders against `cwd`. */
export function resolveConfig(layers: ConfigInput[], cwd = process.cwd()): SluiceConfig {
  const merged: Record<string, unknown> = {};
  for (const layer of layers) {
    checkConfigInput(layer);
    for (const [k, v] of Object.entries(layer)) {
      if (v === undefined) continue;
      const prev = merged[k];
      merged[k] = typeof v === 'object' && !Array.isArray(v) && typeof prev === 'object' ? { ...prev, ...v } : v;
    }
  }
  const m = merged as ConfigInput;
  const dir = (v: string | undefined, d: string): string => resolve(cwd, v ?? d);
  const watch = dir(m.watch, 'watch');
  const encoding = m.csv?.encoding ?? 'utf8';
  if (encoding !== 'utf8' && encoding !== 'latin1') throw invalid('csv.encoding', encoding, '"utf8" or "latin1"');
  const how = m.dropNulls?.how ?? 'any';
  if (how !== 'any' && how !== 'all') throw invalid('dropNulls.how', how, '"any" or "all"');
  return {
    watch,
    out: dir(m.out, 'out'),
    rejects: dir(m.rejects, 'rejects'),
    archive: dir(m.archive, 'archive'),
    failed: dir(m.failed, 'failed'),
    state: m.state === undefined ? resolve(dirname(watch), '.sluice') : dir(m.state, '.sluice'),
    concurrency: m.concurrency ?? availableParallelism(),
    settleMs: m.settleMs ?? 2000,
    rescanMs: m.rescanMs ?? 30_000,
    drainTimeoutMs: m.drainTimeoutMs ?? 30_000,
    metrics: { host: m.metrics?.host ?? '127.0.0.1', port: m.metrics?.port ?? 9464 },
    batch: { size: m.batch?.size ?? 1000, maxWaitMs: m.batch?.maxWaitMs ?? 1000 },
    highWaterMark: m.highWaterMark ?? 4096,
    fsync: m.fsync ?? true,
    instanceId: sanitizeId(m.instanceId ?? hostname()),
    csv: { ...m.csv, encoding },
    dropNulls: { ...m.dropNulls, how },
  };
}

function sanitizeId(id: string): string {
  return id.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64) || 'sluice';
}
