// The one schema of sluice.yaml: types, defaults and descriptions of every setting (a step's, in its operator's file).
import { z } from 'zod';
import { outputSchema } from '../outputs/registry.js';

export { outputSchema };
import { DEFAULT_MAX_RECORD_SIZE } from '../csv/record-reader.js';
import { DEFAULT_HIGH_WATER_MARK } from '../file-context.js';
import { DEFAULT_BATCH_MAX_WAIT_MS, DEFAULT_BATCH_SIZE } from '../operators/batch-policy.js';
import { DEFAULT_MAX_COLUMNS } from '../operators/parse-csv.js';
import { OPERATORS } from '../operators/registry.js';
import { usableCpus } from './cpus.js';

/** The defaults of `concurrency` and `workers`: the CPUs this process may use (a container's CPU quota counts). */
const CPUS = usableCpus();

const dir = (what: string, def: string) =>
  z.string().min(1).default(def).describe(`${what} (in a config file, relative to the file's folder; from a flag or variable, to the working directory).`);
const int = (min: number) => z.number().int().min(min);

type StepShape = { [D in (typeof OPERATORS)[number] as D['name']]: z.ZodOptional<D['schema']> };

/** One step: an object with exactly one key, the operator's name (any of the registry's). */
export const stepSchema = z
  // Object.fromEntries forgets the keys; StepShape is what it builds, one optional key per operator
  .strictObject(Object.fromEntries(OPERATORS.map((op) => [op.name, op.schema.optional()])) as StepShape)
  .refine((s) => Object.values(s).filter((v) => v !== undefined).length === 1, {
    message: 'a step has exactly one operator, e.g. { dropNulls: { how: any } }',
  });

export const inputSchema = z
  .strictObject({
    format: z
      .enum(['csv', 'ndjson', 'json'])
      .optional()
      .describe(
        'How the files are read: `csv`, `ndjson` (JSON lines: one object per line) or `json` (a document holding an array of objects, streamed); default `ndjson` for .ndjson and .jsonl names, `json` for .json (.gz too), else `csv`.',
      ),
    delimiter: z.string().min(1).optional().describe('Field delimiter; default `,`, or a tab for .tsv files.'),
    quote: z
      .union([z.string().length(1), z.null()])
      .default('"')
      .describe('Quote character; null turns quoting off.'),
    escape: z
      .union([z.string().length(1), z.null()])
      .optional()
      .describe('Escape character in quoted fields; default the quote itself.'),
    encoding: z
      .enum(['utf8', 'latin1', 'windows-1252', 'utf16le'])
      .default('utf8')
      .describe('Input encoding. utf8 is strict (invalid bytes reject the record); a UTF-16 BOM switches to UTF-16 by itself.'),
    bom: z.boolean().default(true).describe('Strip a byte order mark.'),
    maxRecordSize: int(1).default(DEFAULT_MAX_RECORD_SIZE).describe('Records larger than this many bytes are rejected.'),
    maxColumns: int(1).default(DEFAULT_MAX_COLUMNS).describe('A header with more columns fails the file (TOO_MANY_COLUMNS); rows must match the header.'),
    allowHardLinks: z
      .boolean()
      .default(false)
      .describe(
        "Take inputs with more than one hard link that belong to another user; by default they fail with HARDLINK_REFUSED (a link into the inbox must not copy out a file its dropper could not read). A link to a file of sluice's own user is always taken.",
      ),
    header: z
      .boolean()
      .default(true)
      .describe(
        "The first line (after skipLines) is the header. false: it is data, and the header is input.columns (required). true with columns: the file's header is replaced by columns, which must name as many (else COLUMNS_MISMATCH).",
      ),
    columns: z
      .array(z.string())
      .min(1)
      .refine((c) => new Set(c).size === c.length, { message: 'a column is named twice' })
      .optional()
      .describe("Column names: the header when header is false, or in place of the file's header."),
    skipLines: int(0)
      .default(0)
      .describe("Physical lines skipped before the header (a preamble; quotes are not considered there). Rejects keep the file's line numbers."),
    comment: z
      .string()
      .length(1)
      .optional()
      .describe(
        'A line starting with this character (outside quotes, at the start of a record) is a comment: counted, not a row, not rejected. A comment character inside a field or a quoted field is data.',
      ),
    relaxQuotes: z
      .boolean()
      .default(false)
      .describe(
        'A quote inside an unquoted field is text (5\'3" tall, a"b), as Python\'s csv module reads it; by default it is rejected (INVALID_OPENING_QUOTE). It can hide a broken quoted field ("a"b is read as the text "a"b). Read by csv-parse alone: 3-5x slower (README Performance).',
      ),
  })
  .refine((i) => i.header || i.columns !== undefined, {
    path: ['columns'],
    message: 'input.header: false needs input.columns (the names of the columns)',
  })
  .refine((i) => i.comment === undefined || (i.comment !== i.quote && i.comment !== (i.delimiter ?? ',') && !/[\r\n]/.test(i.comment)), {
    path: ['comment'],
    message: 'the comment character must differ from the quote, the delimiter and a line end',
  })
  .prefault({})
  .describe('How input files are read. Gzip input (.gz or gzip magic bytes) is decompressed as a stream.');

