// Quota usage and limits (spec §7); `?recalculate=true` runs the quota-recalc/{tenant_id} workflow first.
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { QuotaLevel } from '../../db/database';
import { forbidden, notFound } from '../../errors';
import { isTenantAdmin, type Principal } from '../../services/principal';
import { setLimit, usage } from '../../services/quota.service';
import { quotaRecalculationWorkflow } from '../../workflows/quota-recalculation.workflow';
import { workflowIds } from '../../temporal/workflow-ids';
import { routeDefiner } from '../route';
import { z } from '../openapi';
import type { AppContext } from '../context';
import { resultWithin, startOrAttach } from '../workflow-starter';

const usageSchema = z
  .object({ level: z.string(), id: z.string(), used_bytes: z.number().int(), limit_bytes: z.number().int().nullable(), calculated_at: z.string().nullable() })
  .openapi('QuotaUsage');
const recalculateQuery = z.object({ recalculate: z.enum(['true', 'false']).optional() });

/** Checks the subject exists in the caller's tenant (404 otherwise) and that the caller may see it. */
async function authorizeSubject(ctx: AppContext, principal: Principal, level: QuotaLevel, subjectId: string, forWrite: boolean): Promise<void> {
  const db = ctx.deps.db;
  const admin = isTenantAdmin(principal);
  const self = principal.kind === 'user' ? principal.userId : null;
  switch (level) {
    case 'tenant':
      if (subjectId !== principal.tenantId) throw notFound('Tenant');
      if (!admin) throw forbidden('Tenant usage is for tenant admins');
      return;
    case 'partner': {
      const tenant = await db.selectFrom('tenants').select('partner_id').where('id', '=', principal.tenantId).executeTakeFirstOrThrow();
      if (!tenant.partner_id || tenant.partner_id !== subjectId) throw notFound('Partner');
      const partnerAdmin = principal.kind === 'user' && principal.roles.some((r) => r === 'partner_admin' || r === 'platform_admin');
      if (forWrite ? !partnerAdmin : !admin) throw forbidden('Partner quotas are for partner admins');
      return;
    }
    case 'user': {
      const user = await db.selectFrom('users').select('id').where('id', '=', subjectId).where('tenant_id', '=', principal.tenantId).executeTakeFirst();
      if (!user) throw notFound('User');
      if (forWrite ? !admin : !admin && self !== subjectId) throw forbidden('Only tenant admins can see or set other users\' quotas');
      return;
    }
    case 'group': {
      const group = await db.selectFrom('groups').select('id').where('id', '=', subjectId).where('tenant_id', '=', principal.tenantId).executeTakeFirst();
      if (!group) throw notFound('Group');
      if (admin) return;
      const member = self && (await db.selectFrom('group_members').select('user_id').where('group_id', '=', subjectId).where('user_id', '=', self).executeTakeFirst());
      if (forWrite || !member) throw forbidden('Group quotas are for tenant admins and the group\'s members');
      return;
    }
    case 'share': {
      const space = await db.selectFrom('spaces').select(['id', 'owner_user_id']).where('id', '=', subjectId).where('tenant_id', '=', principal.tenantId).where('kind', '=', 'share').executeTakeFirst();
      if (!space) throw notFound('Share');
      if (!admin && (forWrite || space.owner_user_id !== self)) throw forbidden('Share quotas are for tenant admins and the share owner');
      return;
    }
  }
}

async function recalculateIfAsked(ctx: AppContext, principal: Principal, recalculate: string | undefined): Promise<void> {
  if (recalculate !== 'true') return;
  if (!isTenantAdmin(principal)) throw forbidden('Recalculation is for tenant admins');
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
        summary: `A ${level}'s usage and limit`,
        tag: 'quotas',
        access: 'authenticated',
        params: z.object({ id: z.string().max(64) }),
        query: recalculateQuery,
        responses: { 200: { description: 'Usage', schema: usageSchema } },
      },
      async (ctx, { principal, params, query }) => {
        await authorizeSubject(ctx, principal, level, params.id, false);
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
      await authorizeSubject(ctx, principal, params.level, params.id, true);
      await setLimit(ctx.deps.db, principal.tenantId, params.level, params.id, body.limit_bytes);
      ctx.body = await usage(ctx.deps.db, principal.tenantId, params.level, params.id);
    },
  );
}
