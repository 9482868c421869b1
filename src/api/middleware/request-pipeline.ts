// Outermost middleware: request id, access log, latency metric, and the one place errors become responses.
import { ServiceError, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { AppError, ValidationError, storeUnavailable } from '../../errors';
import { newId } from '../../ids';
import { apiKeyIdOf } from '../../services/principal';
import { auditKeyRequest } from '../../services/api-key-delegation.service';
import { abandonRequestQueries } from '../../db/database';
import { ClientGoneError, QueryScope, runInQueryScope } from '../../db/query-scope';
import type { AppContext } from '../context';

const wellFormedRequestId = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Paths can carry bearer secrets (link tokens, signed download URLs, invitation tokens): long base64url runs
 * are cut from what is logged. Resource ids (30 characters) stay readable.
 */
export function redactSecrets(path: string): string {
  return path.replace(/[A-Za-z0-9_-]{40,}/g, '[redacted]');
}

export function requestPipeline() {
  return async (ctx: AppContext, next: () => Promise<void>) => {
    const started = process.hrtime.bigint();
    const incoming = ctx.get('x-request-id');
    const requestId = wellFormedRequestId.test(incoming) ? incoming : newId('request');
    ctx.state.requestId = requestId;
    ctx.state.log = ctx.deps.logger.child({ request_id: requestId });
    ctx.set('X-Request-Id', requestId);
    // A client that disconnects before its answer is complete cancels the queries still running for it.
    const queries = new QueryScope();
    const onClose = () => {
      if (!ctx.res.writableFinished) void abandonRequestQueries(ctx.deps.db, queries);
    };
    ctx.res.once('close', onClose);
    try {
      await runInQueryScope(queries, next);
      if (ctx.body === undefined || ctx.body === null) {
        if (ctx.status === 404) throw new AppError(404, 'NOT_FOUND', `No route for ${ctx.method} ${ctx.path}`);
        if (ctx.status === 405) throw new AppError(405, 'METHOD_NOT_ALLOWED', `${ctx.method} is not allowed here (allowed: ${ctx.response.get('Allow')})`);
        if (ctx.status === 501) throw new AppError(501, 'NOT_IMPLEMENTED', `${ctx.method} is not implemented`);
      }
    } catch (error) {
      renderError(ctx, error);
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = (ctx as unknown as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      ctx.deps.metrics.httpRequestDuration.observe({ method: ctx.method, route: String(route), status: String(ctx.status) }, seconds);
      ctx.state.log.info({ method: ctx.method, path: redactSecrets(ctx.path), route, status: ctx.status, duration_ms: Math.round(seconds * 1000) }, 'request');
      await auditApiKeyRequest(ctx, String(route));
    }
  };
}

/** Every request an API key makes is in the audit trail (issue #8 §5); a failed audit write is logged, not fatal. */
async function auditApiKeyRequest(ctx: AppContext, route: string): Promise<void> {
  const principal = ctx.state.principal;
  const apiKeyId = principal ? apiKeyIdOf(principal) : null;
  if (!principal || !apiKeyId) return;
  await auditKeyRequest(ctx.deps.db, {
    tenantId: principal.tenantId,
    apiKeyId,
    actAsUserId: principal.kind === 'user' ? principal.userId : null,
    method: ctx.method,
    route,
    status: ctx.status,
  }).catch((error: unknown) => ctx.state.log.warn({ err: error }, 'audit of an API key request failed'));
}

function renderError(ctx: AppContext, error: unknown): void {
  const appError = toAppError(ctx, error);
  // An error carrying no valid status must still answer in our shape (Koa would throw on it and answer plain text).
  const valid = Number.isInteger(appError.status) && appError.status >= 400 && appError.status <= 599;
  if (!valid) ctx.state.log.error({ err: error, status: appError.status }, 'error with an invalid status');
  ctx.status = valid ? appError.status : 500;
  // A request body we stopped reading (413, a refused upload) must not be parsed as the next request.
  if (!ctx.req.complete) ctx.set('Connection', 'close');
  for (const [name, value] of Object.entries(appError.headers ?? {})) ctx.set(name, value);
  ctx.body = {
    detail: appError instanceof ValidationError ? appError.issues : appError.detail,
    code: appError.code,
    request_id: ctx.state.requestId,
    ...(appError.details ? { details: appError.details } : {}),
  };
}

function toAppError(ctx: AppContext, error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof WorkflowExecutionAlreadyStartedError) return new AppError(409, 'CONFLICT', 'That job is already running');
  if (error instanceof ServiceError) {
    ctx.state.log.warn({ err: error }, 'temporal unavailable');
    return new AppError(503, 'SERVICE_UNAVAILABLE', 'The workflow service is unavailable; retry later', undefined, { 'Retry-After': '5' });
  }
  const pgCode = (error as { code?: unknown }).code;
  if (pgCode === '23505') return new AppError(409, 'CONFLICT', 'A resource with the same unique key already exists');
  // Before the database mapping: a request body read failing with ECONNRESET is the client's socket, not the database's.
  if (clientClosed(ctx, error)) {
    // The client went away mid-request (e.g. an aborted upload): nothing broke on our side. 499 as nginx does.
    ctx.state.log.info({ err_code: (error as { code?: unknown }).code }, 'client closed');
    return new AppError(499, 'CLIENT_CLOSED', 'The client closed the connection before the request was complete');
  }
  const databaseTrouble = databaseUnavailable(ctx, error, pgCode);
  if (databaseTrouble) return databaseTrouble;
  const storeTrouble = storeUnavailable(error);
  if (storeTrouble) {
    ctx.state.log.warn({ err: error }, 'object store unavailable');
    return storeTrouble;
  }
  const httpStatus = (error as { status?: unknown; expose?: unknown }).status;
  if (typeof httpStatus === 'number' && httpStatus >= 400 && httpStatus < 500) {
    // Errors thrown by Koa or its helpers (e.g. a malformed URI) carry a client status of their own.
    return new AppError(httpStatus, httpStatus === 405 ? 'METHOD_NOT_ALLOWED' : 'BAD_REQUEST', (error as Error).message);
  }
  ctx.state.log.error({ err: error }, 'unhandled error');
  return new AppError(500, 'INTERNAL_ERROR', 'Internal server error');
}

/** PostgreSQL error classes that mean "the database cannot serve this now", not "the request is wrong". */
const unavailableCodes = new Set(['57P01', '57P02', '57P03', '53300', '53000', '08000', '08003', '08006', '08001', '08004']);

/**
 * A busy or unreachable database is a 503 with Retry-After, never a 500: an exhausted pool, a statement
 * cancelled by `statement_timeout`, a connection refused or dropped. A query cancelled because the client
 * left is logged quietly (nobody receives the answer).
 */
function databaseUnavailable(ctx: AppContext, error: unknown, pgCode: unknown): AppError | undefined {
  const message = (error as Error)?.message ?? '';
  const clientGone = ctx.res.destroyed || ctx.req.socket?.destroyed === true;
  if (error instanceof ClientGoneError || (pgCode === '57014' && clientGone)) {
    ctx.state.log.info('client closed; its database work was cancelled');
    return new AppError(499, 'CLIENT_CLOSED', 'The client closed the connection');
  }
  const retry = (detail: string, seconds: number) => {
    ctx.state.log.warn({ err: error }, 'database unavailable');
    return new AppError(503, 'SERVICE_UNAVAILABLE', detail, undefined, { 'Retry-After': String(seconds) });
  };
  if (pgCode === '57014') return retry('The database did not answer in time; retry later', 5);
  // Lock order is fixed by design; should two transactions still deadlock (or a serialisation check fail), the
  // one PostgreSQL aborted changed nothing and can simply be sent again.
  if (pgCode === '40P01' || pgCode === '40001') return retry('A concurrent change got in the way; retry the request', 1);
  if (/timeout exceeded when trying to connect/i.test(message)) return retry('All database connections are busy; retry shortly', 1);
  if (typeof pgCode === 'string' && unavailableCodes.has(pgCode)) return retry('The database is unavailable; retry later', 5);
  if (pgCode === 'ECONNREFUSED' || pgCode === 'ECONNRESET' || /Connection terminated/i.test(message)) return retry('The database is unavailable; retry later', 5);
  return undefined;
}

/** A read of the request body failed because the client closed the connection (not a server fault). */
function clientClosed(ctx: AppContext, error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  const abortCode = code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (error as Error)?.message === 'aborted';
  return abortCode && !ctx.req.complete && (ctx.req.destroyed || ctx.req.socket?.destroyed === true);
}
