// Sync (spec §9): devices, the change feed with opaque tamper-evident cursors, the long poll, device cursors.
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { AppError, badRequest } from '../../errors';
import type { Principal } from '../../services/principal';
import { hasChanges, pullChanges, type FeedCursor, type FeedEntry } from '../../services/sync-feed.service';
import { listDevices, registerDevice, revokeDevice, storeDeviceCursor, type SyncDevice } from '../../services/sync-devices.service';
import { listSpaces } from '../../services/spaces.service';
import { listConflicts, resolveConflict, setConflictPolicy, type SyncConflict } from '../../services/sync-conflicts.service';
import { finalizeUploadSession } from './uploads.router';
import { routeDefiner } from '../route';
import { z } from '../openapi';
import { cursorParts, decodeCursor, decodeSignedCursor, encodeSignedCursor, pageQuery, pageSchema, toPage } from '../pagination';
import { commitSchema } from '../presenters/versions';
import { finalizingSchema } from '../presenters/uploads';
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

const conflictSchema = z.object({
  id: z.string(),
  device_id: z.string(),
  node_id: z.string(),
  space_id: z.string(),
  operation: z.enum(['upload', 'rename', 'move', 'delete']),
  base_version_id: z.string().nullable(),
  server_version_id: z.string().nullable(),
  upload_id: z.string().nullable().describe('upload conflicts: the session kept open for your content (send its chunks before keep_client/keep_both)'),
  request: z.record(z.string(), z.string().nullable()).describe('rename/move: what the client asked for'),
  status: z.enum(['open', 'resolved']),
  resolution: z.enum(['keep_server', 'keep_client', 'keep_both']).nullable(),
  auto_resolved: z.boolean(),
  created_at: z.string(),
  resolved_at: z.string().nullable(),
});

const presentConflict = (c: SyncConflict) => ({
  id: c.id,
  device_id: c.device_id,
  node_id: c.node_id,
  space_id: c.space_id,
  operation: c.operation,
  base_version_id: c.base_version_id,
  server_version_id: c.server_version_id,
  upload_id: c.upload_id,
  request: c.request,
  status: c.status,
  resolution: c.resolution,
  auto_resolved: c.auto_resolved,
  created_at: iso(c.created_at),
  resolved_at: c.resolved_at === null ? null : iso(c.resolved_at),
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

  route(
    {
      method: 'get',
      path: '/sync/conflicts',
      summary: "Your devices' sync conflicts (open ones unless include_resolved=true)",
      tag: 'sync',
      access: 'authenticated',
      query: pageQuery.extend({ device_id: z.string().min(1).max(64).optional(), include_resolved: z.enum(['true', 'false']).default('false') }),
      responses: { 200: { description: 'A page of conflicts', schema: pageSchema(conflictSchema) } },
    },
    async (ctx, { principal, query }) => {
      const after = decodeCursor(query.cursor, z.tuple([cursorParts.id]));
      const rows = await listConflicts(ctx.deps.db, principal, { deviceId: query.device_id, includeResolved: query.include_resolved === 'true', limit: query.limit, after: after?.[0] });
      const page = toPage(rows, query.limit, (c) => [c.id]);
      ctx.body = { items: page.items.map(presentConflict), next_cursor: page.next_cursor };
    },
  );

  route(
    {
      method: 'post',
      path: '/sync/conflicts/{id}/resolve',
      summary:
        "Resolve a conflict: keep_server (drop the client's write), keep_client (apply it over the server's; an upload is committed as the new version), keep_both (uploads: save the client's content as \"name (conflict from DEVICE date).ext\")",
      tag: 'sync',
      access: 'authenticated',
      params: z.object({ id: z.string().max(64) }),
      body: z.object({ resolution: z.enum(['keep_server', 'keep_client', 'keep_both']) }),
      responses: {
        200: { description: 'Resolved (with the commit when an upload was committed)', schema: z.object({ conflict: conflictSchema, commit: commitSchema.nullable() }) },
        202: { description: 'Resolved; the upload is still finalizing', schema: z.object({ conflict: conflictSchema, finalizing: finalizingSchema }) },
      },
      errors: [404, 409],
    },
    async (ctx, { principal, params, body }) => {
      const resolved = await resolveConflict(ctx.deps.db, principal, params.id, body.resolution);
      const conflict = presentConflict(resolved.conflict);
      if (!resolved.finalizeUploadId) {
        ctx.body = { conflict, commit: null };
        return;
      }
      await finalizeUploadSession(ctx, principal, resolved.finalizeUploadId);
      ctx.body = ctx.status === 202 ? { conflict, finalizing: ctx.body } : { conflict, commit: ctx.body };
    },
  );

  route(
    {
      method: 'patch',
      path: '/sync/spaces/{id}',
      summary: 'How a space treats upload conflicts: manual (409 and a conflict to resolve) or keep_both (the client\'s copy is saved beside the server\'s at once)',
      tag: 'sync',
      access: 'authenticated',
      params: z.object({ id: z.string().max(64) }),
      body: z.object({ conflict_policy: z.enum(['manual', 'keep_both']) }),
      responses: { 200: { description: 'The policy', schema: z.object({ space_id: z.string(), conflict_policy: z.enum(['manual', 'keep_both']) }) } },
      errors: [403, 404],
    },
    async (ctx, { principal, params, body }) => {
      ctx.body = await setConflictPolicy(ctx.deps.db, principal, params.id, body.conflict_policy);
    },
  );

  // The WebSocket itself is served on the HTTP server's upgrade event (sync-socket.ts); this documents it and answers
  // a plain GET with 426.
  route(
    {
      method: 'get',
      path: '/sync/ws',
      summary: 'Live change hints over a WebSocket (connect with Upgrade: websocket)',
      tag: 'sync',
      access: 'public',
      query: z.object({ token: z.string().max(8192).optional().describe('The access token (or offer subprotocols `scaidrive.v1` and `bearer.<token>`)') }),
      responses: {
        101: {
          description: [
            'Switching protocols. Server messages (JSON text frames):',
            '`{"type":"ready","cursor":N}` once subscribed;',
            '`{"type":"changes","space_id":"…","cursor":N}` within a second of a commit in one of your spaces, or when you gain or lose one',
            '(N is the feed position it refers to: pull GET /sync/changes with your own cursor).',
            'Pings every 30 s. Close codes: 4401 bad or expired token, 4403 user or tenant suspended, 4429 too many connections',
            '(SCAIDRIVE_SYNC_WS_MAX_PER_TOKEN / _PER_TENANT per API process), 1001 server shutting down (reconnect).',
          ].join(' '),
        },
      },
      errors: [426],
    },
    async () => {
      throw new AppError(426, 'UPGRADE_REQUIRED', 'This endpoint is a WebSocket: connect with Upgrade: websocket', undefined, { Upgrade: 'websocket' });
    },
  );
}
