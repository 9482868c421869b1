// Worker entry for the two search task queues and the vectorization dispatcher (`tsx src/workers/search.worker.ts`,
// or `scaidrive worker --queue search-high --queue search-low`).
import { runWorkerProcess } from './run-worker-process';

await runWorkerProcess(['search-high', 'search-low']);
