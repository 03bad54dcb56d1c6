// The PostgreSQL output: each file loaded by COPY in one transaction that also records its claim, so a
// load happens exactly once; while the database is down, its files wait. pg is loaded only when used.
import { z } from 'zod';
import type { CastType } from '../operators/cast-values.js';
import { type OutputDriver, outputBatchSetting } from './driver.js';

export const postgresOutputSchema = z.strictObject({
  format: z.literal('postgres'),
  table: z.string().min(1).describe('The table to load into.'),
  schema: z.string().min(1).optional().describe("The table's schema; default the connection's current schema."),
  url: z
    .string()
    .min(1)
    .optional()
    .describe(
      'A connection URL; default DATABASE_URL, else the libpq environment (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE). Never logged with its password.',
    ),
  columns: z
    .union([z.array(z.string().min(1)).min(1), z.record(z.string(), z.string().min(1))])
    .optional()
    .describe('Header columns to load (a list), or a map from header names to table columns.'),
  create: z.boolean().default(false).describe('Create the table if missing: text columns, or the types a cast step declares.'),
  batch: outputBatchSetting,
});

export type PostgresOutputConfig = z.output<typeof postgresOutputSchema>;

/** The SQL type of each cast type, for a table that `create: true` makes. */
const SQL: Record<CastType, string> = { string: 'text', integer: 'bigint', number: 'numeric', boolean: 'boolean', date: 'date', timestamp: 'timestamptz' };

const sink = () => import('../sinks/postgres.js');

export const postgresOutput: OutputDriver<PostgresOutputConfig> = {
  format: 'postgres',
  schema: postgresOutputSchema,
  describe: (c) => `table ${c.schema === undefined ? '' : `${c.schema}.`}${c.table} (postgres)`,
  sinks(c, place) {
    const types = Object.fromEntries(Object.entries(place.types).map(([column, type]) => [column, SQL[type]]));
    const { table, schema, url, columns, create } = c;
    const options = {
      table,
      create,
      types,
      ...(schema === undefined ? {} : { schema }),
      ...(url === undefined ? {} : { url }),
      ...(columns === undefined ? {} : { columns }),
    };
    return async (ctx, file) => (await sink()).postgresSink(options, { claimId: file.claimId, file: ctx.name, pipeline: place.pipeline });
  },
  remote: {
    what: 'the database',
    probe: async (c) => (await sink()).probe(c),
    committed: async (c, claimId) => (await sink()).loadCommitted(c, claimId),
  },
};
