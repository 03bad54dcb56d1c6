// The new operators keep each row's source line: parse -> rename -> select -> cast -> filter -> dedupe -> addColumn -> batch.
import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { FileContext } from '../../src/file-context.js';
import { addColumn } from '../../src/operators/add-column.js';
import { batch } from '../../src/operators/batch.js';
import { cast } from '../../src/operators/cast.js';
import { dedupe } from '../../src/operators/dedupe.js';
import { filter } from '../../src/operators/filter.js';
import { parseCsv } from '../../src/operators/parse-csv.js';
import { rename } from '../../src/operators/rename.js';
import { select } from '../../src/operators/select.js';
import type { Rejection } from '../../src/row.js';

describe('operators and source lines', () => {
  it('batches carry the lines of the rows kept; cast rejects carry the line of the row refused', async () => {
    const csv = [
      'Id,note,amount,country', // line 1
      '1,"two\nlines",10,FR', // lines 2-3
      '2,x,abc,FR', // 4: cast rejects
      '3,"a\n\nb",5,DE', // 5-7: filtered (amount < 6)
      '4,y,7,DE', // 8
      '1,z,10,FR', // 9: duplicate id
      '5,"q",1e2,IT', // 10
    ].join('\n');
    const rejected: Rejection[] = [];
    const ctx = new FileContext('in.csv', { onReject: (r) => rejected.push(r) });
    const batches = await lastValueFrom(
      from([Buffer.from(csv)]).pipe(
        parseCsv({ context: ctx }),
        rename({ Id: 'id' }),
        select(['id', 'amount', 'country']),
        cast({ id: 'integer', amount: 'number' }, { context: ctx }),
        filter({ column: 'amount', op: 'ge', value: 6 }),
        dedupe({ columns: ['id'] }),
        addColumn({ name: 'file', value: { fileName: true }, context: ctx }),
        batch({ size: 100, context: ctx }),
        toArray(),
      ),
    );
    expect(batches).toEqual([
      {
        header: ['id', 'amount', 'country', 'file'],
        rows: [
          ['1', '10', 'FR', 'in.csv'],
          ['4', '7', 'DE', 'in.csv'],
          ['5', '100', 'IT', 'in.csv'],
        ],
        lines: [2, 8, 10],
      },
    ]);
    expect(rejected).toEqual([{ line: 4, code: 'CAST_FAILED', message: 'cast: column "amount": "abc" is not a number', raw: Buffer.from('2,abc,FR') }]);
    expect(ctx.counts).toMatchObject({ read: 6, rejected: 1, batched: 3 });
    expect(ctx.filtered).toBe(2);
  });
});
