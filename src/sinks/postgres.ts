// postgresSink: loads a file's rows into a table with COPY ... FROM STDIN (FORMAT csv), in one transaction
// that also records the load in `sluice_loads` under the claim id, so a file is loaded exactly once.
import { stringify } from 'csv-stringify/sync';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { SluiceError } from '../errors.js';
import type { Row, RowBatch } from '../row.js';
import type { RowSink, SinkResult, StagedTransaction } from '../outputs/driver.js';

export interface PostgresOutputOptions {
  table: string;
  /** Default: the connection's current schema. */
  schema?: string;
  /** A connection URL; default DATABASE_URL, else the libpq environment (PGHOST, PGPORT, PGUSER, …). */
  url?: string;
  /** Map header names to table columns (`{ "Order Id": order_id }`), or list the header columns to load. */
  columns?: Record<string, string> | string[];
  /** Create the table if it does not exist: text columns, or the types given in `types`. */
  create?: boolean;
  /** Column types for `create` (table column -> SQL type), e.g. from the pipeline's cast step. */
  types?: Record<string, string>;
}

export interface LoadIdentity {
  claimId: string;
  file: string;
  pipeline: string;
}

/**
 * Whether an error means "the database is not there right now" (wait and retry) rather than "the data is
 * bad" (the file fails). Only the server's own verdict (a DatabaseError with its SQLSTATE) can refuse a
 * file; anything else (a dropped connection, a timeout, a socket error) says nothing of what the server did,
 * so it is unavailable: the load waits, and a COMMIT of unknown fate is settled by asking the database.
 * Deadlocks, serialization failures and cancelled statements pass too: a retry may well succeed.
 */
export function isUnavailable(err: unknown): boolean {
  if (err instanceof SluiceError) return err.code === 'SINK_UNAVAILABLE';
  if (!(err instanceof pg.DatabaseError)) return true;
  const code = err.code ?? '';
  return code.startsWith('08') || ['57P01', '57P02', '57P03', '53300', '53000', '40P01', '40001', '57014'].includes(code);
}

/** `"name"` with embedded quotes doubled: every identifier sluice sends is quoted this way, never interpolated raw. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

const RING = 65_536;

/** COPY's end-of-data marker: a line that is exactly `\.` ends the data, even in CSV format, unless quoted. */
const END_OF_DATA = '\\.';
const END_OF_DATA_FIELD = /^\\\.$/;

