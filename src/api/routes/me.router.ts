// GET /me: the caller (id, tenant, roles) and their personal space with its root folder.
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { routeDefiner } from '../route';
import { z } from '../openapi';
import { ensurePersonalSpace } from '../../services/spaces.service';
import { presentSpace, spaceSchema } from '../file-presenters';

export function registerMeRoutes(router: Router, registry: OpenAPIRegistry): void {
  const route = routeDefiner(router, registry);
  route(
    {
      method: 'get',
      path: '/me',
      summary: 'The caller',
      tag: 'identity',
      access: 'authenticated',
      keyAsItself: true,
      responses: {
        200: {
          description: 'The caller',
          schema: z.object({
            kind: z.enum(['user', 'api_key']),
            id: z.string(),
            tenant_id: z.string(),
            email: z.string().nullable(),
            roles: z.array(z.string()),
            scopes: z.array(z.string()).optional(),
            personal_space: spaceSchema.nullable(),
          }),
        },
      },
    },
    async (ctx, { principal }) => {
      ctx.body =
        principal.kind === 'user'
          ? {
              kind: 'user',
              id: principal.userId,
              tenant_id: principal.tenantId,
              email: principal.email,
              roles: principal.roles,
              personal_space: presentSpace(await ensurePersonalSpace(ctx.deps.db, principal.tenantId, principal.userId)),
            }
          : { kind: 'api_key', id: principal.apiKeyId, tenant_id: principal.tenantId, email: null, roles: [], scopes: principal.scopes, personal_space: null };
    },
  );
}
