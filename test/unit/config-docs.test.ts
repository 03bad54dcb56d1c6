// Keeps what is derived from the config schema in step with it: the committed JSON Schema and the README table.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { configReference, REFERENCE_END, REFERENCE_START } from '../../src/config/reference.js';
import { configJsonSchema } from '../../src/config/schema.js';

const ROOT = resolve(import.meta.dirname, '../..');

it('schema/sluice.schema.json is the schema the code generates (run npm run docs)', () => {
  const committed = JSON.parse(readFileSync(resolve(ROOT, 'schema/sluice.schema.json'), 'utf8')) as unknown;
  expect(committed).toEqual(configJsonSchema());
});

it("the README's configuration reference is the one the schema generates (run npm run docs)", () => {
  const readme = readFileSync(resolve(ROOT, 'README.md'), 'utf8');
  const block = readme.slice(readme.indexOf(REFERENCE_START) + REFERENCE_START.length, readme.indexOf(REFERENCE_END)).trim();
  expect(block).toBe(configReference());
});