function lineEnds(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i !== -1; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

/** Creates the sink for one file. Nothing is visible in the table until `publish()` commits. */
export function postgresSink(options: PostgresOutputOptions, identity: LoadIdentity): PostgresSink {
  return new PostgresSink(options, identity);
}

export class PostgresSink implements RowSink {
  private client: pg.Client | undefined;
  private copy: ReturnType<typeof copyFrom> | undefined;
  private failure: unknown;
  private rows = 0;
  private bytes = 0;
  private indexes: number[] | undefined;
  /** For the last RING records sent: the COPY line each ends on (PostgreSQL counts physical lines) and its source line. */
  private readonly copyEnd = new Float64Array(RING);
  private readonly lines = new Int32Array(RING);
  private copyLines = 0;
  private target = '';
  /** The table gets every header column, in header order: rows' original text can go to COPY as is. */
  private allColumns = false;

  constructor(
    private readonly options: PostgresOutputOptions,
    private readonly identity: LoadIdentity,
  ) {}

  async write(batch: RowBatch): Promise<void> {
    if (batch.header !== undefined) await this.open(batch.header);
    if (this.failure !== undefined) throw this.error(this.failure);
    const n = batch.rows.length;
    if (n === 0) return;
    // rows no operator changed, loaded in header order: their original text is already COPY's CSV
    // (a line that is exactly \. would end COPY's data: such a batch goes through stringify, which quotes it)
    const raw =
      this.allColumns && batch.raw !== undefined && batch.raw.delimiter === ',' && batch.raw.lines.every((l) => l !== undefined && l !== END_OF_DATA)
        ? (batch.raw.lines as string[])
        : undefined;
    let text: string;
    if (raw !== undefined) {
      for (let k = 0; k < n; k++) this.track(k, lineEnds(raw[k]!), batch.lines[k]);
      text = `${raw.join('\n')}\n`;
    } else {
      const idx = this.indexes!;
      const records = batch.rows.map((r) => idx.map((i) => r[i] ?? ''));
      for (let k = 0; k < n; k++) {
        let nl = 0;
        for (const f of records[k]!) nl += lineEnds(f);
        this.track(k, nl, batch.lines[k]);
      }
      text = stringify(records, { quoted_match: END_OF_DATA_FIELD });
    }
    const data = Buffer.from(text);
    this.rows += n;
    this.bytes += data.length;
    if (!this.copy!.write(data)) await this.drained();
  }

  /** Remembers where the k-th row of this batch ends in COPY's line count, and its source line. */
  private track(k: number, innerLineEnds: number, sourceLine: number | undefined): void {
    this.copyLines += 1 + innerLineEnds;
    const slot = (this.rows + k) % RING;
    this.copyEnd[slot] = this.copyLines;
    this.lines[slot] = sourceLine ?? 0;
  }

  async stage(info: { size?: number; sha256?: string } = {}): Promise<StagedTransaction> {
    if (this.client === undefined) throw new SluiceError('WRITE_FAILED', 'the file had no header: nothing to load');
    try {
      await this.endCopy();
      const loaded = this.copy?.rowCount;
      if (loaded !== undefined && loaded !== this.rows) {
        throw new SluiceError('WRITE_FAILED', `COPY took ${loaded} rows of the ${this.rows} sent`);
      }
      await this.client.query(
        `insert into ${this.loadsTable()} (claim_id, input_name, size, sha256, pipeline, target, rows) values ($1, $2, $3, $4, $5, $6, $7)`,
        [this.identity.claimId, this.identity.file, info.size ?? null, info.sha256 ?? null, this.identity.pipeline, this.target, this.rows],
      );
    } catch (err) {
      throw this.error(err);
    }
    return {
      kind: 'transaction',
      target: this.target,
      rows: this.rows,
      bytes: this.bytes,
      confirm: async () => {
        await this.publish();
      },
      abort: () => this.abort(),
    };
  }

  /** Commits: the rows and the load record become visible together. */
  async publish(): Promise<string> {
    try {
      await this.client!.query('commit');
    } catch (err) {
      throw this.error(err);
    } finally {
      await this.close();
    }
    return this.target;
  }

  async commit(): Promise<SinkResult> {
    await this.stage();
    const path = await this.publish();
    return { path, rows: this.rows, bytes: this.bytes };
  }

  /** Rolls back and disconnects; a server that does not answer within a few seconds is cut off (it rolls back). */
  async abort(): Promise<void> {
    this.aborted = true;
    await this.opening?.catch(() => undefined);
    const c = this.client;
    if (c === undefined) return;
    this.client = undefined;
    this.copy?.destroy();
    const answered = await withTimeout(
      c.query('rollback').then(() => c.end()),
      ABORT_TIMEOUT_MS,
    );
    if (!answered) (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  }

  private aborted = false;
  private opening: Promise<void> | undefined;

  private open(header: Row): Promise<void> {
    this.opening = this.openOnce(header);
    return this.opening;
  }

  private async openOnce(header: Row): Promise<void> {
    const client = new pg.Client(connectionConfig(this.options.url));
    client.on('error', (err) => (this.failure ??= err));
    try {
      await client.connect();
    } catch (err) {
      throw this.error(err);
    }
    if (this.aborted) {
      await client.end().catch(() => undefined);
      throw new SluiceError('ABORTED', 'the load was stopped before it began');
    }
    this.client = client;
    try {
      const schema = this.options.schema ?? (await client.query<{ s: string }>('select current_schema() as s')).rows[0]?.s ?? 'public';
      this.target = `${quoteIdent(schema)}.${quoteIdent(this.options.table)}`;
      await ensureLoadsTable(client, schema);
      this.schema = schema;
      const { names, columns } = mapColumns(header, this.options.columns);
      let existing = await tableColumns(client, schema, this.options.table);
      if (existing.length === 0 && this.options.create === true) {
        // a cast step names the file's columns; `columns` may give them other names in the table
        const types = this.options.types ?? {};
        const typeOf = (k: number): string => {
          const n = names[k]!;
          const c = columns[k]!;
          return Object.hasOwn(types, n) ? types[n]! : Object.hasOwn(types, c) ? types[c]! : 'text';
        };
        const defs = columns.map((c, k) => `${quoteIdent(c)} ${typeOf(k)}`).join(', ');
        // before the load's transaction: two files creating the table at once must not fail the loser
        await createIgnoringRace(client, `create table if not exists ${this.target} (${defs})`);
        existing = await tableColumns(client, schema, this.options.table);
      }
      if (this.aborted) throw new SluiceError('ABORTED', 'the load was stopped before it began');
      await client.query('begin');
      if (existing.length === 0) {
        throw new SluiceError('TABLE_MISSING', `the table ${schema}.${this.options.table} does not exist (set create: true to create it)`);
      }
      const missing = columns.filter((c) => !existing.includes(c));
      if (missing.length > 0) {
        throw new SluiceError('UNKNOWN_COLUMN', `the table ${schema}.${this.options.table} has no column ${missing.map((m) => JSON.stringify(m)).join(', ')}`, {
          field: missing[0],
        });
      }
      this.indexes = names.map((n) => header.indexOf(n));
      this.allColumns = this.indexes.length === header.length && this.indexes.every((v, i) => v === i);
      this.copy = client.query(copyFrom(`copy ${this.target} (${columns.map(quoteIdent).join(', ')}) from stdin (format csv)`));
      this.copy.on('error', (err: Error) => (this.failure ??= err));
    } catch (err) {
      throw this.error(err);
    }
  }

  private schema = 'public';

  private loadsTable(): string {
    return `${quoteIdent(this.schema)}.sluice_loads`;
  }

  private drained(): Promise<void> {
    const copy = this.copy!;
    return new Promise((resolve, reject) => {
      const done = (): void => {
        copy.off('drain', done);
        copy.off('error', fail);
        resolve();
      };
      const fail = (err: Error): void => {
        copy.off('drain', done);
        reject(this.error(err));
      };
      copy.once('drain', done);
      copy.once('error', fail);
    });
  }

  private endCopy(): Promise<void> {
    const copy = this.copy!;
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      copy.once('finish', () => resolve());
      copy.once('error', reject);
      copy.end();
    });
  }

  private async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }

  /** A database error as a SluiceError: unavailable (retried) or refused (the file fails) with SQLSTATE and line. */
  private error(err: unknown): SluiceError {
    if (err instanceof SluiceError) return err;
    const e = err as { code?: string; message?: string; where?: string; detail?: string };
    if (isUnavailable(err)) {
      return new SluiceError('SINK_UNAVAILABLE', `the database is unavailable: ${e.message ?? String(err)}`, { cause: err });
    }
    // the COPY's own context line (a trigger's PL/pgSQL context has line numbers of its own)
    const copyLine = /(?:^|\n)COPY [^\n]*, line (\d+)/.exec(e.where ?? '')?.[1];
    let line: number | undefined;
    if (copyLine !== undefined) {
      // the record whose physical lines include line n: the first, from the oldest kept, that ends at or after it
      const n = Number(copyLine);
      const oldest = Math.max(0, this.rows - RING);
      for (let r = oldest; r < this.rows; r++) {
        if (this.copyEnd[r % RING]! >= n) {
          // the oldest kept record may stand for one already forgotten: then the line is unknown
          if (r > oldest || oldest === 0) line = this.lines[r % RING];
          break;
        }
      }
    }
    const where = e.where === undefined ? '' : ` (${e.where.split('\n')[0]})`;
    return new SluiceError('DB_REFUSED', `the database refused the load: SQLSTATE ${e.code ?? '?'}: ${e.message ?? String(err)}${where}`, {
      line,
      cause: err,
    });
  }
}

