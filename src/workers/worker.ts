// A worker thread: runs whole files (to staged outputs) and slices of large ones (to bytes in memory) with
// the pipelines it builds from the configuration the main thread sends. It claims, commits and counts
// nothing: the main thread does, from what it answers.
import { parentPort, workerData } from 'node:worker_threads';
import type { SluiceConfig } from '../config/load.js';
import { SluiceError } from '../errors.js';
import { failpointArmed, useFailpointMemory } from '../failpoint.js';
import { giveSlabs } from '../fs/slabs.js';
import { type PipelineHooks, type PipelineSettings, processFile } from '../pipeline/process-file.js';
import { pipelineSettings, settingsForFile } from '../pipeline/settings.js';
import { runSlice } from '../pipeline/slice.js';
import { errorToData, type FromWorker, reportToData, sliceToData, type TaskEvent, type ToWorker } from './protocol.js';

const port = parentPort;
if (port === null) throw new Error('sluice: workers/worker.js runs as a worker thread');
const data = workerData as { index: number; failpoints?: SharedArrayBuffer };
useFailpointMemory(data.failpoints);

const configs = new Map<number, SluiceConfig>();
/** Settings per configuration generation and pipeline index, built on first use. */
const built = new Map<string, Promise<PipelineSettings>>();
const running = new Map<number, AbortController>();
let tasks = 0;

function settingsFor(gen: number, index: number): Promise<PipelineSettings> {
  const key = `${gen}:${index}`;
  let s = built.get(key);
  if (s === undefined) {
    const cfg = configs.get(gen);
    if (cfg === undefined) return Promise.reject(new SluiceError('INTERNAL', `a task for configuration ${gen}, which this worker was not given`));
    s = pipelineSettings(cfg, cfg.pipelines[index]!, index);
    built.set(key, s);
  }
  return s;
}

/** How often (ms) a task's progress is sent at most: a message per batch costs more than the batch's count. */
const EVENT_MS = 25;

/** Hooks that send their events to the main thread, coalesced (at most one message per EVENT_MS). */
function eventHooks(id: number): PipelineHooks & { flush(): void } {
  let inFlight = 0;
  let bytes = 0;
  let batches: Array<[number, number]> = [];
  let last = performance.now();
  const send = (extra: Partial<TaskEvent>): void => {
    const ev: TaskEvent = { inFlight, bytes, ...(batches.length > 0 ? { batches } : {}), ...extra };
    inFlight = 0;
    bytes = 0;
    batches = [];
    last = performance.now();
    port!.postMessage({ t: 'ev', id, ev } satisfies FromWorker);
  };
  return {
    onInFlight: (d) => (inFlight += d),
    onBytesRead: (n) => (bytes += n),
    onBatchWritten: (rows, seconds) => {
      batches.push([rows, seconds]);
      if (performance.now() - last >= EVENT_MS) send({});
    },
    onParsed: () => send({ parsed: true }),
    flush: () => {
      if (inFlight !== 0 || bytes !== 0 || batches.length > 0) send({});
    },
  };
}

async function run(m: Extract<ToWorker, { t: 'file' | 'slice' }>): Promise<unknown> {
  const controller = new AbortController();
  running.set(m.id, controller);
  const hooks = eventHooks(m.id);
  try {
    const settings = settingsForFile(await settingsFor(m.gen, m.pipeline), m.per);
    if (m.t === 'file') {
      const report = await processFile(m.path, m.name, settings, hooks, controller.signal);
      return reportToData(report);
    }
    return sliceToData(await runSlice(m.path, m.name, settings, m.spec, hooks, controller.signal));
  } finally {
    hooks.flush();
    running.delete(m.id);
  }
}

port.postMessage({ t: 'ready' } satisfies FromWorker);

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'config':
      configs.set(m.gen, m.cfg);
      return;
    case 'forget':
      // the pool sends no more tasks of it without its config again (workers/pool.ts sendConfig)
      configs.delete(m.gen);
      for (const key of built.keys()) if (key.startsWith(`${m.gen}:`)) built.delete(key);
      return;
    case 'abort':
      running.get(m.id)?.abort();
      return;
    case 'slabs':
      // a slice's output written by the main thread: its memory is reused for the next
      giveSlabs(m.slabs);
      return;
    default: {
      // a test's way to make a worker die under its first task (the first worker only, so a retry succeeds)
      if (++tasks === 1 && failpointArmed('worker-exit') && data.index === 0) process.exit(70);
      run(m).then(
        (value) => {
          const transfer = m.t === 'slice' ? (value as { output: Uint8Array[] }).output.map((v) => v.buffer as ArrayBuffer) : [];
          port.postMessage({ t: 'done', id: m.id, value } satisfies FromWorker, transfer);
        },
        (err: unknown) => {
          const e = err instanceof SluiceError ? err : new SluiceError('INTERNAL', String((err as Error)?.message ?? err), { file: m.name });
          port.postMessage({ t: 'failed', id: m.id, error: errorToData(e) } satisfies FromWorker);
        },
      );
    }
  }
});
