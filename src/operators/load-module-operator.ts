// loadModuleOperator: a user's own operator, imported from a .js/.mjs file that exports a factory.
import { access } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { catchError, defer, map, throwError, type OperatorFunction } from 'rxjs';
import { z } from 'zod';
import { SluiceError } from '../errors.js';
import type { FileContext } from '../file-context.js';
import type { Row } from '../row.js';
import { defineOperator } from './definition.js';

/** What a module's factory gets besides its options. */
export interface ModuleOperatorEnv {
  /** The file's context (its `name`, the current `line`, `reject(...)`), when the pipeline gives one. */
  context: FileContext | undefined;
}

/** The export of a module operator's file: called once per file, returns that file's operator. */
export type ModuleOperatorFactory = (options: unknown, env: ModuleOperatorEnv) => OperatorFunction<Row, Row>;

export interface LoadModuleOperatorOptions {
  /** The export holding the factory. Default `default`. */
  export?: string;
  /** Passed to the factory as its first argument. */
  options?: unknown;
  /** A relative path resolves against this folder. Default the working directory. */
  baseDir?: string;
}

/** Makes one file's operator: calls the module's factory with the options and this file's context. */
export type ModuleOperator = (context?: FileContext) => OperatorFunction<Row, Row>;

/**
 * Imports a user's operator: a `.js` or `.mjs` ES module (TypeScript compiled to JavaScript first)
 * whose export `export` (default: the default export) is a factory
 * `(options, { context }) => OperatorFunction<Row, Row>`. Resolves to a function that makes one
 * operator per file, so state kept in the factory's closure is per file.
 *
 * The contract the operator must keep, as every sluice operator does:
 * - the first row it receives is the header; it must emit the header it produces first, before any
 *   data row (or nothing at all, only when its input was empty);
 * - rows are `string[]`, one field per header column;
 * - it stays synchronous (emits a row's output during that row's `next`, no delays or buffering), so
 *   `context.line` still names the row's source line for rejects and batches;
 * - it drops a row by not emitting it, and refuses one with `context.reject({ line: context.line,
 *   code, message, raw })`.
 * An error it raises, a factory that throws or returns no function, or a first value that is not a
 * row, fails the file with `MODULE_FAILED` (the original error is its `cause`).
 *
 * @example
 * // ./ops/upper.mjs
 * export default ({ column }) => (rows$) => { let i = -1; return rows$.pipe(map((r) => {
 *   if (i === -1) { i = r.indexOf(column); return r; } r[i] = r[i].toUpperCase(); return r; })); };
 * // then
 * const upper = await loadModuleOperator('./ops/upper.mjs', { options: { column: 'country' } });
 * rows$.pipe(upper(context));
 * @param path The file, absolute or relative to `baseDir`.
 * @param options Which export, the factory's options, the base folder.
 * @throws CONFIG_INVALID (when loading) when the file is missing, not .js/.mjs, fails to import, or its
 * export is not a function; MODULE_FAILED (per file) as above.
 */
export async function loadModuleOperator(path: string, options: LoadModuleOperatorOptions = {}): Promise<ModuleOperator> {
  const exportName = options.export ?? 'default';
  const file = resolve(options.baseDir ?? process.cwd(), path);
  const field = 'module.path';
  const ext = extname(file);
  if (ext !== '.js' && ext !== '.mjs') {
    throw new SluiceError(
      'CONFIG_INVALID',
      `module ${JSON.stringify(path)}: expected a .js or .mjs file${ext === '.ts' || ext === '.mts' ? ' (compile TypeScript to JavaScript first)' : ''}`,
      { field },
    );
  }
  try {
    await access(file);
  } catch (err) {
    throw new SluiceError('CONFIG_INVALID', `module ${JSON.stringify(path)}: cannot read ${file}: ${(err as Error).message}`, { field, cause: err });
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new SluiceError('CONFIG_INVALID', `module ${JSON.stringify(path)}: import failed: ${(err as Error).message}`, { field, cause: err });
  }
  const factory = mod[exportName];
  if (typeof factory !== 'function') {
    throw new SluiceError(
      'CONFIG_INVALID',
      `module ${JSON.stringify(path)}: export ${JSON.stringify(exportName)} is ${factory === undefined ? 'missing' : `a ${typeof factory}`}; expected a factory (options, { context }) => OperatorFunction<Row, Row>`,
      { field: 'module.export' },
    );
  }
  const where = `module ${JSON.stringify(path)}`;
  const failed = (message: string, context: FileContext | undefined, cause?: unknown): SluiceError =>
    new SluiceError('MODULE_FAILED', `${where}: ${message}`, { file: context?.name, cause });
  return (context) => {
    let op: unknown;
    try {
      op = (factory as ModuleOperatorFactory)(options.options, { context });
    } catch (err) {
      throw failed(`its factory threw: ${(err as Error)?.message ?? String(err)}`, context, err);
    }
    if (typeof op !== 'function') throw failed(`its factory returned ${op === null ? 'null' : typeof op}, not an operator (a function)`, context);
    const user = op as OperatorFunction<Row, Row>;
    return (source) =>
      defer(() => {
        let first = true;
        // errors from upstream (a read error, a parse error) pass through as they are, not as MODULE_FAILED
        const upstream = new WeakSet<object>();
        const input = source.pipe(
          catchError((err: unknown) => {
            if (typeof err === 'object' && err !== null) upstream.add(err);
            return throwError(() => err);
          }),
        );
        return user(input).pipe(
          map((row) => {
            // the header is checked once; later rows are trusted so the check costs nothing per row
            if (first) {
              first = false;
              if (!Array.isArray(row) || !row.every((f) => typeof f === 'string'))
                throw failed(`its first value is not a header (string[]): ${String(JSON.stringify(row)).slice(0, 200)}`, context);
            }
            return row;
          }),
          catchError((err: unknown) => {
            const own = err instanceof SluiceError || (typeof err === 'object' && err !== null && upstream.has(err));
            return throwError(() => (own ? err : failed(`its operator failed: ${(err as Error)?.message ?? String(err)}`, context, err)));
          }),
        );
      });
  };
}

/** The `module` step: the module is imported once, when the pipeline is built; its factory runs per file. */
export const moduleStep = defineOperator({
  name: 'module',
  schema: z
    .strictObject({
      path: z.string().min(1).describe('A .js/.mjs file exporting a factory `(options) => OperatorFunction<Row, Row>`.'),
      export: z.string().default('default'),
      options: z.unknown().optional(),
    })
    .describe("A user's own operator."),
  build: (m, { baseDir }) => loadModuleOperator(m.path, { export: m.export, options: m.options, ...(baseDir === undefined ? {} : { baseDir }) }),
});
