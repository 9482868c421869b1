// Worker entry for the identity task queue (`tsx src/workers/identity.worker.ts`, or `scaidrive worker --queue identity`).
import { runWorkerProcess } from './run-worker-process';

await runWorkerProcess(['identity']);
