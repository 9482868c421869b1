// Quota usage and limits (spec §7); `?recalculate=true` runs the quota-recalc/{tenant_id} workflow first.
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { Principal } from '../../services/principal';
import { assertMayRecalculate, authorizeQuotaSubject } from '../../services/quota-access.service';
import { setLimit, usage } from '../../services/quota.service';
import { quotaRecalculationWorkflow } from '../../workflows/quota-recalculation.workflow';
import { workflowIds } from '../../temporal/workflow-ids';
import { routeDefiner } from '../route';
import { z } from '../openapi';
import { usageSchema } from '../presenters/quotas';
import type { AppContext } from '../context';
import { resultWithin, startOrAttach } from '../workflow-starter';

const recalculateQuery = z.object({ recalculate: z.enum(['true', 'false']).optional() });

async function recalculateIfAsked(ctx: AppContext, principal: Principal, recalculate: string | undefined): Promise<void> {
  if (recalculate !== 'true') return;
  assertMayRecalculate(principal);
  const { handle } = await startOrAttach(ctx, quotaRecalculationWorkflow, {
    workflowId: workflowIds.quotaRecalc(principal.tenantId),
    taskQueue: ctx.deps.taskQueues.maintenance,
    args: [principal.tenantId],
    attributes: { tenantId: principal.tenantId },
    reuse: 'attach-or-rerun',
  });
  await resultWithin(ctx, handle, ctx.deps.config.workflowWaitSeconds);
}

export function registerQuotaRoutes(router: Router, registry: OpenAPIRegistry): void {
  const route = routeDefiner(router, registry);

  route(
    {
      method: 'get',
      path: '/quotas/usage/tenant',
      summary: "The tenant's usage and limit (?recalculate=true recomputes from stored versions first)",
      tag: 'quotas',
      access: 'tenant_admin',
      query: recalculateQuery,
      responses: { 200: { description: 'Usage', schema: usageSchema } },
    },
    async (ctx, { principal, query }) => {
      await recalculateIfAsked(ctx, principal, query.recalculate);
      ctx.body = await usage(ctx.deps.db, principal.tenantId, 'tenant', principal.tenantId);
    },
  );

  for (const [segment, level] of [
    ['users', 'user'],
    ['groups', 'group'],
    ['shares', 'share'],
  ] as const) {
    route(
      {
        method: 'get',
        path: `/quotas/usage/${segment}/{id}`,
        summary: `A ${level}'s usage and limit (404 when you may not see the ${level})`,
        tag: 'quotas',
        access: 'authenticated',
        params: z.object({ id: z.string().max(64) }),
        query: recalculateQuery,
        responses: { 200: { description: 'Usage', schema: usageSchema } },
      },
      async (ctx, { principal, params, query }) => {
        await authorizeQuotaSubject(ctx.deps.db, principal, level, params.id, false);
        await recalculateIfAsked(ctx, principal, query.recalculate);
        ctx.body = await usage(ctx.deps.db, principal.tenantId, level, params.id);
      },
    );
  }

  route(
    {
      method: 'put',
      path: '/admin/quotas/{level}/{id}',
      summary: 'Set a limit (null = unlimited) at user, group, share, tenant or partner level',
      tag: 'quotas',
      access: 'tenant_admin',
      params: z.object({ level: z.enum(['user', 'group', 'share', 'tenant', 'partner']), id: z.string().max(64) }),
      body: z.object({ limit_bytes: z.number().int().min(0).nullable() }),
      responses: { 200: { description: 'Usage with the new limit', schema: usageSchema } },
    },
    async (ctx, { principal, params, body }) => {
      await authorizeQuotaSubject(ctx.deps.db, principal, params.level, params.id, true);
      await setLimit(ctx.deps.db, principal.tenantId, params.level, params.id, body.limit_bytes);
      ctx.body = await usage(ctx.deps.db, principal.tenantId, params.level, params.id);
    },
  );
}
