// Outputs that are down: a pipeline whose output (a database) is unreachable parks its files, without
// holding a slot, and probes the output with a growing wait; when a probe succeeds the files go again.
// A batch job waits at most maxWaitMs, then gives its files up.
import type { SluiceError } from '../errors.js';
import type { Logger } from '../log.js';
import type { OutputDriver } from '../outputs/driver.js';
import { type OutputConfig, outputDriver } from '../outputs/registry.js';
import type { DaemonHooks } from './hooks.js';

export interface OutageOptions<J> {
  log: Logger;
  hooks: Pick<DaemonHooks, 'onSinkUp' | 'onSinkWaiting'>;
  /** The wait before the first probe (ms): retry.backoffMs as configured now; it doubles, up to 30 s. */
  backoffMs: () => number;
  /** A batch job waits at most this long (ms) for an output (as configured when the outage begins); undefined: a daemon waits as long as it takes. */
  maxWaitMs: () => number | undefined;
  stopping: () => boolean;
  /** A job is parked (it waits for its output). */
  onParked?: (job: J) => void;
  /** The output is back: the job goes again. */
  resume: (job: J) => void;
  /** A batch job's wait is over (maxWaitMs): the jobs of that pipeline are given up; `what` names its output. */
  giveUp: (pipeline: string, jobs: J[], what: string) => void;
  /** The output's driver, by its config (the registry's; replaceable in tests). */
  driver?: (output: OutputConfig) => Pick<OutputDriver<OutputConfig>, 'remote'>;
}

/** A pipeline the output of which is down, with the jobs that wait for it. */
interface Outage<J> {
  pipeline: string;
  output: OutputConfig;
  what: string;
  jobs: J[];
  delay: number;
  /** How long a batch job waits for it, fixed when it began. */
  maxWaitMs?: number;
  timer?: NodeJS.Timeout;
  giveUpTimer?: NodeJS.Timeout;
  /** Given up (a batch job past maxWaitMs) or retired (a reload): its probe loop ends, new jobs are given up. */
  over?: boolean;
}

const MAX_PROBE_DELAY_MS = 30_000;

export class SinkOutages<J> {
  /** By pipeline name (after a reload, an old entry may wait under another key). */
  private readonly down = new Map<string, Outage<J>>();

  constructor(private readonly opts: OutageOptions<J>) {}

  /** Is the output of `pipeline` down (its files wait rather than run)? */
  isDown(pipeline: string): boolean {
    return this.down.has(pipeline);
  }

  /** The output of `pipeline` is unreachable (`error` says why): `job` waits until a probe succeeds. */
  park(pipeline: { name: string; output: OutputConfig }, job: J, error?: SluiceError): void {
    const existing = this.down.get(pipeline.name);
    if (existing?.over === true) {
      this.opts.giveUp(pipeline.name, [job], existing.what);
      return;
    }
    this.opts.onParked?.(job);
    const outage = existing ?? this.begin(pipeline, error);
    outage.jobs.push(job);
    this.opts.hooks.onSinkWaiting?.(pipeline.name, outage.jobs.length);
  }

  private begin(pipeline: { name: string; output: OutputConfig }, error: SluiceError | undefined): Outage<J> {
    const { log, hooks } = this.opts;
    const maxWaitMs = this.opts.maxWaitMs();
    const remote = (this.opts.driver ?? outputDriver)(pipeline.output).remote;
    const outage: Outage<J> = { pipeline: pipeline.name, output: pipeline.output, what: remote?.what ?? 'the output', jobs: [], delay: this.opts.backoffMs() };
    this.down.set(pipeline.name, outage);
    hooks.onSinkUp?.(pipeline.name, false);
    // why, in the driver's words: for a database the code and host:port (pg's messages never hold a password)
    log.error(`${outage.what} is unavailable: files of this pipeline wait until it is back`, {
      pipeline: pipeline.name,
      code: 'SINK_UNAVAILABLE',
      ...(error === undefined ? {} : { error: error.message }),
      ...(maxWaitMs === undefined ? {} : { maxWaitMs }),
    });
    if (maxWaitMs !== undefined) {
      outage.maxWaitMs = maxWaitMs;
      outage.giveUpTimer = setTimeout(() => this.giveUp(outage), maxWaitMs);
    }
    const over = (): boolean => outage.over === true;
    const probe = async (): Promise<void> => {
      if (this.opts.stopping() || over()) return;
      const up = remote === undefined ? true : await remote.probe(pipeline.output);
      if (over()) return;
      if (up) return this.back(outage);
      outage.delay = Math.min(outage.delay * 2, MAX_PROBE_DELAY_MS);
      log.warn(`${outage.what} is still unavailable`, { pipeline: pipeline.name, retryInMs: outage.delay, waiting: outage.jobs.length });
      outage.timer = setTimeout(() => void probe(), outage.delay);
    };
    outage.timer = setTimeout(() => void probe(), outage.delay);
    return outage;
  }

