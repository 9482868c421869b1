// Workflow interceptor (runs inside the workflow sandbox, deterministic): every activity call (local or not) carries the
// workflow's ScaiTenantId in a header, so activity log lines can name the tenant they work for.
import { ScaiTenantId } from '../temporal/search-attributes';
import { defaultPayloadConverter, workflowInfo, type ActivityInput, type LocalActivityInput, type Next, type WorkflowInterceptors, type WorkflowOutboundCallsInterceptor } from '@temporalio/workflow';

export const tenantHeader = 'scai-tenant-id';

function withTenantHeader<T extends ActivityInput | LocalActivityInput>(input: T): T {
  const tenantId = workflowInfo().typedSearchAttributes.get(ScaiTenantId);
  if (typeof tenantId !== 'string') return input;
  return { ...input, headers: { ...input.headers, [tenantHeader]: defaultPayloadConverter.toPayload(tenantId) } };
}

class TenantHeaderInterceptor implements WorkflowOutboundCallsInterceptor {
  scheduleActivity(input: ActivityInput, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>): Promise<unknown> {
    return next(withTenantHeader(input));
  }

  scheduleLocalActivity(input: LocalActivityInput, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleLocalActivity'>): Promise<unknown> {
    return next(withTenantHeader(input));
  }
}

export const interceptors = (): WorkflowInterceptors => ({ outbound: [new TenantHeaderInterceptor()] });
