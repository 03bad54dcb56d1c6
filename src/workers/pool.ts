// A fixed set of worker threads, tasks taken in order. A worker parses one task at a time; once a task's
// rows are all written (it is staging: fsync, no CPU) the worker takes the next, up to a few at once. node:worker_threads and not
// piscina: a task here streams progress while it runs (rows in flight, batches, "all rows written", which
// frees the file's parsing slot) and is stopped by a message, so that it removes its temporary files;
// piscina's tasks return one value and are aborted by terminating their thread. A worker that dies (a
// crash, an exit, running out of memory) fails its task with WORKER_FAILED and is replaced.
import { Worker } from 'node:worker_threads';
import type { SluiceConfig } from '../config/load.js';
import { SluiceError } from '../errors.js';
import { failpointMemory } from '../failpoint.js';
import { errorFromData, type FromWorker, type TaskEvent, type ToWorker } from './protocol.js';

type TaskMessage = Extract<ToWorker, { t: 'file' | 'slice' }>;
/** A task as given to run (the pool numbers it). */
export type TaskRequest = TaskMessage extends infer M ? (M extends TaskMessage ? Omit<M, 'id'> : never) : never;

export interface TaskOptions {
  onEvent?: (ev: TaskEvent) => void;
  signal?: AbortSignal | undefined;
  /** The configuration of the task's generation: sent to the worker before the task if it lacks it. */
  config?: SluiceConfig;
}

interface Task {
  msg: TaskMessage;
  opts: TaskOptions;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  onAbort?: () => void;
}

/** The young generation (MB) of a worker's heap (see spawn). */
const YOUNG_GENERATION_MB = 16;

/** Tasks a worker holds at once (one parsing, the others staging). */
const TASKS_PER_WORKER = 8;

interface Slot {
  worker: Worker;
  /** It said it is ready (its code loaded): a worker that dies before is a broken install, not a crash. */
  ready: boolean;
  /** Its tasks by id. */
  tasks: Map<number, Task>;
  /** Of those, the ones still parsing (no "parsed" event yet): a worker takes a new task when none is. */
  parsing: Set<number>;
  /** Set once it exited or errored: never given work again. */
  dead: boolean;
  /** The configuration generations it holds, oldest first (the worker keeps what it is sent until told to forget). */
  gens: number[];
}

