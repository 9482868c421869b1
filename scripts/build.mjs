// Compiles the `scaidrive` CLI (API, workers, dev stack, tools) into one ES module, dist/scaidrive.mjs, for
// production and benchmarks: no TypeScript loader in the process (less memory and start-up work than tsx).
// Packages stay external (resolved from node_modules at run time); the Temporal workflow bundle is still built
// from src/workflows by the worker, as the SDK requires.
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: [path.join(root, 'src/cli/main.ts')],
  outfile: path.join(root, 'dist/scaidrive.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
});
