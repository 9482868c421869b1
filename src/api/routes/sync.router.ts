// Sync (spec §9): devices, the change feed with opaque tamper-evident cursors, the long poll, device cursors.
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { badRequest } from '../../errors';
import type { Principal } from '../../services/principal';
import { hasChanges, pullChanges, type FeedCursor, type FeedEntry } from '../../services/sync-feed.service';
import { listDevices, registerDevice, revokeDevice, storeDeviceCursor, type SyncDevice } from '../../services/sync-devices.service';
import { listSpaces } from '../../services/spaces.service';
import { routeDefiner } from '../route';
import { z } from '../openapi';
import { decodeSignedCursor, encodeSignedCursor } from '../pagination';
import { iso } from '../presenters/time';

const feedCursorSchema = z.object({
  p: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  k: z.string().min(1).max(64).nullable(),
  f: z.string().min(1).max(64).nullable(),
  s: z
    .object({
      id: z.string().min(1).max(64),
      o: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
      done: z.boolean(),
      q: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
      n: z.string().min(1).max(64),
    })
    .nullable(),
});

/** Cursors are bound to the tenant and the user: one carried to another tenant or user is 400 INVALID_CURSOR. */
const cursorScope = (principal: Principal) => `sync-feed\0${principal.tenantId}\0${principal.kind === 'user' ? principal.userId : principal.apiKeyId}`;

export function encodeFeedCursor(secretKey: Buffer, principal: Principal, cursor: FeedCursor): string {
  return encodeSignedCursor(secretKey, cursorScope(principal), JSON.stringify(cursor));
}

/** `0` is a full resync (null); anything else must be a cursor this feed handed to this user. */
export function decodeFeedCursor(secretKey: Buffer, principal: Principal, cursor: string): FeedCursor | null {
  if (cursor === '0') return null;
  const payload = decodeSignedCursor(secretKey, cursorScope(principal), cursor)!;
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    throw badRequest('Malformed cursor', 'INVALID_CURSOR');
  }
  const result = feedCursorSchema.safeParse(parsed);
  if (!result.success) throw badRequest('Malformed cursor', 'INVALID_CURSOR');
  return result.data;
}

const changeSchema = z.object({
  seq: z.number().int().describe('Position in the tenant\'s commit order (listing entries carry the listing\'s position)'),
  type: z.enum(['created', 'updated', 'moved', 'renamed', 'deleted', 'restored', 'purged', 'permissions_changed', 'space_removed']),
  node_id: z.string().nullable(),
  kind: z.enum(['folder', 'file']).nullable(),
  parent_id: z.string().nullable(),
  space_id: z.string(),
  version_id: z.string().nullable(),
  name: z.string().nullable(),
  at: z.string().nullable(),
  size: z.number().int().nullable().optional(),
  checksum_sha256: z.string().nullable().optional(),
});

const presentChange = (entry: FeedEntry) => ({ ...entry, at: entry.at === null ? null : iso(entry.at) });

const deviceSchema = z.object({
  id: z.string(),
  name: z.string(),
  platform: z.string(),
  cursor: z.string().nullable(),
  cursor_updated_at: z.string().nullable(),
  created_at: z.string(),
});

const presentDevice = (device: SyncDevice) => ({
  id: device.id,
  name: device.name,
  platform: device.platform,
  cursor: device.cursor,
  cursor_updated_at: device.cursor_updated_at === null ? null : iso(device.cursor_updated_at),
  created_at: iso(device.created_at),
});

const cursorParam = z.string().min(1).max(1024).describe('`0` for a full resync, else a next_cursor from this feed');