/** Generations a worker holds at most: more than its tasks at once, so one without a task can always go. */
const GENS_PER_WORKER = TASKS_PER_WORKER + 1;

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private nextId = 1;
  private spawned = 0;
  private started = false;
  private closed = false;
  /** A worker died before it was ready (its script cannot load): the pool takes no tasks. */
  broken = false;

  /**
   * `entry`: the worker's script (dist/worker.js for the command line, dist/workers/worker.js for the
   * library). `log`: told when a worker dies. No thread starts before the first task or `start()`: a run
   * that meets only small files never pays for one (a worker's start kept a `run --once` on an empty
   * inbox 0.12 s longer, 0.41 s against 0.29 s).
   */
  constructor(
    readonly size: number,
    private readonly entry: URL,
    private readonly onDeath: (info: { index: number; error: string; starting: boolean }) => void = () => undefined,
    /** Told the number of live, loaded workers when it changes (a gauge). */
    private readonly onLive: (workers: number) => void = () => undefined,
  ) {}

  /** Starts the threads (once): they load their code while the caller goes on. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    for (let i = 0; i < this.size; i++) this.slots.push(this.spawn());
  }

  /** Workers that have loaded their code and are alive: a task given now starts at once if one is idle. */
  get ready(): number {
    let n = 0;
    for (const s of this.slots) if (s.ready && !s.dead) n++;
    return n;
  }

  /** Runs a task on the first free worker; resolves with its value. Rejects with what it threw, ABORTED or WORKER_FAILED. */
  run(msg: TaskRequest, opts: TaskOptions = {}): Promise<unknown> {
    if (this.closed) return Promise.reject(new SluiceError('ABORTED', 'the workers are stopped'));
    if (this.broken) return Promise.reject(new SluiceError('WORKER_FAILED', 'no worker thread could start'));
    this.start();
    return new Promise((resolve, reject) => {
      const task: Task = { msg: { ...msg, id: this.nextId++ } as TaskMessage, opts, resolve, reject };
      const signal = opts.signal;
      if (signal?.aborted) {
        reject(new SluiceError('ABORTED', 'processing was stopped before it finished', { file: msg.name }));
        return;
      }
      if (signal !== undefined) {
        task.onAbort = () => this.abort(task);
        signal.addEventListener('abort', task.onAbort, { once: true });
      }
      this.queue.push(task);
      this.dispatch();
    });
  }

  /** Gives memory back to a worker (slabs of slice outputs, once written), in turn. */
  giveSlabs(slabs: ArrayBuffer[]): void {
    const live = this.slots.filter((s) => !s.dead);
    if (live.length === 0 || slabs.length === 0) return;
    const s = live[this.turn++ % live.length]!;
    s.worker.postMessage({ t: 'slabs', slabs } satisfies ToWorker, slabs);
  }

  private turn = 0;

  /**
   * Stops the workers (tasks still running fail with ABORTED). Their threads are ended without waiting:
   * an idle worker does not keep the process alive, and waiting for the end of a thread still loading its
   * code took some 70 ms at the exit of a batch run. `wait` waits (tests).
   */
  async close(wait = false): Promise<void> {
    this.closed = true;
    for (const t of this.queue.splice(0)) this.settle(t, new SluiceError('ABORTED', 'the workers are stopped', { file: t.msg.name }));
    const ended = this.slots.map((s) => {
      s.dead = true;
      for (const t of s.tasks.values()) this.settle(t, new SluiceError('ABORTED', 'the workers are stopped', { file: t.msg.name }));
      s.tasks.clear();
      s.worker.unref();
      return s.worker.terminate();
    });
    if (wait) await Promise.all(ended);
    else for (const e of ended) e.catch(() => undefined);
  }

  private spawn(): Slot {
    const index = this.spawned++;
    // fault injection (tests) counts its hits for the whole process
    // a smaller young generation than V8's default: measured, the same speed and some 40 MB less per worker
    const worker = new Worker(this.entry, {
      workerData: { index, failpoints: failpointMemory() },
      resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
    });
    const slot: Slot = { worker, ready: false, tasks: new Map(), parsing: new Set(), dead: false, gens: [] };
    worker.unref();
    worker.on('message', (m: FromWorker) => {
      if (m.t === 'ready') {
        slot.ready = true;
        this.onLive(this.ready);
        return;
      }
      const task = slot.tasks.get(m.id);
      if (task === undefined) return;
      if (m.t === 'ev') {
        task.opts.onEvent?.(m.ev);
        if (m.ev.parsed === true && slot.parsing.delete(m.id)) this.dispatch();
        return;
      }
      slot.tasks.delete(m.id);
      slot.parsing.delete(m.id);
      if (slot.tasks.size === 0) worker.unref();
      if (m.t === 'failed') this.settle(task, errorFromData(m.error));
      else this.settle(task, undefined, m.value);
      this.dispatch();
    });
    const died = (error: string): void => {
      if (slot.dead) return;
      slot.dead = true;
      if (slot.ready) this.onLive(this.ready);
      const tasks = [...slot.tasks.values()];
      slot.tasks.clear();
      if (this.closed) return;
      this.onDeath({ index, error, starting: !slot.ready });
      for (const task of tasks) {
        this.settle(task, new SluiceError('WORKER_FAILED', `the worker thread processing it died: ${error}`, { file: task.msg.name }));
      }
      if (!slot.ready) {
        // it could not even load its code: another would not either; files run in the main thread
        this.broken = true;
        for (const t of this.queue.splice(0)) this.settle(t, new SluiceError('WORKER_FAILED', `no worker thread could start: ${error}`, { file: t.msg.name }));
        return;
      }
      // replaced, so the pool keeps its size
      const i = this.slots.indexOf(slot);
      if (i !== -1) this.slots[i] = this.spawn();
      this.dispatch();
    };
    worker.on('error', (err) => died(err.message));
    worker.on('exit', (code) => died(`it exited with code ${code}`));
    return slot;
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.dead || slot.parsing.size > 0 || slot.tasks.size >= TASKS_PER_WORKER) continue;
      const task = this.queue.shift()!;
      this.sendConfig(slot, task);
      slot.tasks.set(task.msg.id, task);
      slot.parsing.add(task.msg.id);
      // a worker at work keeps the process alive; an idle one does not
      slot.worker.ref();
      slot.worker.postMessage(task.msg satisfies ToWorker);
    }
  }

  /**
   * Makes sure the worker holds the configuration of the task's generation (messages arrive in order): a
   * file keeps the generation it was taken with through reloads and retries, whatever the worker saw since.
   */
  private sendConfig(slot: Slot, task: Task): void {
    const gen = task.msg.gen;
    const cfg = task.opts.config;
    if (cfg === undefined || slot.gens.includes(gen)) return;
    if (slot.gens.length >= GENS_PER_WORKER) {
      const busy = new Set([...slot.tasks.values()].map((t) => t.msg.gen));
      // one is always free (a worker runs at most TASKS_PER_WORKER tasks); if not, it holds one more
      const i = slot.gens.findIndex((g) => !busy.has(g));
      if (i !== -1) {
        const [old] = slot.gens.splice(i, 1);
        slot.worker.postMessage({ t: 'forget', gen: old! } satisfies ToWorker);
      }
    }
    slot.gens.push(gen);
    slot.worker.postMessage({ t: 'config', gen, cfg } satisfies ToWorker);
  }

  private abort(task: Task): void {
    const queued = this.queue.indexOf(task);
    if (queued !== -1) {
      this.queue.splice(queued, 1);
      this.settle(task, new SluiceError('ABORTED', 'processing was stopped before it finished', { file: task.msg.name }));
      return;
    }
    // running: the worker stops it, removes what it wrote and answers as usual
    const slot = this.slots.find((s) => s.tasks.get(task.msg.id) === task);
    slot?.worker.postMessage({ t: 'abort', id: task.msg.id } satisfies ToWorker);
  }

  private settle(task: Task, err: unknown, value?: unknown): void {
    if (task.onAbort !== undefined) task.opts.signal?.removeEventListener('abort', task.onAbort);
    if (err !== undefined) task.reject(err);
    else task.resolve(value);
  }
}
