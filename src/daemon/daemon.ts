// The daemon: prepares the folders, recovers its own unfinished claims, turns settled inbox files into
// pipeline runs (up to `concurrency` at once), commits each outcome (daemon/commit.ts), and drains on stop.
import { lstatSync } from 'node:fs';
import { mkdir, readdir, stat, statfs, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { defer, mergeMap, Subject, type Subscription } from 'rxjs';
import type { SluiceConfig } from '../config/load.js';
import type { PipelineConfig } from '../config/schema.js';
import { SluiceError } from '../errors.js';
import { Claims, type ClaimedFile } from '../inbox/claims.js';
import { Inbox } from '../inbox/inbox.js';
import type { Logger } from '../log.js';
import { processFile, type FileReport, type PipelineHooks, type PipelineSettings } from '../pipeline/process-file.js';
import { createRouter, delimiterFor, type Router } from '../pipeline/route.js';
import { pipelineSettings } from '../pipeline/settings.js';
import { TEMP_PREFIX } from '../sinks/atomic-file.js';
import { Committer, type CommitRecord } from './commit.js';
import { failpoint } from '../failpoint.js';
import type { StagedOutput } from '../sinks/sink.js';
import { Instances } from './instances.js';
import { Ledger, type Receipt } from './ledger.js';

export interface DaemonHooks extends PipelineHooks {
  /** A file finished (either way). */
  onFileDone?: (report: FileReport) => void;
  /** The number of files being processed changed by `delta`. */
  onFilesInFlight?: (delta: number) => void;
  /** Claiming paused (true) because the disk is full, or resumed (false). */
  onDiskFull?: (full: boolean) => void;
  /** A pipeline's database became unreachable (false) or reachable again (true). */
  onSinkUp?: (pipeline: string, up: boolean) => void;
}

type Job = { kind: 'name'; name: string } | { kind: 'claimed'; claimed: ClaimedFile };

/** Files past their parsing (syncing their outputs, committing) at once, beside those being parsed. */
const COMMITS_IN_FLIGHT = 32;

/** Errors of the disk or filesystem that may pass: the file is retried, not failed at once. */
const TRANSIENT = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EACCES', 'EPERM', 'EROFS', 'EAGAIN', 'EBUSY', 'EMFILE', 'ENFILE']);

export class Daemon {
  private readonly claims: Claims;
  private readonly inbox: Inbox;
  private readonly ledger: Ledger;
  private readonly committer: Committer;
  private readonly instances: Instances;
  private heartbeat: NodeJS.Timeout | undefined;
  /** Pipelines whose database is unreachable, with the files waiting for it. */
  private readonly down = new Map<string, { jobs: Job[]; delay: number; timer?: NodeJS.Timeout }>();
  /** Files being read and parsed: `concurrency` at once (see run). */
  private readonly parsing: Semaphore;
  private readonly jobs = new Subject<Job>();
  private readonly router: Router;
  private readonly settings = new Map<string, PipelineSettings>();
  private readonly running = new Map<string, AbortController>();
  private subscription: Subscription | undefined;
  private stopping = false;
  private failedCount = 0;
  private idle: Array<() => void> = [];
  /** --once: claimed files that wait for their database (their attempt ended, they did not). */
  private readonly parked = new Set<string>();
  /** --once: the names still to be done. */
  private pending: Set<string> | undefined;
  /** While the disk is full, no new file is claimed. */
  private diskFull: Promise<void> | undefined;
  ready = false;

  constructor(
    private readonly cfg: SluiceConfig,
    private readonly log: Logger,
    private readonly hooks: DaemonHooks = {},
    private readonly once = false,
  ) {
    this.claims = new Claims(cfg.state, cfg.instanceId, { inbox: cfg.watch });
    this.ledger = new Ledger(cfg.state, cfg.fsync);
    this.instances = new Instances(cfg.state, cfg.instanceId, cfg.instances.staleAfterMs);
    this.committer = new Committer(this.claims, this.ledger, { archive: cfg.archive, failed: cfg.failed }, cfg.fsync);
    this.inbox = new Inbox(
      { dir: cfg.watch, settleMs: cfg.settleMs, rescanMs: cfg.rescanMs, watch: !once, poll: cfg.poll, pollIntervalMs: cfg.pollIntervalMs, log },
      (name) => this.jobs.next({ kind: 'name', name }),
      (name) => this.done(name, true),
    );
    this.router = createRouter(cfg.pipelines);
    this.parsing = new Semaphore(cfg.concurrency);
  }

  /** Builds every pipeline (steps, user modules, name templates): a config problem surfaces here. */
  async prepare(): Promise<void> {
    if (this.settings.size > 0) return;
    for (const [i, p] of this.cfg.pipelines.entries()) this.settings.set(p.name, await pipelineSettings(this.cfg, p, i));
  }

  /** Files that failed so far. */
  get failures(): number {
    return this.failedCount;
  }

  /** The inbox backlog: files waiting, and the age of the oldest. */
  inboxStats(): { files: number; oldestAgeSeconds: number } {
    return this.inbox.stats();
  }

  /** Accepting files (started and not draining): what /readyz reports. */
  get accepting(): boolean {
    return this.ready && !this.stopping;
  }

  /** Prepares folders, finishes or redoes what an earlier run left, and starts taking files. */
  async start(): Promise<void> {
    await this.prepare();
    await prepareFolders(this.cfg);
    await this.claims.init();
    await this.instances.beat();
    const adopted = await this.adoptStaleClaims(false);
    const redo: ClaimedFile[] = [];
    const keep = new Set<string>();
    for (const claimed of await this.claims.leftovers()) {
      const record = await this.committer.pending(claimed);
      if (record?.db === true) {
        // resolved by asking the database (in handle); its staged files must survive the cleanup below
        for (const s of record.staged) if (s.file !== undefined) keep.add(s.file.tmp);
        redo.push(claimed);
      } else if (record !== undefined) {
        const receipt = await this.committer.finish(claimed, record);
        this.log.warn('finished a file whose commit a crash interrupted', { file: claimed.name, claimId: claimed.claimId, outcome: receipt.outcome });
      } else {
        this.log.warn('redoing a file this instance had claimed before it stopped', { file: claimed.name, claimId: claimed.claimId });
        redo.push(claimed);
      }
    }
    await this.removeTempFiles([this.cfg.instanceId, ...adopted], keep);
    this.subscription = this.jobs
      .pipe(mergeMap((job) => defer(() => this.run(job)), this.cfg.concurrency + COMMITS_IN_FLIGHT))
      .subscribe({ error: (err: unknown) => this.log.error('internal error in the job loop', { error: String(err) }) });
    if (this.once) this.pending = new Set(redo.map((c) => `claim:${c.claimId}`));
    for (const claimed of redo) this.jobs.next({ kind: 'claimed', claimed });
    if (this.once) {
      for (const n of await this.inbox.scan()) this.pending!.add(n);
      if (this.pending!.size === 0) this.wake();
    } else {
      await this.inbox.start();
    }
    // --once beats too: a long run must not look dead to a daemon sharing the state folder
    this.heartbeat = setInterval(() => void this.onHeartbeat(), this.cfg.instances.heartbeatMs);
    this.ready = true;
    this.log.info('sluice started', { watch: this.cfg.watch, out: this.cfg.out, concurrency: this.cfg.concurrency, mode: this.once ? 'once' : 'daemon', instance: this.cfg.instanceId, pipelines: this.cfg.pipelines.map((p) => p.name) });
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
    clearInterval(this.heartbeat);
    for (const d of this.down.values()) {
      clearTimeout(d.timer);
      // claimed files that waited for their database go back to the inbox (unless a commit record holds them)
      for (const j of d.jobs) {
        if (j.kind !== 'claimed' || (await this.committer.pending(j.claimed)) !== undefined) continue;
        await this.claims.release(j.claimed).catch(() => undefined);
      }
    }
    await this.instances.retire();
    await this.ledger.close();
    this.subscription?.unsubscribe();
    this.jobs.complete();
  }

  /** Beats, and adopts the claims of instances that died (their files would otherwise wait forever). */
  private async onHeartbeat(): Promise<void> {
    try {
      await this.instances.beat();
      if (!this.stopping) await this.adoptStaleClaims(true);
    } catch (err) {
      this.log.warn('heartbeat failed', { error: String(err) });
    }
  }

  /** Returns the instances adopted from. At start (`enqueue` false) the caller recovers them with its own. */
  private async adoptStaleClaims(enqueue: boolean): Promise<string[]> {
    const { instances, claimIds } = await this.instances.adoptStale(this.claims.dir);
    if (instances.length === 0) return instances;
    this.log.warn('adopted the claims of instances that stopped beating', { instances, claims: claimIds.size });
    if (!enqueue) return instances;
    const redo: ClaimedFile[] = [];
    const keep = new Set<string>();
    for (const claimed of await this.claims.leftovers()) {
      if (!claimIds.has(claimed.claimId)) continue;
      const record = await this.committer.pending(claimed);
      if (record?.db === true) for (const s of record.staged) if (s.file !== undefined) keep.add(s.file.tmp);
      if (record !== undefined && record.db !== true) await this.committer.finish(claimed, record);
      else redo.push(claimed);
    }
    await this.removeTempFiles(instances, keep);
    for (const claimed of redo) this.jobs.next({ kind: 'claimed', claimed });
    return instances;
  }

  /**
   * One file, from claim to commit. The job loop lets `concurrency + COMMITS_IN_FLIGHT` files be claimed at
   * once, and `concurrency` of them be read and parsed (the CPU part): a file gives its parsing slot back as
   * soon as its rows are written, so the waits on the disk that follow (fsync of its outputs, the commit)
   * run beside the next files instead of holding their place.
   */
  private async run(job: Job): Promise<void> {
    if (job.kind === 'name' && this.diskFull !== undefined) await this.diskFull;
    const slot = new Slot(this.parsing);
    await slot.acquire();
    let commit: (() => Promise<void>) | undefined;
    let finished: () => void;
    let internal: (err: unknown) => void;
    try {
      if (this.stopping) return;
      if (job.kind === 'name') {
        const p = this.router(job.name);
        // the database of its pipeline is down: the file stays in the inbox, taken when the database is back
        if (p !== undefined && this.down.has(p.name)) {
          this.down.get(p.name)!.jobs.push(job);
          return;
        }
      }
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
      if (job.kind === 'name') this.inbox.taken(job.name);
      const c = claimed;
      const ac = new AbortController();
      this.running.set(c.claimId, ac);
      this.hooks.onFilesInFlight?.(1);
      finished = (): void => {
        this.running.delete(c.claimId);
        this.hooks.onFilesInFlight?.(-1);
        // --once: a claimed file that now waits for its database is not done (its name, if it had one, is)
        const parked = this.parked.delete(`claim:${c.claimId}`);
        if (!parked || key !== `claim:${c.claimId}`) this.done(key);
      };
      internal = (err: unknown): void => {
        // not finished: for the exit code, a file that failed (it is redone at the next start)
        this.failedCount++;
        this.log.error('internal error while finishing a file; it stays claimed and is redone at restart', { file: c.name, error: String(err) });
      };
      try {
        commit = await this.handle(c, ac.signal, job.kind === 'name', slot);
      } catch (err) {
        internal(err);
      }
    } finally {
      slot.release();
    }
    if (commit !== undefined) await commit().catch(internal);
    finished();
  }

  /**
   * Processes a claimed file up to its commit, which it returns to run (or undefined when the file needs
   * none: parked, put back, or finished from a record). `fresh`: claimed just now, so it has no record.
   */
  private async handle(claimed: ClaimedFile, signal: AbortSignal, fresh: boolean, slot: Slot): Promise<(() => Promise<void>) | undefined> {
    const startedAt = new Date();
    const pipeline = this.router(claimed.name);
    const prior = fresh ? undefined : await this.committer.pending(claimed);
    if (prior !== undefined) {
      // a database load whose COMMIT may or may not have happened before a crash or an outage: ask the database
      const p = this.cfg.pipelines.find((x) => x.name === prior.pipeline);
      if (p === undefined || p.output.format !== 'postgres') throw new Error(`a database commit record for an unknown pipeline ${prior.pipeline}`);
      let committed: boolean;
      try {
        committed = await (await import('../sinks/postgres.js')).loadCommitted(p.output, claimed.claimId);
      } catch (err) {
        if (!(err instanceof SluiceError && err.code === 'SINK_UNAVAILABLE')) throw err;
        this.markDown(p, { kind: 'claimed', claimed });
        return;
      }
      if (committed) {
        const receipt = await this.committer.finish(claimed, prior);
        this.log.info('file processed (its load had committed before an interruption)', { file: claimed.name, pipeline: p.name, archived: receipt.input });
        return;
      }
      this.log.warn('the load did not commit before an interruption: loading the file again', { file: claimed.name, pipeline: p.name });
      await this.committer.discard(claimed, prior);
    }
    let report: FileReport;
    if (pipeline === undefined) {
      const error = new SluiceError('NO_PIPELINE', `no pipeline matches the file name ${JSON.stringify(claimed.name)}`, { file: claimed.name });
      report = { name: claimed.name, pipeline: 'none', outcome: 'failed', rows: { read: 0, written: 0, filtered: 0, rejected: 0 }, bytesRead: 0, bytesWritten: 0, durationMs: 0, error };
    } else {
      const settings = forFile(this.settings.get(pipeline.name)!, pipeline, claimed, this.cfg.instanceId);
      report = await this.processWithRetries(claimed, settings, signal, slot);
    }
    const err = report.error;
    if (err?.code === 'SINK_UNAVAILABLE' && pipeline !== undefined) {
      this.markDown(pipeline, { kind: 'claimed', claimed });
      return;
    }
    if (err?.code === 'ABORTED') {
      const back = await this.claims.release(claimed);
      this.log.warn('file put back in the inbox: stopped before it finished', { file: claimed.name, inbox: back });
      return;
    }
    const staged = report.staged ?? {};
    // the inode and size as the pipeline opened them (one stat fewer per file), or as they are now
    const input = report.input ?? lstatSync(claimed.path);
    const record: CommitRecord = {
      claimId: claimed.claimId,
      file: claimed.name,
      pipeline: report.pipeline,
      outcome: report.outcome,
      input: { ino: input.ino, size: input.size, ...(report.sha256 === undefined ? {} : { sha256: report.sha256 }) },
      staged: [
        ...(staged.output?.file === undefined ? [] : [{ role: 'output' as const, file: staged.output.file, rows: staged.output.rows }]),
        ...(staged.output?.table === undefined ? [] : [{ role: 'output' as const, table: staged.output.table, rows: staged.output.rows, bytes: staged.output.bytes }]),
        ...(staged.rejects?.file === undefined ? [] : [{ role: 'rejects' as const, file: staged.rejects.file, rows: staged.rejects.rows }]),
      ],
      rows: report.rows,
      startedAt: startedAt.toISOString(),
      durationMs: report.durationMs,
      ...(staged.output?.publish === undefined ? {} : { db: true }),
      ...(err === undefined ? {} : { error: { code: err.code, message: err.message, ...(err.line === undefined ? {} : { line: err.line }), ...(err.field === undefined ? {} : { field: err.field }), ...(report.readBeforeFailure ? { readBeforeFailure: report.readBeforeFailure } : {}) } }),
    };
    return () => this.commitOutcome(claimed, record, report, staged, pipeline);
  }

  private async commitOutcome(claimed: ClaimedFile, record: CommitRecord, report: FileReport, staged: NonNullable<FileReport['staged']>, pipeline: PipelineConfig | undefined): Promise<void> {
    const err = report.error;
    failpoint('before-commit-record');
    let receipt: Receipt;
    try {
      receipt = await this.commitWithRetries(claimed, record, staged.output);
    } catch (e) {
      if (e instanceof SluiceError && e.code === 'SINK_UNAVAILABLE' && pipeline !== undefined) {
        // the COMMIT's fate is unknown: the record stays, and is resolved with the database once it is back
        this.markDown(pipeline, { kind: 'claimed', claimed });
        return;
      }
      if (e instanceof SluiceError && e.code === 'DB_REFUSED') {
        // refused at COMMIT (a deferred constraint): rolled back, so the file fails
        await this.committer.discard(claimed, record);
        await staged.output?.abort?.();
        return this.handleRefusedAtCommit(claimed, record, e);
      }
      await staged.output?.abort?.();
      throw e;
    }
    for (const o of receipt.outputs) if (o.role === 'output') report.output = o.path;
    for (const o of receipt.outputs) if (o.role === 'rejects') report.rejects = o.path;
    const published = receipt.outputs.find((o) => o.role === 'output')?.path;
    const file = staged.output?.file;
    const renamed = published !== undefined && file !== undefined && !published.endsWith(`/${file.name}`);
    if (report.outcome === 'succeeded') {
      this.log.info('file processed', { ...logFields(report), archived: receipt.input, ...(renamed ? { note: 'the output name was taken: published under a numbered name' } : {}) });
    } else {
      this.failedCount++;
      this.log.error('file failed', { ...logFields(report), failed: receipt.input, code: err?.code, error: err?.message, line: err?.line });
    }
    this.hooks.onFileDone?.(report);
  }

  /** Runs the pipeline; a transient disk error (full, I/O, permission) is retried with backoff, then fails. */
  private async processWithRetries(claimed: ClaimedFile, settings: PipelineSettings, signal: AbortSignal, slot: Slot): Promise<FileReport> {
    const { attempts, backoffMs } = this.cfg.retry;
    const hooks: PipelineHooks = {
      ...this.hooks,
      onParsed: () => {
        this.hooks.onParsed?.();
        slot.release();
      },
    };
    for (let attempt = 1; ; attempt++) {
      const report = await processFile(claimed.path, claimed.name, settings, hooks, signal);
      const errno = causeCode(report.error);
      const changed = report.error?.code === 'INPUT_CHANGED';
      const transient = changed || (report.error?.code === 'WRITE_FAILED' && errno !== undefined && TRANSIENT.has(errno));
      if (!transient || attempt >= attempts) return report;
      const delay = backoffMs * 4 ** (attempt - 1);
      this.log.warn(changed ? 'the input changed while it was read; it will be read again' : 'writing failed; the file will be retried', {
        file: claimed.name,
        ...(changed ? {} : { errno }),
        attempt,
        of: attempts,
        retryInMs: delay,
      });
      if (errno === 'ENOSPC' || errno === 'EDQUOT') this.pauseForDisk();
      // no parsing slot is held while waiting; the next attempt parses, so it takes one again
      slot.release();
      if (!(await abortableDelay(delay, signal))) return { ...report, error: new SluiceError('ABORTED', 'stopped while waiting to retry', { file: claimed.name }) };
      await slot.acquire();
    }
  }

  private async handleRefusedAtCommit(claimed: ClaimedFile, record: CommitRecord, e: SluiceError): Promise<void> {
    const failed: CommitRecord = { ...record, outcome: 'failed', staged: [], rows: { read: 0, written: 0, filtered: 0, rejected: 0 }, error: { code: e.code, message: e.message, ...(e.line === undefined ? {} : { line: e.line }) } };
    delete failed.db;
    const receipt = await this.committer.commit(claimed, failed);
    this.failedCount++;
    this.log.error('file failed', { file: claimed.name, pipeline: record.pipeline, failed: receipt.input, code: e.code, error: e.message });
  }

  /** The database of a pipeline is unreachable: its files wait (no slot held) until a probe succeeds. */
  private markDown(pipeline: PipelineConfig, job: Job): void {
    if (this.once && job.kind === 'claimed') {
      // still to be done: the end of this attempt must not count it as finished
      this.pending?.add(`claim:${job.claimed.claimId}`);
      this.parked.add(`claim:${job.claimed.claimId}`);
    }
    let d = this.down.get(pipeline.name);
    if (d === undefined) {
      d = { jobs: [], delay: this.cfg.retry.backoffMs };
      this.down.set(pipeline.name, d);
      this.hooks.onSinkUp?.(pipeline.name, false);
      this.log.error('the database is unavailable: files of this pipeline wait until it is back', { pipeline: pipeline.name });
      const state = d;
      const retry = async (): Promise<void> => {
        if (this.stopping) return;
        const out = pipeline.output;
        if (out.format === 'postgres' && (await (await import('../sinks/postgres.js')).probe(out))) {
          this.down.delete(pipeline.name);
          this.hooks.onSinkUp?.(pipeline.name, true);
          this.log.info('the database is back: loading the waiting files', { pipeline: pipeline.name, files: state.jobs.length });
          for (const j of state.jobs) this.jobs.next(j);
          return;
        }
        state.delay = Math.min(state.delay * 2, 30_000);
        this.log.warn('the database is still unavailable', { pipeline: pipeline.name, retryInMs: state.delay, waiting: state.jobs.length });
        state.timer = setTimeout(() => void retry(), state.delay);
      };
      state.timer = setTimeout(() => void retry(), state.delay);
    }
    d.jobs.push(job);
  }

  /** Commits; every step is idempotent, so a transient disk error just means: wait, and commit again. */
  private async commitWithRetries(claimed: ClaimedFile, record: CommitRecord, output?: StagedOutput): Promise<Receipt> {
    const { attempts, backoffMs } = this.cfg.retry;
    let committed = false;
    let dbCommit =
      output?.publish === undefined
        ? undefined
        : async (): Promise<void> => {
            await output.publish!();
            committed = true;
          };
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.committer.commit(claimed, record, dbCommit);
      } catch (err) {
        if (err instanceof SluiceError) throw err;
        // the database COMMIT happened: a retry only finishes the files (a record alone does not say so:
        // it exists from its rename on, before its folder is synced and before the COMMIT)
        if (committed) dbCommit = undefined;
        const errno = (err as NodeJS.ErrnoException).code;
        if (errno === undefined || !TRANSIENT.has(errno) || attempt >= attempts) throw err;
        const delay = backoffMs * 4 ** (attempt - 1);
        this.log.warn('publishing failed; it will be retried', { file: claimed.name, errno, attempt, of: attempts, retryInMs: delay });
        if (errno === 'ENOSPC' || errno === 'EDQUOT') this.pauseForDisk();
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Stops claiming until the output and state folders have room again (checked every few seconds). */
  private pauseForDisk(): void {
    if (this.diskFull !== undefined) return;
    this.log.error('disk full: no new files are claimed until space returns', { out: this.cfg.out });
    this.hooks.onDiskFull?.(true);
    this.diskFull = new Promise<void>((resolve) => {
      const check = async (): Promise<void> => {
        const dirs = [this.cfg.out, this.cfg.rejects, this.cfg.state];
        const free = await Promise.all(dirs.map(async (d) => { const s = await statfs(d); return s.bavail * s.bsize; })).catch(() => [0]);
        if (Math.min(...free) >= this.cfg.retry.minFreeBytes || this.stopping) {
          this.diskFull = undefined;
          this.hooks.onDiskFull?.(false);
          this.log.info('disk space is back: claiming files again');
          resolve();
        } else setTimeout(() => void check(), this.cfg.retry.diskCheckMs).unref();
      };
      setTimeout(() => void check(), this.cfg.retry.diskCheckMs).unref();
    });
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
    this.wake();
  }

  private wake(): void {
    const w = this.idle;
    this.idle = [];
    for (const resolve of w) resolve();
  }

  /** Temporary files that an earlier run of these instances left (killed mid-write, before its commit). */
  private async removeTempFiles(instances: string[], keep: ReadonlySet<string> = new Set()): Promise<void> {
    const prefixes = instances.map((i) => `${TEMP_PREFIX}${i}~`);
    const walk = async (dir: string, depth: number): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const path = join(dir, e.name);
        if (e.isDirectory() && depth > 0 && !e.name.startsWith('.')) await walk(path, depth - 1);
        else if (e.isFile() && prefixes.some((p) => e.name.startsWith(p)) && !keep.has(path)) {
          await unlink(path).catch(() => undefined);
          this.log.warn('removed a temporary file left by an earlier run', { file: path });
        }
      }
    };
    for (const dir of new Set([this.cfg.out, this.cfg.rejects, this.cfg.failed])) await walk(dir, 3);
  }
}


/** One file's hold on a permit of a semaphore: released at most once per acquire, whatever the path. */
class Slot {
  private held = false;
  constructor(private readonly permits: Semaphore) {}
  async acquire(): Promise<void> {
    if (this.held) return;
    await this.permits.acquire();
    this.held = true;
  }
  release(): void {
    if (!this.held) return;
    this.held = false;
    this.permits.release();
  }
}

/** A counting semaphore: acquire waits while all permits are taken. */
class Semaphore {
  private waiting: Array<() => void> = [];
  constructor(private permits: number) {}
  async acquire(): Promise<void> {
    if (this.permits > 0) {
      this.permits--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.permits++;
  }
}

function causeCode(err: SluiceError | undefined): string | undefined {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  return typeof cause?.code === 'string' ? cause.code : undefined;
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Per-file settings: temporary files tagged with the claim; a .tsv file is tab-separated unless configured. */
function forFile(settings: PipelineSettings, p: PipelineConfig, claimed: ClaimedFile, instanceId: string): PipelineSettings {
  return {
    ...settings,
    tempTag: `${instanceId}~${claimed.claimId}`,
    claimId: claimed.claimId,
    csv: { ...settings.csv, delimiter: delimiterFor(p, claimed.name) },
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
