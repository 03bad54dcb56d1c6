#!/usr/bin/env node
// The command line: argv -> config -> daemon; exit 0 ok, 1 some file failed, 2 usage or config error.
import { isAbsolute, relative } from 'node:path';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { closest } from './config/closest.js';
import type { LoadOptions, SluiceConfig } from './config/load.js';
import { SETTINGS, type SettingFlag, type SettingRow } from './config/settings-table.js';
import type { Daemon } from './daemon/daemon.js';
import type { DaemonHooks } from './daemon/hooks.js';
import { isUsageError, SluiceError } from './errors.js';
import { createLogger, silentLogger, type Logger } from './log.js';
import { NO_PROGRESS, type Progress, progressOn } from './progress.js';
// What a command needs beyond parsing its arguments is imported by that command (in the bundle, chunks):
// --help, --version and usage errors load nothing else, and `run` loads neither the preview nor the status.

/** The worker threads' script, bundled beside this one (scripts/bundle.mjs): dist/worker.js. */
const WORKER_ENTRY = new URL('./worker.js', import.meta.url);

// libuv's thread pool keeps its default 4 threads: an ES module cannot enlarge it (Node's loader has started
// it to read this file), and 16 set from outside measured no faster with small files (docs/small-files.md)

export const EXIT = { OK: 0, FILES_FAILED: 1, USAGE: 2, INTERRUPTED: 3 } as const;

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const HELP_COLUMN = 27;

/** A setting's lines in --help: the flag and its argument, then what it does, in a column. */
function settingHelp(s: SettingRow): string {
  const [first, ...more] = s.help;
  return [`${`  --${s.flag} ${s.arg}`.padEnd(HELP_COLUMN)}${first}`, ...more.map((line) => `${' '.repeat(HELP_COLUMN)}${line}`)].join('\n');
}

const HELP = `sluice ${VERSION}: turn a folder into a data pipeline.

Usage:
  sluice run [options]                 process files dropped into the inbox (a daemon until SIGTERM/SIGINT)
  sluice validate [--config FILE]      check the configuration and exit (0 valid, 2 not)
  sluice schema                        print the JSON Schema of sluice.yaml
  sluice status [--config FILE] [--json]
                                       what was done (the receipt ledger), what is in progress, the inbox
  sluice preview FILE [--config FILE] [--pipeline NAME] [--rows N]
                                       run FILE through its pipeline without writing or moving anything
  sluice help [COMMAND]                this help, or one command's
  sluice --help | -h | --version | -V

Options for run:
  --once                   process the files in the inbox now, then exit
  --config FILE            sluice.yaml or JSON (default ./sluice.yaml if present; also SLUICE_CONFIG)
${SETTINGS.map(settingHelp).join('\n')}

Settings come from defaults < the config file < SLUICE_* environment variables < flags.
Without a config file, one pipeline takes every file and drops rows with an empty field (pandas dropna).
The inbox, state, archive and failed folders must be on one filesystem (inputs move by rename).

Signals: SIGTERM or SIGINT drains (no new files; those in progress finish within the drain timeout, else go
back to the inbox); a second one aborts them at once. --once drains the same way. SIGHUP reloads the
configuration: if valid, files taken from then on use it; if not, the error is logged and nothing changes.

Exit codes: 0 all files succeeded (or a clean stop), 1 some file failed (--once), 2 usage or config error,
3 --once ended with files left in the inbox, untouched (stopped by a signal, or a sink down past --max-wait).
`;

