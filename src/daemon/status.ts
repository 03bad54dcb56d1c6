// sluice status: what the ledger says was done, what is claimed now (every instance), what waits in the inbox.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { SluiceConfig } from '../config/load.js';
import { isIgnoredName } from '../inbox/claims.js';
import { printableName } from '../fs/names.js';
import { instanceAlive } from './instances.js';
import { Ledger, type Receipt } from './ledger.js';

export interface Status {
  ledger: string;
  totals: { succeeded: number; failed: number; rows: Receipt['rows'] };
  recent: Receipt[];
  /** The instances of the state folder: alive while a process holds its lock. */
  instances: Array<{ instance: string; alive: boolean; pid?: number; host?: string; startedAt?: string }>;
  inProgress: Array<{ instance: string; claimId: string; file: string; ageSeconds: number; committing: boolean }>;
  inbox: { files: number; oldestAgeSeconds: number };
}

export async function readStatus(cfg: SluiceConfig, recentCount = 10): Promise<Status> {
  const ledger = new Ledger(cfg.state, false);
  const receipts = await ledger.recent();
  const totals = { succeeded: 0, failed: 0, rows: { read: 0, written: 0, filtered: 0, rejected: 0 } };
  for (const r of receipts) {
    totals[r.outcome]++;
    for (const k of ['read', 'written', 'filtered', 'rejected'] as const) totals.rows[k] += r.rows[k];
  }
  const now = Date.now();
  const inProgress: Status['inProgress'] = [];
  const claimedRoot = join(cfg.state, 'claimed');
  const ids = new Set(await readdir(claimedRoot).catch(() => [] as string[]));
  for (const e of await readdir(join(cfg.state, 'instances')).catch(() => [] as string[])) if (e.endsWith('.lock')) ids.add(e.slice(0, -5));
  const instances: Status['instances'] = [];
  for (const instance of [...ids].sort()) {
    const info = await readFile(join(cfg.state, 'instances', `${instance}.lock`), 'utf8').then(
      (t) => JSON.parse(t) as { pid?: number; host?: string; startedAt?: string },
      (): { pid?: number; host?: string; startedAt?: string } => ({}),
    );
    const alive = instanceAlive(cfg.state, instance);
    instances.push({ instance, alive, ...(alive ? { pid: info.pid, host: info.host, startedAt: info.startedAt } : {}) });
  }
  for (const instance of await readdir(claimedRoot).catch(() => [] as string[])) {
    const entries = await readdir(join(claimedRoot, instance)).catch(() => [] as string[]);
    for (const e of entries) {
      const m = /^([0-9a-z]+)-(.+)$/.exec(e);
      if (m === null) continue;
      const st = await stat(join(claimedRoot, instance, e)).catch(() => undefined);
      inProgress.push({
        instance,
        claimId: m[1]!,
        file: m[2]!,
        ageSeconds: st === undefined ? 0 : Math.round((now - st.ctimeMs) / 1000),
        committing: entries.includes(`${m[1]}.commit.json`),
      });
    }
  }
  let files = 0;
  let oldest = now;
  for (const name of await readdir(cfg.watch).catch(() => [] as string[])) {
    if (isIgnoredName(name)) continue;
    files++;
    const st = await stat(join(cfg.watch, name)).catch(() => undefined);
    if (st !== undefined && st.mtimeMs < oldest) oldest = st.mtimeMs;
  }
  return {
    ledger: ledger.path,
    totals,
    recent: receipts.slice(-recentCount),
    instances,
    inProgress,
    inbox: { files, oldestAgeSeconds: files === 0 ? 0 : Math.round((now - oldest) / 1000) },
  };
}

export function formatStatus(s: Status): string {
  const lines = [
    `ledger ${s.ledger}: ${s.totals.succeeded} succeeded, ${s.totals.failed} failed; rows read ${s.totals.rows.read}, written ${s.totals.rows.written}, filtered ${s.totals.rows.filtered}, rejected ${s.totals.rows.rejected}`,
    `inbox: ${s.inbox.files} file(s) waiting${s.inbox.files > 0 ? `, oldest ${s.inbox.oldestAgeSeconds} s` : ''}`,
    `instances: ${s.instances.filter((i) => i.alive).length} running`,
    ...s.instances.map(
      (i) =>
        `  ${i.instance}: ${i.alive ? `running (pid ${i.pid ?? '?'} on ${i.host ?? '?'} since ${i.startedAt ?? '?'})` : 'dead (its claims are adopted by the next instance to look)'}`,
    ),
    `in progress: ${s.inProgress.length}`,
    ...s.inProgress.map(
      (p) => `  ${printableName(p.file)} (instance ${p.instance}, claim ${p.claimId}, ${p.ageSeconds} s${p.committing ? ', committing' : ''})`,
    ),
    `recent:`,
    ...s.recent.map(
      (r) =>
        `  ${r.finishedAt} ${r.outcome === 'succeeded' ? 'ok  ' : 'FAIL'} ${printableName(r.file)} [${r.pipeline}] read ${r.rows.read}, written ${r.rows.written}, filtered ${r.rows.filtered}, rejected ${r.rows.rejected}${r.error ? ` ${r.error.code}` : ''}`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}
