// Steps as configured -> the operators of one file. Operators that reject rows or read the file's name
// get the file's context here.
import type { OperatorFunction } from 'rxjs';
import type { StepConfig } from '../config/schema.js';
import { SluiceError } from '../errors.js';
import type { FileContext } from '../file-context.js';
import { dropNulls } from '../operators/drop-nulls.js';
import type { Row } from '../row.js';

export type StepsFactory = (ctx: FileContext) => ReadonlyArray<OperatorFunction<Row, Row>>;

/** Checks every step once (at load) and returns the per-file factory. */
export function buildSteps(steps: readonly StepConfig[]): StepsFactory {
  const makers = steps.map((step, i) => stepMaker(step, i));
  return (ctx) => makers.map((make) => make(ctx));
}

function stepMaker(step: StepConfig, index: number): (ctx: FileContext) => OperatorFunction<Row, Row> {
  if (step.dropNulls !== undefined) {
    const { nullValues, ...rest } = step.dropNulls;
    if (nullValues === 'pandas') throw notYet(index, 'dropNulls.nullValues: pandas');
    const op = dropNulls({ ...rest, nullValues });
    return () => op;
  }
  const name = Object.keys(step).find((k) => (step as Record<string, unknown>)[k] !== undefined) ?? '?';
  throw notYet(index, name);
}

function notYet(index: number, what: string): SluiceError {
  return new SluiceError('CONFIG_INVALID', `steps[${index}]: ${what} is not available in this build`, { field: `steps[${index}]` });
}