const OPTIONS = {
  once: { type: 'boolean' },
  config: { type: 'string' },
  // the settings table's flags: each takes its text, read as its kind says (settingFlags)
  ...(Object.fromEntries(SETTINGS.map((s) => [s.flag, { type: 'string' }])) as Record<SettingFlag, { type: 'string' }>),
  pipeline: { type: 'string' },
  rows: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

const RUN_ONLY = ['once', ...SETTINGS.map((s) => s.flag)];
const ALLOWED: Record<string, string[]> = {
  run: ['config', ...RUN_ONLY],
  validate: ['config'],
  schema: [],
  status: ['config', 'json', 'watch', 'state'],
  preview: ['config', 'pipeline', 'rows'],
};

function hintFor(command: string): string {
  const c = closest(command, Object.keys(ALLOWED));
  return c === undefined ? '' : ` (did you mean ${c}?)`;
}

/** One command's part of the help: its usage line, and for run its options. */
function commandHelp(command: string): string {
  const lines = HELP.split('\n');
  const usageAt = lines.findIndex((l) => l.startsWith(`  sluice ${command}`));
  const usage = [lines[usageAt]!];
  for (let i = usageAt + 1; i < lines.length && /^ {20,}/.test(lines[i]!); i++) usage.push(lines[i]!);
  const body = command === 'run' ? HELP.slice(HELP.indexOf('Options for run:'), HELP.indexOf('Settings come from')) : '';
  return `Usage:\n${usage.join('\n')}\n${body === '' ? '' : `\n${body}`}`;
}

/** A duration: `90` or `90s` seconds, `1500ms`, `5m`, `2h`; in ms. */
function durationFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)(ms|s|m|h)?$/.exec(value);
  if (m === null) throw new SluiceError('USAGE', `--${name}: got ${JSON.stringify(value)}, expected a duration such as 90s, 5m, 1500ms or 2h`, { field: name });
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
}

function intFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new SluiceError('USAGE', `--${name}: got ${JSON.stringify(value)}, expected a whole number`, { field: name });
  return Number(value);
}

function usage(message: string): number {
  process.stderr.write(`sluice: USAGE: ${message}\nRun 'sluice --help' for usage.\n`);
  return EXIT.USAGE;
}

/** parseArgs's complaint, in our words, with the flag meant when it is a slip of the keyboard. */
function argError(err: Error): string {
  const unknown = /Unknown option '(-{1,2})([^']*)'/.exec(err.message);
  if (unknown !== null) {
    const [, dashes, name] = unknown as unknown as [string, string, string];
    const hint =
      dashes === '--'
        ? closest(name, Object.keys(OPTIONS))
        : Object.entries(OPTIONS).find(([, o]) => 'short' in o && o.short.toLowerCase() === name.toLowerCase())?.[0];
    return `unknown option ${dashes}${name}${hint === undefined ? '' : ` (did you mean --${hint}?)`}`;
  }
  return err.message.replace(/\. To specify a positional argument.*$/, '');
}

type Values = ReturnType<typeof parse>['values'];
function parse(argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
}

export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    return usage(argError(err as Error));
  }
  const { values, positionals } = parsed;
  const [command, ...args] = positionals;
  if (values.version) {
    if (argv.length > 1) return usage('--version takes no other arguments');
    process.stdout.write(`${VERSION}\n`);
    return EXIT.OK;
  }
  if (command === 'help' || values.help) {
    const topic = command === 'help' ? args[0] : command;
    if (command === 'help' && args.length > 1) return usage('help takes at most one command');
    if (topic === 'help') {
      process.stdout.write("Usage:\n  sluice help [COMMAND]                this help, or one command's\n");
      return EXIT.OK;
    }
    if (topic !== undefined && ALLOWED[topic] === undefined) return usage(`help: unknown command ${JSON.stringify(topic)}${hintFor(topic)}`);
    process.stdout.write(topic === undefined ? HELP : commandHelp(topic));
    return EXIT.OK;
  }
  if (command === undefined) return usage('no command given');
  const allowed = ALLOWED[command];
  if (allowed === undefined) return usage(`unknown command ${JSON.stringify(command)}${hintFor(command)}`);
  const extra = Object.keys(values).filter((k) => !allowed.includes(k));
  if (extra.length > 0) return usage(`${command}: --${extra[0]} does not apply to this command`);
  if (command !== 'preview' && args.length > 0) return usage(`${command}: unexpected argument ${JSON.stringify(args[0])}`);
  try {
    switch (command) {
      case 'schema': {
        const { configJsonSchema } = await import('./config/schema.js');
        process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
        return EXIT.OK;
      }
      case 'validate': {
        const [cfg, { Daemon }, { FOLDER_KEYS }] = await Promise.all([loadFromFlags(values), import('./daemon/daemon.js'), import('./config/load.js')]);
        await new Daemon(cfg, silentLogger).prepare(); // builds every pipeline: steps, modules, templates
        const names = cfg.pipelines.map((p) => `${p.name} (${p.match.join(', ')})`).join('; ');
        process.stdout.write(`${cfg.source ?? 'built-in defaults'}: valid; ${cfg.pipelines.length} pipeline(s): ${names}\n`);
        // the folders as resolved (a config file's relative folders are relative to the file)
        for (const key of FOLDER_KEYS) process.stdout.write(`  ${key.padEnd(8)} ${cfg[key]}\n`);
        return EXIT.OK;
      }
      case 'preview':
        return await runPreview(values, args);
      case 'status': {
        const [cfg, { formatStatus, readStatus }] = await Promise.all([loadFromFlags(values), import('./daemon/status.js')]);
        const status = await readStatus(cfg);
        process.stdout.write(values.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
        return EXIT.OK;
      }
      default:
        return await runDaemon(values);
    }
  } catch (err) {
    if (isUsageError(err)) {
      process.stderr.write(`sluice: ${err.code}: ${err.message}\n`);
      return EXIT.USAGE;
    }
    throw err;
  }
}

