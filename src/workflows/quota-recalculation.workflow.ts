// Quota recalculation (`quota-recalc/{tenant_id}`): recomputes every counter of a tenant from its versions.
import { proxyActivities } from '@temporalio/workflow';
import type { MaintenanceActivities } from '../activities/maintenance.activities';
import { tenantRecalculation } from '../temporal/activity-options';

const { recalculateTenantQuotas } = proxyActivities<MaintenanceActivities>(tenantRecalculation);

export async function quotaRecalculationWorkflow(tenantId: string): Promise<{ subjects: number }> {
  return { subjects: await recalculateTenantQuotas(tenantId) };
}
