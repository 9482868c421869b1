// Outermost middleware: request id, access log, latency metric, and the one place errors become responses.
import { ServiceError, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { AppError, ValidationError } from '../../errors';
import { newId } from '../../ids';
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
    try {
      await next();
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
    }
  };
}

function renderError(ctx: AppContext, error: unknown): void {
  const appError = toAppError(ctx, error);
  ctx.status = appError.status;
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
  const httpStatus = (error as { status?: unknown; expose?: unknown }).status;
  if (typeof httpStatus === 'number' && httpStatus >= 400 && httpStatus < 500) {
    // Errors thrown by Koa or its helpers (e.g. a malformed URI) carry a client status of their own.
    return new AppError(httpStatus, httpStatus === 405 ? 'METHOD_NOT_ALLOWED' : 'BAD_REQUEST', (error as Error).message);
  }
  ctx.state.log.error({ err: error }, 'unhandled error');
  return new AppError(500, 'INTERNAL_ERROR', 'Internal server error');
}