async function loadFromFlags(values: Values): Promise<SluiceConfig> {
  const options: LoadOptions = {
    configPath: values.config,
    // a batch run is started after its files were delivered: it takes them at once unless told to settle;
    // and it listens on no port unless asked (a cron job beside a daemon must not collide with it)
    ...(values.once === true ? { defaults: { settleMs: 0, 'metrics.port': 0 } } : {}),
    flags: settingFlags(values),
  };
  const { loadConfig, preloadConfigReader } = await import('./config/load.js');
  await preloadConfigReader(options);
  return loadConfig(options);
}

/** The settings table's flags as config paths to values, each read as its kind says (a usage error if it cannot be). */
function settingFlags(values: Values): Record<string, string | number | undefined> {
  const read = (s: SettingRow, text: string | undefined): string | number | undefined =>
    s.kind === 'count' ? intFlag(s.flag, text) : s.kind === 'duration' ? durationFlag(s.flag, text) : text;
  return Object.fromEntries(SETTINGS.map((s) => [s.path, read(s, values[s.flag])]));
}

async function runPreview(values: Values, args: string[]): Promise<number> {
  if (args.length !== 1) return usage('preview: give exactly one FILE');
  const [cfg, { formatTable, preview }, { outputDriver }] = await Promise.all([
    loadFromFlags(values),
    import('./pipeline/preview.js'),
    import('./outputs/registry.js'),
  ]);
  const rows = intFlag('rows', values.rows) ?? 10;
  let r: Awaited<ReturnType<typeof preview>>;
  try {
    r = await preview(args[0]!, cfg, { pipeline: values.pipeline, rows });
  } catch (err) {
    if (err instanceof SluiceError && err.code === 'NO_PIPELINE') {
      process.stderr.write(`sluice: ${err.code}: ${err.message}\n`);
      return EXIT.FILES_FAILED;
    }
    throw err;
  }
  const { report } = r;
  const out = process.stdout;
  out.write(`pipeline: ${r.pipeline}\n`);
  const o = cfg.pipelines.find((p) => p.name === r.pipeline)?.output;
  if (o !== undefined) {
    // the output folder as the user would type it: relative to here when it is below here
    const rel = relative(process.cwd(), cfg.out);
    out.write(`output: ${outputDriver(o).describe(o, { outDir: rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? cfg.out : rel })}\n`);
  }
  if (report.outcome === 'failed') {
    out.write(`the file would fail: ${report.error?.code}: ${report.error?.message}\n`);
    return EXIT.FILES_FAILED;
  }
  if (r.header !== undefined) out.write(`${formatTable(r.header, r.rows)}\n`);
  const { read, written, filtered, rejected } = report.rows;
  const codes = Object.entries(r.rejectCodes)
    .map(([c, n]) => `${c} x${n}`)
    .join(', ');
  out.write(`read ${read}, written ${written}, filtered ${filtered}, rejected ${rejected}${codes ? ` (${codes})` : ''}\n`);
  for (const rej of r.rejects) out.write(`  line ${rej.line}: ${rej.code}: ${rej.message}\n`);
  return EXIT.OK;
}

