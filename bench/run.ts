// Benchmark runner: `npm run bench -- <name> [args]` runs bench/<name>.bench.ts, whose `run(args)` resolves to
// an exit code. An unknown or missing name lists the benchmarks there are.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tuneHeapForApi } from '../src/api/heap-tuning';

// The benchmarks' clients send and receive GiBs through node:http as the API does, with the same garbage (socket
// pieces outside V8's heap); with V8's adaptive limits their process ran bursts of full collections, so the client's
// CPU for the same GiB varied 1.8–7.3 s between runs, for the direct baselines and the API alike. The API's heap
// settings keep the measuring side steady.
tuneHeapForApi();

export interface BenchModule {
  /** One line for the list of benchmarks. */
  description?: string;
  run(args: string[]): Promise<number>;
}

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const suffix = '.bench.ts';

async function available(): Promise<string[]> {
  return (await readdir(benchDir))
    .filter((file) => file.endsWith(suffix))
    .map((file) => file.slice(0, -suffix.length))
    .sort();
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const names = await available();
  if (!name || name === '--help' || name === '-h' || !names.includes(name)) {
    if (name && name !== '--help' && name !== '-h') process.stderr.write(`Unknown benchmark "${name}".\n`);
    const lines = await Promise.all(
      names.map(async (n) => {
        const mod = (await import(pathToFileURL(path.join(benchDir, `${n}${suffix}`)).href)) as Partial<BenchModule>;
        return `  ${n.padEnd(12)} ${mod.description ?? ''}`;
      }),
    );
    process.stderr.write(`Usage: npm run bench -- <name> [args]\n\nAvailable benchmarks:\n${lines.join('\n')}\n`);
    return name && name !== '--help' && name !== '-h' ? 2 : name ? 0 : 2;
  }
  const mod = (await import(pathToFileURL(path.join(benchDir, `${name}${suffix}`)).href)) as Partial<BenchModule>;
  if (typeof mod.run !== 'function') throw new Error(`bench/${name}${suffix} does not export run(args)`);
  return mod.run(args);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    // fetch failures carry what actually happened (refused, reset, timed out) in their cause.
    const cause = (error as { cause?: unknown }).cause;
    if (cause) process.stderr.write(`cause: ${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}\n`);
    process.exit(1);
  },
);
