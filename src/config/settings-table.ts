// The settings that flags and SLUICE_* variables set, in one table: cli.ts's options and help, load.ts's variables.

/** How a flag's or a variable's text becomes the setting's value. */
export type SettingKind = 'text' | 'count' | 'duration';

/** One setting the command line (and perhaps the environment) may set. */
export interface SettingRow {
  /** The config path it sets, e.g. `metrics.port`. */
  readonly path: string;
  /** The flag without its dashes, e.g. `metrics-port` for `--metrics-port`. */
  readonly flag: string;
  /** The SLUICE_* variable that sets it too, if one does. */
  readonly env?: string;
  /** `text` as given; `count` a whole number; `duration` `90s`, `5m`, `1500ms` or `2h`, in ms (no variable takes one). */
  readonly kind: SettingKind;
  /** The flag's argument in --help, e.g. `DIR`. */
  readonly arg: string;
  /** Its lines in --help, beside the flag (the first) and under the first. */
  readonly help: readonly [string, ...string[]];
}

/** The settings of flags and variables, in the order --help lists them. */
export const SETTINGS = [
  { path: 'watch', flag: 'watch', env: 'SLUICE_WATCH', kind: 'text', arg: 'DIR', help: ['inbox folder                      (default ./watch)'] },
  { path: 'out', flag: 'out', env: 'SLUICE_OUT', kind: 'text', arg: 'DIR', help: ['clean outputs                     (default ./out)'] },
  { path: 'rejects', flag: 'rejects', env: 'SLUICE_REJECTS', kind: 'text', arg: 'DIR', help: ['rejected rows, <stem>.rejects.csv (default ./rejects)'] },
  { path: 'archive', flag: 'archive', env: 'SLUICE_ARCHIVE', kind: 'text', arg: 'DIR', help: ['inputs processed successfully     (default ./archive)'] },
  { path: 'failed', flag: 'failed', env: 'SLUICE_FAILED', kind: 'text', arg: 'DIR', help: ['inputs that failed, + .error.json (default ./failed)'] },
  {
    path: 'state',
    flag: 'state',
    env: 'SLUICE_STATE',
    kind: 'text',
    arg: 'DIR',
    help: ['claims                            (default .sluice beside the inbox)'],
  },
  {
    path: 'concurrency',
    flag: 'concurrency',
    env: 'SLUICE_CONCURRENCY',
    kind: 'count',
    arg: 'N',
    help: ['files parsed at once              (default: number of CPUs)'],
  },
  {
    path: 'workers',
    flag: 'workers',
    env: 'SLUICE_WORKERS',
    kind: 'count',
    arg: 'N',
    help: ['threads that parse and transform  (default: number of CPUs; 1: all in the main thread)'],
  },
  {
    path: 'sliceBytes',
    flag: 'slice-bytes',
    env: 'SLUICE_SLICE_BYTES',
    kind: 'count',
    arg: 'N',
    help: ['slice of a large CSV file          (default 4 MiB; 0: files are never cut)'],
  },
  {
    path: 'settleMs',
    flag: 'settle-ms',
    env: 'SLUICE_SETTLE_MS',
    kind: 'count',
    arg: 'N',
    help: ['a file must be unchanged this long before it is taken (default 2000; 0 with --once)'],
  },
  {
    path: 'metrics.host',
    flag: 'metrics-host',
    env: 'SLUICE_METRICS_HOST',
    kind: 'text',
    arg: 'H',
    help: ['metrics server address            (default 127.0.0.1)'],
  },
  {
    path: 'metrics.port',
    flag: 'metrics-port',
    env: 'SLUICE_METRICS_PORT',
    kind: 'count',
    arg: 'N',
    help: ['metrics server port, 0 = off      (default 9464; with --once, 0)'],
  },
  {
    path: 'metrics.textfile',
    flag: 'metrics-textfile',
    env: 'SLUICE_METRICS_TEXTFILE',
    kind: 'text',
    arg: 'FILE',
    help: ["at the end, write the run's metrics to FILE (node_exporter's textfile", 'collector: a name ending in .prom), atomically'],
  },
  {
    path: 'maxWaitMs',
    flag: 'max-wait',
    kind: 'duration',
    arg: 'DURATION',
    help: [
      '--once: how long to wait for a sink that is down (a database) before its',
      'files go back to the inbox and the run exits 3 (default 5m; 90s, 1500ms, 2h)',
    ],
  },
  {
    path: 'instanceId',
    flag: 'instance-id',
    env: 'SLUICE_INSTANCE_ID',
    kind: 'text',
    arg: 'ID',
    help: ["this instance's name in claim paths (default: the first free slot", '<host name>-1, -2, ...; an id a live process holds exits 2)'],
  },
] as const satisfies readonly SettingRow[];

/** A flag of the table, e.g. `metrics-port`. */
export type SettingFlag = (typeof SETTINGS)[number]['flag'];
