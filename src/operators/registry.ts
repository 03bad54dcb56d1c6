// The operators a step may name, in one list: the step schema and the step builder are loops over it.
import { addColumnStep } from './add-column.js';
import { castStep } from './cast.js';
import { dedupeStep } from './dedupe.js';
import { dropNullsStep } from './drop-nulls.js';
import { filterStep } from './filter.js';
import { moduleStep } from './load-module-operator.js';
import { renameStep } from './rename.js';
import { selectStep } from './select.js';

/**
 * Every operator of sluice.yaml's steps. The order is the schema's (sluice.schema.json lists them so) and
 * the builder's: a step is built by the first operator whose key it holds.
 */
export const OPERATORS = [dropNullsStep, selectStep, renameStep, castStep, filterStep, dedupeStep, addColumnStep, moduleStep] as const;

/** The name of an operator of the registry, e.g. `dropNulls`. */
export type OperatorName = (typeof OPERATORS)[number]['name'];
