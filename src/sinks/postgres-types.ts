// The SQL type of each cast type, for a table that `create: true` makes.
import type { CastType } from '../operators/cast-values.js';

const SQL: Record<CastType, string> = { string: 'text', integer: 'bigint', number: 'numeric', boolean: 'boolean', date: 'date', timestamp: 'timestamptz' };

/** Column -> SQL type, from column -> cast type. */
export function sqlTypes(types: Readonly<Record<string, CastType>>): Record<string, string> {
  return Object.fromEntries(Object.entries(types).map(([column, type]) => [column, SQL[type]]));
}
