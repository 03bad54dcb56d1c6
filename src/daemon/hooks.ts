// What the daemon tells its observers (metrics, a progress display): one callback per event, all optional.
import type { FileReport, PipelineHooks } from '../pipeline/process-file.js';

export interface DaemonHooks extends PipelineHooks {
  /** A file finished (either way). */
  onFileDone?: (report: FileReport) => void;
  /** The number of files being processed changed by `delta`. */
  onFilesInFlight?: (delta: number) => void;
  /** Claiming paused (true) because the disk is full, or resumed (false). */
  onDiskFull?: (full: boolean) => void;
  /** A pipeline's output became unreachable (false) or reachable again (true). */
  onSinkUp?: (pipeline: string, up: boolean) => void;
  /** A worker thread died under its work and was replaced. */
  onWorkerDied?: () => void;
  /** The worker threads alive and loaded are now `workers`. */
  onWorkerThreads?: (workers: number) => void;
  /** This instance adopted `claims` claims of instances that died. */
  onAdopted?: (claims: number) => void;
  /** --once: the files it found to do, and their bytes (for a progress display; sizes are taken only if set). */
  onWorkFound?: (files: number, bytes: number) => void;
  /** `files` files of a pipeline wait for its sink to be reachable again. */
  onSinkWaiting?: (pipeline: string, files: number) => void;
}
