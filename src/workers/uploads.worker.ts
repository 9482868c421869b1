// Worker entry for the uploads task queue (`tsx src/workers/uploads.worker.ts`, or `scaidrive worker --queue uploads`).
import { runWorkerProcess } from './run-worker-process';

await runWorkerProcess(['uploads']);
