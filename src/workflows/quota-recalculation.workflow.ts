// Quota recalculation (`quota-recalc/{tenant_id}`): recomputes every counter of a tenant from its versions.
import { proxyActivities } from '@temporalio/workflow';
import type { MaintenanceActivities } from '../activities/maintenance.activities';

const { recalculateTenantQuotas } = proxyActivities<MaintenanceActivities>({
  startToCloseTimeout: '30 minutes',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumAttempts: 10 },
});

export async function quotaRecalculationWorkflow(tenantId: string): Promise<{ subjects: number }> {
  return { subjects: await recalculateTenantQuotas(tenantId) };
}
