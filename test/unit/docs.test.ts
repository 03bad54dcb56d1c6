// Keeps the README true: its error table lists exactly the registry's codes, its environment exactly the variables read.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENV_VARS } from '../../src/config/load.js';
import { ERROR_CODES, FILE_ERROR_CODES, retryClassOf } from '../../src/errors.js';

const README = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8');

describe('README', () => {
  it('lists every error code of the registry, and no other', () => {
    const section = README.slice(README.indexOf('## Error codes'), README.indexOf('## Architecture'));
    const documented = [...section.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]).sort();
    expect(documented).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it("gives each file error's retry class as the registry does", () => {
    const section = README.slice(README.indexOf('## Error codes'), README.indexOf('## Architecture'));
    const rows = [...section.matchAll(/^\| `([A-Z0-9_]+)` \| (\w+) \| ([\w-]+) \|/gm)].map((m) => [m[1]!, m[3]!] as const);
    expect(rows).toHaveLength(Object.keys(ERROR_CODES).length);
    for (const [code, retry] of rows)
      expect([code, retry]).toEqual([code, code in FILE_ERROR_CODES ? retryClassOf(code as keyof typeof FILE_ERROR_CODES) : '-']);
  });

  it('lists every SLUICE_* variable the configuration reads, and no other', () => {
    const item = README.slice(README.indexOf('- **Environment.**'), README.indexOf('- **Formats.**'));
    const documented = [...item.matchAll(/`(SLUICE_[A-Z_]+)`/g)].map((m) => m[1]).sort();
    expect(documented).toEqual([...Object.keys(ENV_VARS), 'SLUICE_CONFIG'].sort());
  });
});
