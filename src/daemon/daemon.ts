// The daemon: prepares the folders, recovers its own unfinished claims, turns settled inbox files into
// pipeline runs (up to `concurrency` at once), commits each outcome (daemon/commit.ts), and drains on stop.
import { existsSync, lstatSync, mkdirSync } from 'node:fs';
import { mkdir, stat, statfs } from 'node:fs/promises';
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
import { Committer, type CommitRecord } from './commit.js';
import { failpoint } from '../failpoint.js';
import type { StagedOutput } from '../sinks/sink.js';
import { Instances } from './instances.js';
import { Ledger, type Receipt } from './ledger.js';
import { failLeftover, recover, type RecoveryDeps } from './recovery.js';
import { backoff, errnoOf, isDiskFull, isTransient } from './retry.js';

export interface DaemonHooks extends PipelineHooks {
  /** A file finished (either way). */
  onFileDone?: (report: FileReport) => void;
  /** The number of files being processed changed by `delta`. */
  onFilesInFlight?: (delta: number) => void;
  /** Claiming paused (true) because the disk is full, or resumed (false). */
  onDiskFull?: (full: boolean) => void;
  /** A pipeline's database became unreachable (false) or reachable again (true). */
  onSinkUp?: (pipeline: string, up: boolean) => void;
  /** This instance adopted `claims` claims of instances that died. */
  onAdopted?: (claims: number) => void;
  /** --once: the files it found to do, and their bytes (for a progress display; sizes are taken only if set). */
  onWorkFound?: (files: number, bytes: number) => void;
  /** `files` files of a pipeline wait for its sink to be reachable again. */
  onSinkWaiting?: (pipeline: string, files: number) => void;
}

/** A file to claim from the inbox (`raw`: the bytes of a name that is not UTF-8), or one claimed already. */
type Job = { kind: 'name'; name: string; raw?: Buffer } | { kind: 'claimed'; claimed: ClaimedFile };

/** Files past their parsing (syncing their outputs, committing) at once, beside those being parsed. */
const COMMITS_IN_FLIGHT = 32;

