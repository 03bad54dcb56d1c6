// The shape of the house, kept by a test: the import graph of src/ has no cycle, operators know no sink,
// and the daemon and the pipeline know outputs only through the driver contract and the registry.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every file of src/ (relative, e.g. `daemon/daemon.ts`) -> the files of src/ it imports, statically or dynamically, types included. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const path of sources(SRC)) {
    const text = readFileSync(path, 'utf8');
    const specs = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)'(\.[^']+)'/gm)].map((m) => m[1]!);
    const targets = specs.map((s) => relative(SRC, resolve(dirname(path), s.replace(/\.js$/, '.ts'))));
    graph.set(relative(SRC, path), [...new Set(targets)]);
  }
  return graph;
}

function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (state.get(next) === undefined) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of graph.keys()) if (state.get(node) === undefined) visit(node);
  return found;
}

const graph = importGraph();
const importsOf = (prefix: string) => [...graph].filter(([file]) => file.startsWith(prefix)).flatMap(([file, deps]) => deps.map((d) => `${file} -> ${d}`));

describe('the import graph of src/', () => {
  it('resolves every relative import to a file of src/', () => {
    const missing = [...graph].flatMap(([file, deps]) => deps.filter((d) => !graph.has(d)).map((d) => `${file} -> ${d}`));
    expect(missing).toEqual([]);
    expect(graph.size).toBeGreaterThan(50);
  });

  it('has no cycle', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('operators import no sink and no output', () => {
    expect(importsOf('operators/').filter((e) => /-> (sinks|outputs)\//.test(e))).toEqual([]);
  });

  it('the daemon and the pipeline import no concrete output driver, only its contract and the registry', () => {
    const concrete = (e: string) => /-> outputs\/(?!driver\.ts$|registry\.ts$)/.test(e) || /-> sinks\/(?!rejects-file\.ts$)/.test(e);
    expect([...importsOf('daemon/'), ...importsOf('pipeline/')].filter(concrete)).toEqual([]);
  });

  it('the metrics and the progress display see the daemon only through its hooks', () => {
    expect([...importsOf('metrics/'), ...importsOf('progress.ts')].filter((e) => e.endsWith('-> daemon/daemon.ts'))).toEqual([]);
  });
});