  private back(outage: Outage<J>): void {
    clearTimeout(outage.giveUpTimer);
    // by identity: after a reload this entry may wait under another key, and a new one under its name
    for (const [k, v] of this.down) if (v === outage) this.down.delete(k);
    this.opts.hooks.onSinkUp?.(outage.pipeline, true);
    this.opts.hooks.onSinkWaiting?.(outage.pipeline, 0);
    this.opts.log.info(`${outage.what} is back: loading the waiting files`, { pipeline: outage.pipeline, files: outage.jobs.length });
    for (const j of outage.jobs) this.opts.resume(j);
  }

  /** A batch job waited maxWaitMs: the files go back, and later ones of this pipeline at once. */
  private giveUp(outage: Outage<J>): void {
    outage.over = true;
    clearTimeout(outage.timer);
    this.opts.log.error(`${outage.what} stayed unavailable past --max-wait: its files go back to the inbox`, {
      pipeline: outage.pipeline,
      code: 'SINK_UNAVAILABLE',
      maxWaitMs: outage.maxWaitMs,
      files: outage.jobs.length,
    });
    const jobs = outage.jobs;
    outage.jobs = [];
    this.opts.giveUp(outage.pipeline, jobs, outage.what);
  }

  /**
   * After a reload: the files waiting for a pipeline whose output the new configuration changed or removed
   * are returned, to be routed again (a fixed URL, another output), except those `stays` keeps (a load whose
   * commit may have happened: only the old output can say), which go on waiting for the old output.
   */
  async reroute(pipelines: ReadonlyArray<{ name: string; output: OutputConfig }>, stays: (job: J) => Promise<boolean>): Promise<J[]> {
    const again: J[] = [];
    for (const [name, outage] of [...this.down]) {
      const now = pipelines.find((p) => p.name === name);
      if (outage.over === true || (now !== undefined && JSON.stringify(now.output) === JSON.stringify(outage.output))) continue;
      const stay: J[] = [];
      const go: J[] = [];
      for (const j of outage.jobs) ((await stays(j)) ? stay : go).push(j);
      this.opts.log.info('the configuration changed a pipeline whose sink was down: its waiting files are routed again', {
        pipeline: name,
        files: go.length,
        ...(stay.length > 0 ? { waitingForTheOldOutput: stay.length } : {}),
      });
      this.down.delete(name);
      this.opts.hooks.onSinkUp?.(name, true);
      this.opts.hooks.onSinkWaiting?.(name, 0);
      outage.jobs = stay;
      if (stay.length > 0) this.down.set(`${name} (before the reload)`, outage);
      else this.retire(outage);
      again.push(...go);
    }
    return again;
  }

  private retire(outage: Outage<J>): void {
    outage.over = true;
    clearTimeout(outage.timer);
    clearTimeout(outage.giveUpTimer);
  }

  /** Stops every probe; returns the jobs that were waiting. */
  stop(): J[] {
    const jobs: J[] = [];
    for (const outage of this.down.values()) {
      this.retire(outage);
      jobs.push(...outage.jobs);
      outage.jobs = [];
    }
    return jobs;
  }
}
