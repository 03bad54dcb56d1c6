// Runs the real, built CLI (dist/cli.js) on real temporary folders, and waits on conditions, not clocks.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

export const CLI = resolve(import.meta.dirname, '../../dist/cli.js');

export interface Dirs {
  root: string;
  watch: string;
  out: string;
  rejects: string;
  archive: string;
  failed: string;
}

export async function makeDirs(): Promise<Dirs> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build (npm test does it first)`);
  const root = await mkdtemp(join(tmpdir(), 'sluice-e2e-'));
  const d = {
    root,
    watch: join(root, 'watch'),
    out: join(root, 'out'),
    rejects: join(root, 'rejects'),
    archive: join(root, 'archive'),
    failed: join(root, 'failed'),
  };
  // every folder exists, as a batch job's folders must (a folder named for --once that is missing exits 2)
  for (const dir of [d.watch, d.out, d.rejects, d.archive, d.failed]) await mkdir(dir);
  return d;
}

export function dirFlags(d: Dirs): string[] {
  return ['--watch', d.watch, '--out', d.out, '--rejects', d.rejects, '--archive', d.archive, '--failed', d.failed, '--metrics-port', '0'];
}

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `sluice ARGS` to completion. */
export function runCli(args: string[], cwd?: string): Promise<Result> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolveRun({ code, signal, stdout, stderr }));
  });
}

/** JSON log lines from stdout. */
export function logLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export class Daemon {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (b: Buffer) => (this.stdout += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (this.stderr += b.toString()));
    this.exited = new Promise((r) => child.on('close', (code, signal) => r({ code, signal })));
  }

  /** Starts `sluice run ARGS` and resolves once it logged that it started. */
  static async start(args: string[], cwd?: string, env?: Record<string, string>): Promise<Daemon> {
    const child = spawn(process.execPath, [CLI, 'run', ...args], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(env === undefined ? {} : { env: { ...process.env, ...env } }),
    });
    const d = new Daemon(child);
    running.add(d);
    await waitFor(() => d.stdout.includes('"sluice started"') || child.exitCode !== null, 'the daemon to start');
    if (child.exitCode !== null) throw new Error(`daemon exited ${child.exitCode}: ${d.stderr}`);
    return d;
  }

  logs(): Array<Record<string, unknown>> {
    return logLines(this.stdout);
  }

  /** The instance id the daemon took (from its start line). */
  get instance(): string {
    return String(this.logs().find((l) => l.msg === 'sluice started')?.instance);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.kill(signal);
    const r = await this.exited;
    running.delete(this);
    return r;
  }
}

const running = new Set<Daemon>();

/** Kills whatever daemons a test left running, and removes a test's folders. */
export async function cleanup(d?: Dirs): Promise<void> {
  for (const daemon of running) {
    daemon.child.kill('SIGCONT');
    daemon.child.kill('SIGKILL');
    await daemon.exited;
  }
  running.clear();
  if (d !== undefined) await rm(d.root, { recursive: true, force: true });
}

/** Polls `cond` until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function list(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

/** A TCP port free on loopback right now (for a metrics server or a database the test starts). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolvePort(port));
    });
    s.on('error', reject);
  });
}

/** Every file under `dir`, recursively, as relative paths. */
export async function walk(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.isDirectory()) out.push(...(await walk(join(dir, e.name), `${prefix}${e.name}/`)));
    else out.push(`${prefix}${e.name}`);
  }
  return out.sort();
}

export interface ReceiptLine {
  claimId: string;
  instance: string;
  file: string;
  outcome: string;
  finishedAt: string;
  rows: { read: number; written: number; filtered: number; rejected: number };
  error?: { code: string; message: string };
}

/** The receipts of a state folder. */
export async function receipts(stateDir: string): Promise<ReceiptLine[]> {
  const text = await readFile(join(stateDir, 'receipts.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as ReceiptLine);
}
