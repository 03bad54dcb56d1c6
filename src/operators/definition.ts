// What an operator brings to a pipeline step: the key that names it, the schema of its value, its builder.
import type { OperatorFunction } from 'rxjs';
import type { z } from 'zod';
import type { FileContext } from '../file-context.js';
import type { Row } from '../row.js';

/** Makes one file's operator from that file's context (its name, its rejects, state of its own). */
export type OperatorMaker = (ctx: FileContext) => OperatorFunction<Row, Row>;

/** What building a step may take from outside the step. */
export interface OperatorBuildOptions {
  /** Where relative module paths resolve: the config file's folder (default the working directory). */
  baseDir?: string;
}

/**
 * One operator as a step of sluice.yaml, `{ <name>: <value> }`: the step's key, the schema of its value
 * (types, defaults and descriptions; sluice.schema.json is generated from it), and the builder that turns
 * a checked value into the per-file maker.
 */
export interface OperatorDefinition<Name extends string = string, Schema extends z.ZodType = z.ZodType> {
  /** The step's key, e.g. `dropNulls`. */
  readonly name: Name;
  /** The step's value. */
  readonly schema: Schema;
  /** Builds once what can be (checks the value, imports a module); called with the value the schema gave. */
  build(value: z.output<Schema>, options: OperatorBuildOptions): OperatorMaker | Promise<OperatorMaker>;
  /**
   * True when the step, with this value, sees each row alone and gives the same result in any slice of a
   * file (no state across rows, nothing taken at the time it runs): a large file may then be cut at row
   * boundaries and its slices run in parallel (workers). Absent: false.
   */
  rowLocal?(value: z.output<Schema>): boolean;
}

/** Declares an operator's definition, keeping its name and schema types. */
export function defineOperator<const Name extends string, Schema extends z.ZodType>(
  definition: OperatorDefinition<Name, Schema>,
): OperatorDefinition<Name, Schema> {
  return definition;
}

/** A step value's type as a library caller may pass it: its lists and objects may be read-only. */
export type ReadonlyDeep<T> = T extends readonly (infer E)[]
  ? readonly ReadonlyDeep<E>[]
  : T extends object
    ? { readonly [K in keyof T]: ReadonlyDeep<T[K]> }
    : T;

/** The maker of an operator that holds no per-file state: every file gets the same one. */
export function everyFile(op: OperatorFunction<Row, Row>): OperatorMaker {
  return () => op;
}
