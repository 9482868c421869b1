// The trash (spec §5): list what the caller deleted in their spaces, restore, purge.
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { accessNode } from '../../services/access.service';
import { listSpaces } from '../../services/spaces.service';
import * as tree from '../../services/tree.service';
import { routeDefiner } from '../route';
import { z } from '../openapi';
import { cursorParts, decodeCursor, pageQuery, pageSchema, toPage } from '../pagination';
import { nodeSchema, presentNode } from '../file-presenters';

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
      const spaces = principal.kind === 'user' ? await listSpaces(ctx.deps.db, principal.tenantId, principal.userId) : [];
      const spaceIds = spaces.map((s) => s.id).filter((id) => !query.space_id || id === query.space_id);
      if (spaceIds.length === 0) {
        ctx.body = { items: [], next_cursor: null };
        return;
      }
      const after = decodeCursor(query.cursor, trashCursor);
      let select = ctx.deps.db
        .selectFrom('nodes')
        .selectAll()
        .where('tenant_id', '=', principal.tenantId)
        .where('space_id', 'in', spaceIds)
        .where('trash_root', '=', true)
        .orderBy('deleted_at', 'desc')
        .orderBy('id', 'desc')
        .limit(query.limit + 1);
      if (after) select = select.where((eb) => eb.or([eb('deleted_at', '<', new Date(after[0])), eb.and([eb('deleted_at', '=', new Date(after[0])), eb('id', '<', after[1])])]));
      const page = toPage(await select.execute(), query.limit, (n) => [n.deleted_at!.toISOString(), n.id]);
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
      const access = await accessNode(ctx.deps.db, principal, params.id, 'write', { trashed: 'allow' });
      ctx.body = presentNode(await tree.restoreNode(ctx.deps.db, principal, access, query.on_conflict));
    },
  );

  route(
    { method: 'delete', path: '/trash/{id}', summary: 'Purge a deleted item for good (refunds its quota)', tag: 'trash', access: 'authenticated', params: idParam, responses: { 204: { description: 'Purged' } }, errors: [404] },
    async (ctx, { principal, params }) => {
      await tree.purgeNode(ctx.deps.db, principal, await accessNode(ctx.deps.db, principal, params.id, 'write', { trashed: 'allow' }));
      ctx.status = 204;
    },
  );
}
