// Hourly maintenance (Temporal Schedule `trash-cleanup`): purge expired trash, expire upload sessions,
// sweep unreferenced chunks after their grace period, prune the change log.
import { proxyActivities } from '@temporalio/workflow';
import type { MaintenanceActivities } from '../activities/maintenance.activities';
import { maintenancePass } from '../temporal/activity-options';

const activities = proxyActivities<MaintenanceActivities>(maintenancePass);

export interface TrashCleanupInput {
  /** How long an unreferenced chunk must stay untouched before the sweep removes it. */
  chunkGraceSeconds?: number;
  /** Limit every step (trash, sessions, chunks, change log) to this tenant (an operator's targeted run); every tenant's when absent. */
  tenantId?: string;
}

export interface TrashCleanupResult {
  trashPurged: number;
  sessionsExpired: number;
  chunksSwept: number;
  changesPruned: number;
}

export async function trashCleanupWorkflow(input: TrashCleanupInput = {}): Promise<TrashCleanupResult> {
  const trashPurged = await activities.purgeExpiredTrash(200, input.tenantId);
  // Sessions first: an expired session's chunks become unreferenced and can be swept in the same run.
  const sessionsExpired = await activities.expireUploadSessions(input.tenantId);
  const chunksSwept = await activities.sweepUnreferencedChunks(input.chunkGraceSeconds ?? 3600, 200, input.tenantId);
  const changesPruned = await activities.pruneChangeLog(input.tenantId);
  return { trashPurged, sessionsExpired, chunksSwept, changesPruned };
}
