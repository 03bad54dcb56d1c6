// Instances, adoption and recovery without the CLI: several instances of one process stand for several
// processes (open file description locks conflict within a process too).
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Committer } from '../../src/daemon/commit.js';
import { Instances } from '../../src/daemon/instances.js';
import { Ledger } from '../../src/daemon/ledger.js';
import { recover } from '../../src/daemon/recovery.js';
import type { SluiceError } from '../../src/errors.js';
import { Claims } from '../../src/inbox/claims.js';
import { silentLogger } from '../../src/log.js';

let root: string;
let state: string;
const held: Instances[] = [];
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'sluice-instances-'));
  state = join(root, '.sluice');
  for (const d of ['watch', 'out', 'rejects', 'archive', 'failed']) mkdirSync(join(root, d));
});
afterEach(() => {
  for (const i of held.splice(0)) i.retire(join(state, 'claimed', i.id));
  rmSync(root, { recursive: true, force: true });
});

async function acquire(explicit?: string): Promise<Instances> {
  const i = await Instances.acquire(state, explicit, 'host');
  held.push(i);
  return i;
}

/** A claim folder left by an instance that died: its lock file is there, nobody holds it. */
function deadInstance(id: string, entries: Record<string, string>): void {
  mkdirSync(join(state, 'claimed', id), { recursive: true });
  mkdirSync(join(state, 'instances'), { recursive: true });
  writeFileSync(join(state, 'instances', `${id}.lock`), '');
  for (const [name, body] of Object.entries(entries)) writeFileSync(join(state, 'claimed', id, name), body);
}

describe('Instances', () => {
  it('takes the first free slot; an explicit id that is held is INSTANCE_RUNNING', async () => {
    expect((await acquire()).id).toBe('host-1');
    expect((await acquire()).id).toBe('host-2');
    await acquire('x');
    await expect(Instances.acquire(state, 'x', 'host')).rejects.toMatchObject({ code: 'INSTANCE_RUNNING' } satisfies Partial<SluiceError>);
    await expect(Instances.acquire(state, 'host-1', 'host')).rejects.toMatchObject({ code: 'INSTANCE_RUNNING' });
  });

  it('a slot given back is taken again; a dead slot is taken with its claims', async () => {
    const a = await acquire();
    a.retire(join(state, 'claimed', a.id));
    held.splice(held.indexOf(a), 1);
    deadInstance('host-1', { 'abc1-x.csv': 'x\n' });
    const again = await acquire();
    expect(again.id).toBe('host-1');
    expect(readdirSync(join(state, 'claimed', 'host-1'))).toEqual(['abc1-x.csv']);
  });

  it('a dead instance has exactly one adopter, which moves its claims and tidies its lock and folder', async () => {
    const a = await acquire();
    const b = await acquire();
    deadInstance('ghost', { 'abc1-x.csv': 'x\n', 'abc2-y.csv': 'y\n', 'abc2.commit.json': '{}', 'abc3.commit.json.tmp': '{' });
    mkdirSync(join(state, 'claimed', a.id), { recursive: true });
    mkdirSync(join(state, 'claimed', b.id), { recursive: true });
    const first = a.adoptDead(join(state, 'claimed', a.id));
    expect(first.map((x) => x.instance)).toEqual(['ghost']);
    expect([...first[0]!.claimIds].sort()).toEqual(['abc1', 'abc2']);
    // while a holds the dead lock, b cannot adopt it (nor b's own live peer a)
    expect(b.adoptDead(join(state, 'claimed', b.id))).toEqual([]);
    first[0]!.release();
    expect(existsSync(join(state, 'claimed', 'ghost'))).toBe(false);
    expect(existsSync(join(state, 'instances', 'ghost.lock'))).toBe(false);
    expect(b.adoptDead(join(state, 'claimed', b.id))).toEqual([]);
    expect(readdirSync(join(state, 'claimed', a.id)).sort()).toEqual(['abc1-x.csv', 'abc2-y.csv', 'abc2.commit.json']);
    // a live instance is never adopted
    expect(a.adoptDead(join(state, 'claimed', a.id))).toEqual([]);
  });

  it("an older version's instance with a fresh heartbeat (no lock) is alive: a rolling upgrade adopts nothing of it", async () => {
    const a = await acquire();
    mkdirSync(join(state, 'claimed', a.id), { recursive: true });
    mkdirSync(join(state, 'claimed', 'old'), { recursive: true });
    writeFileSync(join(state, 'claimed', 'old', 'abc1-x.csv'), 'x\n');
    writeFileSync(join(state, 'instances', 'old.json'), '{}');
    expect(a.adoptDead(join(state, 'claimed', a.id))).toEqual([]);
    utimesSync(join(state, 'instances', 'old.json'), new Date('2020-01-01'), new Date('2020-01-01'));
    const adopted = a.adoptDead(join(state, 'claimed', a.id));
    expect(adopted.map((x) => x.instance)).toEqual(['old']);
    adopted[0]!.release();
    expect(readdirSync(join(state, 'instances'))).toEqual([`${a.id}.lock`]);
  });
});

