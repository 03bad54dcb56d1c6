// A stand-in for the worker pool in unit tests of cut files: one "worker" that runs its slices in this thread.
import type { PipelineSettings } from '../../src/pipeline/process-file.js';
import { runSlice, type SliceSpec } from '../../src/pipeline/slice.js';
import type { TaskRequest, WorkerPool } from '../../src/workers/pool.js';
import { sliceToData } from '../../src/workers/protocol.js';

/**
 * A pool of one "worker" that runs each slice here with the settings of its file, and answers through the
 * workers' data protocol as postMessage would (structured clone: Buffers arrive as Uint8Arrays). It counts
 * as ready from the start with `ready: true`, else only once `ready()` is called (a worker still starting).
 */
export function fakePool(settingsOf: (name: string) => PipelineSettings, options: { ready?: boolean } = {}) {
  let isReady = options.ready === true;
  let tasks = 0;
  const pool = {
    size: 1,
    get ready() {
      return isReady ? 1 : 0;
    },
    start() {},
    giveSlabs() {},
    async run(msg: TaskRequest, opts: { signal?: AbortSignal | undefined }) {
      tasks++;
      if (msg.t !== 'slice') throw new Error('only slices here');
      const r = await runSlice(msg.path, msg.name, settingsOf(msg.name), msg.spec as SliceSpec, {}, opts.signal);
      return structuredClone(sliceToData(r));
    },
  };
  return { pool: pool as unknown as WorkerPool, ready: () => (isReady = true), tasks: () => tasks };
}
