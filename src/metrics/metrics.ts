// Every metric sluice exposes, in one place. A Registry is passed in (never prom-client's global one), and
// counts are taken per file and per batch, never per row, so metrics cost nothing measurable.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DaemonHooks } from '../daemon/hooks.js';
import { FILE_ERROR_CODES, ROW_ERROR_CODES } from '../errors.js';
import type { FileReport } from '../pipeline/process-file.js';

/** A registry of sluice's own (never prom-client's global one). */
export function createRegistry(): Registry {
  return new Registry();
}

export interface InboxStats {
  files: number;
  oldestAgeSeconds: number;
}

export class SluiceMetrics {
  readonly files: Counter<'pipeline' | 'outcome'>;
  readonly rows: Counter<'pipeline' | 'stage'>;
  readonly bytesRead: Counter<'pipeline'>;
  readonly bytesWritten: Counter<'pipeline'>;
  readonly fileDuration: Histogram<'pipeline' | 'outcome'>;
  readonly batchWriteDuration: Histogram<'pipeline'>;
  readonly batchRows: Histogram<'pipeline'>;
  readonly filesInFlight: Gauge;
  readonly rowsInFlight: Gauge;
  readonly inboxFiles: Gauge;
  readonly oldestInboxFileAge: Gauge;
  readonly errors: Counter<'pipeline' | 'code'>;
  readonly sinkUp: Gauge<'pipeline'>;
  readonly diskFull: Gauge;
  readonly adopted: Counter;
  readonly workerDeaths: Counter;
  readonly workerThreads: Gauge;
  readonly sinkWaiting: Gauge<'pipeline'>;
  /** The in-flight levels, read by the gauges at scrape time: the rows hook fires once per row. */
  private inFlight = { files: 0, rows: 0 };

