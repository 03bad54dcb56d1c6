// The CSV dialects of real exports end to end with the built CLI: a preamble, comment lines, no header,
// stray quotes, a timestamp format with a zone, and a header naming a column twice.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, dirFlags, type Dirs, list, makeDirs, runCli } from './harness.js';

let d: Dirs;
afterEach(() => cleanup(d));

const CONFIG = `
pipelines:
  - name: export
    match: ["export*"]
    input: { skipLines: 2, comment: "#", relaxQuotes: true }
    steps:
      - cast: { when: { type: timestamp, format: "dd/MM/yyyy HH:mm", timezone: Europe/Paris } }
  - name: headless
    match: ["headless*"]
    input: { header: false, columns: [id, height] }
    steps: []
  - name: plain
    match: ["*"]
`;

describe('CSV dialects', () => {
  it('reads a preamble, comments, stray quotes and formatted times; fails a duplicate header with DUPLICATE_HEADER', async () => {
    d = await makeDirs();
    await writeFile(join(d.root, 'sluice.yaml'), CONFIG);
    await writeFile(
      join(d.watch, 'export.csv'),
      'Sales export, "May"\nGenerated 2024-07-02\nwhen,who\n# a comment, not a row\n01/07/2024 14:30,5\'3" tall\n2024-07-01 14:30,x\n15/01/2024 09:00,a"b\n',
    );
    await writeFile(join(d.watch, 'headless.csv'), '1,180\n2,175\n');
    await writeFile(join(d.watch, 'dup.csv'), 'a,a,b\n1,2,3\n');
    const r = await runCli(['run', '--once', '--settle-ms', '1', '--config', join(d.root, 'sluice.yaml'), ...dirFlags(d)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    expect(await readFile(join(d.out, 'export.csv'), 'utf8')).toBe('when,who\n2024-07-01T12:30:00Z,"5\'3"" tall"\n2024-01-15T08:00:00Z,"a""b"\n');
    const rejects = (await readFile(join(d.rejects, 'export.rejects.csv'), 'utf8')).split('\n');
    // the file's own line number, past the preamble and the comment
    expect(rejects[1]).toMatch(/^6,CAST_FAILED,.*""2024-07-01 14:30"" is not a timestamp in the format dd\/MM\/yyyy HH:mm/);
    // the comment line is counted, not a row and not a reject
    const done = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'file processed' && l.file === 'export.csv');
    expect(done).toMatchObject({ read: 3, written: 2, rejected: 1, commentLines: 1 });
    expect(await readFile(join(d.out, 'headless.csv'), 'utf8')).toBe('id,height\n1,180\n2,175\n');
    expect(await list(d.failed)).toEqual(['dup.csv', 'dup.csv.error.json']);
    const error = JSON.parse(await readFile(join(d.failed, 'dup.csv.error.json'), 'utf8'));
    expect(error).toMatchObject({ code: 'DUPLICATE_HEADER', file: 'dup.csv' });
    expect(error.message).toContain('"a" twice (columns 1 and 2)');
  });

  it('refuses header: false without columns at start, naming the field', async () => {
    d = await makeDirs();
    await writeFile(join(d.root, 'sluice.yaml'), 'pipelines:\n  - name: p\n    input: { header: false }\n');
    const r = await runCli(['validate', '--config', join(d.root, 'sluice.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('pipelines[0].input.columns');
  });
});
