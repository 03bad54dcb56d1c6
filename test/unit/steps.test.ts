// The operator registry is the one list of step operators: the step schema, the builder and the hints cover exactly it.
import { resolve } from 'node:path';
import { from, lastValueFrom, toArray } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { configJsonSchema, stepSchema } from '../../src/config/schema.js';
import { FileContext } from '../../src/file-context.js';
import { OPERATORS, type OperatorName } from '../../src/operators/registry.js';
import { buildSteps } from '../../src/pipeline/steps.js';
import type { Row } from '../../src/row.js';

const baseDir = resolve(import.meta.dirname, '../fixtures/module-operators');

/** One valid value per operator, each taking the columns the one before leaves; a new operator without one does not compile. */
const EXAMPLES: Record<OperatorName, unknown> = {
  dropNulls: { how: 'all' },
  select: ['id'],
  rename: { id: 'key' },
  cast: { key: 'integer' },
  filter: { column: 'key', op: 'ge', value: 1 },
  dedupe: { columns: ['key'] },
  addColumn: { name: 'src', source: 'fileName' },
  module: { path: 'upper.mjs', options: { column: 'src' } },
};

const NAMES = OPERATORS.map((op) => op.name);

afterEach(() => vi.restoreAllMocks());

describe('the operator registry', () => {
  it('names each operator once, and the step schema takes exactly its operators, in its order', () => {
    expect(new Set(NAMES).size).toBe(NAMES.length);
    expect(Object.keys(stepSchema.shape)).toEqual(NAMES);
    const path = ['properties', 'pipelines', 'items', 'properties', 'steps', 'items', 'properties'];
    const documented = path.reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], configJsonSchema());
    expect(Object.keys(documented as object)).toEqual(NAMES);
    expect(Object.keys(EXAMPLES).sort()).toEqual([...NAMES].sort());
  });

  it('builds each step with the definition of the operator it names, given the value its schema gave', async () => {
    const spies = OPERATORS.map((op) => vi.spyOn(op, 'build'));
    const steps = NAMES.map((name) => stepSchema.parse({ [name]: EXAMPLES[name] }));
    const factory = await buildSteps(steps, { baseDir });
    expect(factory(new FileContext('a.csv'))).toHaveLength(NAMES.length);
    for (const [i, spy] of spies.entries()) {
      expect(spy).toHaveBeenCalledTimes(1);
      expect(spy).toHaveBeenCalledWith(Object.values(steps[i]!)[0], { baseDir });
    }
  });

  it('runs a file through every operator', async () => {
    const steps = NAMES.map((name) => stepSchema.parse({ [name]: EXAMPLES[name] }));
    const ops = (await buildSteps(steps, { baseDir }))(new FileContext('a.csv'));
    const rows: Row[] = [
      ['id', 'x'],
      ['1', 'a'],
      ['', ''],
      ['0', 'b'],
      ['01', 'c'],
      ['2', 'd'],
    ];
    const out = await lastValueFrom(ops.reduce((rows$, op) => rows$.pipe(op), from(rows)).pipe(toArray()));
    expect(out).toEqual([
      ['key', 'src'],
      ['1', 'A.CSV'],
      ['2', 'A.CSV'],
    ]);
  });

  it('names the step of an error, and refuses a step with no operator', async () => {
    await expect(buildSteps([{ rename: { a: 'b' } }, { select: ['a', 'a'] }])).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      field: 'steps[1].select',
      message: 'steps[1].select: column "a" is listed twice',
    });
    await expect(buildSteps([{}])).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: 'steps[0].a step with no operator' });
  });

  it('refuses a step of two operators, and suggests the operator a misspelt name meant', () => {
    const pipelines = (step: Record<string, unknown>) => ({ pipelines: [{ name: 'p', steps: [step] }] });
    expect(() => parseConfig(pipelines({ select: ['a'], rename: { a: 'b' } }))).toThrow(
      'pipelines[0].steps[0]: got {"select":["a"],"rename":{"a":"b"}}; a step has exactly one operator, e.g. { dropNulls: { how: any } }',
    );
    for (const name of NAMES) {
      const typo = `${name.slice(0, -2)}${name.at(-1)}`;
      expect(() => parseConfig(pipelines({ [typo]: EXAMPLES[name] }))).toThrow(`unknown setting pipelines[0].steps[0].${typo} (did you mean ${name}?)`);
    }
  });
});
