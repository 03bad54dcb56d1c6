// The daemon: prepares the folders, adopts and recovers unfinished claims, claims settled inbox files and
// runs each to its commit (daemon/file-job.ts) up to `concurrency` at once, and drains on stop. It knows
// outputs only through their drivers: a file whose output is down waits (daemon/sink-outage.ts).
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { defer, mergeMap, Subject, type Subscription } from 'rxjs';
import type { SluiceConfig } from '../config/load.js';
import { Claims, type ClaimedFile } from '../inbox/claims.js';
import { Inbox } from '../inbox/inbox.js';
import type { Logger } from '../log.js';
import { noRows } from '../outcome.js';
import type { FileReport, PipelineSettings } from '../pipeline/process-file.js';
import { createRouter } from '../pipeline/route.js';
import { pipelineSettings } from '../pipeline/settings.js';
import { BatchRun, claimKey } from './batch-run.js';
import { Committer } from './commit.js';
import { DiskPause } from './disk-pause.js';
import { prepareFolders } from './folders.js';
import type { DaemonHooks } from './hooks.js';
import { Instances } from './instances.js';
import { Ledger } from './ledger.js';
import { adoptAndRecover, type RecoveryDeps, removeRunTemps } from './recovery.js';
import { Semaphore, Slot } from './scheduler.js';
import { SinkOutages } from './sink-outage.js';
import { WorkerPool } from '../workers/pool.js';
import { FileRunner } from '../workers/runner.js';
import { FileJobs, type Job, type Pipes } from './file-job.js';

/** Files past their parsing (syncing their outputs, committing) at once, beside those being parsed. */
const COMMITS_IN_FLIGHT = 32;