  constructor(
    readonly registry: Registry,
    options: { version: string; pipelines: string[]; inbox?: () => InboxStats; defaultMetrics?: boolean },
  ) {
    const registers = [registry];
    this.files = new Counter({
      name: 'sluice_files_total',
      help: 'Files finished, by pipeline and outcome (succeeded or failed).',
      labelNames: ['pipeline', 'outcome'],
      registers,
    });
    this.rows = new Counter({
      name: 'sluice_rows_total',
      help: 'Rows of finished files by stage: read = written + filtered + rejected for every file (a failed file counts none).',
      labelNames: ['pipeline', 'stage'],
      registers,
    });
    this.bytesRead = new Counter({
      name: 'sluice_bytes_read_total',
      help: 'Bytes read from input files (as stored, before decompression).',
      labelNames: ['pipeline'],
      registers,
    });
    this.bytesWritten = new Counter({
      name: 'sluice_bytes_written_total',
      help: 'Bytes written to outputs and rejects files, or sent to a database.',
      labelNames: ['pipeline'],
      registers,
    });
    this.fileDuration = new Histogram({
      name: 'sluice_file_duration_seconds',
      help: 'Time to process one file, from claim to outcome.',
      labelNames: ['pipeline', 'outcome'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800],
      registers,
    });
    this.batchWriteDuration = new Histogram({
      name: 'sluice_batch_write_duration_seconds',
      help: 'Time the sink took to write one batch.',
      labelNames: ['pipeline'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.batchRows = new Histogram({
      name: 'sluice_batch_rows',
      help: 'Rows per written batch.',
      labelNames: ['pipeline'],
      buckets: [1, 10, 100, 500, 1000, 5000, 10000],
      registers,
    });
    const inFlight = this.inFlight;
    this.filesInFlight = new Gauge({
      name: 'sluice_files_in_flight',
      help: 'Files being processed now.',
      registers,
      collect() {
        this.set(inFlight.files);
      },
    });
    this.rowsInFlight = new Gauge({
      name: 'sluice_rows_in_flight',
      help: 'Rows read but not yet written (the backpressure level; high means a sink is falling behind).',
      registers,
      collect() {
        this.set(inFlight.rows);
      },
    });
    const inbox = options.inbox;
    this.inboxFiles = new Gauge({
      name: 'sluice_inbox_files',
      help: 'Files waiting in the inbox (the backlog).',
      registers,
      collect() {
        if (inbox !== undefined) this.set(inbox().files);
      },
    });
    this.oldestInboxFileAge = new Gauge({
      name: 'sluice_oldest_inbox_file_age_seconds',
      help: 'How long the oldest waiting inbox file has been waiting (0 when none).',
      registers,
      collect() {
        if (inbox !== undefined) this.set(inbox().oldestAgeSeconds);
      },
    });
    this.errors = new Counter({
      name: 'sluice_errors_total',
      help: 'Rejected rows and failed files, by error code.',
      labelNames: ['pipeline', 'code'],
      registers,
    });
    this.sinkUp = new Gauge({
      name: 'sluice_sink_up',
      help: "1 while a pipeline's sink (database) is reachable, 0 while its files wait for it.",
      labelNames: ['pipeline'],
      registers,
    });
    this.diskFull = new Gauge({ name: 'sluice_disk_full', help: '1 while claiming is paused because the disk is full.', registers });
    this.sinkWaiting = new Gauge({
      name: 'sluice_files_waiting_for_sink',
      help: 'Files of a pipeline waiting for its sink (database) to be reachable again; they hold no processing slot.',
      labelNames: ['pipeline'],
      registers,
    });
    this.adopted = new Counter({
      name: 'sluice_claims_adopted_total',
      help: 'Claims of dead instances (their lock was free) that this instance adopted and finished.',
      registers,
    });
    this.workerDeaths = new Counter({
      name: 'sluice_worker_deaths_total',
      help: 'Worker threads that died under their work (a crash, out of memory) and were replaced; their files were retried.',
      registers,
    });
    this.workerThreads = new Gauge({
      name: 'sluice_worker_threads',
      help: 'Worker threads alive with their code loaded (the main thread, which parses too, not counted); they start with the first file that needs one.',
      registers,
    });
    const buildInfo = new Gauge({ name: 'sluice_build_info', help: 'The running version of sluice (always 1).', labelNames: ['version'], registers });
    buildInfo.set({ version: options.version }, 1);
    // every series exists from the start, so rate() and absent() work before the first file
    for (const pipeline of options.pipelines) {
      this.sinkUp.set({ pipeline }, 1);
      this.sinkWaiting.set({ pipeline }, 0);
      // every code a file or a row can end with (a few dozen per pipeline): increase() works from the first one
      for (const code of [...Object.keys(FILE_ERROR_CODES), ...Object.keys(ROW_ERROR_CODES)]) this.errors.inc({ pipeline, code }, 0);
      for (const outcome of ['succeeded', 'failed']) this.files.inc({ pipeline, outcome }, 0);
      for (const stage of ['read', 'written', 'filtered', 'rejected']) this.rows.inc({ pipeline, stage }, 0);
      this.bytesRead.inc({ pipeline }, 0);
      this.bytesWritten.inc({ pipeline }, 0);
      // histograms too: the sink-falling-behind alert reads rate(sluice_batch_rows_count) before any batch
      this.batchRows.zero({ pipeline });
      this.batchWriteDuration.zero({ pipeline });
      for (const outcome of ['succeeded', 'failed']) this.fileDuration.zero({ pipeline, outcome });
    }
    this.diskFull.set(0);
    if (options.defaultMetrics !== false) {
      collectDefaultMetrics({ register: registry });
      // three of prom-client's gauges end in _total, which Prometheus' naming rules (promtool) reserve for
      // counters; nodejs_active_resources (by type) and nodejs_active_handles (by type) say the same
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
    }
  }

  /** A finished file: one update per counter. */
  fileDone(r: FileReport): void {
    const pipeline = r.pipeline;
    this.files.inc({ pipeline, outcome: r.outcome });
    this.fileDuration.observe({ pipeline, outcome: r.outcome }, r.durationMs / 1000);
    this.bytesRead.inc({ pipeline }, r.bytesRead);
    this.bytesWritten.inc({ pipeline }, r.bytesWritten);
    this.rows.inc({ pipeline, stage: 'read' }, r.rows.read);
    this.rows.inc({ pipeline, stage: 'written' }, r.rows.written);
    this.rows.inc({ pipeline, stage: 'filtered' }, r.rows.filtered);
    this.rows.inc({ pipeline, stage: 'rejected' }, r.rows.rejected);
    if (r.outcome === 'succeeded') for (const [code, n] of Object.entries(r.rejectCodes ?? {})) this.errors.inc({ pipeline, code }, n);
    if (r.error !== undefined) this.errors.inc({ pipeline, code: r.error.code });
  }

  /** The daemon hooks that feed these metrics. */
  hooks(): DaemonHooks {
    return {
      onFileDone: (r) => this.fileDone(r),
      // plain additions: the flow gate reports every row taken and every batch given back
      onFilesInFlight: (d) => void (this.inFlight.files += d),
      onInFlight: (d) => void (this.inFlight.rows += d),
      onBatchWritten: (rows, seconds, pipeline) => {
        const labels = { pipeline: pipeline ?? 'default' };
        this.batchRows.observe(labels, rows);
        this.batchWriteDuration.observe(labels, seconds);
      },
      onSinkUp: (pipeline, up) => this.sinkUp.set({ pipeline }, up ? 1 : 0),
      onDiskFull: (full) => this.diskFull.set(full ? 1 : 0),
      onAdopted: (claims) => this.adopted.inc(claims),
      onWorkerDied: () => this.workerDeaths.inc(),
      onWorkerThreads: (n) => this.workerThreads.set(n),
      onSinkWaiting: (pipeline, files) => this.sinkWaiting.set({ pipeline }, files),
    };
  }
}

/** The run's own gauges, for a batch job's textfile: when it started and ended, how it ended. */
export function recordRun(registry: Registry, run: { startedAt: Date; endedAt: Date; exitCode: number }): void {
  const registers = [registry];
  const gauge = (name: string, help: string, value: number): void => new Gauge({ name, help, registers }).set(value);
  gauge('sluice_run_start_timestamp_seconds', 'When this sluice run started (Unix time).', run.startedAt.getTime() / 1000);
  gauge('sluice_run_end_timestamp_seconds', 'When this sluice run ended (Unix time).', run.endedAt.getTime() / 1000);
  gauge('sluice_run_duration_seconds', 'How long this sluice run took.', (run.endedAt.getTime() - run.startedAt.getTime()) / 1000);
  gauge('sluice_run_exit_code', "The run's exit code: 0 every file succeeded, 1 some failed, 3 stopped by a signal.", run.exitCode);
  gauge('sluice_run_success', '1 if the run ended with exit code 0, else 0.', run.exitCode === 0 ? 1 : 0);
}
