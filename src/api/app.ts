// The Koa application factory: middleware order, routers, 405 handling. No listen() here (tests mount it).
import http from 'node:http';
import Koa from 'koa';
import Router from '@koa/router';
import type { AppContext, AppDeps } from './context';
import { createOpenApiRegistry } from './openapi';
import { requestPipeline } from './middleware/request-pipeline';
import { registerHealthRoutes } from './routes/health.router';
import { registerMeRoutes } from './routes/me.router';
import { registerAdminRoutes } from './routes/admin.router';
import { registerWebhookRoutes } from './routes/webhooks.router';
import { registerFileRoutes } from './routes/files.router';
import { registerUploadRoutes } from './routes/uploads.router';
import { registerTrashRoutes } from './routes/trash.router';
import { registerQuotaRoutes } from './routes/quotas.router';
import { registerShareRoutes } from './routes/shares.router';
import { registerLinkRoutes } from './routes/links.router';
import { registerWorkflowRoutes } from './routes/workflows.router';
import { registerConnectorRoutes } from './routes/connectors.router';
import { registerSearchRoutes } from './routes/search.router';
import { registerSyncRoutes } from './routes/sync.router';
import { createDocsRouter } from './routes/docs.router';
import { attachSyncSockets, type SyncSockets } from './sync-socket';
import { requestInFlight } from './heap-tuning';

export function createApp(deps: AppDeps) {
  const app = new Koa();
  app.proxy = false; // client addresses come from the socket; trusted proxies are handled explicitly
  app.silent = true; // errors are logged by the request pipeline, not printed by Koa
  const registry = createOpenApiRegistry();
  app.context.deps = deps;
  app.context.openapi = registry;

  const api = new Router({ prefix: '/api/v1' });
  registerHealthRoutes(api, registry);
  registerMeRoutes(api, registry);
  registerAdminRoutes(api, registry);
  registerWebhookRoutes(api, registry);
  registerFileRoutes(api, registry);
  registerUploadRoutes(api, registry);
  registerTrashRoutes(api, registry);
  registerQuotaRoutes(api, registry);
  registerShareRoutes(api, registry);
  registerLinkRoutes(api, registry);
  registerWorkflowRoutes(api, registry);
  registerConnectorRoutes(api, registry);
  registerSearchRoutes(api, registry);
  registerSyncRoutes(api, registry);

  const docs = createDocsRouter(deps, registry);

  app.use(requestPipeline() as unknown as Koa.Middleware);
  for (const router of [api, docs]) {
    app.use(router.routes());
    // Sets 405/501 with an Allow header and no body; the request pipeline renders the error body.
    app.use(router.allowedMethods());
  }
  return { app, registry };
}

/** Starts an HTTP server for the app; malformed requests and oversized headers get our error shape too. */
export function listen(app: Koa, host: string, port: number): Promise<http.Server> {
  const server = http.createServer({ maxHeaderSize: 16 * 1024 }, app.callback());
  server.on('request', (_request: http.IncomingMessage, response: http.ServerResponse) => requestInFlight(response));
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    const body = JSON.stringify({
      detail: status === 431 ? 'Request headers too large' : 'Malformed HTTP request',
      code: status === 431 ? 'HEADERS_TOO_LARGE' : 'BAD_REQUEST',
      request_id: null,
    });
    socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  syncSockets.set(server, attachSyncSockets(server, app.context.deps));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

const syncSockets = new WeakMap<http.Server, SyncSockets>();

/** The sync WebSockets a server from listen() holds. */
export function syncSocketsOf(server: http.Server): SyncSockets | undefined {
  return syncSockets.get(server);
}

/**
 * Stops a server from listen(): its WebSockets are closed first (1001: reconnect elsewhere), then HTTP drains —
 * requests in flight finish, for at most `graceMs` (long polls included), or at once with `force`.
 */
export async function closeServer(server: http.Server, options: { force?: boolean; graceMs?: number } = {}): Promise<void> {
  await syncSockets.get(server)?.close();
  if (options.force) server.closeAllConnections();
  const cutOff = options.graceMs === undefined ? undefined : setTimeout(() => server.closeAllConnections(), options.graceMs);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  clearTimeout(cutOff);
}

export type { AppContext };
