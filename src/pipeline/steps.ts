// Steps as configured -> the operators of one file. Operators that reject rows or read the file's name get
// the file's context here; user modules are imported once, when the pipeline is built.
import { dirname } from 'node:path';
import type { OperatorFunction } from 'rxjs';
import type { StepConfig } from '../config/schema.js';
import { SluiceError } from '../errors.js';
import type { FileContext } from '../file-context.js';
import { addColumn } from '../operators/add-column.js';
import { cast, type CastSpec } from '../operators/cast.js';
import { dedupe } from '../operators/dedupe.js';
import { dropNulls } from '../operators/drop-nulls.js';
import { filter, type FilterPredicate } from '../operators/filter.js';
import { loadModuleOperator } from '../operators/load-module-operator.js';
import { rename } from '../operators/rename.js';
import { select } from '../operators/select.js';
import type { Row } from '../row.js';
import type { CastType } from '../operators/cast-values.js';

export type StepsFactory = (ctx: FileContext) => ReadonlyArray<OperatorFunction<Row, Row>>;
type Maker = (ctx: FileContext) => OperatorFunction<Row, Row>;

export interface BuildStepsOptions {
  /** Where relative module paths resolve: the config file's folder (default the working directory). */
  baseDir?: string;
}

/** Checks and builds every step once (imports modules), and returns the per-file factory. */
export async function buildSteps(steps: readonly StepConfig[], options: BuildStepsOptions = {}): Promise<StepsFactory> {
  const makers: Maker[] = [];
  for (const [i, step] of steps.entries()) {
    try {
      makers.push(await stepMaker(step, options));
    } catch (err) {
      if (err instanceof SluiceError) {
        throw new SluiceError(err.code, `steps[${i}].${err.message}`, { field: `steps[${i}]${err.field === undefined ? '' : `.${err.field}`}`, cause: err });
      }
      throw err;
    }
  }
  return (ctx) => makers.map((make) => make(ctx));
}

async function stepMaker(step: StepConfig, options: BuildStepsOptions): Promise<Maker> {
  if (step.dropNulls !== undefined) {
    const op = dropNulls(step.dropNulls);
    return () => op;
  }
  if (step.select !== undefined) {
    const op = select(step.select);
    return () => op;
  }
  if (step.rename !== undefined) {
    const op = rename(step.rename);
    return () => op;
  }
  if (step.cast !== undefined) {
    const spec = step.cast as CastSpec;
    cast(spec); // checks the spec now, not at the first file
    return (ctx) => cast(spec, { context: ctx });
  }
  if (step.filter !== undefined) {
    const op = filter(step.filter as FilterPredicate);
    return () => op;
  }
  if (step.dedupe !== undefined) {
    const opts = { maxKeys: step.dedupe.maxKeys, ...(step.dedupe.columns === undefined ? {} : { columns: step.dedupe.columns }) };
    return () => dedupe(opts); // per file: its seen keys are that file's
  }
  if (step.addColumn !== undefined) {
    const { name, constant, source } = step.addColumn;
    const value = constant !== undefined ? { constant } : source === 'fileName' ? ({ fileName: true } as const) : ({ timestamp: true } as const);
    return (ctx) => addColumn({ name, value, context: ctx });
  }
  if (step.module !== undefined) {
    const m = step.module;
    const make = await loadModuleOperator(m.path, {
      export: m.export,
      options: m.options,
      ...(options.baseDir === undefined ? {} : { baseDir: options.baseDir }),
    });
    return (ctx) => make(ctx);
  }
  throw new SluiceError('CONFIG_INVALID', 'a step with no operator', {});
}

/** The type each column is cast to by the pipeline's steps, under its final name (column -> cast type). */
export function columnTypes(steps: readonly StepConfig[]): Record<string, CastType> {
  const types: Record<string, CastType> = {};
  for (const step of steps) {
    for (const [column, spec] of Object.entries(step.cast ?? {})) types[column] = typeof spec === 'string' ? spec : spec.type;
    for (const [from, to] of Object.entries(step.rename ?? {})) {
      if (types[from] !== undefined) {
        types[to] = types[from]!;
        delete types[from];
      }
    }
  }
  return types;
}

export function configDir(source: string | undefined): string | undefined {
  return source === undefined ? undefined : dirname(source);
}
