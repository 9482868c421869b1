// GET /me: the caller (id, tenant, roles) and their personal space with its root folder.
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { routeDefiner } from '../route';
import { personalSpaceOf } from '../../services/spaces.service';
import { meSchema, presentMe } from '../presenters/identity';

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
        200: { description: 'The caller', schema: meSchema },
      },
    },
    async (ctx, { principal }) => {
      ctx.body = presentMe(principal, await personalSpaceOf(ctx.deps.db, principal));
    },
  );
}
