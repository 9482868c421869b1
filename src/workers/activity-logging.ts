// Activity interceptor: one log line per activity attempt that fails or finishes, carrying workflow_id,
// tenant_id (from the header the workflow interceptor adds), the activity type and the attempt.
import { defaultPayloadConverter } from '@temporalio/common';
import type { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, ActivityInterceptorsFactory, Next } from '@temporalio/worker';
import type { Logger } from '../logger';
import { tenantHeader } from '../workflows/interceptors';

export function activityLogging(logger: Logger): ActivityInterceptorsFactory {
  return (ctx: Context) => ({
    inbound: {
      async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
        const header = input.headers[tenantHeader];
        const info = ctx.info;
        const log = logger.child({
          workflow_id: info.workflowExecution?.workflowId ?? null,
          run_id: info.workflowExecution?.runId ?? null,
          tenant_id: header ? defaultPayloadConverter.fromPayload<string>(header) : null,
          activity: info.activityType,
          attempt: info.attempt,
        });
        const started = Date.now();
        try {
          const result = await next(input);
          log.debug({ duration_ms: Date.now() - started }, 'activity completed');
          return result;
        } catch (error) {
          log.warn({ err: error, duration_ms: Date.now() - started }, 'activity failed');
          throw error;
        }
      },
    },
  });
}
