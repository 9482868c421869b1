// GET /me: the caller (id, tenant, roles). Spaces join this in the files issue.
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { routeDefiner } from '../route';
import { z } from '../openapi';

export function registerMeRoutes(router: Router, registry: OpenAPIRegistry): void {
  const route = routeDefiner(router, registry);
  route(
    {
      method: 'get',
      path: '/me',
      summary: 'The caller',
      tag: 'identity',
      access: 'authenticated',
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
          }),
        },
      },
    },
    async (ctx, { principal }) => {
      ctx.body =
        principal.kind === 'user'
          ? { kind: 'user', id: principal.userId, tenant_id: principal.tenantId, email: principal.email, roles: principal.roles }
          : { kind: 'api_key', id: principal.apiKeyId, tenant_id: principal.tenantId, email: null, roles: [], scopes: principal.scopes };
    },
  );
}
