// Applies one identity-provider event. The workflow id `identity-event/{event_id}` makes redelivery harmless.
import { proxyActivities } from '@temporalio/workflow';
import type { IdentityActivities, IdentityEvent, IdentityEventResult } from '../activities/identity.activities';
import { shortIo } from '../temporal/activity-options';

const { applyIdentityEvent } = proxyActivities<IdentityActivities>(shortIo);

export async function identityEventWorkflow(event: IdentityEvent): Promise<IdentityEventResult> {
  return applyIdentityEvent(event);
}