function connectionConfig(url: string | undefined): pg.ClientConfig {
  const connectionString = url ?? process.env.DATABASE_URL;
  // keepalive: a connection whose peer vanished (power loss, partition) is noticed, not waited on for hours
  return { ...(connectionString === undefined ? {} : { connectionString }), application_name: 'sluice', connectionTimeoutMillis: 10_000, keepAlive: true };
}

/** Header names to load and the table columns they go to. */
function mapColumns(header: Row, columns: PostgresOutputOptions['columns']): { names: string[]; columns: string[] } {
  if (columns === undefined) return { names: header, columns: header };
  const pairs = Array.isArray(columns) ? columns.map((c) => [c, c] as const) : Object.entries(columns);
  const absent = pairs.filter(([n]) => !header.includes(n)).map(([n]) => n);
  if (absent.length > 0)
    throw new SluiceError('UNKNOWN_COLUMN', `output.columns names ${absent.map((a) => JSON.stringify(a)).join(', ')}, not in the file's header`, {
      field: absent[0],
    });
  return { names: pairs.map(([n]) => n), columns: pairs.map(([, c]) => c) };
}

async function tableColumns(client: pg.Client, schema: string, table: string): Promise<string[]> {
  const r = await client.query<{ column_name: string }>(
    'select column_name from information_schema.columns where table_schema = $1 and table_name = $2 order by ordinal_position',
    [schema, table],
  );
  return r.rows.map((x) => x.column_name);
}

