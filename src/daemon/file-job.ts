// One claimed file, from its pipeline run to its commit: a record left by an interruption resolved with its
// output, the pipeline run with retries as its errors' classes say, the commit record built, the outputs
// published and the input moved (daemon/commit.ts), the outcome logged and counted. The daemon schedules
// these and knows nothing of what happens inside.
import { lstatSync } from 'node:fs';
import type { SluiceConfig } from '../config/load.js';
import type { PipelineConfig } from '../config/schema.js';
import { errnoOf, retryClassOf, retryOf, SluiceError } from '../errors.js';
import { failpoint } from '../failpoint.js';
import type { ClaimedFile, Claims } from '../inbox/claims.js';
import type { Logger } from '../log.js';
import { errorInfo, noRows } from '../outcome.js';
import type { StagedOutput } from '../outputs/driver.js';
import { outputDriver } from '../outputs/registry.js';
import type { FileReport, PipelineHooks, PipelineSettings } from '../pipeline/process-file.js';
import { type PerFile, settingsForFile } from '../pipeline/settings.js';
import type { FileRun, FileRunner } from '../workers/runner.js';
import { delimiterFor, formatFor, type Router } from '../pipeline/route.js';
import type { BatchRun } from './batch-run.js';
import { type CommitRecord, type Committer, commitRecord, failedRecord, holdsTransaction } from './commit.js';
import type { DiskPause } from './disk-pause.js';
import { remakeFolders } from './folders.js';
import type { DaemonHooks } from './hooks.js';
import type { Receipt } from './ledger.js';
import { failLeftover, type RecoveryDeps } from './recovery.js';
import { backoff, isDiskFull, isTransient } from './retry.js';
import { abortableDelay, type Slot } from './scheduler.js';
import type { SinkOutages } from './sink-outage.js';

/** A file to claim from the inbox (`raw`: the bytes of a name that is not UTF-8), or one claimed already. */
export type Job = { kind: 'name'; name: string; raw?: Buffer } | { kind: 'claimed'; claimed: ClaimedFile };

type RetryPolicy = SluiceConfig['retry'];

/** The pipelines files run with (a reload swaps them whole). */
export interface Pipes {
  router: Router;
  settings: Map<string, PipelineSettings>;
  configs: readonly PipelineConfig[];
  /** The configuration generation they were built from: workers build the same pipelines from it. */
  gen: number;
  /** That generation's configuration (what a worker is sent to build them). */
  cfg: SluiceConfig;
}

/** What a file's run needs of the daemon. */
export interface FileJobDeps {
  /** The configuration as it is now (a reload changes it; a file keeps what it was taken with). */
  cfg: () => SluiceConfig;
  pipes: () => Pipes;
  log: Logger;
  hooks: DaemonHooks;
  claims: Claims;
  committer: Committer;
  outages: SinkOutages<Job>;
  disk: DiskPause;
  batch: BatchRun | undefined;
  recoveryDeps: () => RecoveryDeps;
  /** A file failed (the exit code counts it). */
  failed: () => void;
  /** A file got its outcome: the run's totals count it. */
  tally: (report: FileReport) => void;
  /** Runs a file's pipeline: here, or in the workers. */
  runner: FileRunner;
}

export class FileJobs {
  private readonly log: Logger;
  private readonly hooks: DaemonHooks;
  private readonly claims: Claims;
  private readonly committer: Committer;
  private readonly outages: SinkOutages<Job>;
  private readonly disk: DiskPause;
  private readonly batch: BatchRun | undefined;

  constructor(private readonly deps: FileJobDeps) {
    ({ log: this.log, hooks: this.hooks, claims: this.claims, committer: this.committer, outages: this.outages, disk: this.disk, batch: this.batch } = deps);
  }

  private get cfg(): SluiceConfig {
    return this.deps.cfg();
  }
  private get pipes(): Pipes {
    return this.deps.pipes();
  }
  private recoveryDeps(): RecoveryDeps {
    return this.deps.recoveryDeps();
  }

