#!/usr/bin/env node
// The command line: argv -> config -> daemon; exit 0 ok, 1 some file failed, 2 usage or config error.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { readConfigFile, resolveConfig, type ConfigInput } from './config/config.js';
import { Daemon } from './daemon/daemon.js';
import { isUsageError, SluiceError } from './errors.js';
import { createLogger } from './log.js';

export const EXIT = { OK: 0, FILES_FAILED: 1, USAGE: 2 } as const;

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const HELP = `sluice ${VERSION}: turn a folder into a data pipeline.

Usage:
  sluice run [options]     process files dropped into the inbox (a daemon until SIGTERM/SIGINT)
  sluice --help            this help
  sluice --version         the version

Options for run:
  --once                   process the files in the inbox now, then exit
  --config FILE            a JSON config file (flags override it)
  --watch DIR              inbox folder                      (default ./watch)
  --out DIR                clean outputs                     (default ./out)
  --rejects DIR            rejected rows, <stem>.rejects.csv (default ./rejects)
  --archive DIR            inputs processed successfully     (default ./archive)
  --failed DIR             inputs that failed, + .error.json (default ./failed)
  --state DIR              claims and receipts               (default .sluice beside the inbox)
  --concurrency N          files processed at once           (default: number of CPUs)
  --settle-ms N            a file must be unchanged this long before it is taken (default 2000)
  --metrics-host H         metrics server address            (default 127.0.0.1)
  --metrics-port N         metrics server port, 0 = off      (default 9464)
  --instance-id ID         this instance's name in claim paths (default: the host name)

Every row whose fields are all non-empty is written to out/<file name>; rows with an empty field are
filtered; malformed records go to rejects/. The inbox, state, archive and failed folders must be on
one filesystem (inputs move by rename).

Exit codes: 0 all files succeeded (or a clean stop), 1 some file failed (--once), 2 usage or config error.
`;

const OPTIONS = {
  once: { type: 'boolean' },
  config: { type: 'string' },
  watch: { type: 'string' },
  out: { type: 'string' },
  rejects: { type: 'string' },
  archive: { type: 'string' },
  failed: { type: 'string' },
  state: { type: 'string' },
  concurrency: { type: 'string' },
  'settle-ms': { type: 'string' },
  'metrics-host': { type: 'string' },
  'metrics-port': { type: 'string' },
  'instance-id': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

function intFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new SluiceError('USAGE', `--${name}: got ${JSON.stringify(value)}, expected a whole number`, { field: name });
  return Number(value);
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`sluice: ${(err as Error).message}\nRun 'sluice --help' for usage.\n`);
    return EXIT.USAGE;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return EXIT.OK;
  }
  if (positionals.length !== 1 || positionals[0] !== 'run') {
    process.stderr.write(`sluice: ${positionals.length === 0 ? 'no command given' : `unknown command ${JSON.stringify(positionals.join(' '))}`}\nRun 'sluice --help' for usage.\n`);
    return EXIT.USAGE;
  }
  const log = createLogger();
  let daemon: Daemon;
  try {
    const flags: ConfigInput = {
      watch: values.watch,
      out: values.out,
      rejects: values.rejects,
      archive: values.archive,
      failed: values.failed,
      state: values.state,
      concurrency: intFlag('concurrency', values.concurrency),
      settleMs: intFlag('settle-ms', values['settle-ms']),
      instanceId: values['instance-id'],
      metrics: { host: values['metrics-host'], port: intFlag('metrics-port', values['metrics-port']) },
    };
    if (flags.concurrency === 0) throw new SluiceError('USAGE', '--concurrency: must be at least 1', { field: 'concurrency' });
    const layers = values.config === undefined ? [] : [readConfigFile(values.config)];
    const cfg = resolveConfig([...layers, stripUndefined(flags)]);
    daemon = new Daemon(cfg, log, {}, values.once === true);
    await daemon.start();
  } catch (err) {
    if (isUsageError(err)) {
      process.stderr.write(`sluice: ${err.code}: ${err.message}\n`);
      return EXIT.USAGE;
    }
    throw err;
  }
  if (values.once) {
    await daemon.finished();
    await daemon.stop();
    return daemon.failures > 0 ? EXIT.FILES_FAILED : EXIT.OK;
  }
  await new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      signals++;
      log.info(signals === 1 ? 'signal received: draining' : 'second signal: aborting files in progress', { signal: sig });
      void daemon.stop(signals > 1).then(resolve, resolve);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  log.info('sluice stopped');
  return EXIT.OK;
}

function stripUndefined(input: ConfigInput): ConfigInput {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) {
    if (v === undefined) continue;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const inner = Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined));
      if (Object.keys(inner).length > 0) out[k] = inner;
    } else out[k] = v;
  }
  return out as ConfigInput;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // nothing should keep the process alive now; if something does, do not hang a shutdown on it
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err: unknown) => {
    process.stderr.write(`sluice: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 70;
  },
);
