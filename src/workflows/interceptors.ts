// Workflow interceptor (runs inside the workflow sandbox, deterministic): every activity call carries the
// workflow's ScaiTenantId in a header, so activity log lines can name the tenant they work for.
import { ScaiTenantId } from '../temporal/search-attributes';
import { defaultPayloadConverter, workflowInfo, type ActivityInput, type Next, type WorkflowInterceptors, type WorkflowOutboundCallsInterceptor } from '@temporalio/workflow';

export const tenantHeader = 'scai-tenant-id';

class TenantHeaderInterceptor implements WorkflowOutboundCallsInterceptor {
  scheduleActivity(input: ActivityInput, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>): Promise<unknown> {
    const tenantId = workflowInfo().typedSearchAttributes.get(ScaiTenantId);
    if (typeof tenantId !== 'string') return next(input);
    return next({ ...input, headers: { ...input.headers, [tenantHeader]: defaultPayloadConverter.toPayload(tenantId) } });
  }
}

export const interceptors = (): WorkflowInterceptors => ({ outbound: [new TenantHeaderInterceptor()] });