export function registerSyncRoutes(router: Router, registry: OpenAPIRegistry): void {
  const route = routeDefiner(router, registry);

  route(
    {
      method: 'post',
      path: '/sync/devices',
      summary: 'Register a sync client',
      tag: 'sync',
      access: 'authenticated',
      body: z.object({ name: z.string().trim().min(1).max(200), platform: z.string().trim().min(1).max(64) }),
      responses: { 201: { description: 'Registered', schema: deviceSchema } },
    },
    async (ctx, { principal, body }) => {
      ctx.status = 201;
      ctx.body = presentDevice(await registerDevice(ctx.deps.db, principal, body));
    },
  );

  route(
    { method: 'get', path: '/sync/devices', summary: 'Your sync clients and their stored cursors', tag: 'sync', access: 'authenticated', responses: { 200: { description: 'Devices', schema: z.object({ items: z.array(deviceSchema) }) } } },
    async (ctx, { principal }) => {
      ctx.body = { items: (await listDevices(ctx.deps.db, principal)).map(presentDevice) };
    },
  );

  route(
    {
      method: 'delete',
      path: '/sync/devices/{id}',
      summary: 'Revoke a sync client (its cursor and conflicts go with it)',
      tag: 'sync',
      access: 'authenticated',
      params: z.object({ id: z.string().max(64) }),
      responses: { 204: { description: 'Revoked' } },
      errors: [404],
    },
    async (ctx, { principal, params }) => {
      await revokeDevice(ctx.deps.db, principal, params.id);
      ctx.status = 204;
    },
  );

  route(
    {
      method: 'get',
      path: '/sync/changes',
      summary:
        'Changes you may see now, in commit order, after the cursor (cursor=0: a consistent listing of your spaces, then the changes after it). Losing a space yields one space_removed entry, then nothing more from it.',
      tag: 'sync',
      access: 'authenticated',
      query: z.object({
        cursor: cursorParam,
        limit: z.coerce.number().int().min(1).max(1000).default(500),
        space_id: z.string().min(1).max(64).optional(),
      }),
      responses: {
        200: {
          description: 'A page of changes',
          schema: z.object({ changes: z.array(changeSchema), next_cursor: z.string(), has_more: z.boolean() }),
        },
      },
      errors: [404, 410],
    },
    async (ctx, { principal, query }) => {
      const cursor = decodeFeedCursor(ctx.deps.secretKey, principal, query.cursor);
      const page = await pullChanges(ctx.deps.db, principal, { cursor, limit: query.limit, spaceId: query.space_id ?? null });
      ctx.body = { changes: page.changes.map(presentChange), next_cursor: encodeFeedCursor(ctx.deps.secretKey, principal, page.cursor), has_more: page.hasMore };
    },
  );

  route(
    {
      method: 'get',
      path: '/sync/changes/wait',
      summary: 'Long poll: returns as soon as something follows the cursor ({changes: true}), or {changes: false} after timeout seconds',
      tag: 'sync',
      access: 'authenticated',
      query: z.object({
        cursor: cursorParam,
        timeout: z.coerce.number().int().min(1).max(300).default(30),
        space_id: z.string().min(1).max(64).optional(),
      }),
      responses: { 200: { description: 'Whether there are changes to pull', schema: z.object({ changes: z.boolean() }) } },
      errors: [404, 410],
    },
    async (ctx, { principal, query }) => {
      const cursor = decodeFeedCursor(ctx.deps.secretKey, principal, query.cursor);
      if (cursor === null) {
        ctx.body = { changes: true };
        return;
      }
      const spaceId = query.space_id ?? null;
      // Stops waiting when the client goes away.
      const abort = new AbortController();
      ctx.req.once('close', () => abort.abort());
      let spaces = new Set<string>();
      const changes = await ctx.deps.changes.waitFor(
        principal.tenantId,
        async () => {
          if (principal.kind === 'user') spaces = new Set((await listSpaces(ctx.deps.db, principal.tenantId, principal.userId)).map((s) => s.id));
          return hasChanges(ctx.deps.db, principal, cursor, spaceId);
        },
        { timeoutMs: query.timeout * 1000, signal: abort.signal, interested: (notice) => notice.permissions || spaces.size === 0 || spaces.has(notice.spaceId) },
      );
      ctx.body = { changes };
    },
  );

  route(
    {
      method: 'post',
      path: '/sync/cursor',
      summary: "Store a device's position (the server never moves it by itself)",
      tag: 'sync',
      access: 'authenticated',
      body: z.object({ device_id: z.string().min(1).max(64), cursor: z.string().min(1).max(1024) }),
      responses: { 200: { description: 'Stored', schema: deviceSchema } },
      errors: [404],
    },
    async (ctx, { principal, body }) => {
      // Only a cursor this feed handed to this user can be stored (0, a resync, is one too).
      decodeFeedCursor(ctx.deps.secretKey, principal, body.cursor);
      ctx.body = presentDevice(await storeDeviceCursor(ctx.deps.db, principal, body.device_id, body.cursor));
    },
  );
}
