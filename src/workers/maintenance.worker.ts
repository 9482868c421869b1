// Worker entry for the maintenance task queue (`tsx src/workers/maintenance.worker.ts`, or `scaidrive worker --queue maintenance`).
import { runWorkerProcess } from './run-worker-process';

await runWorkerProcess(['maintenance']);
