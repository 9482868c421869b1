// Tenant administration: settings, users (activate/deactivate), API keys, groups and members.
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { apiKeyScopes, createApiKey, getTenant, listApiKeys, listUsers, revokeApiKey, setUserActive, updateTenantSettings } from '../../services/identity.service';
import * as groups from '../../services/groups.service';
import { routeDefiner } from '../route';
import { z } from '../openapi';
import { decodeCursor, isString, pageQuery, pageSchema, toPage } from '../pagination';
import { apiKeySchema, groupSchema, presentApiKey, presentGroup, presentTenant, presentUser, tenantSchema, tenantSettingsSchema, userSchema } from '../presenters/identity';

const idParam = z.object({ id: z.string().max(64) });
const groupMemberParams = z.object({ id: z.string().max(64), user_id: z.string().max(64) });
const name = z.string().trim().min(1).max(200);

export function registerAdminRoutes(router: Router, registry: OpenAPIRegistry): void {
  const route = routeDefiner(router, registry);

  route(
    { method: 'get', path: '/admin/tenant', summary: "The caller's tenant with its settings", tag: 'admin', access: 'tenant_admin', responses: { 200: { description: 'Tenant', schema: tenantSchema } } },
    async (ctx, { principal }) => {
      ctx.body = presentTenant(await getTenant(ctx.deps.db, principal.tenantId));
    },
  );

  route(
    {
      method: 'patch',
      path: '/admin/tenant',
      summary: 'Change the tenant name or settings (only the keys given)',
      tag: 'admin',
      access: 'tenant_admin',
      body: z.object({ name: name.optional(), settings: tenantSettingsSchema.partial().optional() }),
      responses: { 200: { description: 'Updated tenant', schema: tenantSchema } },
    },
    async (ctx, { principal, body }) => {
      ctx.body = presentTenant(await updateTenantSettings(ctx.deps.db, principal.tenantId, body.settings ?? {}, body.name));
    },
  );

  route(
    {
      method: 'get',
      path: '/admin/users',
      summary: "List the tenant's users",
      tag: 'admin',
      access: 'tenant_admin',
      query: pageQuery.extend({ is_active: z.enum(['true', 'false']).optional() }),
      responses: { 200: { description: 'A page of users', schema: pageSchema(userSchema) } },
    },
    async (ctx, { principal, query }) => {
      const rows = await listUsers(ctx.deps.db, principal.tenantId, {
        after: decodeCursor(query.cursor, isString),
        isActive: query.is_active === undefined ? undefined : query.is_active === 'true',
        limit: query.limit + 1,
      });
      const page = toPage(rows, query.limit, (u) => u.id);
      ctx.body = { items: page.items.map(presentUser), next_cursor: page.next_cursor };
    },
  );

  for (const action of ['activate', 'deactivate'] as const) {
    route(
      {
        method: 'post',
        path: `/admin/users/{id}/${action}`,
        summary:
          action === 'activate'
            ? 'Re-activate a suspended user'
            : 'Suspend a user (their requests get 403 AUTHZ_USER_SUSPENDED); yourself or the last active tenant admin → 409',
        tag: 'admin',
        access: 'tenant_admin',
        params: idParam,
        responses: { 200: { description: 'The user', schema: userSchema } },
        ...(action === 'deactivate' ? { errors: [409] } : {}),
      },
      async (ctx, { principal, params }) => {
        ctx.body = presentUser(await setUserActive(ctx.deps.db, principal, params.id, action === 'activate'));
      },
    );
  }

  route(
    {
      method: 'post',
      path: '/admin/api-keys',
      summary: 'Create a tenant API key; the secret is shown once',
      tag: 'admin',
      access: 'tenant_admin',
      body: z.object({ name, scopes: z.array(z.enum(apiKeyScopes)).min(1) }),
      responses: { 201: { description: 'The key and its secret', schema: apiKeySchema.extend({ secret: z.string() }) } },
    },
    async (ctx, { principal, body }) => {
      const { row, secret } = await createApiKey(ctx.deps.db, {
        tenantId: principal.tenantId,
        name: body.name,
        scopes: body.scopes,
        createdBy: principal.kind === 'user' ? principal.userId : null,
      });
      ctx.status = 201;
      ctx.body = { ...presentApiKey(row), secret };
    },
  );

  route(
    { method: 'get', path: '/admin/api-keys', summary: "List the tenant's API keys", tag: 'admin', access: 'tenant_admin', responses: { 200: { description: 'Keys', schema: z.object({ items: z.array(apiKeySchema) }) } } },
    async (ctx, { principal }) => {
      ctx.body = { items: (await listApiKeys(ctx.deps.db, principal.tenantId)).map(presentApiKey) };
    },
  );

  route(
    { method: 'delete', path: '/admin/api-keys/{id}', summary: 'Revoke an API key', tag: 'admin', access: 'tenant_admin', params: idParam, responses: { 204: { description: 'Revoked' } } },
    async (ctx, { principal, params }) => {
      await revokeApiKey(ctx.deps.db, principal.tenantId, params.id);
      ctx.status = 204;
    },
  );

  route(
    { method: 'post', path: '/admin/groups', summary: 'Create a group', tag: 'admin', access: 'tenant_admin', body: z.object({ name }), responses: { 201: { description: 'Group', schema: groupSchema } }, errors: [409] },
    async (ctx, { principal, body }) => {
      ctx.status = 201;
      ctx.body = presentGroup(await groups.createGroup(ctx.deps.db, principal.tenantId, body.name));
    },
  );

  route(
    { method: 'get', path: '/admin/groups', summary: 'List groups', tag: 'admin', access: 'tenant_admin', query: pageQuery, responses: { 200: { description: 'A page of groups', schema: pageSchema(groupSchema) } } },
    async (ctx, { principal, query }) => {
      const rows = await groups.listGroups(ctx.deps.db, principal.tenantId, query.limit, decodeCursor(query.cursor, isString));
      const page = toPage(rows, query.limit, (g) => g.id);
      ctx.body = { items: page.items.map(presentGroup), next_cursor: page.next_cursor };
    },
  );

  route(
    { method: 'get', path: '/admin/groups/{id}', summary: 'A group', tag: 'admin', access: 'tenant_admin', params: idParam, responses: { 200: { description: 'Group', schema: groupSchema } } },
    async (ctx, { principal, params }) => {
      ctx.body = presentGroup(await groups.getGroup(ctx.deps.db, principal.tenantId, params.id));
    },
  );

  route(
    { method: 'patch', path: '/admin/groups/{id}', summary: 'Rename a group', tag: 'admin', access: 'tenant_admin', params: idParam, body: z.object({ name }), responses: { 200: { description: 'Group', schema: groupSchema } }, errors: [409] },
    async (ctx, { principal, params, body }) => {
      ctx.body = presentGroup(await groups.renameGroup(ctx.deps.db, principal.tenantId, params.id, body.name));
    },
  );

  route(
    { method: 'delete', path: '/admin/groups/{id}', summary: 'Delete a group', tag: 'admin', access: 'tenant_admin', params: idParam, responses: { 204: { description: 'Deleted' } } },
    async (ctx, { principal, params }) => {
      await groups.deleteGroup(ctx.deps.db, principal.tenantId, params.id);
      ctx.status = 204;
    },
  );

  route(
    { method: 'get', path: '/admin/groups/{id}/members', summary: "A group's members", tag: 'admin', access: 'tenant_admin', params: idParam, responses: { 200: { description: 'Members', schema: z.object({ items: z.array(userSchema) }) } } },
    async (ctx, { principal, params }) => {
      ctx.body = { items: (await groups.listGroupMembers(ctx.deps.db, principal.tenantId, params.id)).map(presentUser) };
    },
  );

  route(
    {
      method: 'post',
      path: '/admin/groups/{id}/members',
      summary: 'Add a user to a group',
      tag: 'admin',
      access: 'tenant_admin',
      params: idParam,
      body: z.object({ user_id: z.string().min(1).max(64) }),
      responses: { 204: { description: 'Added' } },
      errors: [409],
    },
    async (ctx, { principal, params, body }) => {
      await groups.addGroupMember(ctx.deps.db, principal.tenantId, params.id, body.user_id);
      ctx.status = 204;
    },
  );

  route(
    { method: 'delete', path: '/admin/groups/{id}/members/{user_id}', summary: 'Remove a user from a group', tag: 'admin', access: 'tenant_admin', params: groupMemberParams, responses: { 204: { description: 'Removed' } } },
    async (ctx, { principal, params }) => {
      await groups.removeGroupMember(ctx.deps.db, principal.tenantId, params.id, params.user_id);
      ctx.status = 204;
    },
  );
}
