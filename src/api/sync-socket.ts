// The sync WebSocket `GET /api/v1/sync/ws` (spec §9): a hint channel, not a data channel. It authenticates on
// connect (the token in `?token=` or as a `bearer.<token>` entry next to `scaidrive.v1` in Sec-WebSocket-Protocol),
// and pushes `{type:"changes", space_id, cursor}` when a commit touches one of the user's spaces; the client then
// pulls /sync/changes with its own cursor. Close codes: 4401 bad token, 4403 suspended user or tenant, 4429 too
// many connections, 1001 server going away.
//
// Fan-out: every commit NOTIFYs PostgreSQL (migration 0010); each API process holds one LISTEN connection and one
// subscription per tenant with sockets, so a commit on any replica reaches the sockets of all of them. A socket
// keeps only its user's ids and a small set of space ids (~8 KB per idle connection with ws's own state).
import { createHash } from 'node:crypto';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { AppError } from '../errors';
import { provisionUser } from '../services/identity.service';
import { feedPosition, syncAudience } from '../services/sync-feed.service';
import type { ChangeNotice } from '../services/change-notifier';
import type { AppDeps } from './context';

export const syncSocketPath = '/api/v1/sync/ws';
export const syncSocketProtocol = 'scaidrive.v1';

const pingIntervalMs = 30_000;
/** A socket re-reads its user's spaces at most this often when grants change (and at least every refreshMs). */
const refreshMinMs = 1_000;
const refreshMs = 5 * 60_000;
/** Commits within this window reach a socket as one hint per space. */
const coalesceMs = 25;

interface Connection {
  ws: WebSocket;
  tenantId: string;
  userId: string;
  tokenKey: string;
  spaces: Set<string>;
  alive: boolean;
  refreshedAt: number;
  refreshing: boolean;
  /** A re-read postponed by the rate limit (grants changed again right after the last one). */
  refreshTimer: NodeJS.Timeout | undefined;
}

interface TenantHub {
  connections: Set<Connection>;
  /** The tenant's notification subscription (resolves once listening; undefined when notifications are down). */
  unsubscribe: Promise<(() => void) | undefined>;
  pending: Map<string, boolean>;
  timer: NodeJS.Timeout | undefined;
}

export interface SyncSockets {
  readonly size: number;
  /** Closes every socket with 1001 (clients reconnect to another replica) and stops accepting new ones. */
  close(): Promise<void>;
}

function tokenFrom(req: http.IncomingMessage, url: URL): string | null {
  const query = url.searchParams.get('token');
  if (query) return query;
  const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  const bearer = offered.find((p) => p.startsWith('bearer.'));
  return bearer ? bearer.slice('bearer.'.length) : null;
}

function closeCodeFor(error: unknown): { code: number; reason: string } {
  if (error instanceof AppError && error.status === 401) return { code: 4401, reason: 'invalid or expired token' };
  if (error instanceof AppError && error.status === 403) return { code: 4403, reason: error.code === 'AUTHZ_TENANT_SUSPENDED' ? 'tenant suspended' : 'user suspended' };
  return { code: 1011, reason: 'server error' };
}