describe('adoption interrupted by a crash', () => {
  it("takes a dead folder whole (one rename): a crash mid-way leaves it inside the adopter's, finished by its next holder", async () => {
    const a = await acquire();
    const own = join(state, 'claimed', a.id);
    mkdirSync(own, { recursive: true });
    // as a crash right after the folder's rename leaves it: every entry of claim abc2 together
    const staging = join(own, '.adopting-ghost-0a1b2c');
    mkdirSync(staging);
    for (const e of ['abc2-y.csv', 'abc2.commit.json', 'abc2.name']) writeFileSync(join(staging, e), '{}');
    const b = await acquire();
    // meanwhile another instance counts those claims as held elsewhere (its temporaries are kept)
    expect(b.othersClaimIds().has('abc2')).toBe(true);
    expect([...a.finishAdoptions(own)]).toEqual(['abc2']);
    expect(readdirSync(own).sort()).toEqual(['abc2-y.csv', 'abc2.commit.json', 'abc2.name']);
  });
});

describe('recover', () => {
  it('redoes claims without a record, fails one whose staged output is gone, and keeps temporaries others need', async () => {
    const me = await acquire();
    const claims = new Claims(state, me.id, { inbox: join(root, 'watch') });
    await claims.init();
    const ledger = new Ledger(state, false);
    const committer = new Committer(claims, ledger, { archive: join(root, 'archive'), failed: join(root, 'failed') }, false);
    writeFileSync(join(claims.dir, 'aaa1-redo.csv'), 'x\n1\n');
    // put back in the inbox when the process died: linked there, its claim not yet unlinked
    writeFileSync(join(claims.dir, 'aaa3-back.csv'), 'x\n3\n');
    linkSync(join(claims.dir, 'aaa3-back.csv'), join(root, 'watch', 'back.csv'));
    writeFileSync(join(claims.dir, 'aaa2-lost.csv'), 'x\n2\n');
    const staged = { tmp: join(root, 'out', `.sluice-${me.id}~aaa2-00-lost.csv.tmp`), dir: join(root, 'out'), name: 'lost.csv', ino: 1, bytes: 4 };
    writeFileSync(
      join(claims.dir, 'aaa2.commit.json'),
      JSON.stringify({
        claimId: 'aaa2',
        file: 'lost.csv',
        pipeline: 'default',
        outcome: 'succeeded',
        input: { ino: 0, size: 4 },
        staged: [{ role: 'output', file: staged, rows: 1 }],
        rows: { read: 1, written: 1, filtered: 0, rejected: 0 },
        startedAt: '2026-01-01T00:00:00.000Z',
        durationMs: 1,
      }),
    );
    // temporaries: one of the claim being redone (garbage), one of a claim another instance holds now
    writeFileSync(join(root, 'out', `.sluice-${me.id}~aaa1-11-redo.csv.tmp`), 'partial');
    writeFileSync(join(root, 'out', `.sluice-${me.id}~bbb9-22-other.csv.tmp`), 'needed');
    // one the redone claim's earlier holder wrote, before this instance adopted it: garbage too
    writeFileSync(join(root, 'out', '.sluice-gone-7~aaa1-33-redo.csv.tmp'), 'partial');
    const r = await recover({ claims, committer, log: silentLogger, tempDirs: [join(root, 'out')] }, { tempOwners: [me.id], elsewhere: new Set(['bbb9']) });
    await ledger.close();
    committer.close(); // its spare record file goes (see Committer)
    expect(r.redo.map((c) => c.name)).toEqual(['redo.csv']);
    expect(r.failed).toBe(1);
    expect(r.later).toEqual([]);
    expect(readdirSync(join(root, 'out'))).toEqual([`.sluice-${me.id}~bbb9-22-other.csv.tmp`]);
    expect(readdirSync(join(root, 'failed')).sort()).toEqual(['lost.csv', 'lost.csv.error.json']);
    expect(JSON.parse(readFileSync(join(root, 'failed', 'lost.csv.error.json'), 'utf8'))).toMatchObject({ code: 'RECOVERY_FAILED', file: 'lost.csv' });
    expect(readdirSync(claims.dir)).toEqual(['aaa1-redo.csv']);
    expect(readdirSync(join(root, 'watch'))).toEqual(['back.csv']);
  });
});
