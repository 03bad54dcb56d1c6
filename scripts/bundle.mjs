// Bundles the command line (src/cli.ts and what it imports, dependencies included) into dist/cli.js, after
// tsc has built dist/ for the library API. One file instead of some 600 modules: `sluice` starts in about
// 0.27 s instead of 0.41 s on this project's machine, with 15 MB less memory (docs/small-files.md). What is
// loaded only on demand stays in chunks under dist/chunks/: each command's own modules (cli.ts imports them
// when the command runs, so --help loads almost nothing), the YAML parser (only with a config file), the
// progress bar (only on a terminal), the PostgreSQL sink, the metrics server.
import { chmodSync, existsSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { build } from 'esbuild';

const root = resolve(import.meta.dirname, '..');

// zod re-exports every one of its 50 locales (`z.locales`, `z.core.locales`: 360 KB, a third of the bundle,
// compiled at every start) though it speaks only English unless told otherwise (`z.config(z.locales.fr())`,
// which sluice never does). In the CLI `locales` holds just `en`, the one zod's schemas import themselves.
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) => {
      if (!/[\\/]node_modules[\\/]zod[\\/]/.test(args.importer)) return undefined;
      const en = resolve(dirname(args.importer), '../locales/en.js');
      // a zod without that file is bundled as it is, whole
      return existsSync(en) ? { path: en, namespace: 'zod-locales' } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(args.path)};`,
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
  },
};

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
  plugins: [zodEnglishOnly],
  // without its comments and indentation the bundle is a third smaller, and ASCII: a few comments with
  // an em dash made V8 hold the whole source as two-byte text. Names are kept (stack traces stay
  // readable; the source map gives the lines)
  minifyWhitespace: true,
  sourcemap: 'linked',
  logLevel: 'warning',
});
// the bin runs as a program (its shebang): a fresh clone's build is executable too
chmodSync(resolve(root, 'dist/cli.js'), 0o755);