async function ensureLoadsTable(client: pg.Client, schema: string): Promise<void> {
  // looked up first: a loader role may lack CREATE on the schema, which `if not exists` still checks
  const found = await client.query<{ t: string | null }>('select to_regclass($1) as t', [`${quoteIdent(schema)}.sluice_loads`]);
  if (found.rows[0]?.t !== null && found.rows[0]?.t !== undefined) return;
  await createIgnoringRace(
    client,
    `create table if not exists ${quoteIdent(schema)}.sluice_loads (
        claim_id text primary key, input_name text not null, size bigint, sha256 text, pipeline text not null,
        target text not null, rows bigint not null, loaded_at timestamptz not null default now())`,
  );
}

/**
 * Runs a `create ... if not exists` so that sessions creating one table at once never fail: `if not exists`
 * alone still races (the loser gets a unique violation on pg_type or pg_class), so the create runs under a
 * transaction-scoped advisory lock keyed by its text; the duplicate errors are still taken as "it exists",
 * for a server where another client creates the same table without the lock.
 */
async function createIgnoringRace(client: pg.Client, sql: string): Promise<void> {
  try {
    await client.query('begin');
    await client.query('select pg_advisory_xact_lock(hashtext($1))', [sql]);
    await client.query(sql);
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    const code = (err as { code?: string }).code;
    // 23505 unique_violation (pg_type, pg_class), 42P07 duplicate_table, 42710 duplicate_object (the row type)
    if (code !== '23505' && code !== '42P07' && code !== '42710') throw err;
  }
}

/** True if the load of this claim committed (its sluice_loads row exists). Used by crash recovery. */
export async function loadCommitted(options: Pick<PostgresOutputOptions, 'url' | 'schema'>, claimId: string): Promise<boolean> {
  const client = new pg.Client(connectionConfig(options.url));
  client.on('error', () => undefined); // a connection lost mid-query also fails the query, which is handled below
  try {
    await client.connect();
    const schema = options.schema ?? (await client.query<{ s: string }>('select current_schema() as s')).rows[0]?.s ?? 'public';
    const exists = await client.query<{ t: string | null }>('select to_regclass($1) as t', [`${quoteIdent(schema)}.sluice_loads`]);
    if (exists.rows[0]?.t === null) return false;
    const r = await client.query(`select 1 from ${quoteIdent(schema)}.sluice_loads where claim_id = $1`, [claimId]);
    return r.rowCount === 1;
  } catch (err) {
    if (isUnavailable(err)) throw new SluiceError('SINK_UNAVAILABLE', `the database is unavailable: ${(err as Error).message}`, { cause: err });
    throw err;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Connects and runs `select 1`: is the database reachable now? */
export async function probe(options: Pick<PostgresOutputOptions, 'url'>): Promise<boolean> {
  const client = new pg.Client(connectionConfig(options.url));
  client.on('error', () => undefined); // as in loadCommitted: the query's failure says it
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const ABORT_TIMEOUT_MS = 5_000;

/** True if `p` settled (either way) within `ms`. */
async function withTimeout(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = p.then(
    () => true,
    () => true,
  );
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}
