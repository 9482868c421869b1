// The trash (spec §5): list what the caller deleted in their spaces, restore, purge.
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { listTrash, trashCursorOf } from '../../services/trash.service';
import * as tree from '../../services/tree.service';
import { routeDefiner } from '../route';
import { z } from '../openapi';
import { cursorParts, decodeCursor, pageQuery, pageSchema, toPage } from '../pagination';
import { nodeSchema, presentNode } from '../presenters/nodes';

const idParam = z.object({ id: z.string().max(64) });
const trashCursor = z.tuple([cursorParts.timestamp, cursorParts.id]);

export function registerTrashRoutes(router: Router, registry: OpenAPIRegistry): void {
  const route = routeDefiner(router, registry);

  route(
    {
      method: 'get',
      path: '/trash',
      summary: 'Deleted items in your spaces, newest first',
      tag: 'trash',
      access: 'authenticated',
      query: pageQuery.extend({ space_id: z.string().max(64).optional() }),
      responses: { 200: { description: 'A page of trash items', schema: pageSchema(nodeSchema) } },
    },
    async (ctx, { principal, query }) => {
      const after = decodeCursor(query.cursor, trashCursor);
      const rows = await listTrash(ctx.deps.db, principal, { spaceId: query.space_id, limit: query.limit, after });
      const page = toPage(rows, query.limit, trashCursorOf);
      ctx.body = { items: page.items.map(presentNode), next_cursor: page.next_cursor };
    },
  );

  route(
    {
      method: 'post',
      path: '/trash/{id}/restore',
      summary: 'Restore a deleted item to its folder (409 on a name clash, or ?on_conflict=rename for "name (restored N)")',
      tag: 'trash',
      access: 'authenticated',
      params: idParam,
      query: z.object({ on_conflict: z.enum(['fail', 'rename']).default('fail') }),
      responses: { 200: { description: 'Restored', schema: nodeSchema } },
      errors: [409],
    },
    async (ctx, { principal, params, query }) => {
      ctx.body = presentNode(await tree.restoreNode(ctx.deps.db, principal, params.id, query.on_conflict));
    },
  );

  route(
    { method: 'delete', path: '/trash/{id}', summary: 'Purge a deleted item for good (refunds its quota)', tag: 'trash', access: 'authenticated', params: idParam, responses: { 204: { description: 'Purged' } }, errors: [404] },
    async (ctx, { principal, params }) => {
      await tree.purgeNode(ctx.deps.db, principal, params.id);
      ctx.status = 204;
    },
  );
}