export const pipelineSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only (it is a metrics label)')
    .describe('The pipeline name (a metrics label).'),
  match: z.array(z.string().min(1)).min(1).default(['*']).describe('Globs on the file name; the first pipeline that matches takes the file.'),
  input: inputSchema,
  steps: z
    .array(stepSchema)
    .describe('The operators each row goes through, in order.')
    .prefault([{ dropNulls: {} }]),
  output: outputSchema,
});

export const configSchema = z
  .strictObject({
    watch: dir('The inbox folder', 'watch'),
    out: dir('Clean outputs', 'out'),
    rejects: dir('Rejected records', 'rejects'),
    archive: dir('Inputs processed successfully', 'archive'),
    failed: dir('Inputs that failed, with .error.json', 'failed'),
    state: z.string().min(1).optional().describe('Claims, instance locks and the receipt ledger; default `.sluice` beside the inbox.'),
    concurrency: int(1)
      .default(CPUS)
      .describe(
        'Files read and parsed at once; default the number of CPUs (capped by a cgroup CPU quota). Up to 32 more may be syncing and committing their outputs.',
      ),
    workers: int(1)
      .default(CPUS)
      .describe(
        'Threads that read, parse and transform files: the main thread (which also claims, commits and serves metrics) and `workers - 1` worker threads, started with the first file that needs one (cut into slices, or arriving while the main thread is busy with another); default the number of CPUs (capped by a cgroup CPU quota, as for `concurrency`); 1: everything in the main thread.',
      ),
    sliceBytes: int(0)
      .default(4 * 1024 * 1024)
      .describe(
        'With workers, a CSV file of at least twice this size whose steps are all row-local is cut at row boundaries into slices of about this many bytes, run in parallel and reassembled in order (same outputs). 0: files are never cut.',
      ),
    settleMs: int(0)
      .default(2000)
      .describe('A file must be unchanged this long (ms) before it is taken; with --once the default is 0 (files present are taken at once).'),
    rescanMs: int(0).default(30_000).describe('Full inbox rescan period (ms); 0 turns it off.'),
    poll: z
      .boolean()
      .default(false)
      .describe(
        'Watch the inbox by polling instead of inotify (network filesystems). sluice also falls back to polling by itself when the inotify watch limit is reached.',
      ),
    pollIntervalMs: int(10).default(1000).describe('Polling period (ms) when polling.'),
    instances: z
      .strictObject({
        checkMs: int(10)
          .default(1000)
          .describe(
            'How often (ms) a running instance tries the locks of the other instances in <state>/instances/; a lock it can take is a dead instance, whose claims it adopts and finishes.',
          ),
      })
      .prefault({})
      .describe('Several instances may share one inbox and state folder; each holds an operating-system lock for its life.'),
    drainTimeoutMs: int(0).default(30_000).describe('On SIGTERM, how long (ms) files in progress may take to finish.'),
    maxWaitMs: int(0)
      .default(300_000)
      .describe(
        'A --once run waits this long (ms) at most for a sink that is down (a database), then puts its files back in the inbox and exits 3; a daemon waits as long as it takes.',
      ),
    metrics: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1').describe('Address the metrics server listens on.'),
        port: int(0).max(65535).default(9464).describe('0 turns the metrics server off. A --once run listens only when this (or --metrics-port) asks it to.'),
        textfile: z
          .string()
          .min(1)
          .optional()
          .describe(
            "At the end of the run, write its metrics here in the Prometheus text format, atomically, for node_exporter's textfile collector (a name ending in .prom).",
          ),
      })
      .prefault({}),
    batch: z
      .strictObject({
        size: int(1).default(DEFAULT_BATCH_SIZE).describe('Rows per write.'),
        maxWaitMs: z.number().positive().default(DEFAULT_BATCH_MAX_WAIT_MS).describe('A partial batch is written this long (ms) after its first row.'),
      })
      .prefault({})
      .describe(
        "The batch policy of every output (set here, it also overrides an output driver's own defaults); an output's `batch` overrides it for that output.",
      ),
    retry: z
      .strictObject({
        attempts: int(1).default(4).describe('Tries of a file whose output hits a disk error (full, I/O, permission) before it fails.'),
        backoffMs: int(1).default(1000).describe('Wait before the first retry (ms); each next wait is 4 times longer.'),
        diskCheckMs: int(1).default(5000).describe('While the disk is full, how often (ms) free space is checked.'),
        minFreeBytes: int(0)
          .default(64 * 1024 * 1024)
          .describe('Claiming resumes when the output, rejects and state folders have this much free space.'),
      })
      .prefault({})
      .describe('Retries of transient disk errors.'),
    highWaterMark: int(1).default(DEFAULT_HIGH_WATER_MARK).describe('Rows in flight per file before reading pauses.'),
    fsync: z.boolean().default(true).describe('fsync outputs and folders before publishing (off: faster, not crash-safe).'),
    instanceId: z
      .string()
      .min(1)
      .optional()
      .describe(
        "This instance's name in claim paths; default the first free slot `<host name>-1`, `-2`, …; one held by a live process is a start error (INSTANCE_RUNNING).",
      ),
    pipelines: z
      .array(pipelineSchema)
      .min(1)
      .prefault([{ name: 'default' }])
      .describe('The pipelines; the first whose `match` takes a file processes it. A file no pipeline matches goes to `failed/` (NO_PIPELINE).'),
  })
  .superRefine((cfg, ctx) => {
    const seen = new Set<string>();
    cfg.pipelines.forEach((p, i) => {
      if (seen.has(p.name))
        ctx.addIssue({ code: 'custom', path: ['pipelines', i, 'name'], message: `the name ${JSON.stringify(p.name)} is used twice`, input: p.name });
      seen.add(p.name);
    });
  });

export type ConfigFile = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type PipelineConfig = z.output<typeof pipelineSchema>;
export type StepConfig = z.output<typeof stepSchema>;
export type InputConfig = z.output<typeof inputSchema>;
export type { OutputConfig } from '../outputs/registry.js';

/** The JSON Schema of sluice.yaml, for editors. `sluice schema` prints it; schema/sluice.schema.json is its committed copy. */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  // the CPU count of the machine that generated the schema is not a default worth committing
  const props = schema.properties as Record<string, Record<string, unknown>>;
  delete props.concurrency?.default;
  delete props.workers?.default;
  return { ...schema, title: 'sluice configuration (sluice.yaml)' };
}