async function runDaemon(values: Values): Promise<number> {
  catchSignals();
  const [cfg, { Daemon }] = await Promise.all([loadFromFlags(values), import('./daemon/daemon.js')]);
  const once = values.once === true;
  const progress: Progress = once ? await progressOn(process.stderr) : NO_PROGRESS;
  const out = process.stdout;
  // log lines make way for the progress bar when both go to one terminal
  const log = createLogger({
    // one write per turn of the event loop, not per line (flushed at exit too)
    batch: true,
    stream: Object.assign(Object.create(out) as NodeJS.WriteStream, {
      isTTY: out.isTTY,
      write: (chunk: string) => {
        progress.clearLine();
        return out.write(chunk);
      },
    }),
  });
  const startedAt = new Date();
  let daemon: Daemon | undefined;
  let server: { close(): Promise<void>; address: { host: string; port: number } } | undefined;
  let registry: import('prom-client').Registry | undefined;
  if (cfg.metrics.port === 0 && cfg.metrics.textfile === undefined) {
    daemon = new Daemon(cfg, log, progress.hooks, once, WORKER_ENTRY);
  } else {
    // loaded only when served or written: prom-client costs startup time a --once batch job need not pay
    const [{ createRegistry, SluiceMetrics }, { MetricsServer }] = await Promise.all([import('./metrics/metrics.js'), import('./metrics/server.js')]);
    registry = createRegistry();
    const metrics = new SluiceMetrics(registry, {
      version: VERSION,
      pipelines: cfg.pipelines.map((p) => p.name),
      inbox: () => daemon?.inboxStats() ?? { files: 0, oldestAgeSeconds: 0 },
    });
    const d = new Daemon(cfg, log, bothHooks(metrics.hooks(), progress.hooks), once, WORKER_ENTRY);
    daemon = d;
    // the server is up before the daemon starts, so /readyz says 503 while it starts
    if (cfg.metrics.port !== 0) server = await MetricsServer.start({ ...cfg.metrics, registry, ready: () => d.accepting });
  }
  const d = daemon;
  if (server !== undefined) log.info('metrics server listening', { url: `http://${server.address.host}:${server.address.port}/metrics` });
  let code: number;
  try {
    code = await runUntilDone(
      d,
      log,
      once,
      () => reloadConfig(d, log, values),
      () => progress.start(() => d.filesLeft),
    );
  } finally {
    progress.stop();
    await server?.close();
  }
  if (once) log.info('run finished', summary(d, code, startedAt));
  if (registry !== undefined && cfg.metrics.textfile !== undefined) {
    const [{ recordRun }, { writeTextfile }] = await Promise.all([import('./metrics/metrics.js'), import('./metrics/textfile.js')]);
    recordRun(registry, { startedAt, endedAt: new Date(), exitCode: code });
    try {
      await writeTextfile(cfg.metrics.textfile, await registry.metrics());
    } catch (err) {
      log.error('cannot write the metrics textfile', { path: cfg.metrics.textfile, error: String(err) });
    }
  }
  return code;
}

/** Hooks that call both sets (metrics and the progress display). */
function bothHooks(a: DaemonHooks, b: DaemonHooks): DaemonHooks {
  const out: Record<string, unknown> = { ...a };
  for (const [k, f] of Object.entries(b) as Array<[keyof DaemonHooks, (...args: unknown[]) => void]>) {
    const g = a[k] as ((...args: unknown[]) => void) | undefined;
    out[k] =
      g === undefined
        ? f
        : (...args: unknown[]) => {
            g(...args);
            f(...args);
          };
  }
  return out as DaemonHooks;
}

/** The last line of a --once run: what it did, in numbers and in words. */
function summary(d: Daemon, exitCode: number, startedAt: Date): Record<string, unknown> {
  const t = d.totals;
  const seconds = (Date.now() - startedAt.getTime()) / 1000;
  const mbPerSecond = seconds > 0 ? t.bytesRead / 1e6 / seconds : 0;
  const r = t.rows;
  const words =
    `${t.succeeded + t.failed} files: ${t.succeeded} succeeded, ${t.failed} failed${d.unfinished > 0 ? `, ${d.unfinished} left in the inbox` : ''}; ` +
    `rows: ${r.read} read = ${r.written} written + ${r.filtered} filtered + ${r.rejected} rejected; ` +
    `${(t.bytesRead / 1e6).toFixed(1)} MB read in ${seconds.toFixed(2)} s (${mbPerSecond.toFixed(1)} MB/s); exit ${exitCode}`;
  return {
    summary: words,
    files: { succeeded: t.succeeded, failed: t.failed, leftInInbox: d.unfinished },
    rows: { ...r },
    bytesRead: t.bytesRead,
    bytesWritten: t.bytesWritten,
    seconds: Number(seconds.toFixed(3)),
    mbPerSecond: Number(mbPerSecond.toFixed(2)),
    exitCode,
  };
}

