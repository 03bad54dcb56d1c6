// A throwaway PostgreSQL cluster for the tests (initdb + pg_ctl in a temp dir, loopback, trust auth), or the
// server PGHOST points at. A missing server binary fails with the command that installs it: never a skip.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../e2e/harness.js';

export interface Cluster {
  env: { PGHOST: string; PGPORT: string; PGUSER: string; PGDATABASE: string };
  stop(): Promise<void>;
  /** Stops the server but keeps its data (to test an outage). */
  pause(): void;
  resume(): void;
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<T[]>;
}

const INSTALL = 'apt-get update && apt-get install -y postgresql';

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  const dir = versions.map((v) => join(root, v, 'bin')).find((d) => existsSync(join(d, 'initdb')));
  if (dir === undefined) throw new Error(`PostgreSQL server binaries (initdb, pg_ctl) are missing: run \`${INSTALL}\` (as root), or set PGHOST to a server`);
  return dir;
}

export async function startCluster(): Promise<Cluster> {
  const query = async <T extends pg.QueryResultRow>(env: Cluster['env'], sql: string, params?: unknown[]): Promise<T[]> => {
    const c = new pg.Client({ host: env.PGHOST, port: Number(env.PGPORT), user: env.PGUSER, database: env.PGDATABASE });
    await c.connect();
    try {
      return (await c.query<T>(sql, params)).rows;
    } finally {
      await c.end();
    }
  };
  if (process.env.PGHOST !== undefined) {
    const env = {
      PGHOST: process.env.PGHOST,
      PGPORT: process.env.PGPORT ?? '5432',
      PGUSER: process.env.PGUSER ?? 'postgres',
      PGDATABASE: process.env.PGDATABASE ?? 'postgres',
    };
    return {
      env,
      stop: async () => undefined,
      pause: () => {
        throw new Error('cannot pause an external server');
      },
      resume: () => undefined,
      query: (s, p) => query(env, s, p),
    };
  }
  const bin = binDir();
  const dir = await mkdtemp(join(tmpdir(), 'sluice-pg-'));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    await chown(dir, uid, gid);
  }
  const run = (cmd: string, args: string[]): void => {
    const full = join(bin, cmd);
    if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', full, ...args], { stdio: 'pipe' });
    else execFileSync(full, args, { stdio: 'pipe' });
  };
  const data = join(dir, 'data');
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const start = (): void =>
    run('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-o', `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off`, 'start']);
  start();
  const env = { PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'postgres', PGDATABASE: 'postgres' };
  return {
    env,
    query: (s, p) => query(env, s, p),
    pause: () => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']),
    resume: start,
    stop: async () => {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already stopped
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
