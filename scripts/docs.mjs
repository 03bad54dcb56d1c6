// Regenerates what is derived from the config schema: schema/sluice.schema.json and the README's config reference.
import { readFileSync, writeFileSync } from 'node:fs';
import { configJsonSchema } from '../dist/config/schema.js';
import { configReference, REFERENCE_END, REFERENCE_START } from '../dist/config/reference.js';

writeFileSync(new URL('../schema/sluice.schema.json', import.meta.url), `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
const readmeUrl = new URL('../README.md', import.meta.url);
const readme = readFileSync(readmeUrl, 'utf8');
const a = readme.indexOf(REFERENCE_START);
const b = readme.indexOf(REFERENCE_END);
if (a === -1 || b === -1) throw new Error('README.md lacks the config reference markers');
writeFileSync(readmeUrl, `${readme.slice(0, a + REFERENCE_START.length)}\n${configReference()}\n${readme.slice(b)}`);
console.log('wrote schema/sluice.schema.json and the README config reference');
