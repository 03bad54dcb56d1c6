// Claims: one winner per file, names kept through a restart (even too long for a path), put back whole.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Claims, claimIdOf } from '../../src/inbox/claims.js';

let root: string;
let inbox: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'sluice-claims-'));
  inbox = join(root, 'watch');
  mkdirSync(inbox);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const claims = (id: string) => new Claims(join(root, 'state'), id, { inbox });

describe('Claims', () => {
  it('gives a file to exactly one of two instances, and moves it out of the inbox', async () => {
    writeFileSync(join(inbox, 'a.csv'), 'x\n');
    const [one, two] = [claims('i-1'), claims('i-2')];
    await one.init();
    await two.init();
    const got = await Promise.all([one.claim('a.csv'), two.claim('a.csv')]);
    const winners = got.filter((c) => c !== undefined);
    expect(winners).toHaveLength(1);
    expect(readdirSync(inbox)).toEqual([]);
    const c = winners[0]!;
    expect(readFileSync(c.path, 'utf8')).toBe('x\n');
    expect(claimIdOf(c.path.slice(c.path.lastIndexOf('/') + 1))).toBe(c.claimId);
    expect(await one.claim('gone.csv')).toBeUndefined();
  });

  it('finds its leftovers after a restart, with a name too long for the claim path kept whole', async () => {
    const long = `${'n'.repeat(250)}.csv`;
    writeFileSync(join(inbox, long), 'x\n');
    writeFileSync(join(inbox, 'b.csv'), 'y\n');
    const before = claims('i-1');
    await before.init();
    const a = (await before.claim(long))!;
    const b = (await before.claim('b.csv'))!;
    const after = claims('i-1');
    const left = await after.leftovers();
    expect(left.map((c) => c.name).sort()).toEqual(['b.csv', long].sort());
    expect(left.find((c) => c.claimId === a.claimId)?.path).toBe(a.path);
    expect(await after.leftovers(new Set([b.claimId]))).toEqual([{ claimId: b.claimId, name: 'b.csv', path: b.path }]);
  });

  it('puts a file back in the inbox under its name, numbered if the name was taken meanwhile', async () => {
    writeFileSync(join(inbox, 'c.csv'), 'old\n');
    const c = claims('i-1');
    await c.init();
    const claimed = (await c.claim('c.csv'))!;
    writeFileSync(join(inbox, 'c.csv'), 'new\n');
    const back = await c.release(claimed);
    expect(back).not.toBe(join(inbox, 'c.csv'));
    expect(readFileSync(back, 'utf8')).toBe('old\n');
    expect(readFileSync(join(inbox, 'c.csv'), 'utf8')).toBe('new\n');
    expect(existsSync(claimed.path)).toBe(false);
  });
});