const keyOf = (job: Job): string => (job.kind === 'name' ? job.name : claimKey(job.claimed));

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
  /** Pipelines whose output is unreachable, with the files waiting for it. */
  private readonly outages: SinkOutages<Job>;
  private readonly disk: DiskPause;
  /** Files being read and parsed: `concurrency` at once (see run). */
  private readonly parsing: Semaphore;
  private readonly jobs = new Subject<Job>();
  /** The pipelines files are routed to and run with; a reload (SIGHUP) swaps them whole. */
  private pipes: Pipes;
  /** Runs each claimed file to its commit (set by start(), with the claims). */
  private files!: FileJobs;
  private readonly running = new Map<string, AbortController>();
  private subscription: Subscription | undefined;
  private stopping = false;
  private failedCount = 0;
  private idle: Array<() => void> = [];
  /** --once: the files it found, and what became of them. */
  private readonly batch: BatchRun | undefined;
  ready = false;

  /** The worker threads (none with `workers: 1`), made at start. */
  private pool: WorkerPool | undefined;
  /** The configuration generation the pipelines were built from (the workers build theirs from it). */
  private gen = 0;

  constructor(
    private cfg: SluiceConfig,
    private readonly log: Logger,
    private readonly hooks: DaemonHooks = {},
    private readonly once = false,
    /** The worker threads' script: dist/worker.js for the command line; default the library's. */
    private readonly workerEntry: URL = new URL('../workers/worker.js', import.meta.url),
  ) {
    this.ledger = new Ledger(cfg.state, cfg.fsync);
    this.inbox = new Inbox(
      { dir: cfg.watch, settleMs: cfg.settleMs, rescanMs: cfg.rescanMs, watch: !once, poll: cfg.poll, pollIntervalMs: cfg.pollIntervalMs, log },
      (name, raw) => this.jobs.next({ kind: 'name', name, ...(raw === undefined ? {} : { raw }) }),
      (name) => this.done(name, true),
    );
    this.pipes = { router: createRouter(cfg.pipelines), settings: new Map(), configs: cfg.pipelines, gen: 0, cfg };
    this.parsing = new Semaphore(cfg.concurrency);
    this.batch = once ? new BatchRun() : undefined;
    this.outages = new SinkOutages<Job>({
      log,
      hooks,
      backoffMs: () => this.cfg.retry.backoffMs,
      // a batch job waits at most maxWaitMs (--max-wait), then puts the files back and ends
      maxWaitMs: () => (once ? this.cfg.maxWaitMs : undefined),
      stopping: () => this.stopping,
      // still to be done: the end of this attempt must not count it as finished
      onParked: (job) => job.kind === 'claimed' && this.batch?.park(claimKey(job.claimed)),
      resume: (job) => this.jobs.next(job),
      giveUp: (pipeline, jobs, what) => void this.putBackWaiting(pipeline, jobs, what),
    });
    this.disk = new DiskPause({
      dirs: [cfg.out, cfg.rejects, cfg.state],
      settings: () => this.cfg.retry,
      log,
      onDiskFull: hooks.onDiskFull,
      stopping: () => this.stopping,
    });
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
      'workers',
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
    const gen = ++this.gen;
    this.pipes = { router: createRouter(merged.pipelines), settings, configs: merged.pipelines, gen, cfg: merged };
    this.cfg = merged;
    // files waiting for an output the new configuration changed or removed are routed again; a claim with a
    // commit record keeps waiting for the old output, which alone can say whether its load committed
    const again = await this.outages.reroute(merged.pipelines, async (j) => j.kind === 'claimed' && (await this.mayHoldRecord(j.claimed)));
    for (const j of again) {
      if (j.kind === 'claimed') {
        this.batch?.unpark(claimKey(j.claimed));
        this.enqueueClaimed(j.claimed);
      } else this.jobs.next(j);
    }
    return kept;
  }

  /** Files that failed so far. */
  get failures(): number {
    return this.failedCount;
  }

  /** --once: files not done yet. */
  get filesLeft(): number {
    return this.batch?.left ?? 0;
  }

  /** --once: files found that did not get an outcome (never taken, or put back in the inbox by a stop). */
  get unfinished(): number {
    return this.batch?.unfinished ?? 0;
  }

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
    // the worker threads start with the first file that needs one (workers/runner.ts)
    if (this.cfg.workers > 1) {
      // the main thread is one of the `workers` (workers/lane.ts)
      this.pool = new WorkerPool(
        this.cfg.workers - 1,
        this.workerEntry,
        ({ index, error, starting }) => {
          if (starting) {
            this.log.error('a worker thread could not start: files are processed in the main thread', { worker: index, error });
            return;
          }
          this.log.error('a worker thread died; it is replaced', { worker: index, error });
          this.hooks.onWorkerDied?.();
        },
        (n) => this.hooks.onWorkerThreads?.(n),
      );
    }
    await this.prepare();
    await prepareFolders(this.cfg, this.once);
    const instances = await Instances.acquire(this.cfg.state, this.cfg.instanceId);
    this.instances = instances;
    this.claims = new Claims(this.cfg.state, instances.id, { inbox: this.cfg.watch });
    this.committer = new Committer(this.claims, this.ledger, { archive: this.cfg.archive, failed: this.cfg.failed }, this.cfg.fsync);
    this.files = new FileJobs({
      cfg: () => this.cfg,
      pipes: () => this.pipes,
      log: this.log,
      hooks: this.hooks,
      claims: this.claims,
      committer: this.committer,
      outages: this.outages,
      disk: this.disk,
      batch: this.batch,
      recoveryDeps: () => this.recoveryDeps(),
      failed: () => this.failedCount++,
      tally: (r) => this.tally(r),
      runner: new FileRunner(
        this.pool,
        () => this.cfg.sliceBytes,
        (run) => removeRunTemps([this.cfg.out, this.cfg.rejects], run.settings.tempTag, this.log),
        // the file asking holds one parsing permit
        () => this.parsing.queued > 0 || this.parsing.free < this.cfg.concurrency - 1,
      ),
    });
    await this.claims.init();
    // dead instances' claims join ours first; then everything in our folder is brought to an outcome
    const recovered = (await adoptAndRecover(instances, this.recoveryDeps(), { start: true, later: this.later }))!;
    for (const c of recovered.later) this.later.add(c.claimId);
    this.failedCount += recovered.failed;
    this.subscription = this.jobs
      .pipe(mergeMap((job) => defer(() => this.run(job)), this.cfg.concurrency + COMMITS_IN_FLIGHT))
      .subscribe({ error: (err: unknown) => this.log.error('internal error in the job loop', { error: String(err) }) });
    for (const c of recovered.redo) this.batch?.add(claimKey(c));
    for (const claimed of recovered.redo) this.enqueueClaimed(claimed);
    if (this.batch !== undefined) {
      const found = await this.inbox.scan();
      for (const n of found) this.batch.add(n);
      // their sizes only for someone who shows progress: a stat per file is not free with thousands
      if (this.hooks.onWorkFound !== undefined) {
        this.hooks.onWorkFound(
          this.batch.left,
          found.reduce((sum, n) => sum + sizeOf(join(this.cfg.watch, n)), 0),
        );
      }
      if (this.batch.left === 0) this.wake();
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

  private recoveryDeps(): RecoveryDeps & { onAdopted?: (claims: number) => void } {
    return {
      claims: this.claims,
      committer: this.committer,
      log: this.log,
      tempDirs: [this.cfg.out, this.cfg.rejects, this.cfg.failed],
      ...(this.hooks.onAdopted === undefined ? {} : { onAdopted: this.hooks.onAdopted }),
    };
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
      const later = new Set(this.later);
      const recovered = await adoptAndRecover(this.instances, this.recoveryDeps(), { start: false, later });
      if (recovered === undefined) return;
      for (const id of later) this.later.delete(id);
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
    if (this.batch === undefined || this.batch.left === 0) return;
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
    // claimed files that were queued and never started, or waited for their output, go back to the inbox
    // (unless a commit record holds them: its fate is resolved by the next start)
    const waiting = this.outages.stop().flatMap((j) => (j.kind === 'claimed' ? [j.claimed] : []));
    for (const c of [...this.queued.values(), ...waiting]) {
      if (await this.mayHoldRecord(c)) continue;
      await this.claims.release(c).catch(() => undefined);
    }
    this.queued.clear();
    await this.ledger.close();
    // the spare record files go, so that a clean stop leaves an empty claim folder (removed just below)
    this.committer?.close();
    this.instances?.retire(this.claims.dir);
    this.subscription?.unsubscribe();
    this.jobs.complete();
    await this.pool?.close();
  }

  /**
   * Whether a commit record may hold the claim: it has one, or one that cannot be read now (a damaged
   * record, no file descriptors left). Such a claim is never put back in the inbox: its load may have
   * committed, and only the next start, asking its output, can tell.
   */
  private async mayHoldRecord(claimed: ClaimedFile): Promise<boolean> {
    try {
      return (await this.committer.pending(claimed)) !== undefined;
    } catch {
      return true;
    }
  }

  /**
   * One file, from claim to commit. The job loop lets `concurrency + COMMITS_IN_FLIGHT` files be claimed at
   * once, and `concurrency` of them be read and parsed (the CPU part): a file gives its parsing slot back as
   * soon as its rows are written, so the waits on the disk that follow (fsync of its outputs, the commit)
   * run beside the next files instead of holding their place.
   */
  private async run(job: Job, first = false): Promise<void> {
    if (job.kind === 'name' && this.disk.wait !== undefined) await this.disk.wait;
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
        // the output of its pipeline is down: the file stays in the inbox, taken when the output is back
        if (p !== undefined && this.outages.isDown(p.name)) {
          this.outages.park(p, job);
          return;
        }
      }
      let claimed: ClaimedFile | undefined;
      const key = keyOf(job);
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
        // --once: a claimed file that now waits for its output is not done (its name, if it had one, is)
        const parked = this.batch?.unpark(claimKey(c)) === true;
        if (!parked || key !== claimKey(c)) this.done(key);
      };
      internal = (err: unknown): void => {
        // not finished: for the exit code, a file that failed (it is redone at the next start)
        this.failedCount++;
        this.log.error('internal error while finishing a file; it stays claimed and is redone at restart', { file: c.name, error: String(err) });
      };
      try {
        commit = await this.files.handle(c, ac.signal, job.kind === 'name', slot);
      } catch (err) {
        internal(err);
      }
    } finally {
      slot.release();
    }
    if (commit !== undefined) await commit().catch(internal);
    finished();
  }

  /** Files that waited for an output a batch job gave up on: claimed ones back to the inbox (unless a record holds them). */
  private async putBackWaiting(pipeline: string, jobs: Job[], what: string): Promise<void> {
    for (const j of jobs) {
      this.batch?.putBackOne();
      if (j.kind === 'name') {
        this.done(j.name);
        continue;
      }
      const key = claimKey(j.claimed);
      this.batch?.unpark(key);
      // a record means the COMMIT's fate is unknown: it stays claimed, resolved by the next run
      if (!(await this.mayHoldRecord(j.claimed))) {
        const back = await this.claims.release(j.claimed).catch(() => undefined);
        if (back !== undefined)
          this.log.warn(`file put back in the inbox: ${what.replace(/^the /, 'its ')} stayed unavailable`, { file: j.claimed.name, pipeline, inbox: back });
      }
      this.done(key);
    }
    this.hooks.onSinkWaiting?.(pipeline, 0);
  }

  /** What this run did so far: files by outcome, rows, bytes (the --once summary line). */
  readonly totals = { succeeded: 0, failed: 0, rows: noRows(), bytesRead: 0, bytesWritten: 0 };

  private tally(r: FileReport): void {
    const t = this.totals;
    t[r.outcome]++;
    for (const k of ['read', 'written', 'filtered', 'rejected'] as const) t.rows[k] += r.rows[k];
    t.bytesRead += r.bytesRead;
    t.bytesWritten += r.bytesWritten;
  }

  /** A job ended (or its file vanished from the inbox, `gone`). */
  private done(key: string, gone = false): void {
    if (this.batch !== undefined) {
      this.batch.done(key);
      // done when every file found is; or, stopping, when nothing runs any more (the rest stays in the inbox)
      if (this.batch.left !== 0 && !(this.stopping && this.running.size === 0)) return;
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
