// Output drivers: one per format, found by the registry; the file drivers name and place their files.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SluiceError } from '../../src/errors.js';
import { FileContext } from '../../src/file-context.js';
import { csvOutput } from '../../src/outputs/csv.js';
import type { SinkFile } from '../../src/outputs/driver.js';
import { ndjsonOutput } from '../../src/outputs/ndjson.js';
import { postgresOutput } from '../../src/outputs/postgres.js';
import { OUTPUT_DRIVERS, outputDriver, outputSchema } from '../../src/outputs/registry.js';
import { batchPolicy } from '../../src/outputs/driver.js';
import { loadConfig } from '../../src/config/load.js';
import { pipelineSettings } from '../../src/pipeline/settings.js';
import { writeFileSync } from 'node:fs';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-outputs-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const file: SinkFile = { tempTag: 't', fsync: false, claimId: 'c1', delimiter: '\t', mode: 0o600 };
const place = () => ({ outDir: dir, pipeline: 'p', types: {} });

describe('the output registry', () => {
  it('has one driver per format, and the output setting is the union of their schemas', () => {
    const formats = OUTPUT_DRIVERS.map((d) => d.format);
    expect(new Set(formats).size).toBe(formats.length);
    expect(formats.sort()).toEqual(['csv', 'ndjson', 'parquet', 'postgres']);
    for (const d of OUTPUT_DRIVERS) {
      const config = outputSchema.parse(d.format === 'postgres' ? { format: d.format, table: 't' } : { format: d.format });
      expect(outputDriver(config)).toBe(d);
    }
    expect(outputSchema.safeParse({ format: 'xml' }).success).toBe(false);
    expect(outputSchema.parse(undefined)).toMatchObject({ format: 'csv' });
  });

  it('only outputs that can be down have a probe and can say whether a load committed', () => {
    expect(OUTPUT_DRIVERS.filter((d) => d.remote !== undefined).map((d) => d.format)).toEqual(['postgres']);
  });

  it('describes where the rows would go, for `sluice preview`', () => {
    expect(csvOutput.describe(outputSchema.parse({ format: 'csv', gzip: true }) as never, { outDir: 'out' })).toBe('file out/{stem}.csv.gz (csv)');
    expect(ndjsonOutput.describe(outputSchema.parse({ format: 'ndjson' }) as never, { outDir: 'out' })).toBe('file out/{stem}.ndjson (ndjson)');
    expect(postgresOutput.describe(outputSchema.parse({ format: 'postgres', table: 't', schema: 's' }) as never, { outDir: 'out' })).toBe(
      'table s.t (postgres)',
    );
  });
});

describe('file drivers', () => {
  it("csv: a name template with a folder makes the folder; the delimiter is the input's unless set; the mode is the file's", async () => {
    const config = outputSchema.parse({ format: 'csv', name: '{pipeline}/{stem}.out.csv' });
    const make = outputDriver(config).sinks(config, place());
    const sink = await make(new FileContext('orders.tsv'), file);
    await sink.write({ header: ['a', 'b'], rows: [['1', 'x']], lines: [2] });
    const result = await sink.commit();
    expect(result.path).toBe(join(dir, 'p', 'orders.out.csv'));
    expect(readFileSync(result.path!, 'utf8')).toBe('a\tb\n1\tx\n');
    expect(readdirSync(join(dir, 'p'))).toEqual(['orders.out.csv']);
  });

  it('parquet: {stem}.parquet by default (an input .gz left out), the file mode, defaults, refused settings', async () => {
    const config = outputSchema.parse({ format: 'parquet' });
    expect(config).toMatchObject({ compression: 'zstd', rowGroupRows: 122_880 });
    const sink = await outputDriver(config).sinks(config, { ...place(), types: { a: 'integer' } })(new FileContext('orders.csv.gz'), file);
    await sink.write({ header: ['a', 'b'], rows: [['1', 'x']], lines: [2] });
    const result = await sink.commit();
    expect(result.path).toBe(join(dir, 'orders.parquet'));
    const bytes = readFileSync(result.path!);
    expect([bytes.subarray(0, 4).toString(), bytes.subarray(-4).toString()]).toEqual(['PAR1', 'PAR1']);
    expect(statSync(result.path!).mode & 0o777).toBe(0o600);
    expect(outputDriver(config).describe(config, { outDir: 'out' })).toBe('file out/{stem}.parquet (parquet)');
    for (const bad of [{ compression: 'lz4' }, { rowGroupRows: 0 }, { gzip: true }])
      expect(outputSchema.safeParse({ format: 'parquet', ...bad }).success).toBe(false);
  });

  it('checks a name template when the pipeline is built, naming the setting', () => {
    const config = outputSchema.parse({ format: 'ndjson', name: '../{stem}.ndjson' });
    expect(() => outputDriver(config).check?.(config, 'pipelines[0].output')).toThrow(SluiceError);
    try {
      outputDriver(config).check?.(config, 'pipelines[0].output');
    } catch (err) {
      expect((err as SluiceError).field).toBe('pipelines[0].output.name');
    }
    expect(outputDriver(outputSchema.parse({ format: 'csv', mode: '0600' })).mode?.(outputSchema.parse({ format: 'csv', mode: '0600' }))).toBe(0o600);
  });
});

describe('batch policy', () => {
  const top = { size: 1000, maxWaitMs: 1000 };
  it("is the output's batch, over the top-level batch if set, over the driver's defaults, over the top-level defaults", () => {
    expect(batchPolicy(top, false, undefined, undefined)).toEqual(top);
    expect(batchPolicy(top, false, { size: 10_000 }, undefined)).toEqual({ size: 10_000, maxWaitMs: 1000 });
    expect(batchPolicy({ size: 500, maxWaitMs: 1000 }, true, { size: 10_000 }, undefined)).toEqual({ size: 500, maxWaitMs: 1000 });
    expect(batchPolicy(top, true, { size: 10_000 }, { maxWaitMs: 50 })).toEqual({ size: 1000, maxWaitMs: 50 });
    expect(batchPolicy(top, false, { size: 10_000 }, { size: 7 })).toEqual({ size: 7, maxWaitMs: 1000 });
  });

  it('comes from sluice.yaml: output.batch for one pipeline, the top-level batch for the others', async () => {
    writeFileSync(
      join(dir, 'sluice.yaml'),
      'batch: { size: 300 }\npipelines:\n  - name: a\n    match: ["a*"]\n    output: { format: csv, batch: { size: 20, maxWaitMs: 5 } }\n  - name: b\n',
    );
    const cfg = loadConfig({ configPath: join(dir, 'sluice.yaml'), env: {}, cwd: dir });
    expect((await pipelineSettings(cfg, cfg.pipelines[0]!, 0)).batch).toEqual({ size: 20, maxWaitMs: 5 });
    expect((await pipelineSettings(cfg, cfg.pipelines[1]!, 1)).batch).toEqual({ size: 300, maxWaitMs: 1000 });
    expect(() => outputSchema.parse({ format: 'csv', batch: { size: 0 } })).toThrow();
  });
});
