// Operators' workflow view for tenant admins (spec §12): list the tenant's workflows, retry a finished one.
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { routeDefiner } from '../route';
import { z } from '../openapi';
import { decodeSignedCursor, encodeSignedCursor, pageQuery, pageSchema } from '../pagination';
import { listTenantWorkflows, retryTenantWorkflow, workflowStatuses, type WorkflowsContext } from '../../services/workflows.service';
import { workflowKindNames } from '../../temporal/workflow-ids';
import type { AppContext } from '../context';

const workflowSchema = z.object({
  workflow_id: z.string(),
  run_id: z.string(),
  kind: z.string(),
  status: z.string(),
  start_time: z.string(),
  close_time: z.string().nullable(),
  failure_message: z.string().nullable(),
  temporal_ui_url: z.string(),
});

const workflowsOf = (ctx: AppContext): WorkflowsContext => ({
  db: ctx.deps.db,
  temporal: ctx.deps.temporal,
  namespace: ctx.deps.config.temporal.namespace,
  uiUrl: ctx.deps.config.temporal.uiUrl,
});

export function registerWorkflowRoutes(router: Router, registry: OpenAPIRegistry): void {
  const route = routeDefiner(router, registry);

  route(
    {
      method: 'get',
      path: '/admin/workflows',
      summary: "The tenant's workflows from Temporal visibility (newest first), filtered by status and kind",
      tag: 'admin',
      access: 'tenant_admin',
      query: pageQuery.extend({ status: z.enum(workflowStatuses).optional(), kind: z.enum(workflowKindNames).optional(), limit: z.coerce.number().int().min(1).max(100).default(50) }),
      responses: { 200: { description: 'A page of workflows', schema: pageSchema(workflowSchema) } },
      errors: [400, 503],
    },
    async (ctx, { principal, query }) => {
      const scope = `workflows:${principal.tenantId}`;
      const pageToken = decodeSignedCursor(ctx.deps.secretKey, scope, query.cursor);
      const page = await listTenantWorkflows(workflowsOf(ctx), principal.tenantId, { status: query.status, kind: query.kind, limit: query.limit, pageToken });
      ctx.body = { items: page.items, next_cursor: page.nextPageToken ? encodeSignedCursor(ctx.deps.secretKey, scope, page.nextPageToken) : null };
    },
  );

  route(
    {
      method: 'post',
      path: '/admin/workflows/{workflow_id}/retry',
      summary: 'Start a new run of a finished workflow with the same input (URL-encode the id: upload-finalize%2Fupl_…)',
      tag: 'admin',
      access: 'tenant_admin',
      params: z.object({ workflow_id: z.string().min(1).max(300) }),
      responses: {
        202: {
          description: 'The new run',
          schema: z.object({ workflow_id: z.string(), run_id: z.string(), previous_run_id: z.string(), temporal_ui_url: z.string() }),
        },
      },
      errors: [409, 503],
    },
    async (ctx, { principal, params }) => {
      ctx.status = 202;
      ctx.body = await retryTenantWorkflow(workflowsOf(ctx), principal.tenantId, params.workflow_id, ctx.state.requestId);
    },
  );
}