  /**
   * Processes a claimed file up to its commit, which it returns to run (or undefined when the file needs
   * none: parked, put back, or finished from a record). `fresh`: claimed just now, so it has no record.
   */
  async handle(claimed: ClaimedFile, signal: AbortSignal, fresh: boolean, slot: Slot): Promise<(() => Promise<void>) | undefined> {
    const startedAt = new Date();
    // the pipelines and the retry policy as they are now: a reload while this file runs does not change them under it
    const pipes = this.pipes;
    const retry = this.cfg.retry;
    const pipeline = pipes.router(claimed.name);
    const prior = fresh ? undefined : await this.committer.pending(claimed);
    if (prior !== undefined && !(await this.resolvePrior(claimed, prior, pipes.configs))) return;
    let report: FileReport;
    if (claimed.nameHex !== undefined) {
      const message = `the file name is not valid UTF-8 (its bytes, in hex: ${claimed.nameHex}); it is kept as ${JSON.stringify(claimed.name)}, each invalid byte as %XX`;
      report = unprocessed(claimed, new SluiceError('NAME_INVALID', message, { file: claimed.name }));
    } else if (pipeline === undefined) {
      report = unprocessed(
        claimed,
        new SluiceError('NO_PIPELINE', `no pipeline matches the file name ${JSON.stringify(claimed.name)}`, { file: claimed.name }),
      );
    } else {
      const per = perFile(pipeline, claimed, this.claims.instanceId);
      const run: FileRun = {
        path: claimed.path,
        name: claimed.name,
        per,
        settings: settingsForFile(pipes.settings.get(pipeline.name)!, per),
        pipeline,
        index: pipes.configs.indexOf(pipeline),
        gen: pipes.gen,
        cfg: pipes.cfg,
      };
      report = await this.processWithRetries(run, signal, slot, retry);
    }
    const err = report.error;
    const next = err === undefined ? 'never' : retryOf(err);
    if (next === 'sink' && pipeline !== undefined) {
      this.outages.park(pipeline, { kind: 'claimed', claimed }, err);
      return;
    }
    if (next === 'requeue') {
      this.batch?.putBackOne();
      const back = await this.claims.release(claimed);
      this.log.warn('file put back in the inbox: stopped before it finished', { file: claimed.name, inbox: back });
      return;
    }
    // the inode and size as the pipeline opened them (one stat fewer per file), or as they are now
    const record = commitRecord(claimed, report, startedAt, report.input ?? lstatSync(claimed.path));
    return () => this.commitOutcome(claimed, record, report, pipeline, retry);
  }

  /**
   * A claim left with a commit record that holds a transaction (a crash or an outage at its COMMIT): asks its
   * output whether the load committed. True if the file is to be processed again (it did not); false when it
   * is settled (finished now, failed, or parked until the output can answer).
   */
  private async resolvePrior(claimed: ClaimedFile, prior: CommitRecord, configs: readonly PipelineConfig[]): Promise<boolean> {
    const p = configs.find((x) => x.name === prior.pipeline);
    const remote = p === undefined ? undefined : outputDriver(p.output).remote;
    if (p === undefined || remote === undefined || !holdsTransaction(prior))
      throw new Error(`a commit record with an open load for an unknown pipeline ${prior.pipeline}`);
    let committed: boolean;
    try {
      committed = await remote.committed(p.output, claimed.claimId);
    } catch (err) {
      if (!(err instanceof SluiceError && retryOf(err) === 'sink')) throw err;
      this.outages.park(p, { kind: 'claimed', claimed }, err);
      return false;
    }
    if (!committed) {
      this.log.warn('the load did not commit before an interruption: loading the file again', { file: claimed.name, pipeline: p.name });
      await this.committer.discard(claimed, prior);
      return true;
    }
    try {
      const receipt = await this.committer.finish(claimed, prior);
      this.log.info('file processed (its load had committed before an interruption)', { file: claimed.name, pipeline: p.name, archived: receipt.input });
    } catch (err) {
      if (isTransient(err)) throw err;
      if (await failLeftover(this.recoveryDeps(), claimed, prior, `its committed load could not be finished: ${(err as Error).message}`)) this.deps.failed();
    }
    return false;
  }

