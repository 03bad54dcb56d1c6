// Runs the README's library example as written (against the built package), on a real temp folder.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { afterEach, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
let dir: string | undefined;
afterEach(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

it('the README library example produces the documented output', async () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Library API'));
  const code = /```ts\n([\s\S]*?)```/.exec(section)![1]!.replace("from 'sluice'", `from '${join(ROOT, 'dist/index.js')}'`);
  // inside the project, so that the example's `import ... from 'rxjs'` resolves as it would for a user
  await mkdir(join(ROOT, 'node_modules/.cache'), { recursive: true });
  dir = await mkdtemp(join(ROOT, 'node_modules/.cache/sluice-example-'));
  await mkdir(join(dir, 'out'));
  await writeFile(join(dir, 'example.mjs'), code);
  await writeFile(join(dir, 'orders.csv'), 'id,email,country\n1,a@x.io,de\n2,,fr\n3,"c,@x.io",jp\n4,d@x.io\n');
  const run = spawnSync(process.execPath, ['example.mjs'], { cwd: dir, encoding: 'utf8' });
  expect(run.stderr).toBe('5 CSV_RECORD_INCONSISTENT_COLUMNS line 5: expected 3 fields as in the header, got 2\n');
  expect(run.status).toBe(0);
  expect(await readFile(join(dir, 'out/orders.csv'), 'utf8')).toBe('id,email,country\n1,a@x.io,DE\n3,"c,@x.io",JP\n');
});
