// Loading the configuration: precedence, defaults, and errors that name the field, the value and the expectation.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ENV_VARS, formatPath, loadConfig } from '../../src/config/load.js';
import { configJsonSchema } from '../../src/config/schema.js';
import { SETTINGS } from '../../src/config/settings-table.js';
import type { SluiceError } from '../../src/errors.js';
import { sluiceErrorOf } from './sluice-error.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-config-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const errorOf = sluiceErrorOf;

describe('loadConfig', () => {
  it('gives the documented defaults without a file', () => {
    const cfg = loadConfig({ cwd: dir, env: {} });
    expect(cfg.watch).toBe(join(dir, 'watch'));
    expect(cfg.state).toBe(join(dir, '.sluice'));
    expect(cfg.metrics).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(cfg.pipelines).toEqual([
      {
        name: 'default',
        match: ['*'],
        input: {
          quote: '"',
          encoding: 'utf8',
          bom: true,
          maxRecordSize: 16 * 1024 * 1024,
          maxColumns: 10_000,
          allowHardLinks: false,
          header: true,
          skipLines: 0,
          relaxQuotes: false,
        },
        steps: [{ dropNulls: { how: 'any', nullValues: [''], trim: false } }],
        output: { format: 'csv', quote: 'minimal', header: true, lineEnding: 'lf', gzip: false, escapeFormulas: false },
      },
    ]);
    expect(cfg.source).toBeUndefined();
  });

  it('reads ./sluice.yaml, then SLUICE_* variables, then flags, each overriding the one before', async () => {
    await writeFile(join(dir, 'sluice.yaml'), 'watch: ./in\nout: ./clean\nmetrics: { port: 9000, host: 0.0.0.0 }\nconcurrency: 3\n');
    const cfg = loadConfig({ cwd: dir, env: { SLUICE_OUT: 'envout', SLUICE_METRICS_PORT: '9100' }, flags: { 'metrics.port': 9200, concurrency: undefined } });
    expect(cfg.source).toBe(join(dir, 'sluice.yaml'));
    expect(cfg.watch).toBe(join(dir, 'in'));
    expect(cfg.out).toBe(join(dir, 'envout'));
    expect(cfg.metrics).toEqual({ host: '0.0.0.0', port: 9200 });
    expect(cfg.concurrency).toBe(3);
    expect(cfg.state).toBe(join(dir, '.sluice'));
  });

  it("resolves a config file's folders against the file's folder, and those of flags and variables against the working directory", async () => {
    await mkdir(join(dir, 'etc'));
    await writeFile(join(dir, 'etc', 'sluice.yaml'), 'watch: ./in\nout: ../clean\narchive: /abs/done\n');
    const cfg = loadConfig({ cwd: '/', env: { SLUICE_FAILED: 'envfailed' }, configPath: join(dir, 'etc', 'sluice.yaml'), flags: { rejects: 'flagrej' } });
    expect(cfg.watch).toBe(join(dir, 'etc', 'in'));
    expect(cfg.out).toBe(join(dir, 'clean'));
    expect(cfg.archive).toBe('/abs/done');
    expect(cfg.failed).toBe('/envfailed');
    expect(cfg.rejects).toBe('/flagrej');
    expect(cfg.state).toBe(join(dir, 'etc', '.sluice'));
    expect([...cfg.given].sort()).toEqual(['archive', 'failed', 'out', 'rejects', 'watch']);
    expect([...loadConfig({ cwd: dir, env: {} }).given]).toEqual([]);
  });

  it('takes run defaults below the file at any depth: a file setting metrics.host keeps the run default port', async () => {
    await writeFile(join(dir, 'sluice.yaml'), 'metrics: { host: 0.0.0.0 }\n');
    expect(loadConfig({ cwd: dir, env: {}, defaults: { 'metrics.port': 0, settleMs: 0 } })).toMatchObject({
      metrics: { host: '0.0.0.0', port: 0 },
      settleMs: 0,
    });
    await writeFile(join(dir, 'sluice.yaml'), 'metrics: { port: 9300 }\nsettleMs: 7\n');
    expect(loadConfig({ cwd: dir, env: {}, defaults: { 'metrics.port': 0, settleMs: 0 } })).toMatchObject({ metrics: { port: 9300 }, settleMs: 7 });
  });

  it('explains a value that matches no form by its closest form, and suggests the setting meant', async () => {
    await writeFile(
      join(dir, 'sluice.yaml'),
      'pipelines:\n  - name: p\n    steps:\n      - cast: { a: intgr }\n      - filter: { column: a, op: equals, value: 1 }\n      - selekt: [a]\n',
    );
    const message = errorOf(() => loadConfig({ cwd: dir, env: {} })).message;
    expect(
      message
        .split('\n')
        .slice(1)
        .map((l) => l.trim()),
    ).toEqual([
      'pipelines[0].steps[0].cast.a: got "intgr"; expected one of "string"|"integer"|"number"|"boolean"|"date"|"timestamp", or an object',
      'pipelines[0].steps[1].filter.op: got "equals"; expected one of "eq"|"ne"|"lt"|"le"|"gt"|"ge"|"in"|"matches"',
      'pipelines[0].steps[2]: unknown setting pipelines[0].steps[2].selekt (did you mean select?)',
    ]);
  });

  it('says a missing output format is missing, an unquoted YAML mode is a number, and a number too large is one', async () => {
    await writeFile(
      join(dir, 'sluice.yaml'),
      'batch: { size: 1e400 }\npipelines:\n  - name: a\n    output: { mode: "0600" }\n  - name: b\n    output: { format: csv, mode: 0640 }\n',
    );
    const lines = errorOf(() => loadConfig({ cwd: dir, env: {} }))
      .message.split('\n')
      .slice(1)
      .map((l) => l.trim());
    expect(lines).toEqual([
      'batch.size: got Infinity (a number too large); expected number, received Infinity',
      'pipelines[0].output.format: missing; give one of "csv"|"postgres"|"ndjson"|"parquet"',
      'pipelines[1].output.mode: got 640; write the mode as quoted octal text, "0640" (YAML reads an unquoted 0640 as the number 640)',
    ]);
  });

  it('suggests the one name a word starts', async () => {
    const { closest } = await import('../../src/config/load.js');
    expect(closest('val', ['run', 'validate', 'schema'])).toBe('validate');
    expect(closest('conc', ['concurrency', 'config'])).toBe('concurrency');
    expect(closest('co', ['concurrency', 'config'])).toBeUndefined();
    expect(closest('sta', ['state', 'status'])).toBe('state');
  });

  it('reads JSON too, from --config or SLUICE_CONFIG', async () => {
    await writeFile(join(dir, 'c.json'), JSON.stringify({ settleMs: 5 }));
    expect(loadConfig({ cwd: dir, env: {}, configPath: 'c.json' }).settleMs).toBe(5);
    expect(loadConfig({ cwd: dir, env: { SLUICE_CONFIG: join(dir, 'c.json') } }).settleMs).toBe(5);
  });

  it('names every wrong field with its path, value and expectation', async () => {
    await writeFile(
      join(dir, 'sluice.yaml'),
      [
        'pipelines:',
        '  - name: orders',
        '    match: ["orders*.csv"]',
        '    steps:',
        '      - dropNulls: { how: some }',
        '  - name: b',
        '    steps:',
        '      - dropNulls: {}',
        '        select: [a]',
        '    output: { format: xml }',
        'bogus: 1',
      ].join('\n'),
    );
    const err = errorOf(() => loadConfig({ cwd: dir, env: {} }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.field).toBe('pipelines[0].steps[0].dropNulls.how');
    expect(
      err.message
        .split('\n')
        .slice(1)
        .map((l) => l.trim()),
    ).toEqual([
      'pipelines[0].steps[0].dropNulls.how: got "some"; expected one of "any"|"all"',
      'pipelines[1].steps[0]: got {"dropNulls":{"how":"any","nullValues":[""],"trim":false},"select":["a"]}; a step has exactly one operator, e.g. { dropNulls: { how: any } }',
      'pipelines[1].output.format: got "xml"; expected one of "csv"|"postgres"|"ndjson"|"parquet"',
      'unknown setting bogus',
    ]);
  });

  it('refuses duplicate pipeline names, bad env numbers and bad YAML', async () => {
    await writeFile(join(dir, 'sluice.yaml'), 'pipelines:\n  - name: a\n  - name: a\n');
    expect(errorOf(() => loadConfig({ cwd: dir, env: {} })).message).toContain('pipelines[1].name: got "a"; the name "a" is used twice');
    expect(errorOf(() => loadConfig({ cwd: dir, env: { SLUICE_METRICS_PORT: 'x' }, configPath: '/dev/null' })).message).toBe(
      'SLUICE_METRICS_PORT: got "x", expected a whole number',
    );
    await writeFile(join(dir, 'sluice.yaml'), 'watch: [unclosed\n');
    expect(errorOf(() => loadConfig({ cwd: dir, env: {} })).message).toMatch(/sluice\.yaml is not valid YAML\/JSON/);
  });

  it('formats paths the way users write them', () => {
    expect(formatPath(['pipelines', 1, 'steps', 0, 'dropNulls', 'how'])).toBe('pipelines[1].steps[0].dropNulls.how');
  });
});

describe('the settings table of flags and variables', () => {
  it('sets settings the schema has, each by one flag and at most one variable', () => {
    const node = (path: string): unknown =>
      path.split('.').reduce<unknown>((n, key) => (n as { properties?: Record<string, unknown> } | undefined)?.properties?.[key], configJsonSchema());
    for (const s of SETTINGS) expect(node(s.path), s.path).toBeDefined();
    const flags = SETTINGS.map((s) => s.flag);
    expect(new Set(flags).size).toBe(flags.length);
    expect(new Set(SETTINGS.map((s) => s.path)).size).toBe(SETTINGS.length);
    expect(Object.entries(ENV_VARS)).toEqual(SETTINGS.flatMap((s) => ('env' in s ? [[s.env, s.path]] : [])));
  });

  it('gives each variable its setting: whole numbers as numbers, folders against the working directory', () => {
    for (const s of SETTINGS) {
      if (!('env' in s)) continue;
      const cfg = loadConfig({ cwd: dir, env: { [s.env]: s.kind === 'count' ? '7' : 'v' } }) as unknown as Record<string, unknown>;
      const value = s.path.split('.').reduce<unknown>((o, key) => (o as Record<string, unknown>)[key], cfg);
      expect(value, s.env).toEqual(s.kind === 'count' ? 7 : s.path === 'instanceId' || s.path === 'metrics.host' ? 'v' : join(dir, 'v'));
    }
  });
});

describe('input dialect settings', () => {
  const load = async (input: string): Promise<SluiceError> => {
    await writeFile(join(dir, 'sluice.yaml'), ['pipelines:', '  - name: p', `    input: ${input}`].join('\n'));
    return errorOf(() => loadConfig({ cwd: dir, env: {} }));
  };

  it('refuses header: false without columns, naming input.columns', async () => {
    const err = await load('{ header: false }');
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.field).toBe('pipelines[0].input.columns');
    expect(err.message).toContain('input.header: false needs input.columns');
  });

  it('refuses a column named twice, a comment of two characters and a negative skipLines', async () => {
    expect((await load('{ header: false, columns: [a, a] }')).field).toBe('pipelines[0].input.columns');
    expect((await load("{ comment: '//' }")).field).toBe('pipelines[0].input.comment');
    expect((await load('{ skipLines: -1 }')).field).toBe('pipelines[0].input.skipLines');
    expect((await load("{ comment: ',' }")).message).toContain('the comment character must differ from the quote, the delimiter');
    expect((await load("{ comment: '\"' }")).field).toBe('pipelines[0].input.comment');
  });

  it('takes the dialect options', async () => {
    await writeFile(
      join(dir, 'sluice.yaml'),
      ['pipelines:', '  - name: p', "    input: { header: false, columns: [a, b], skipLines: 2, comment: '#', relaxQuotes: true }"].join('\n'),
    );
    const cfg = loadConfig({ cwd: dir, env: {} });
    expect(cfg.pipelines[0]!.input).toMatchObject({ header: false, columns: ['a', 'b'], skipLines: 2, comment: '#', relaxQuotes: true });
  });
});
