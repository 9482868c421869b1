// Worker entry for the connectors task queue (`tsx src/workers/connectors.worker.ts`, or `scaidrive worker --queue connectors`).
import { runWorkerProcess } from './run-worker-process';

await runWorkerProcess(['connectors']);