  private async commitOutcome(
    claimed: ClaimedFile,
    record: CommitRecord,
    report: FileReport,
    pipeline: PipelineConfig | undefined,
    retry: RetryPolicy,
  ): Promise<void> {
    const err = report.error;
    const output = report.staged?.output;
    failpoint('before-commit-record');
    let receipt: Receipt;
    try {
      receipt = await this.commitWithRetries(claimed, record, output, retry);
    } catch (e) {
      const retry = e instanceof SluiceError ? retryOf(e) : undefined;
      if (retry === 'sink' && pipeline !== undefined) {
        // the COMMIT's fate is unknown: the record stays, and is resolved with the output once it is back
        this.outages.park(pipeline, { kind: 'claimed', claimed }, e as SluiceError);
        return;
      }
      if (output?.kind === 'transaction') await output.abort();
      if (retry === 'never') {
        // refused at COMMIT (a deferred constraint): rolled back, so the file fails
        await this.committer.discard(claimed, record);
        return this.failAtCommit(claimed, record, e as SluiceError);
      }
      throw e;
    }
    this.checkArchivedSize(receipt, record);
    for (const o of receipt.outputs) if (o.role === 'output') report.output = o.path;
    for (const o of receipt.outputs) if (o.role === 'rejects') report.rejects = o.path;
    const published = receipt.outputs.find((o) => o.role === 'output')?.path;
    const renamed = published !== undefined && output?.kind === 'file' && !published.endsWith(`/${output.file.name}`);
    if (report.outcome === 'succeeded') {
      this.log.info('file processed', {
        ...logFields(report),
        archived: receipt.input,
        ...(renamed ? { note: 'the output name was taken: published under a numbered name' } : {}),
      });
    } else {
      this.deps.failed();
      this.log.error('file failed', { ...logFields(report), failed: receipt.input, code: err?.code, error: err?.message, line: err?.line });
    }
    this.deps.tally(report);
    this.hooks.onFileDone?.(report);
  }

  /**
   * The one window a writer still appending can hit: between the last check (after staging) and the move
   * to archive/. Nothing can be undone then, so it is said loudly rather than passed over in silence.
   */
  private checkArchivedSize(receipt: Receipt, record: CommitRecord): void {
    if (record.outcome !== 'succeeded') return;
    let size: number;
    try {
      size = lstatSync(receipt.input).size;
    } catch {
      return;
    }
    if (size !== record.input.size) {
      // a batch job says so in its exit code too
      this.deps.failed();
      this.log.error('the input grew while it was committed: the archived file holds bytes the output does not', {
        file: record.file,
        code: 'INPUT_CHANGED',
        archived: receipt.input,
        readBytes: record.input.size,
        archivedBytes: size,
      });
    }
  }

  /**
   * After an error whose retry class says try again (a disk error that may pass, an input that changed), or
   * one in a folder that was removed (made again, and tried at once): the wait before attempt `attempt + 1`,
   * or undefined when the error is final or the attempts are spent. `retry`: the policy as it was when the
   * file was taken (a reload does not change it under a file in flight).
   */
  private retryDelay(err: SluiceError | undefined, errno: string | undefined, attempt: number, retry: RetryPolicy): number | undefined {
    const remade =
      errno === 'ENOENT' && remakeFolders({ out: this.cfg.out, rejects: this.cfg.rejects, archive: this.cfg.archive, failed: this.cfg.failed }, this.log);
    const again = remade || (err !== undefined ? retryOf(err) === 'backoff' : isTransient(errno));
    if (!again || attempt >= retry.attempts) return undefined;
    return remade ? 0 : backoff(retry.backoffMs, attempt);
  }