/**
 * SIGHUP: reads the configuration again (file, variables, the same flags) and applies it if it is valid;
 * if not, logs why (with the field) and changes nothing. Never stops the daemon.
 */
async function reloadConfig(daemon: Daemon, log: Logger, values: Values): Promise<void> {
  try {
    const next = await loadFromFlags(values);
    const kept = await daemon.reload(next);
    log.info('configuration reloaded: files taken from now on use it', {
      source: next.source ?? 'built-in defaults',
      pipelines: next.pipelines.map((p) => p.name),
      ...(kept.length === 0 ? {} : { needsRestart: kept, note: 'these settings keep their running values until a restart' }),
    });
  } catch (err) {
    const e = err instanceof SluiceError ? err : undefined;
    log.error('configuration reload refused: running on unchanged', {
      code: e?.code ?? 'INTERNAL',
      error: err instanceof Error ? err.message : String(err),
      ...(e?.field === undefined ? {} : { field: e.field }),
    });
  }
}

/** Signals caught from the start of `run`, before there is a daemon to give them to. */
const caught: NodeJS.Signals[] = [];
let signalTaker: ((sig: NodeJS.Signals) => void) | undefined;

/** From now on SIGTERM, SIGINT and SIGHUP never have their default effect (ending the process). */
function catchSignals(): void {
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => (signalTaker === undefined ? caught.push(sig) : signalTaker(sig)));
}

function takeSignals(taker: (sig: NodeJS.Signals) => void): void {
  signalTaker = taker;
  for (const sig of caught.splice(0)) taker(sig);
}

async function runUntilDone(daemon: Daemon, log: Logger, once: boolean, reload: () => Promise<void>, afterStart: () => void): Promise<number> {
  // signals are taken from the start: one that comes while the daemon starts drains it once it has started.
  // The first drains (no new files; those in progress finish within the drain timeout, or go back to the
  // inbox); a second aborts what is in progress at once, just as safely. A batch job (--once) does the same.
  let signals = 0;
  let stopped: Promise<void> | undefined;
  let signalled!: () => void;
  const firstSignal = new Promise<void>((resolve) => (signalled = resolve));
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    log.info(signals === 1 ? 'signal received: draining' : 'second signal: aborting files in progress', { signal: sig });
    const now = signals > 1;
    stopped = started.then(
      () => daemon.stop(now),
      () => undefined,
    );
    signalled();
  };
  // SIGHUP reloads, as nginx, Prometheus and Vector do; one after another, never at once
  let reloading = Promise.resolve();
  const onHangup = (): void => {
    log.info('SIGHUP received: reloading the configuration');
    reloading = reloading.then(() => started.then(reload, () => undefined));
  };
  const started = daemon.start();
  // signals that came before (while the configuration was read, the metrics server started) are taken now
  takeSignals((sig) => (sig === 'SIGHUP' ? onHangup() : onSignal(sig)));
  await started;
  afterStart();
  const finished = once ? daemon.finished().then(() => 'finished' as const) : new Promise<never>(() => undefined);
  if ((await Promise.race([finished, firstSignal.then(() => 'signal' as const)])) === 'finished') {
    await daemon.stop();
    return onceCode(daemon);
  }
  // a second signal replaces `stopped` with a stop that aborts; wait until no newer one came
  for (let seen: Promise<void> | undefined; seen !== stopped; ) {
    seen = stopped;
    await seen;
  }
  log.info('sluice stopped');
  return once ? onceCode(daemon) : EXIT.OK;
}

/** A batch job's exit code: 1 if a file failed, else 3 if files were left in the inbox (a signal, a sink down past --max-wait), else 0. */
function onceCode(daemon: Daemon): number {
  if (daemon.failures > 0) return EXIT.FILES_FAILED;
  return daemon.unfinished > 0 ? EXIT.INTERRUPTED : EXIT.OK;
}

main(process.argv.slice(2)).then(
  (code) => {
    // at once: everything is done and written (stdout and stderr are synchronous on Linux), and a signal
    // arriving while Node tears itself down would otherwise meet its default action (exit 130 or 143)
    process.exitCode = code;
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`sluice: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 70;
  },
);