export function attachSyncSockets(server: http.Server, deps: AppDeps): SyncSockets {
  const log = deps.logger.child({ component: 'sync-socket' });
  const limits = deps.config.syncSockets;
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 4 * 1024,
    // A client that offers subprotocols must get one back: ours (the bearer entry is never echoed).
    handleProtocols: (protocols) => (protocols.has(syncSocketProtocol) ? syncSocketProtocol : false),
  });
  const hubs = new Map<string, TenantHub>();
  const perToken = new Map<string, number>();
  const perTenant = new Map<string, number>();
  let draining = false;
  let size = 0;

  const bump = (counts: Map<string, number>, key: string, by: number) => {
    const next = (counts.get(key) ?? 0) + by;
    if (next <= 0) counts.delete(key);
    else counts.set(key, next);
  };

  const send = (connection: Connection, message: object) => {
    if (connection.ws.readyState === connection.ws.OPEN) connection.ws.send(JSON.stringify(message));
  };

  /** Re-reads the user's spaces; hints for each space gained or lost (`silent`: the first read on connect). */
  async function refresh(connection: Connection, options: { position?: number; silent?: boolean } = {}): Promise<void> {
    if (connection.refreshing) return;
    connection.refreshing = true;
    connection.refreshedAt = Date.now();
    try {
      const audience = await syncAudience(deps.db, connection.tenantId, connection.userId);
      if (!audience.active) {
        connection.ws.close(4403, 'user suspended');
        return;
      }
      const now = new Set(audience.spaces);
      const changed = [...now].filter((id) => !connection.spaces.has(id)).concat([...connection.spaces].filter((id) => !now.has(id)));
      connection.spaces = now;
      if (changed.length === 0 || options.silent) return;
      // Gained or lost a space: the next pull lists it or says space_removed.
      const cursor = options.position ?? (await feedPosition(deps.db, connection.tenantId));
      for (const spaceId of changed) send(connection, { type: 'changes', space_id: spaceId, cursor });
    } catch (error) {
      log.warn({ err: error }, 'sync socket: could not re-read spaces');
    } finally {
      connection.refreshing = false;
    }
  }

  /** Re-reads the connection's spaces now, or once the rate limit allows (never dropped, at most one pending). */
  function refreshSoon(connection: Connection): void {
    const wait = connection.refreshedAt + refreshMinMs - Date.now();
    if (wait <= 0 && !connection.refreshing) {
      void refresh(connection);
      return;
    }
    connection.refreshTimer ??= setTimeout(() => {
      connection.refreshTimer = undefined;
      refreshSoon(connection);
    }, Math.max(wait, 50));
  }

  async function flush(tenantId: string, hub: TenantHub): Promise<void> {
    hub.timer = undefined;
    const notices = [...hub.pending];
    hub.pending.clear();
    let position: number;
    try {
      position = await feedPosition(deps.db, tenantId);
    } catch (error) {
      log.warn({ err: error }, 'sync socket: could not read the feed position');
      return;
    }
    const grantsChanged = notices.some(([, permissions]) => permissions);
    for (const connection of hub.connections) {
      for (const [spaceId] of notices) if (connection.spaces.has(spaceId)) send(connection, { type: 'changes', space_id: spaceId, cursor: position });
      if (grantsChanged) refreshSoon(connection);
    }
  }

  function hubFor(tenantId: string): TenantHub {
    let hub = hubs.get(tenantId);
    if (hub) return hub;
    const created: TenantHub = { connections: new Set(), pending: new Map(), timer: undefined, unsubscribe: Promise.resolve(undefined) };
    created.unsubscribe = deps.changes
      .subscribe(tenantId, (notice: ChangeNotice) => {
        created.pending.set(notice.spaceId, (created.pending.get(notice.spaceId) ?? false) || notice.permissions);
        created.timer ??= setTimeout(() => void flush(tenantId, created), coalesceMs);
      })
      .catch((error: unknown) => {
        log.warn({ err: error }, 'sync socket: change notifications unavailable');
        return undefined;
      });
    hubs.set(tenantId, created);
    return created;
  }

  function release(connection: Connection): void {
    const hub = hubs.get(connection.tenantId);
    clearTimeout(connection.refreshTimer);
    if (!hub?.connections.delete(connection)) return;
    size -= 1;
    deps.metrics.websocketConnections.dec();
    bump(perToken, connection.tokenKey, -1);
    bump(perTenant, connection.tenantId, -1);
    if (hub.connections.size === 0) {
      hubs.delete(connection.tenantId);
      clearTimeout(hub.timer);
      void hub.unsubscribe.then((off) => off?.());
    }
  }

  async function accept(ws: WebSocket, req: http.IncomingMessage, url: URL): Promise<void> {
    // Messages from the client carry nothing; an oversized or unexpected frame just closes the socket (ws does).
    ws.on('error', () => ws.terminate());
    const token = tokenFrom(req, url);
    if (!token) return ws.close(4401, 'missing token');
    let user;
    try {
      user = await provisionUser(deps.db, await deps.tokenVerifier.verify(token));
    } catch (error) {
      const { code, reason } = closeCodeFor(error);
      if (code === 1011) log.error({ err: error }, 'sync socket: authentication failed');
      return ws.close(code, reason);
    }
    if (ws.readyState !== ws.OPEN) return;
    const tokenKey = createHash('sha256').update(token).digest('base64url').slice(0, 22);
    if ((perToken.get(tokenKey) ?? 0) >= limits.maxPerToken) return ws.close(4429, 'too many connections for this token');
    if ((perTenant.get(user.tenant_id) ?? 0) >= limits.maxPerTenant) return ws.close(4429, 'too many connections for this tenant');
    const connection: Connection = { ws, tenantId: user.tenant_id, userId: user.id, tokenKey, spaces: new Set(), alive: true, refreshedAt: 0, refreshing: false, refreshTimer: undefined };
    bump(perToken, tokenKey, 1);
    bump(perTenant, user.tenant_id, 1);
    size += 1;
    deps.metrics.websocketConnections.inc();
    const hub = hubFor(user.tenant_id);
    hub.connections.add(connection);
    ws.on('close', () => release(connection));
    ws.on('pong', () => (connection.alive = true));
    // Subscribed before the spaces are read: a grant committed meanwhile triggers another read, never goes unseen.
    await hub.unsubscribe;
    await refresh(connection, { silent: true });
    send(connection, { type: 'ready', cursor: await feedPosition(deps.db, connection.tenantId).catch(() => null) });
  }

  const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== syncSocketPath || draining) {
      const status = draining ? '503 Service Unavailable' : '404 Not Found';
      socket.end(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      accept(ws, req, url).catch((error: unknown) => {
        log.error({ err: error }, 'sync socket: accept failed');
        ws.close(1011, 'server error');
      });
    });
  };
  server.on('upgrade', onUpgrade);

  // Pings find dead peers; the slow refresh catches grant changes a lost notification missed.
  const heartbeat = setInterval(() => {
    for (const hub of hubs.values()) {
      for (const connection of hub.connections) {
        if (!connection.alive) {
          connection.ws.terminate();
          continue;
        }
        connection.alive = false;
        connection.ws.ping();
        if (Date.now() - connection.refreshedAt >= refreshMs) refreshSoon(connection);
      }
    }
  }, pingIntervalMs);
  heartbeat.unref();

  return {
    get size() {
      return size;
    },
    async close() {
      draining = true;
      clearInterval(heartbeat);
      server.off('upgrade', onUpgrade);
      const sockets = [...wss.clients];
      for (const ws of sockets) ws.close(1001, 'server shutting down');
      const deadline = Date.now() + 5_000;
      while (wss.clients.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      for (const ws of wss.clients) ws.terminate();
      await new Promise((resolve) => wss.close(resolve));
    },
  };
}
