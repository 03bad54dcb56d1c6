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

/**
 * The type each column is cast to by the pipeline's steps, under its final name (column -> cast type), as
 * the header goes through them: a rename moves types as one mapping (a swap swaps them), select keeps its
 * columns', addColumn's new column has none, and after a module step (which may do anything to the
 * columns) only later casts count. A prototype-free object: a column may be called `constructor`.
 */
export function columnTypes(steps: readonly StepConfig[]): Record<string, CastType> {
  let types = new Map<string, CastType>();
  for (const step of steps) {
    for (const [column, spec] of Object.entries(step.cast ?? {})) types.set(column, typeof spec === 'string' ? spec : spec.type);
    const rename = step.rename;
    if (rename !== undefined) types = new Map([...types].map(([c, t]) => [Object.hasOwn(rename, c) ? rename[c]! : c, t]));
    const select = step.select;
    if (select !== undefined) types = new Map([...types].filter(([c]) => select.includes(c)));
    if (step.addColumn !== undefined) types.delete(step.addColumn.name);
    if (step.module !== undefined) types = new Map();
  }
  return Object.assign(Object.create(null) as Record<string, CastType>, Object.fromEntries(types));
}

export function configDir(source: string | undefined): string | undefined {
  return source === undefined ? undefined : dirname(source);
}

/**
 * True when every step is row-local (its operator says so for its value): the file may then be cut at row
 * boundaries and its slices run in parallel, with the same outputs. Dedupe and modules see a whole file.
 */
export function stepsAreRowLocal(steps: readonly StepConfig[]): boolean {
  return steps.every((step) => {
    const values: Readonly<Record<string, unknown>> = step;
    const op = DEFINITIONS.find((d) => values[d.name] !== undefined);
    return op?.rowLocal?.(values[op.name]) === true;
  });
}
