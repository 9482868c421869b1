// Task queue names. A prefix (SCAIDRIVE_TEMPORAL_TASK_QUEUE_PREFIX) lets tests and tenants of a shared
// Temporal cluster keep their workers apart.
export const taskQueueKinds = ['identity', 'uploads', 'maintenance', 'connectors', 'search-high', 'search-low'] as const;

export type TaskQueueKind = (typeof taskQueueKinds)[number];
export type TaskQueues = Record<TaskQueueKind, string>;

export function taskQueues(prefix: string): TaskQueues {
  return Object.fromEntries(taskQueueKinds.map((kind) => [kind, `${prefix}-${kind}`])) as TaskQueues;
}
