// Pipelines from sluice.yaml end to end: routing by glob, gzip input, NDJSON and gzip output, TSV, encodings,
// NO_PIPELINE, and the validate / schema / preview commands.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, dirFlags, type Dirs, list, makeDirs, runCli } from './harness.js';

let d: Dirs;
afterEach(() => cleanup(d));

const CONFIG = `
pipelines:
  - name: orders
    match: ["orders*.csv", "orders*.csv.gz"]
    steps:
      - dropNulls: { how: any, columns: [email] }
    output: { format: ndjson }
  - name: people
    match: ["people*"]
    input: { encoding: windows-1252 }
    steps:
      - dropNulls: { how: all }
    output: { format: csv, gzip: true, name: "{pipeline}/{stem}.csv.gz" }
  - name: tsv
    match: ["*.tsv"]
    steps: []
    output: { format: csv, quote: all, lineEnding: crlf }
  - name: plain
    match: ["plain*"]
`;

describe('pipelines from sluice.yaml', () => {
  it('routes by glob, decompresses gzip, writes NDJSON and gzip CSV, and fails unmatched files with NO_PIPELINE', async () => {
    d = await makeDirs();
    await writeFile(join(d.root, 'sluice.yaml'), CONFIG);
    await writeFile(join(d.watch, 'orders-1.csv'), 'id,email,note\n1,a@x.io,\n2,,hi\n3,"c@x.io","say ""hi"""\n');
    await writeFile(join(d.watch, 'orders-2.csv.gz'), gzipSync('id,email,note\n4,d@x.io,ok\n5,,x\n'));
    await writeFile(join(d.watch, 'people.csv'), Buffer.concat([Buffer.from('name,city\nJos'), Buffer.from([0xe9, 0x2c, 0x80]), Buffer.from('uro\n,\n')]));
    await writeFile(join(d.watch, 'sheet.tsv'), 'a\tb\n1\tx,y\n');
    await writeFile(join(d.watch, 'notes.txt'), 'hello\n');
    // a gzip input comes out as plain text, under a name without .gz
    await writeFile(join(d.watch, 'plain.csv.gz'), gzipSync('a,b\n1,2\n'));
    const r = await runCli(['run', '--once', '--settle-ms', '1', '--config', join(d.root, 'sluice.yaml'), ...dirFlags(d)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    expect(await list(d.out)).toEqual(['orders-1.ndjson', 'orders-2.ndjson', 'people', 'plain.csv', 'sheet.tsv']);
    expect(await readFile(join(d.out, 'plain.csv'), 'utf8')).toBe('a,b\n1,2\n');
    expect(await readFile(join(d.out, 'orders-1.ndjson'), 'utf8')).toBe(
      '{"id":"1","email":"a@x.io","note":""}\n{"id":"3","email":"c@x.io","note":"say \\"hi\\""}\n',
    );
    expect(await readFile(join(d.out, 'orders-2.ndjson'), 'utf8')).toBe('{"id":"4","email":"d@x.io","note":"ok"}\n');
    expect(await list(join(d.out, 'people'))).toEqual(['people.csv.gz']);
    expect(gunzipSync(await readFile(join(d.out, 'people', 'people.csv.gz'))).toString('utf8')).toBe('name,city\nJosé,€uro\n');
    // a .tsv comes out tab-separated, as its name says
    expect(await readFile(join(d.out, 'sheet.tsv'), 'utf8')).toBe('"a"\t"b"\r\n"1"\t"x,y"\r\n');
    expect(await list(d.failed)).toEqual(['notes.txt', 'notes.txt.error.json']);
    expect(JSON.parse(await readFile(join(d.failed, 'notes.txt.error.json'), 'utf8'))).toMatchObject({ code: 'NO_PIPELINE', file: 'notes.txt' });
    expect(await list(d.archive)).toEqual(['orders-1.csv', 'orders-2.csv.gz', 'people.csv', 'plain.csv.gz', 'sheet.tsv']);
  });

  it('validate says which pipelines a valid config has, and exits 2 naming the field of an invalid one', async () => {
    d = await makeDirs();
    const cfg = join(d.root, 'sluice.yaml');
    await writeFile(cfg, CONFIG);
    const ok = await runCli(['validate', '--config', cfg]);
    expect(ok.code).toBe(0);
    const [first, ...folders] = ok.stdout.trimEnd().split('\n');
    expect(first).toBe(`${cfg}: valid; 4 pipeline(s): orders (orders*.csv, orders*.csv.gz); people (people*); tsv (*.tsv); plain (plain*)`);
    expect(folders.map((l) => l.trim().split(/\s+/)[0])).toEqual(['watch', 'out', 'rejects', 'archive', 'failed', 'state']);
    for (const l of folders) expect(l.trim().split(/\s+/)[1]!.startsWith('/')).toBe(true);
    await writeFile(cfg, 'pipelines:\n  - name: a\n    steps:\n      - dropNulls: { how: some }\n');
    const bad = await runCli(['validate', '--config', cfg]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('pipelines[0].steps[0].dropNulls.how: got "some"; expected one of "any"|"all"');
    await writeFile(cfg, 'pipelines:\n  - name: a\n    output: { format: csv, name: "../{stem}.csv" }\n');
    const tpl = await runCli(['validate', '--config', cfg]);
    expect(tpl.code).toBe(2);
    expect(tpl.stderr).toContain('pipelines[0].output.name: got "../{stem}.csv"');
  });

  it('schema prints the JSON Schema', async () => {
    const r = await runCli(['schema']);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as { title: string; properties: Record<string, unknown> };
    expect(schema.title).toBe('sluice configuration (sluice.yaml)');
    expect(Object.keys(schema.properties)).toContain('pipelines');
  });

  it('preview prints the first rows and the counts without writing or moving anything', async () => {
    d = await makeDirs();
    const file = join(d.root, 'orders-9.csv');
    await writeFile(file, 'id,email\n1,a@x.io\n2,\n3,c@x.io\n4\n');
    await writeFile(join(d.root, 'sluice.yaml'), CONFIG);
    const r = await runCli(['preview', file, '--config', join(d.root, 'sluice.yaml'), '--rows', '1']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        'pipeline: orders',
        'output: file out/{stem}.ndjson (ndjson)',
        'id | email',
        '---+-------',
        '1  | a@x.io',
        'read 4, written 2, filtered 1, rejected 1 (CSV_RECORD_INCONSISTENT_COLUMNS x1)',
        '  line 5: CSV_RECORD_INCONSISTENT_COLUMNS: line 5: expected 2 fields as in the header, got 1',
        '',
      ].join('\n'),
    );
    expect(await list(d.root)).toEqual(['archive', 'failed', 'orders-9.csv', 'out', 'rejects', 'sluice.yaml', 'watch']);
    for (const dir of [d.out, d.rejects, d.archive, d.failed]) expect(await list(dir)).toEqual([]);
  });
});

describe('preview of a .tsv file', () => {
  it('splits it on tabs, as the daemon does', async () => {
    d = await makeDirs();
    const file = join(d.root, 'sheet.tsv');
    await writeFile(file, 'a\tb\n1\tx,y\n2\t\n');
    const r = await runCli(['preview', file]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      ['pipeline: default', 'output: file out/{name} (csv)', 'a | b', '--+----', '1 | x,y', 'read 2, written 1, filtered 1, rejected 0', ''].join('\n'),
    );
  });
});

describe('the configuration example from the issue, as written', () => {
  it('routes orders*.csv through dropNulls(pandas) and select, everything else through dropNulls', async () => {
    d = await makeDirs();
    const cfg = join(d.root, 'sluice.yaml');
    await writeFile(
      cfg,
      [
        `watch: ${d.watch}`,
        `out: ${d.out}`,
        'pipelines:',
        '  - name: orders',
        '    match: ["orders*.csv"]',
        '    steps:',
        '      - dropNulls: { how: any, nullValues: pandas }',
        '      - select: [id, email, amount]',
        '    output: { format: csv }',
        '  - name: default',
        '    match: ["*"]',
        '    steps:',
        '      - dropNulls: { how: any }',
        '',
      ].join('\n'),
    );
    await writeFile(join(d.watch, 'orders-7.csv'), 'id,email,amount,note\n1,a@x.io,10,x\n2,NA,20,y\n3,c@x.io,n/a,z\n4,d@x.io,40,\n');
    await writeFile(join(d.watch, 'other.csv'), 'k,v\n1,NA\n2,\n');
    const r = await runCli([
      'run',
      '--once',
      '--settle-ms',
      '1',
      '--config',
      cfg,
      '--rejects',
      d.rejects,
      '--archive',
      d.archive,
      '--failed',
      d.failed,
      '--metrics-port',
      '0',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // pandas' NA tokens (NA, n/a, empty) drop rows 2, 3 and 4; select keeps and orders three columns
    expect(await readFile(join(d.out, 'orders-7.csv'), 'utf8')).toBe('id,email,amount\n1,a@x.io,10\n');
    // the default pipeline treats only empty fields as null: NA is a value there
    expect(await readFile(join(d.out, 'other.csv'), 'utf8')).toBe('k,v\n1,NA\n');
  });

  it('cast with onError: reject sends bad values to rejects with their line; a module operator runs per file', async () => {
    d = await makeDirs();
    // the module imports rxjs: it lives inside the project, so that it resolves as in a user's project
    const cache = resolve(import.meta.dirname, '../../node_modules/.cache');
    await mkdir(cache, { recursive: true });
    const upper = join(cache, `sluice-upper-${process.pid}.mjs`);
    await writeFile(
      upper,
      "import { map } from 'rxjs';\nexport default ({ column }) => (rows$) => { let i = -1; return rows$.pipe(map((r) => { if (i === -1) { i = r.indexOf(column); return r; } r[i] = r[i].toUpperCase(); return r; })); };\n",
    );
    const cfg = join(d.root, 'sluice.yaml');
    await writeFile(
      cfg,
      [
        'pipelines:',
        '  - name: typed',
        '    steps:',
        '      - cast: { qty: integer, price: { type: number, onError: "null" } }',
        `      - module: { path: ${upper}, options: { column: country } }`,
        '      - addColumn: { name: source, source: fileName }',
        '',
      ].join('\n'),
    );
    await writeFile(join(d.watch, 't.csv'), 'qty,price,country\n1,1.50,de\nx,2,fr\n3,abc,jp\n');
    const r = await runCli(['run', '--once', '--settle-ms', '1', '--config', cfg, ...dirFlags(d)]);
    await rm(upper);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await readFile(join(d.out, 't.csv'), 'utf8')).toBe('qty,price,country,source\n1,1.5,DE,t.csv\n3,,JP,t.csv\n');
    const rejects = (await readFile(join(d.rejects, 't.rejects.csv'), 'utf8')).split('\n');
    expect(rejects[1]).toMatch(/^3,CAST_FAILED,.*qty.*"x".*integer/);
  });
});
