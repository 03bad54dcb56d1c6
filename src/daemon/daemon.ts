// The daemon: prepares the folders, recovers its own unfinished claims, turns settled inbox files into
// pipeline runs (up to `concurrency` at once), moves inputs to archive/ or failed/, and drains on stop.
import { mkdir, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { defer, mergeMap, Subject, type Subscription } from 'rxjs';
import type { SluiceConfig } from '../config/load.js';
import type { PipelineConfig } from '../config/schema.js';
import { SluiceError } from '../errors.js';
import { Claims, type ClaimedFile } from '../inbox/claims.js';
import { Inbox } from '../inbox/inbox.js';
import type { Logger } from '../log.js';
import { processFile, type FileReport, type PipelineHooks, type PipelineSettings } from '../pipeline/process-file.js';
import { createRouter, type Router } from '../pipeline/route.js';
import { buildSteps } from '../pipeline/steps.js';
import { checkNameTemplate } from '../sinks/output-name.js';
import { outputSink } from '../sinks/output.js';
import { TEMP_PREFIX } from '../sinks/atomic-file.js';

export interface DaemonHooks extends PipelineHooks {
  /** A file finished (either way). */
  onFileDone?: (report: FileReport) => void;
  /** The number of files being processed changed by `delta`. */
  onFilesInFlight?: (delta: number) => void;
}

type Job = { kind: 'name'; name: string } | { kind: 'claimed'; claimed: ClaimedFile };

export class Daemon {
  private readonly claims: Claims;
  private readonly inbox: Inbox;
  private readonly jobs = new Subject<Job>();
  private readonly router: Router;
  private readonly settings = new Map<string, PipelineSettings>();
  private readonly running = new Map<string, AbortController>();
  private subscription: Subscription | undefined;
  private stopping = false;
  private failedCount = 0;
  private idle: Array<() => void> = [];
  /** --once: the names still to be done. */
  private pending: Set<string> | undefined;
  ready = false;

  constructor(
    private readonly cfg: SluiceConfig,
    private readonly log: Logger,
    private readonly hooks: DaemonHooks = {},
    private readonly once = false,
  ) {
    this.claims = new Claims(cfg.state, cfg.instanceId, { inbox: cfg.watch, archive: cfg.archive, failed: cfg.failed }, cfg.fsync);
    this.inbox = new Inbox(
      { dir: cfg.watch, settleMs: cfg.settleMs, rescanMs: cfg.rescanMs, watch: !once, log },
      (name) => this.jobs.next({ kind: 'name', name }),
      (name) => this.done(name, true),
    );
    this.router = createRouter(cfg.pipelines);
    cfg.pipelines.forEach((p, i) => this.settings.set(p.name, pipelineSettings(cfg, p, i)));
  }

  /** Files that failed so far. */
  get failures(): number {
    return this.failedCount;
  }

  get inboxBacklog(): number {
    return this.inbox.backlog;
  }

  /** Prepares folders, recovers leftovers and starts taking files. Resolves when ready. */
  async start(): Promise<void> {
    await prepareFolders(this.cfg);
    await this.claims.init();
    await this.removeOwnTempFiles();
    this.subscription = this.jobs
      .pipe(mergeMap((job) => defer(() => this.run(job)), this.cfg.concurrency))
      .subscribe({ error: (err: unknown) => this.log.error('internal error in the job loop', { error: String(err) }) });
    const leftovers = await this.claims.leftovers();
    for (const claimed of leftovers) {
      this.log.warn('redoing a file this instance had claimed before it stopped', { file: claimed.name, claimId: claimed.claimId });
      this.jobs.next({ kind: 'claimed', claimed });
    }
    if (this.once) {
      this.pending = new Set(leftovers.map((c) => `claim:${c.claimId}`));
      for (const n of await this.inbox.scan()) this.pending.add(n);
    } else {
      await this.inbox.start();
    }
    this.ready = true;
    this.log.info('sluice started', { watch: this.cfg.watch, out: this.cfg.out, concurrency: this.cfg.concurrency, mode: this.once ? 'once' : 'daemon', instance: this.cfg.instanceId });
  }

  /** --once: resolves when every file present at start is done. */
  async finished(): Promise<void> {
    if (this.pending === undefined || this.pending.size === 0) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  /**
   * Stops taking files and lets the ones in progress finish within the drain timeout; past it (or with
   * `now`), they are aborted: their outputs removed, their inputs put back in the inbox.
   */
  async stop(now = false): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.ready = false;
      await this.inbox.close();
      this.log.info('stopping: no new files are taken', { inProgress: this.running.size });
    }
    if (now) for (const ac of this.running.values()) ac.abort();
    const timer = setTimeout(() => {
      if (this.running.size > 0) this.log.warn('drain timeout reached: aborting files in progress', { inProgress: this.running.size });
      for (const ac of this.running.values()) ac.abort();
    }, this.cfg.drainTimeoutMs);
    while (this.running.size > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    clearTimeout(timer);
    this.subscription?.unsubscribe();
    this.jobs.complete();
  }

  private async run(job: Job): Promise<void> {
    if (this.stopping) return;
    let claimed: ClaimedFile | undefined;
    const key = job.kind === 'name' ? job.name : `claim:${job.claimed.claimId}`;
    try {
      claimed = job.kind === 'claimed' ? job.claimed : await this.claims.claim(job.name);
    } catch (err) {
      this.log.error('cannot claim a file', { file: key, error: String(err) });
    }
    if (claimed === undefined) {
      this.done(key);
      return;
    }
    const ac = new AbortController();
    this.running.set(claimed.claimId, ac);
    this.hooks.onFilesInFlight?.(1);
    try {
      await this.handle(claimed, ac.signal);
    } catch (err) {
      this.log.error('internal error while finishing a file; it stays claimed and is redone at restart', { file: claimed.name, error: String(err) });
    } finally {
      this.running.delete(claimed.claimId);
      this.hooks.onFilesInFlight?.(-1);
      this.done(key);
    }
  }

  private async handle(claimed: ClaimedFile, signal: AbortSignal): Promise<void> {
    const pipeline = this.router(claimed.name);
    if (pipeline === undefined) {
      this.failedCount++;
      const err = new SluiceError('NO_PIPELINE', `no pipeline matches the file name ${JSON.stringify(claimed.name)}`, { file: claimed.name });
      const failed = await this.claims.fail(claimed, err);
      this.log.error('file failed', { file: claimed.name, outcome: 'failed', failed, code: err.code, error: err.message });
      this.hooks.onFileDone?.({ name: claimed.name, pipeline: 'none', outcome: 'failed', rows: { read: 0, written: 0, filtered: 0, rejected: 0 }, bytesRead: 0, bytesWritten: 0, durationMs: 0, error: err });
      return;
    }
    const settings = forFile(this.settings.get(pipeline.name)!, pipeline, claimed.name);
    const report = await processFile(claimed.path, claimed.name, settings, this.hooks, signal);
    const err = report.error;
    if (err?.code === 'ABORTED') {
      const back = await this.claims.release(claimed);
      this.log.warn('file put back in the inbox: stopped before it finished', { file: claimed.name, inbox: back });
      return;
    }
    if (report.outcome === 'succeeded') {
      const archived = await this.claims.archive(claimed);
      this.log.info('file processed', { ...logFields(report), archived });
    } else {
      this.failedCount++;
      const failed = await this.claims.fail(claimed, err ?? new SluiceError('INTERNAL', 'failed without an error'), { bytesRead: report.bytesRead });
      this.log.error('file failed', { ...logFields(report), failed, code: err?.code, error: err?.message, line: err?.line });
    }
    this.hooks.onFileDone?.(report);
  }

  /** A job ended (or its file vanished from the inbox, `gone`). */
  private done(key: string, gone = false): void {
    if (this.once) {
      this.pending?.delete(key);
      if (this.pending?.size !== 0) return;
    } else {
      if (!gone && !key.startsWith('claim:')) this.inbox.forget(key);
      if (this.running.size > 0) return;
    }
    const w = this.idle;
    this.idle = [];
    for (const resolve of w) resolve();
  }

  /** Temporary files an earlier run of this instance left behind (it was killed mid-write). */
  private async removeOwnTempFiles(): Promise<void> {
    const prefix = `${TEMP_PREFIX}${this.cfg.instanceId}-`;
    for (const dir of [this.cfg.out, this.cfg.rejects, this.cfg.failed]) {
      for (const name of await readdir(dir)) {
        if (!name.startsWith(prefix)) continue;
        await unlink(join(dir, name)).catch(() => undefined);
        this.log.warn('removed a temporary file left by an earlier run', { file: join(dir, name) });
      }
    }
  }
}

/** A pipeline's settings, checked once at start (bad steps or templates are config errors). */
function pipelineSettings(cfg: SluiceConfig, p: PipelineConfig, index: number): PipelineSettings {
  if (p.output.name !== undefined) checkNameTemplate(p.output.name, `pipelines[${index}].output.name`);
  let steps;
  try {
    steps = buildSteps(p.steps);
  } catch (err) {
    if (err instanceof SluiceError) {
      throw new SluiceError(err.code, `pipelines[${index}].${err.message}`, { field: `pipelines[${index}].${err.field ?? 'steps'}`, cause: err });
    }
    throw err;
  }
  const { delimiter, quote, escape, encoding, bom, maxRecordSize } = p.input;
  return {
    pipeline: p.name,
    outDir: cfg.out,
    rejectsDir: cfg.rejects,
    csv: { delimiter, quote, escape, encoding, bom, maxRecordSize },
    steps,
    sink: outputSink(p.output, { outDir: cfg.out, pipeline: p.name, fsync: cfg.fsync, tempTag: cfg.instanceId }),
    batch: cfg.batch,
    highWaterMark: cfg.highWaterMark,
    fsync: cfg.fsync,
    tempTag: cfg.instanceId,
  };
}

/** Per-file adjustments: a .tsv file is tab-separated unless the pipeline says otherwise. */
function forFile(settings: PipelineSettings, p: PipelineConfig, name: string): PipelineSettings {
  if (p.input.delimiter !== undefined || !/\.tsv(\.gz)?$/i.test(name)) return settings;
  return { ...settings, csv: { ...settings.csv, delimiter: '\t' } };
}

function logFields(r: FileReport): Record<string, unknown> {
  return {
    file: r.name,
    pipeline: r.pipeline,
    outcome: r.outcome,
    read: r.rows.read,
    written: r.rows.written,
    filtered: r.rows.filtered,
    rejected: r.rows.rejected,
    bytesRead: r.bytesRead,
    bytesWritten: r.bytesWritten,
    durationMs: Math.round(r.durationMs),
    output: r.output,
    rejects: r.rejects,
  };
}

/** Creates the folders and checks that inputs only ever move within one filesystem. */
export async function prepareFolders(cfg: SluiceConfig): Promise<void> {
  const all = { watch: cfg.watch, out: cfg.out, rejects: cfg.rejects, archive: cfg.archive, failed: cfg.failed, state: cfg.state };
  const devs = new Map<string, number>();
  for (const [key, dir] of Object.entries(all)) {
    try {
      await mkdir(dir, { recursive: true });
      const st = await stat(dir);
      if (!st.isDirectory()) throw new Error('not a directory');
      devs.set(key, st.dev);
    } catch (err) {
      throw new SluiceError('DIR_UNUSABLE', `${key} folder ${dir}: ${(err as Error).message}`, { field: key, cause: err });
    }
  }
  const moves = ['watch', 'state', 'archive', 'failed'];
  const dev = devs.get('watch');
  const off = moves.filter((k) => devs.get(k) !== dev);
  if (off.length > 0) {
    throw new SluiceError(
      'DIRS_NOT_ONE_FILESYSTEM',
      `inputs move by rename between the inbox (${cfg.watch}) and the ${off.join(', ')} folder(s), which are on another filesystem; put them on one filesystem`,
      { field: off[0] },
    );
  }
}
