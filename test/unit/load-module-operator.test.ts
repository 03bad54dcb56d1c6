// Unit tests for loadModuleOperator: loading checks, per-file factory calls, the header check, error codes.
import { resolve } from 'node:path';
import { from, lastValueFrom, throwError, toArray, concat, of } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { SluiceError } from '../../src/errors.js';
import { FileContext } from '../../src/file-context.js';
import { loadModuleOperator } from '../../src/operators/load-module-operator.js';
import type { Rejection, Row } from '../../src/row.js';

const baseDir = resolve(import.meta.dirname, '../fixtures/module-operators');
const header: Row = ['id', 'country'];

describe('loadModuleOperator', () => {
  it('loads the default export, passes options and the context, makes one operator per file', async () => {
    const make = await loadModuleOperator('upper.mjs', { baseDir, options: { column: 'country' } });
    const rejected: Rejection[] = [];
    const ctx = new FileContext('a.csv', { onReject: (r) => rejected.push(r) });
    ctx.line = 3;
    const out = await lastValueFrom(from([header, ['1', 'fr'], ['2', 'bad'], ['3', 'de']]).pipe(make(ctx), toArray()));
    expect(out).toEqual([header, ['1', 'FR'], ['3', 'DE']]);
    expect(rejected).toEqual([{ line: 3, code: 'CSV_PARSE_ERROR', message: 'bad value', raw: Buffer.from('2,bad') }]);
    expect(await lastValueFrom(from([header, ['9', 'it']]).pipe(make(), toArray()))).toEqual([header, ['9', 'IT']]);
  });

  it('resolves a path against the working directory by default, and takes absolute paths', async () => {
    await expect(loadModuleOperator('test/fixtures/module-operators/upper.mjs', { options: { column: 'id' } })).resolves.toBeTypeOf('function');
    await expect(loadModuleOperator(resolve(baseDir, 'upper.mjs'))).resolves.toBeTypeOf('function');
  });

  it('refuses at load, with CONFIG_INVALID naming the file: missing, not .js/.mjs, import error, bad export', async () => {
    await expect(loadModuleOperator('nope.mjs', { baseDir })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/^module "nope.mjs": cannot read .*nope.mjs/),
    });
    await expect(loadModuleOperator('upper.ts', { baseDir })).rejects.toThrow(
      'module "upper.ts": expected a .js or .mjs file (compile TypeScript to JavaScript first)',
    );
    await expect(loadModuleOperator('broken.mjs', { baseDir })).rejects.toThrow('module "broken.mjs": import failed: cannot load');
    await expect(loadModuleOperator('upper.mjs', { baseDir, export: 'notAFactory' })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      field: 'module.export',
      message: expect.stringContaining('export "notAFactory" is a number; expected a factory'),
    });
    await expect(loadModuleOperator('upper.mjs', { baseDir, export: 'missing' })).rejects.toThrow(/export "missing" is missing/);
  });

  it('fails the file with MODULE_FAILED when the factory throws or returns no operator', async () => {
    const ctx = new FileContext('f.csv');
    const throws = await loadModuleOperator('upper.mjs', { baseDir, export: 'throwsInFactory' });
    expect(() => throws(ctx)).toThrow(
      expect.objectContaining({ code: 'MODULE_FAILED', file: 'f.csv', message: 'module "upper.mjs": its factory threw: no options' }),
    );
    const nothing = await loadModuleOperator('upper.mjs', { baseDir, export: 'returnsNothing' });
    expect(() => nothing(ctx)).toThrow(/its factory returned undefined, not an operator/);
  });

  it('turns an error of the operator into MODULE_FAILED with the cause', async () => {
    const make = await loadModuleOperator('upper.mjs', { baseDir, export: 'throwsOnRow' });
    const err = (await lastValueFrom(from([header, ['1', 'x']]).pipe(make(new FileContext('f.csv')))).catch((e: unknown) => e)) as SluiceError;
    expect(err).toMatchObject({ code: 'MODULE_FAILED', file: 'f.csv', message: 'module "upper.mjs": its operator failed: boom' });
    expect(err.cause).toBeInstanceOf(TypeError);
  });

  it('checks that the first value is a header', async () => {
    const make = await loadModuleOperator('upper.mjs', { baseDir, export: 'emitsNonRow' });
    await expect(lastValueFrom(from([header]).pipe(make()))).rejects.toMatchObject({
      code: 'MODULE_FAILED',
      message: expect.stringContaining('its first value is not a header'),
    });
  });

  it('passes errors from upstream through as they are', async () => {
    const make = await loadModuleOperator('upper.mjs', { baseDir, options: { column: 'id' } });
    const upstream = new Error('EIO: read');
    const err = await lastValueFrom(
      concat(
        of(header),
        throwError(() => upstream),
      ).pipe(make()),
    ).catch((e: unknown) => e);
    expect(err).toBe(upstream);
    const coded = new SluiceError('BINARY_FILE', 'binary');
    expect(await lastValueFrom(throwError(() => coded).pipe(make())).catch((e: unknown) => e)).toBe(coded);
  });
});
