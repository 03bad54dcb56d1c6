// Unit tests for rename: header-only change, swaps, unknown and duplicate names.
import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { rename } from '../../src/operators/rename.js';
import type { Row } from '../../src/row.js';

const header: Row = ['Order Id', 'Email', 'amount'];
const run = (op: ReturnType<typeof rename>, rows: Row[]) => lastValueFrom(from(rows).pipe(op, toArray()));

describe('rename', () => {
  it('renames header columns and passes rows unchanged (the same arrays)', async () => {
    const row: Row = ['1', 'a@x', '10'];
    const out = await run(rename({ 'Order Id': 'order_id', Email: 'email' }), [header, row]);
    expect(out).toEqual([
      ['order_id', 'email', 'amount'],
      ['1', 'a@x', '10'],
    ]);
    expect(out[1]).toBe(row);
  });

  it('renames all at once, so two names can swap', async () => {
    expect(await run(rename({ Email: 'amount', amount: 'Email' }), [header])).toEqual([['Order Id', 'amount', 'Email']]);
  });

  it('does not change the input header array', async () => {
    const h = [...header];
    await run(rename({ Email: 'email' }), [h]);
    expect(h).toEqual(header);
  });

  it('fails with UNKNOWN_COLUMN for a name the header lacks', async () => {
    await expect(run(rename({ mail: 'email' }), [header])).rejects.toMatchObject({ code: 'UNKNOWN_COLUMN', field: 'mail' });
  });

  it('fails with DUPLICATE_COLUMN when two columns would share a name', async () => {
    await expect(run(rename({ Email: 'amount' }), [header, ['1', 'a', '2']])).rejects.toMatchObject({
      code: 'DUPLICATE_COLUMN',
      field: 'amount',
      message: expect.stringContaining('two columns named "amount"'),
    });
  });

  it('refuses an empty new name when built', () => {
    expect(() => rename({ Email: '' })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', field: 'rename.Email' }));
    expect(() => rename(['a'] as unknown as Record<string, string>)).toThrow(/expected \{ old: new \}/);
  });
});
