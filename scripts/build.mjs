// Compiles the `scaidrive` CLI (API, workers, dev stack, tools) into ES modules under dist/ — the entry point
// dist/scaidrive.mjs and chunks next to it — for production and benchmarks: no TypeScript loader in the process
// (less memory and start-up work than tsx). Code splitting keeps what only some commands need (the Temporal worker
// SDK, activities, connectors) in chunks loaded by their dynamic imports, so an API process never loads them: one
// bundle hoisted every package import of every command to its top (~18 MiB of RSS in each API process).
// Packages stay external (resolved from node_modules at run time); the Temporal workflow bundle is still built
// from src/workflows by the worker, as the SDK requires.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'dist');
// Chunks of an earlier build would pile up (their names carry a content hash).
await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints: { scaidrive: path.join(root, 'src/cli/entry.ts') },
  outdir,
  // Chunks sit next to the entry point: modules that find files relative to import.meta.url resolve the same.
  chunkNames: 'chunk-[hash]',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
});
