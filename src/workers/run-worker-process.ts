// Runs workers for the given task queues in this process until SIGINT/SIGTERM.
import { loadConfig } from '../config';
import { createServices } from '../bootstrap';
import type { TaskQueueKind } from '../temporal/task-queues';
import { createWorkers } from './worker-runtime';
import { ensureSchedules } from '../temporal/schedules';

export async function runWorkerProcess(kinds: readonly TaskQueueKind[]): Promise<void> {
  const config = loadConfig();
  const services = await createServices(config, 'worker');
  await services.storage.ensureReady();
  const workers = await createWorkers(config, services, kinds);
  if (kinds.includes('maintenance')) await ensureSchedules(services.temporal, config);
  const stop = () => void workers.shutdown();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  services.logger.info({ task_queues: kinds.map((k) => services.taskQueues[k]) }, 'worker started');
  await workers.run();
  await services.close();
}
