// JSON lines end to end: .ndjson and .jsonl inputs (gzip too) read as objects, bad lines to rejects with
// their line, keys beyond the header logged; NDJSON output typed by cast; a .json file still refused.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, dirFlags, type Dirs, list, makeDirs, runCli } from './harness.js';

let d: Dirs;
afterEach(() => cleanup(d));

describe('JSON lines', () => {
  it('reads .ndjson and .jsonl.gz inputs into CSV, rejects what is not an object with its line, and logs keys beyond the header', async () => {
    d = await makeDirs();
    await writeFile(join(d.watch, 'events.ndjson'), '{"id":"1","n":7,"tag":"a"}\n{"id":"2","n":null}\nnot json\n{"id":"3","n":1.5,"extra":true}\n');
    await writeFile(join(d.watch, 'more.jsonl.gz'), gzipSync('{"k":"x,y","v":{"deep":[1]}}\n'));
    const r = await runCli(['run', '--once', ...dirFlags(d)]);
    expect(r.code).toBe(0);
    expect((await list(d.out)).sort()).toEqual(['events.csv', 'more.csv']);
    // dropNulls (the default step) drops the row whose n and tag are null
    expect(await readFile(join(d.out, 'events.csv'), 'utf8')).toBe('id,n,tag\n1,7,a\n');
    expect(await readFile(join(d.out, 'more.csv'), 'utf8')).toBe('k,v\n"x,y","{""deep"":[1]}"\n');
    expect(await readFile(join(d.rejects, 'events.rejects.csv'), 'utf8')).toBe(
      `line,code,message,raw\n3,JSON_INVALID,"not JSON: Unexpected token 'o', ""not json"" is not valid JSON","not json"\n`,
    );
    const done = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'file processed' && l.file === 'events.ndjson');
    expect(done).toMatchObject({ read: 4, written: 1, filtered: 2, rejected: 1, keysNotInHeader: { extra: 1 } });
  });

  it('writes typed NDJSON after cast: numbers and booleans as JSON, an empty cast field as null', async () => {
    d = await makeDirs();
    await writeFile(
      join(d.root, 'sluice.yaml'),
      'pipelines:\n  - name: p\n    steps:\n      - cast: { id: integer, amount: number, paid: boolean }\n    output: { format: ndjson }\n',
    );
    await writeFile(join(d.watch, 't.csv'), 'id,amount,paid,note\n1,2.50,yes,a\n2,,no,\n');
    const r = await runCli(['run', '--once', '--config', join(d.root, 'sluice.yaml'), ...dirFlags(d)]);
    expect(r.code).toBe(0);
    expect(await readFile(join(d.out, 't.ndjson'), 'utf8')).toBe(
      '{"id":1,"amount":2.5,"paid":true,"note":"a"}\n{"id":2,"amount":null,"paid":false,"note":""}\n',
    );
  });

  it('input.format: ndjson reads any name as JSON lines; a .json array of objects is read, one that is not an array or is cut short fails', async () => {
    d = await makeDirs();
    await writeFile(
      join(d.root, 'sluice.yaml'),
      'pipelines:\n  - name: j\n    match: ["*.log"]\n    input: { format: ndjson, columns: [msg, level] }\n    steps: []\n  - name: rest\n',
    );
    await writeFile(join(d.watch, 'app.log'), '{"level":"info","msg":"hi"}\n');
    await writeFile(join(d.watch, 'data.json'), '[\n  {"a": 1, "b": "x"},\n  {"a": 2, "b": "y"}\n]\n');
    await writeFile(join(d.watch, 'one.json'), '{"a": 1}\n');
    await writeFile(join(d.watch, 'cut.json'), '[{"a": 1}, {"a"');
    const r = await runCli(['run', '--once', '--config', join(d.root, 'sluice.yaml'), ...dirFlags(d)]);
    expect(r.code).toBe(1);
    expect(await readFile(join(d.out, 'app.log'), 'utf8')).toBe('msg,level\nhi,info\n');
    expect(await readFile(join(d.out, 'data.csv'), 'utf8')).toBe('a,b\n1,x\n2,y\n');
    const codeOf = async (f: string) => (JSON.parse(await readFile(join(d.failed, `${f}.error.json`), 'utf8')) as { code: string }).code;
    expect(await codeOf('one.json')).toBe('FORMAT_UNSUPPORTED');
    expect(await codeOf('cut.json')).toBe('JSON_INCOMPLETE');
    expect((await list(d.out)).sort()).toEqual(['app.log', 'data.csv']);
  });
});
