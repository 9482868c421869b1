// Temporal Schedules ScaiDrive keeps: the hourly `trash-cleanup`. Created idempotently at worker start.
import { ScheduleAlreadyRunning, type Client } from '@temporalio/client';
import type { Config } from '../config';
import { trashCleanupWorkflow } from '../workflows/trash-cleanup.workflow';
import { scaiSearchAttributes } from './search-attributes';
import { taskQueues } from './task-queues';

/** `trash-cleanup` for the default prefix; stacks sharing a Temporal namespace (tests) get their own. */
export function trashCleanupScheduleId(config: Config): string {
  return config.temporal.taskQueuePrefix === 'scaidrive' ? 'trash-cleanup' : `trash-cleanup/${config.temporal.taskQueuePrefix}`;
}

export async function ensureSchedules(client: Client, config: Config): Promise<void> {
  const scheduleId = trashCleanupScheduleId(config);
  try {
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: '1 hour' }] },
      action: {
        type: 'startWorkflow',
        workflowType: trashCleanupWorkflow,
        workflowId: scheduleId,
        taskQueue: taskQueues(config.temporal.taskQueuePrefix).maintenance,
        args: [{}],
        // Cross-tenant maintenance: tagged "system" so it is filterable like every other workflow.
        typedSearchAttributes: scaiSearchAttributes({ tenantId: 'system' }),
      },
      policies: { overlap: 'SKIP', catchupWindow: '1 hour' },
    });
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
  }
}
