// Search (spec §11): keyword, semantic and hybrid search over what the caller can read, a file's index status,
// the search subsystem's health, the vectorization queue, and an admin re-index.
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { indexStatus, maxSearchDepth, search } from '../../services/search.service';
import { queueDepths, requeueForReindex } from '../../services/search-queue.service';
import { routeDefiner } from '../route';
import { z } from '../openapi';
import { decodeCursor, encodeCursor } from '../pagination';
import { iso } from '../presenters/time';
import { nodeSchema, presentNode } from '../presenters/nodes';

const searchCursor = z.tuple([z.number().int().min(0).max(maxSearchDepth)]);

const hitSchema = z.object({
  file: nodeSchema,
  score: z.number(),
  snippet: z.string().nullable(),
  highlights: z.array(z.tuple([z.number().int(), z.number().int()])).describe('[start, end) offsets into the snippet'),
  passage: z.object({ index: z.number().int(), text: z.string() }).nullable(),
  matched_by: z.array(z.enum(['keyword', 'semantic'])),
});

const queueSchema = z.object({ depth: z.number().int(), oldest_pending_seconds: z.number().int().nullable() });

export function registerSearchRoutes(router: Router, registry: OpenAPIRegistry): void {
  const route = routeDefiner(router, registry);

  route(
    {
      method: 'get',
      path: '/search',
      summary: 'Search files you can read: keyword (names and text), semantic (passages by meaning) or hybrid (both, fused)',
      tag: 'search',
      access: 'authenticated',
      query: z.object({
        q: z.string().trim().min(1).max(500),
        mode: z.enum(['keyword', 'semantic', 'hybrid']).default('hybrid'),
        space_id: z.string().max(64).optional(),
        limit: z.coerce.number().int().min(1).max(100).default(20),
        cursor: z.string().max(512).optional(),
      }),
      responses: {
        200: {
          description: 'A page of results, best first',
          schema: z.object({
            items: z.array(hitSchema),
            next_cursor: z.string().nullable(),
            mode: z.enum(['keyword', 'semantic', 'hybrid']),
            degraded: z.boolean(),
            degraded_reason: z.string().nullable(),
          }),
        },
      },
      errors: [404, 503],
    },
    async (ctx, { principal, query }) => {
      const [offset] = decodeCursor(query.cursor, searchCursor) ?? [0];
      const limit = Math.min(query.limit, maxSearchDepth - offset);
      const result = await search(ctx.deps.db, ctx.deps.search, principal, { q: query.q, mode: query.mode, spaceId: query.space_id, limit: Math.max(limit, 1), offset });
      ctx.body = {
        items: result.items.map((hit) => ({ ...hit, file: presentNode(hit.file) })),
        next_cursor: result.more && offset + limit < maxSearchDepth ? encodeCursor([offset + limit]) : null,
        mode: query.mode,
        degraded: result.degraded !== null,
        degraded_reason: result.degraded,
      };
    },
  );

  route(
    {
      method: 'get',
      path: '/search/index-status/{file_id}',
      summary: "A file's search index status (pending, extracting, embedding, indexed, unsupported, failed) with the reason",
      tag: 'search',
      access: 'authenticated',
      params: z.object({ file_id: z.string().max(64) }),
      responses: {
        200: {
          description: 'The status of its current version',
          schema: z.object({
            file_id: z.string(),
            version_id: z.string().nullable(),
            status: z.enum(['pending', 'extracting', 'embedding', 'indexed', 'unsupported', 'failed']),
            reason: z.string().nullable(),
            passages: z.number().int(),
            updated_at: z.string().nullable(),
          }),
        },
      },
      errors: [404, 410],
    },
    async (ctx, { principal, params }) => {
      const status = await indexStatus(ctx.deps.db, principal, params.file_id);
      ctx.body = { ...status, updated_at: iso(status.updated_at) };
    },
  );

  route(
    {
      method: 'get',
      path: '/search/health',
      summary: 'Whether Weaviate and the embedding provider answer',
      tag: 'search',
      access: 'authenticated',
      responses: { 200: { description: 'Health of the search subsystem', schema: z.object({ weaviate_connected: z.boolean(), embedding_service_available: z.boolean() }) } },
    },
    async (ctx) => {
      ctx.body = await ctx.deps.search.health();
    },
  );

  route(
    {
      method: 'get',
      path: '/search/queue',
      summary: "The vectorization queue of the caller's tenant: depth and oldest pending entry per priority",
      tag: 'search',
      access: 'tenant_admin',
      responses: { 200: { description: 'Queue depths', schema: z.object({ queues: z.object({ high: queueSchema, low: queueSchema }) }) } },
    },
    async (ctx, { principal }) => {
      ctx.body = { queues: await queueDepths(ctx.deps.db, principal.tenantId) };
    },
  );

  route(
    {
      method: 'post',
      path: '/admin/search/reindex',
      summary: 'Re-index every file of the tenant, or of one space, on the low-priority queue',
      tag: 'search',
      access: 'tenant_admin',
      body: z.object({ space_id: z.string().min(1).max(64).optional() }),
      responses: { 202: { description: 'Queued', schema: z.object({ queued: z.number().int() }) } },
      errors: [404],
    },
    async (ctx, { principal, body }) => {
      ctx.status = 202;
      ctx.body = { queued: await requeueForReindex(ctx.deps.db, principal.tenantId, body.space_id) };
    },
  );
}