export class Daemon {
  // set by start(), once this process holds its instance lock (the id is known only then)
  private claims!: Claims;
  private committer!: Committer;
  private instances: Instances | undefined;
  private readonly inbox: Inbox;
  private readonly ledger: Ledger;
  /** Looks for dead instances to adopt, and retries leftovers that hit a transient error. */
  private checker: NodeJS.Timeout | undefined;
  private checking = false;
  /** Leftovers whose recovery hit a transient error (a full disk): tried again at the next check. */
  private readonly later = new Set<string>();
  /** Claimed files queued and not yet started: put back in the inbox if the daemon stops first. */
  private readonly queued = new Map<string, ClaimedFile>();
  /** Pipelines whose database is unreachable, with the files waiting for it. */
  private readonly down = new Map<
    string,
    { jobs: Job[]; delay: number; output: PipelineConfig['output']; timer?: NodeJS.Timeout; giveUp?: NodeJS.Timeout; gaveUp?: boolean }
  >();
  /** Files being read and parsed: `concurrency` at once (see run). */
  private readonly parsing: Semaphore;
  private readonly jobs = new Subject<Job>();
  /** The pipelines files are routed to and run with; a reload (SIGHUP) swaps them whole. */
  private pipes: { router: Router; settings: Map<string, PipelineSettings>; configs: readonly PipelineConfig[] };
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
    private cfg: SluiceConfig,
    private readonly log: Logger,
    private readonly hooks: DaemonHooks = {},
    private readonly once = false,
  ) {
    this.ledger = new Ledger(cfg.state, cfg.fsync);
    this.inbox = new Inbox(
      { dir: cfg.watch, settleMs: cfg.settleMs, rescanMs: cfg.rescanMs, watch: !once, poll: cfg.poll, pollIntervalMs: cfg.pollIntervalMs, log },
      (name, raw) => this.jobs.next({ kind: 'name', name, ...(raw === undefined ? {} : { raw }) }),
      (name) => this.done(name, true),
    );
    this.pipes = { router: createRouter(cfg.pipelines), settings: new Map(), configs: cfg.pipelines };
    this.parsing = new Semaphore(cfg.concurrency);
  }

  /** Builds every pipeline (steps, user modules, name templates): a config problem surfaces here. */
  async prepare(): Promise<void> {
    if (this.pipes.settings.size > 0) return;
    this.pipes.settings = await buildSettings(this.cfg);
  }

  /**
   * Applies a new configuration (SIGHUP): files taken from now on use its pipelines, retry, batch and fsync
   * settings; files in flight finish on the old. It is built whole first: a bad step or module throws and
   * nothing changes. Settings that only a restart can change (folders, instance, concurrency, inbox
   * watching, metrics) keep their running values; their names are returned.
   */
  async reload(next: SluiceConfig): Promise<string[]> {
    const restartOnly = [
      'watch',
      'out',
      'rejects',
      'archive',
      'failed',
      'state',
      'instanceId',
      'concurrency',
      'settleMs',
      'rescanMs',
      'poll',
      'pollIntervalMs',
      'metrics',
      'instances',
    ] as const;
    const kept = restartOnly.filter((k) => JSON.stringify(next[k]) !== JSON.stringify(this.cfg[k]));
    const merged: SluiceConfig = { ...next, ...Object.fromEntries(restartOnly.map((k) => [k, this.cfg[k]])) };
    const settings = await buildSettings(merged);
    this.pipes = { router: createRouter(merged.pipelines), settings, configs: merged.pipelines };
    this.cfg = merged;
    await this.rerouteWaiting();
    return kept;
  }

  /**
   * After a reload: files waiting for a pipeline's sink that the new configuration changed or removed are
   * routed again (a fixed URL, another output). Only a claim with a commit record keeps waiting for the old
   * database, which alone can say whether its load committed.
   */
  private async rerouteWaiting(): Promise<void> {
    for (const [name, d] of [...this.down]) {
      const now = this.pipes.configs.find((p) => p.name === name);
      if (d.gaveUp === true || (now !== undefined && JSON.stringify(now.output) === JSON.stringify(d.output))) continue;
      const stay: Job[] = [];
      const go: Job[] = [];
      for (const j of d.jobs) (j.kind === 'claimed' && (await this.committer.pending(j.claimed).catch(() => undefined)) !== undefined ? stay : go).push(j);
      this.log.info('the configuration changed a pipeline whose sink was down: its waiting files are routed again', {
        pipeline: name,
        files: go.length,
        ...(stay.length > 0 ? { waitingForTheOldDatabase: stay.length } : {}),
      });
      this.down.delete(name);
      this.hooks.onSinkUp?.(name, true);
      this.hooks.onSinkWaiting?.(name, 0);
      d.jobs = stay;
      if (stay.length > 0) this.down.set(`${name} (before the reload)`, d);
      else {
        // retired: its probe loop ends (a probe in flight sees it)
        d.gaveUp = true;
        clearTimeout(d.timer);
        clearTimeout(d.giveUp);
      }
      for (const j of go) {
        if (j.kind === 'claimed') {
          this.parked.delete(`claim:${j.claimed.claimId}`);
          this.enqueueClaimed(j.claimed);
        } else this.jobs.next(j);
      }
    }
  }

  /** Files that failed so far. */
  get failures(): number {
    return this.failedCount;
  }

  /** --once: files not done yet. */
  get filesLeft(): number {
    return this.pending?.size ?? 0;
  }

  /** --once: files found that did not get an outcome (never taken, or put back in the inbox by a stop). */
  get unfinished(): number {
    return (this.pending?.size ?? 0) + this.putBack;
  }

  private putBack = 0;

  /** The inbox backlog: files waiting, and the age of the oldest. */
  inboxStats(): { files: number; oldestAgeSeconds: number } {
    return this.inbox.stats();
  }

  /** Accepting files (started and not draining): what /readyz reports. */
  get accepting(): boolean {
    return this.ready && !this.stopping;
  }

  /** This process's instance id (known once started). */
  get instanceId(): string | undefined {
    return this.instances?.id;
  }

  /**
   * Prepares folders, takes this process's instance lock (a free slot, or the id given), adopts the claims
   * of dead instances, finishes or redoes what was left, and starts taking files.
   */
  async start(): Promise<void> {
    await this.prepare();
    await prepareFolders(this.cfg, this.once);
    const instances = await Instances.acquire(this.cfg.state, this.cfg.instanceId);
    this.instances = instances;
    this.claims = new Claims(this.cfg.state, instances.id, { inbox: this.cfg.watch });
    this.committer = new Committer(this.claims, this.ledger, { archive: this.cfg.archive, failed: this.cfg.failed }, this.cfg.fsync);
    await this.claims.init();
    // dead instances' claims join ours first (and an adoption a crash interrupted is finished); then
    // everything in our folder is brought to an outcome
    instances.finishAdoptions(this.claims.dir);
    const adoptions = instances.adoptDead(this.claims.dir, this.adoptError);
    let recovered: Awaited<ReturnType<typeof recover>>;
    try {
      this.logAdoptions(adoptions);
      recovered = await recover(this.recoveryDeps(), {
        tempOwners: [instances.id, ...adoptions.map((a) => a.instance)],
        elsewhere: instances.othersClaimIds(),
        adopted: new Set(adoptions.flatMap((a) => [...a.claimIds])),
      });
    } finally {
      for (const a of adoptions) a.release();
    }
    for (const c of recovered.later) this.later.add(c.claimId);
    this.failedCount += recovered.failed;
    this.subscription = this.jobs
      .pipe(mergeMap((job) => defer(() => this.run(job)), this.cfg.concurrency + COMMITS_IN_FLIGHT))
      .subscribe({ error: (err: unknown) => this.log.error('internal error in the job loop', { error: String(err) }) });
    if (this.once) this.pending = new Set(recovered.redo.map((c) => `claim:${c.claimId}`));
    for (const claimed of recovered.redo) this.enqueueClaimed(claimed);
    if (this.once) {
      const found = await this.inbox.scan();
      for (const n of found) this.pending!.add(n);
      // their sizes only for someone who shows progress: a stat per file is not free with thousands
      if (this.hooks.onWorkFound !== undefined)
        this.hooks.onWorkFound(
          this.pending!.size,
          found.reduce((sum, n) => sum + sizeOf(join(this.cfg.watch, n)), 0),
        );
      if (this.pending!.size === 0) this.wake();
    } else {
      await this.inbox.start();
    }
    // a batch job adopts at its start only; a daemon keeps looking for instances that died
    if (!this.once) this.checker = setInterval(() => void this.check(), this.cfg.instances.checkMs);
    else if (this.later.size > 0) {
      // could not be finished now (a transient fault): they stay claimed for the next run, and count as failed
      this.failedCount += this.later.size;
      this.log.error('files left by an earlier run could not be finished now; they stay claimed for the next run', { claims: this.later.size });
    }
    this.ready = true;
    this.log.info('sluice started', {
      watch: this.cfg.watch,
      out: this.cfg.out,
      concurrency: this.cfg.concurrency,
      mode: this.once ? 'once' : 'daemon',
      instance: instances.id,
      pipelines: this.cfg.pipelines.map((p) => p.name),
    });
  }

  private readonly adoptError = (instance: string, err: unknown): void => {
    this.log.error('cannot move the claims of an instance that died; trying again later', { instance, error: String(err) });
  };

  private recoveryDeps(): RecoveryDeps {
    return { claims: this.claims, committer: this.committer, log: this.log, tempDirs: [this.cfg.out, this.cfg.rejects, this.cfg.failed] };
  }

  private logAdoptions(adoptions: ReadonlyArray<{ instance: string; claimIds: ReadonlySet<string> }>): void {
    if (adoptions.length === 0) return;
    const claims = adoptions.reduce((n, a) => n + a.claimIds.size, 0);
    // a dead instance without claims (a clean stop leaves none; a crash between files) is only tidied away
    if (claims > 0) this.log.warn('adopted the claims of instances that died', { instances: adoptions.map((a) => a.instance), claims });
    this.hooks.onAdopted?.(claims);
  }

  /** A claimed file to process (again): queued, and put back in the inbox if the daemon stops before it starts. */
  private enqueueClaimed(claimed: ClaimedFile): void {
    this.queued.set(claimed.claimId, claimed);
    // ahead of the inbox's backlog: a claim (a restart's, or a dead instance's) has waited already, and
    // behind thousands of queued names it would wait for all of them (a few per dead instance, so unbounded
    // by the job loop's limit is still bounded)
    void this.run({ kind: 'claimed', claimed }, true).catch((err: unknown) => this.log.error('internal error in the job loop', { error: String(err) }));
  }

  /**
   * Every `instances.checkMs`: takes the lock of any instance that died (the kernel released it), adopts its
   * claims and finishes them; and retries leftovers whose recovery hit a transient error.
   */
  private async check(): Promise<void> {
    if (this.stopping || this.checking || this.instances === undefined) return;
    this.checking = true;
    try {
      const unfinished = this.instances.finishAdoptions(this.claims.dir);
      const adoptions = this.instances.adoptDead(this.claims.dir, this.adoptError);
      let recovered: Awaited<ReturnType<typeof recover>>;
      try {
        this.logAdoptions(adoptions);
        const only = new Set([...this.later, ...unfinished, ...adoptions.flatMap((a) => [...a.claimIds])]);
        if (only.size === 0 && adoptions.length === 0) return;
        this.later.clear();
        recovered = await recover(this.recoveryDeps(), {
          only,
          tempOwners: adoptions.map((a) => a.instance),
          elsewhere: this.instances.othersClaimIds(),
          adopted: new Set(adoptions.flatMap((a) => [...a.claimIds])),
        });
      } finally {
        for (const a of adoptions) a.release();
      }
      for (const c of recovered.later) this.later.add(c.claimId);
      this.failedCount += recovered.failed;
      for (const c of recovered.redo) this.enqueueClaimed(c);
    } catch (err) {
      this.log.warn('looking for instances that died failed; trying again', { error: String(err) });
    } finally {
      this.checking = false;
    }
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
    clearInterval(this.checker);
    while (this.checking) await new Promise((r) => setTimeout(r, 10));
    // claimed files that were queued and never started go back to the inbox too
    for (const c of this.queued.values()) {
      if ((await this.committer.pending(c).catch(() => undefined)) !== undefined) continue;
      await this.claims.release(c).catch(() => undefined);
    }
    this.queued.clear();
    for (const d of this.down.values()) {
      clearTimeout(d.timer);
      clearTimeout(d.giveUp);
      // claimed files that waited for their database go back to the inbox (unless a commit record holds them)
      for (const j of d.jobs) {
        if (j.kind !== 'claimed' || (await this.committer.pending(j.claimed)) !== undefined) continue;
        await this.claims.release(j.claimed).catch(() => undefined);
      }
    }
    await this.ledger.close();
    this.instances?.retire(this.claims.dir);
    this.subscription?.unsubscribe();
    this.jobs.complete();
  }

  /**
   * One file, from claim to commit. The job loop lets `concurrency + COMMITS_IN_FLIGHT` files be claimed at
   * once, and `concurrency` of them be read and parsed (the CPU part): a file gives its parsing slot back as
   * soon as its rows are written, so the waits on the disk that follow (fsync of its outputs, the commit)
   * run beside the next files instead of holding their place.
   */
  private async run(job: Job, first = false): Promise<void> {
    if (job.kind === 'name' && this.diskFull !== undefined) await this.diskFull;
    const slot = new Slot(this.parsing, first);
    await slot.acquire();
    let commit: (() => Promise<void>) | undefined;
    let finished: () => void;
    let internal: (err: unknown) => void;
    try {
      if (this.stopping) return;
      if (job.kind === 'claimed') this.queued.delete(job.claimed.claimId);
      if (job.kind === 'name') {
        const p = this.pipes.router(job.name);
        // the database of its pipeline is down: the file stays in the inbox, taken when the database is back
        if (p !== undefined && this.down.has(p.name)) {
          this.markDown(p, job);
          return;
        }
      }
      let claimed: ClaimedFile | undefined;
      const key = job.kind === 'name' ? job.name : `claim:${job.claimed.claimId}`;
      try {
        claimed = job.kind === 'claimed' ? job.claimed : await this.claims.claim(job.name, job.raw);
      } catch (err) {
        this.log.error('cannot claim a file', { file: key, error: String(err) });
        if (this.once) this.failedCount++;
        else {
          // not at once: the file is still there, and would be reported (and fail) again in a loop
          setTimeout(() => this.done(key), Math.max(this.cfg.retry.backoffMs, 1000)).unref();
          return;
        }
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
    // the pipelines as they are now: a reload while this file runs does not change them under it
    const pipes = this.pipes;
    const pipeline = pipes.router(claimed.name);
    const prior = fresh ? undefined : await this.committer.pending(claimed);
    if (prior !== undefined) {
      // a database load whose COMMIT may or may not have happened before a crash or an outage: ask the database
      const p = pipes.configs.find((x) => x.name === prior.pipeline);
      if (p === undefined || p.output.format !== 'postgres') throw new Error(`a database commit record for an unknown pipeline ${prior.pipeline}`);
      let committed: boolean;
      try {
        committed = await (await import('../sinks/postgres.js')).loadCommitted(p.output, claimed.claimId);
      } catch (err) {
        if (!(err instanceof SluiceError && err.code === 'SINK_UNAVAILABLE')) throw err;
        this.markDown(p, { kind: 'claimed', claimed }, err);
        return;
      }
      if (committed) {
        try {
          const receipt = await this.committer.finish(claimed, prior);
          this.log.info('file processed (its load had committed before an interruption)', { file: claimed.name, pipeline: p.name, archived: receipt.input });
        } catch (err) {
          if (isTransient(err)) throw err;
          if (await failLeftover(this.recoveryDeps(), claimed, prior, `its committed load could not be finished: ${(err as Error).message}`))
            this.failedCount++;
        }
        return;
      }
      this.log.warn('the load did not commit before an interruption: loading the file again', { file: claimed.name, pipeline: p.name });
      await this.committer.discard(claimed, prior);
    }
    let report: FileReport;
    const unprocessed = (error: SluiceError): FileReport => ({
      name: claimed.name,
      pipeline: 'none',
      outcome: 'failed',
      rows: { read: 0, written: 0, filtered: 0, rejected: 0 },
      bytesRead: 0,
      bytesWritten: 0,
      durationMs: 0,
      error,
    });
    if (claimed.nameHex !== undefined) {
      const message = `the file name is not valid UTF-8 (its bytes, in hex: ${claimed.nameHex}); it is kept as ${JSON.stringify(claimed.name)}, each invalid byte as %XX`;
      report = unprocessed(new SluiceError('NAME_INVALID', message, { file: claimed.name }));
    } else if (pipeline === undefined) {
      report = unprocessed(new SluiceError('NO_PIPELINE', `no pipeline matches the file name ${JSON.stringify(claimed.name)}`, { file: claimed.name }));
    } else {
      const settings = forFile(pipes.settings.get(pipeline.name)!, pipeline, claimed, this.claims.instanceId);
      report = await this.processWithRetries(claimed, settings, signal, slot);
    }
    const err = report.error;
    if (err?.code === 'SINK_UNAVAILABLE' && pipeline !== undefined) {
      this.markDown(pipeline, { kind: 'claimed', claimed }, err);
      return;
    }
    if (err?.code === 'ABORTED') {
      this.putBack++;
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
        ...(staged.output?.table === undefined
          ? []
          : [{ role: 'output' as const, table: staged.output.table, rows: staged.output.rows, bytes: staged.output.bytes }]),
        ...(staged.rejects?.file === undefined ? [] : [{ role: 'rejects' as const, file: staged.rejects.file, rows: staged.rejects.rows }]),
      ],
      rows: report.rows,
      startedAt: startedAt.toISOString(),
      durationMs: report.durationMs,
      ...(staged.output?.publish === undefined ? {} : { db: true }),
      ...(err === undefined
        ? {}
        : {
            error: {
              code: err.code,
              message: err.message,
              ...(err.line === undefined ? {} : { line: err.line }),
              ...(err.field === undefined ? {} : { field: err.field }),
              ...(report.readBeforeFailure ? { readBeforeFailure: report.readBeforeFailure } : {}),
            },
          }),
    };
    return () => this.commitOutcome(claimed, record, report, staged, pipeline);
  }

  private async commitOutcome(
    claimed: ClaimedFile,
    record: CommitRecord,
    report: FileReport,
    staged: NonNullable<FileReport['staged']>,
    pipeline: PipelineConfig | undefined,
  ): Promise<void> {
    const err = report.error;
    failpoint('before-commit-record');
    let receipt: Receipt;
    try {
      receipt = await this.commitWithRetries(claimed, record, staged.output);
    } catch (e) {
      if (e instanceof SluiceError && e.code === 'SINK_UNAVAILABLE' && pipeline !== undefined) {
        // the COMMIT's fate is unknown: the record stays, and is resolved with the database once it is back
        this.markDown(pipeline, { kind: 'claimed', claimed }, e);
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
    this.checkArchivedSize(receipt, record);
    for (const o of receipt.outputs) if (o.role === 'output') report.output = o.path;
    for (const o of receipt.outputs) if (o.role === 'rejects') report.rejects = o.path;
    const published = receipt.outputs.find((o) => o.role === 'output')?.path;
    const file = staged.output?.file;
    const renamed = published !== undefined && file !== undefined && !published.endsWith(`/${file.name}`);
    if (report.outcome === 'succeeded') {
      this.log.info('file processed', {
        ...logFields(report),
        archived: receipt.input,
        ...(renamed ? { note: 'the output name was taken: published under a numbered name' } : {}),
      });
    } else {
      this.failedCount++;
      this.log.error('file failed', { ...logFields(report), failed: receipt.input, code: err?.code, error: err?.message, line: err?.line });
    }
    this.tally(report);
    this.hooks.onFileDone?.(report);
  }

  /** What this run did so far: files by outcome, rows, bytes (the --once summary line). */
  readonly totals = { succeeded: 0, failed: 0, rows: { read: 0, written: 0, filtered: 0, rejected: 0 }, bytesRead: 0, bytesWritten: 0 };

  private tally(r: FileReport): void {
    const t = this.totals;
    t[r.outcome]++;
    for (const k of ['read', 'written', 'filtered', 'rejected'] as const) t.rows[k] += r.rows[k];
    t.bytesRead += r.bytesRead;
    t.bytesWritten += r.bytesWritten;
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
      this.failedCount++;
      this.log.error('the input grew while it was committed: the archived file holds bytes the output does not', {
        file: record.file,
        code: 'INPUT_CHANGED',
        archived: receipt.input,
        readBytes: record.input.size,
        archivedBytes: size,
      });
    }
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
      const errno = report.error?.code === 'WRITE_FAILED' ? errnoOf(report.error.cause) : undefined;
      const changed = report.error?.code === 'INPUT_CHANGED';
      // a folder removed while running (out/, rejects/) is made again, and the file retried at once
      const remade = errno === 'ENOENT' && this.remakeFolders();
      const transient = changed || remade || isTransient(errno);
      if (!transient || attempt >= attempts) return report;
      const delay = remade ? 0 : backoff(backoffMs, attempt);
      this.log.warn(changed ? 'the input changed while it was read; it will be read again' : 'writing failed; the file will be retried', {
        file: claimed.name,
        ...(changed ? {} : { errno }),
        attempt,
        of: attempts,
        retryInMs: delay,
      });
      if (isDiskFull(errno)) this.pauseForDisk(report.input?.size ?? 0);
      // no parsing slot is held while waiting; the next attempt parses, so it takes one again
      slot.release();
      if (!(await abortableDelay(delay, signal)))
        return { ...report, error: new SluiceError('ABORTED', 'stopped while waiting to retry', { file: claimed.name }) };
      await slot.acquire();
    }
  }

  private async handleRefusedAtCommit(claimed: ClaimedFile, record: CommitRecord, e: SluiceError): Promise<void> {
    const failed: CommitRecord = {
      ...record,
      outcome: 'failed',
      staged: [],
      rows: { read: 0, written: 0, filtered: 0, rejected: 0 },
      error: { code: e.code, message: e.message, ...(e.line === undefined ? {} : { line: e.line }) },
    };
    delete failed.db;
    const receipt = await this.committer.commit(claimed, failed);
    this.failedCount++;
    this.log.error('file failed', { file: claimed.name, pipeline: record.pipeline, failed: receipt.input, code: e.code, error: e.message });
  }

  /** The database of a pipeline is unreachable: its files wait (no slot held) until a probe succeeds. */
  private markDown(pipeline: PipelineConfig, job: Job, error?: SluiceError): void {
    if (this.down.get(pipeline.name)?.gaveUp === true) {
      this.putBackWaiting(pipeline.name, [job]);
      return;
    }
    if (this.once && job.kind === 'claimed') {
      // still to be done: the end of this attempt must not count it as finished
      this.pending?.add(`claim:${job.claimed.claimId}`);
      this.parked.add(`claim:${job.claimed.claimId}`);
    }
    let d = this.down.get(pipeline.name);
    if (d === undefined) {
      d = { jobs: [], delay: this.cfg.retry.backoffMs, output: pipeline.output };
      this.down.set(pipeline.name, d);
      this.hooks.onSinkUp?.(pipeline.name, false);
      // why, in the driver's words: the code and host:port (pg's messages never hold a password)
      this.log.error('the database is unavailable: files of this pipeline wait until it is back', {
        pipeline: pipeline.name,
        code: 'SINK_UNAVAILABLE',
        ...(error === undefined ? {} : { error: error.message }),
        ...(this.once ? { maxWaitMs: this.cfg.maxWaitMs } : {}),
      });
      const state = d;
      // a batch job waits at most maxWaitMs (--max-wait), then puts the files back and ends
      if (this.once) state.giveUp = setTimeout(() => this.giveUpOn(pipeline.name), this.cfg.maxWaitMs);
      const gaveUp = (): boolean => state.gaveUp === true;
      const retry = async (): Promise<void> => {
        if (this.stopping || gaveUp()) return;
        const out = pipeline.output;
        if (out.format === 'postgres' && (await (await import('../sinks/postgres.js')).probe(out))) {
          if (gaveUp()) return;
          clearTimeout(state.giveUp);
          // by identity: after a reload this entry may wait under another key, and a new one under its name
          for (const [k, v] of this.down) if (v === state) this.down.delete(k);
          this.hooks.onSinkUp?.(pipeline.name, true);
          this.hooks.onSinkWaiting?.(pipeline.name, 0);
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
    this.hooks.onSinkWaiting?.(pipeline.name, d.jobs.length);
  }

  /** --once: the sink stayed down past maxWaitMs; its files go back to the inbox, and the run ends without them. */
  private giveUpOn(name: string): void {
    const d = this.down.get(name);
    if (d === undefined) return;
    d.gaveUp = true;
    clearTimeout(d.timer);
    this.log.error('the database stayed unavailable past --max-wait: its files go back to the inbox', {
      pipeline: name,
      code: 'SINK_UNAVAILABLE',
      maxWaitMs: this.cfg.maxWaitMs,
      files: d.jobs.length,
    });
    const jobs = d.jobs;
    d.jobs = [];
    this.putBackWaiting(name, jobs);
  }

  /** Files that waited for a sink a batch job gave up on: claimed ones back to the inbox (unless a record holds them). */
  private putBackWaiting(name: string, jobs: Job[]): void {
    void (async () => {
      for (const j of jobs) {
        this.putBack++;
        if (j.kind === 'name') {
          this.done(j.name);
          continue;
        }
        const key = `claim:${j.claimed.claimId}`;
        this.parked.delete(key);
        // a record means the COMMIT's fate is unknown: it stays claimed, resolved by the next run
        if ((await this.committer.pending(j.claimed).catch(() => undefined)) === undefined) {
          const back = await this.claims.release(j.claimed).catch(() => undefined);
          if (back !== undefined)
            this.log.warn('file put back in the inbox: its database stayed unavailable', { file: j.claimed.name, pipeline: name, inbox: back });
        }
        this.done(key);
      }
      this.hooks.onSinkWaiting?.(name, 0);
    })();
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
        const errno = errnoOf(err);
        // every step is idempotent: a folder removed meanwhile (archive/, failed/, out/) is made again and the commit goes on
        const remade = errno === 'ENOENT' && this.remakeFolders();
        if ((!remade && !isTransient(errno)) || attempt >= attempts) throw err;
        const delay = remade ? 0 : backoff(backoffMs, attempt);
        this.log.warn('publishing failed; it will be retried', { file: claimed.name, errno, attempt, of: attempts, retryInMs: delay });
        if (isDiskFull(errno)) this.pauseForDisk(record.input.size);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /**
   * Stops claiming until the output and state folders have room again for what failed: the file that hit the
   * full disk (`need`: its input's size, an estimate of its outputs), at least 1 MiB, at most
   * `retry.minFreeBytes` and half the smallest filesystem's size (on a filesystem smaller than
   * minFreeBytes, a fixed threshold would never be reached). Checked every `retry.diskCheckMs`.
   */
  private pauseForDisk(need: number): void {
    this.diskNeed = Math.max(this.diskNeed, need);
    if (this.diskFull !== undefined) return;
    this.log.error('disk full: no new files are claimed until space returns', { out: this.cfg.out });
    this.hooks.onDiskFull?.(true);
    this.diskFull = new Promise<void>((resolve) => {
      const check = async (): Promise<void> => {
        const dirs = [this.cfg.out, this.cfg.rejects, this.cfg.state];
        const space = await Promise.all(
          dirs.map(async (d) => {
            const s = await statfs(d);
            return { free: s.bavail * s.bsize, size: s.blocks * s.bsize };
          }),
        ).catch(() => [{ free: 0, size: 0 }]);
        const free = Math.min(...space.map((x) => x.free));
        const wanted = Math.min(this.cfg.retry.minFreeBytes, Math.max(this.diskNeed, 1024 * 1024), Math.min(...space.map((x) => x.size)) / 2);
        if (free >= wanted || this.stopping) {
          this.diskFull = undefined;
          this.diskNeed = 0;
          this.hooks.onDiskFull?.(false);
          this.log.info('disk space is back: claiming files again', { freeBytes: free });
          resolve();
        } else setTimeout(() => void check(), this.cfg.retry.diskCheckMs).unref();
      };
      setTimeout(() => void check(), this.cfg.retry.diskCheckMs).unref();
    });
  }

  /** What the file that filled the disk needed (see pauseForDisk). */
  private diskNeed = 0;

  /**
   * Makes again the folders a running daemon writes in, if one was removed (by hand, by a cleanup job).
   * True if one was missing. Synchronous: a few name operations, and rare.
   */
  private remakeFolders(): boolean {
    let made = false;
    for (const [key, dir] of Object.entries({ out: this.cfg.out, rejects: this.cfg.rejects, archive: this.cfg.archive, failed: this.cfg.failed })) {
      try {
        lstatSync(dir);
      } catch {
        try {
          mkdirSync(dir, { recursive: true });
          made = true;
          this.log.warn('a folder was missing: made it again', { folder: key, dir });
        } catch (err) {
          this.log.error('a folder is missing and cannot be made again', { folder: key, dir, error: String(err) });
        }
      }
    }
    return made;
  }

  /** A job ended (or its file vanished from the inbox, `gone`). */
  private done(key: string, gone = false): void {
    if (this.once) {
      this.pending?.delete(key);
      // done when every file found is; or, stopping, when nothing runs any more (the rest stays in the inbox)
      if (this.pending?.size !== 0 && !(this.stopping && this.running.size === 0)) return;
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
}

/** One file's hold on a permit of a semaphore: released at most once per acquire, whatever the path. */
class Slot {
  private held = false;
  /** `first`: its first acquire goes ahead of those waiting (see enqueueClaimed). */
  constructor(
    private readonly permits: Semaphore,
    private first = false,
  ) {}
  async acquire(): Promise<void> {
    if (this.held) return;
    await this.permits.acquire(this.first);
    this.first = false;
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
  /** `first`: ahead of everyone waiting. */
  async acquire(first = false): Promise<void> {
    if (this.permits > 0) {
      this.permits--;
      return;
    }
    await new Promise<void>((resolve) => (first ? this.waiting.unshift(resolve) : this.waiting.push(resolve)));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.permits++;
  }
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

/** A file's size, or 0 if it is gone (or has a name that is not UTF-8). */
function sizeOf(path: string): number {
  try {
    return lstatSync(path).size;
  } catch {
    return 0;
  }
}

/** The settings of every pipeline of a configuration. */
async function buildSettings(cfg: SluiceConfig): Promise<Map<string, PipelineSettings>> {
  const settings = new Map<string, PipelineSettings>();
  for (const [i, p] of cfg.pipelines.entries()) settings.set(p.name, await pipelineSettings(cfg, p, i));
  return settings;
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

/**
 * Creates the folders and checks that inputs only ever move within one filesystem. A batch job (`once`)
 * creates only the folders left to their defaults: one it was given that is missing is a typo, not a
 * folder to make (DIR_MISSING, and nothing is created).
 */
export async function prepareFolders(cfg: SluiceConfig, once = false): Promise<void> {
  const all = { watch: cfg.watch, out: cfg.out, rejects: cfg.rejects, archive: cfg.archive, failed: cfg.failed, state: cfg.state };
  if (once) {
    const missing = (Object.entries(all) as Array<[keyof typeof all, string]>).filter(
      ([key, dir]) => key !== 'state' && cfg.given.has(key) && !existsSync(dir),
    );
    if (missing.length > 0) {
      throw new SluiceError(
        'DIR_MISSING',
        `${missing.map(([k, dir]) => `${k} folder ${dir}`).join(', ')} ${missing.length > 1 ? 'do' : 'does'} not exist (a --once run creates only the default folders)`,
        { field: missing[0]![0] },
      );
    }
  }
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