  /** Runs the pipeline; an error its retry class says may pass is retried with backoff, then fails. */
  private async processWithRetries(run: FileRun, signal: AbortSignal, slot: Slot, retry: RetryPolicy): Promise<FileReport> {
    const hooks: PipelineHooks = {
      ...this.hooks,
      onParsed: () => {
        this.hooks.onParsed?.();
        slot.release();
      },
    };
    for (let attempt = 1; ; attempt++) {
      const report = await this.deps.runner.run(run, hooks, signal);
      const err = report.error;
      if (err === undefined) return report;
      const errno = retryClassOf(err.code) === 'disk' ? errnoOf(err.cause) : undefined;
      const delay = this.retryDelay(err, errno, attempt, retry);
      if (delay === undefined) return report;
      const changed = err.code === 'INPUT_CHANGED';
      const crashed = err.code === 'WORKER_FAILED';
      const said = changed
        ? 'the input changed while it was read; it will be read again'
        : crashed
          ? 'the worker thread processing it died; the file will be retried'
          : 'writing failed; the file will be retried';
      this.log.warn(said, {
        file: run.name,
        ...(changed || crashed ? {} : { errno }),
        attempt,
        of: retry.attempts,
        retryInMs: delay,
      });
      if (isDiskFull(errno)) this.disk.pause(report.input?.size ?? 0);
      // no parsing slot is held while waiting; the next attempt parses, so it takes one again
      slot.release();
      if (!(await abortableDelay(delay, signal))) return { ...report, error: new SluiceError('ABORTED', 'stopped while waiting to retry', { file: run.name }) };
      await slot.acquire();
    }
  }

  private async failAtCommit(claimed: ClaimedFile, record: CommitRecord, e: SluiceError): Promise<void> {
    const receipt = await this.committer.commit(claimed, failedRecord(record, errorInfo(e)));
    this.deps.failed();
    this.log.error('file failed', { file: claimed.name, pipeline: record.pipeline, failed: receipt.input, code: e.code, error: e.message });
  }

  /** Commits; every step is idempotent, so a transient disk error just means: wait, and commit again. */
  private async commitWithRetries(claimed: ClaimedFile, record: CommitRecord, output: StagedOutput | undefined, retry: RetryPolicy): Promise<Receipt> {
    let confirmed = false;
    let confirm =
      output?.kind === 'transaction'
        ? async (): Promise<void> => {
            await output.confirm();
            confirmed = true;
          }
        : undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.committer.commit(claimed, record, confirm);
      } catch (err) {
        // the output's verdict at COMMIT (refused, or unreachable: its fate unknown) is the caller's
        if (err instanceof SluiceError && !confirmed) throw err;
        // the COMMIT happened: a retry only finishes the files (a record alone does not say so: it exists
        // from its rename on, before its folder is synced and before the COMMIT)
        if (confirmed) confirm = undefined;
        const errno = errnoOf(err);
        // every step is idempotent: a folder removed meanwhile (archive/, failed/, out/) is made again and the commit goes on
        const delay = this.retryDelay(undefined, errno, attempt, retry);
        if (delay === undefined) throw err;
        this.log.warn('publishing failed; it will be retried', { file: claimed.name, errno, attempt, of: retry.attempts, retryInMs: delay });
        if (isDiskFull(errno)) this.disk.pause(record.input.size);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}

/** The report of a claimed file no pipeline could process (no pipeline matches, its name is invalid). */
function unprocessed(claimed: ClaimedFile, error: SluiceError): FileReport {
  return { name: claimed.name, pipeline: 'none', outcome: 'failed', rows: noRows(), bytesRead: 0, bytesWritten: 0, durationMs: 0, error };
}

/** What is per file: temporary files tagged with the claim; a .tsv file is tab-separated unless configured. */
function perFile(p: PipelineConfig, claimed: ClaimedFile, instanceId: string): PerFile {
  return {
    tempTag: `${instanceId}~${claimed.claimId}`,
    claimId: claimed.claimId,
    delimiter: delimiterFor(p, claimed.name),
    format: formatFor(p, claimed.name),
  };
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
    // keys of JSON lines beyond the header: left out of the output, so said
    ...(r.extraKeys === undefined ? {} : { keysNotInHeader: r.extraKeys }),
    ...(r.comments === undefined ? {} : { commentLines: r.comments }),
    // cut at row boundaries and run in parallel by the workers
    ...(r.slices === undefined ? {} : { slices: r.slices }),
    // one that was to be cut ran whole, and why (a quoted field across a cut, many rejects, ...)
    ...(r.notCut === undefined ? {} : { notCut: r.notCut }),
  };
}
