// Steps as configured -> the operators of one file, each built once by its operator's definition (the registry's).
import { dirname } from 'node:path';
import type { OperatorFunction } from 'rxjs';
import type { StepConfig } from '../config/schema.js';
import { SluiceError } from '../errors.js';
import type { FileContext } from '../file-context.js';
import type { CastType } from '../operators/cast-values.js';
import type { OperatorBuildOptions, OperatorDefinition, OperatorMaker } from '../operators/definition.js';
import { OPERATORS } from '../operators/registry.js';
import type { Row } from '../row.js';

export type StepsFactory = (ctx: FileContext) => ReadonlyArray<OperatorFunction<Row, Row>>;

/** What building the steps may need: where relative module paths resolve (`baseDir`). */
export type BuildStepsOptions = OperatorBuildOptions;

/** Checks and builds every step once (imports modules), and returns the per-file factory. */
export async function buildSteps(steps: readonly StepConfig[], options: BuildStepsOptions = {}): Promise<StepsFactory> {
  const makers: OperatorMaker[] = [];
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

/** Every definition, each taking the value its own schema gave (a step holds one operator's key). */
const DEFINITIONS: readonly OperatorDefinition[] = OPERATORS;

async function stepMaker(step: StepConfig, options: BuildStepsOptions): Promise<OperatorMaker> {
  const values: Readonly<Record<string, unknown>> = step;
  for (const op of DEFINITIONS) {
    const value = values[op.name];
    if (value !== undefined) return op.build(value, options);
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
