// Bundles the command line (src/cli.ts and what it imports, dependencies included) into dist/cli.js, after
// tsc has built dist/ for the library API. One file instead of some 600 modules: `sluice` starts in about
// 0.27 s instead of 0.41 s on this project's machine, with 15 MB less memory (docs/small-files.md). What is
// loaded only on demand (the PostgreSQL sink, the metrics server) stays in chunks under dist/chunks/.
import { chmodSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { build } from 'esbuild';

const root = resolve(import.meta.dirname, '..');
rmSync(resolve(root, 'dist/chunks'), { recursive: true, force: true });
await build({
  // the worker threads' script is its own entry: dist/worker.js, beside dist/cli.js
  entryPoints: { cli: resolve(root, 'src/cli.ts'), worker: resolve(root, 'src/workers/worker.ts') },
  outdir: resolve(root, 'dist'),
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  // rxjs's "node" export is its CommonJS build, which cannot be tree-shaken: take its ES module build
  alias: { rxjs: resolve(root, 'node_modules/rxjs/dist/esm/index.js') },
  // CommonJS dependencies (pg, prom-client) call require() for Node's own modules
  banner: { js: "import { createRequire as __sluiceRequire } from 'node:module'; const require = __sluiceRequire(import.meta.url);" },
  // a native addon (file locks) loads its prebuilt binary from its own folder: it stays in node_modules
  // zstd's WebAssembly build reads its .wasm from its own folder too
  external: ['fs-native-extensions', '@bokuweb/zstd-wasm'],
  sourcemap: 'linked',
  logLevel: 'warning',
});
// the bin runs as a program (its shebang): a fresh clone's build is executable too
chmodSync(resolve(root, 'dist/cli.js'), 0o755);
