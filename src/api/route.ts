// route(): one place declares a route's method, path, schemas and auth; it registers the Koa handler
// (with validation and auth in front) and the OpenAPI path at once, so the document cannot drift.
import type Router from '@koa/router';
import type { OpenAPIRegistry, RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from './openapi';
import { AppError, ValidationError, forbidden } from '../errors';
import { isTenantAdmin, type Principal } from '../services/principal';
import type { AppContext } from './context';
import { errorSchema } from './openapi';
import { parseJson, readJsonText } from './middleware/json-body';
import { authenticate } from './middleware/authenticate';
import { toValidationIssues } from './validation';
import { findUnsafeValue } from './input-safety';
import { hasFilesScope } from '../services/api-key-delegation.service';

type Access = 'public' | 'authenticated' | 'tenant_admin';

interface RouteDefinition<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** OpenAPI-style path under the router's prefix, e.g. `/admin/users/{id}/activate`. */
  path: string;
  summary: string;
  tag: string;
  access: Access;
  params?: P;
  query?: Q;
  body?: B;
  /** Success responses: status → description and optional JSON schema. */
  responses: Record<number, { description: string; schema?: z.ZodType; contentType?: string }>;
  /** A non-JSON request body the handler streams itself (documented only), e.g. `application/octet-stream`. */
  rawBody?: { contentType: string; description: string };
  /** Runs on the raw body text before it is parsed (signature checks need the exact bytes). */
  verifyRawBody?: (ctx: AppContext, rawBody: string) => void;
  /** Error statuses this route documents beyond the common ones. */
  errors?: number[];
  /** An API key may call this route as itself; elsewhere a files-scoped key must act for a user (X-Act-As-User). */
  keyAsItself?: boolean;
}

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  principal: Principal;
}

/** Refuses NUL, unpaired surrogates and non-finite numbers before any schema sees the input (never a 500 from SQL). */
function assertSafeInput(value: unknown, location: 'path' | 'query' | 'body'): void {
  const unsafe = findUnsafeValue(value);
  if (!unsafe) return;
  // A name in the path (direct upload) is a name problem, as every other name rule in paths is.
  if (location === 'path') throw new AppError(400, unsafe.path[0] === 'name' ? 'INVALID_NAME' : 'BAD_REQUEST', `Malformed path: ${unsafe.problem}`);
  throw new ValidationError([{ loc: [location, ...unsafe.path], msg: unsafe.problem, type: 'value_error' }]);
}

function parseOrThrow<T extends z.ZodType>(schema: T | undefined, value: unknown, location: 'path' | 'query' | 'body'): z.infer<T> {
  assertSafeInput(value, location);
  if (!schema) return undefined as z.infer<T>;
  const result = schema.safeParse(value);
  if (!result.success) {
    // A malformed path id is a 404 in disguise for callers; other path problems are 400 per seed 003.
    if (location === 'path') throw new AppError(400, 'BAD_REQUEST', `Malformed path: ${result.error.issues.map((i) => i.path.join('.')).join(', ')}`);
    throw new ValidationError(toValidationIssues(location, result.error, value));
  }
  return result.data;
}

const commonErrors: Record<number, string> = {
  400: 'Malformed path or query input',
  401: 'Missing, invalid or expired token (AUTH_TOKEN_INVALID, AUTH_TOKEN_EXPIRED)',
  403: 'Not allowed (AUTHZ_USER_SUSPENDED, FORBIDDEN)',
  404: 'Not found or not visible',
  422: 'Request validation failed: detail is an array of {loc, msg, type}',
};

export type DefineRoute = <P extends z.ZodType = z.ZodNever, Q extends z.ZodType = z.ZodNever, B extends z.ZodType = z.ZodNever>(
  definition: RouteDefinition<P, Q, B>,
  handler: (ctx: AppContext, input: RouteInput<z.infer<P>, z.infer<Q>, z.infer<B>>) => Promise<void>,
) => void;

/** Returns the `route(definition, handler)` function a router file uses to declare its routes. */
export function routeDefiner(router: Router<any, any>, registry: OpenAPIRegistry): DefineRoute {
  return (definition, handler) => defineRoute(router, registry, definition, handler);
}

function defineRoute<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>(
  router: Router<any, any>,
  registry: OpenAPIRegistry,
  definition: RouteDefinition<P, Q, B>,
  handler: (ctx: AppContext, input: RouteInput<z.infer<P>, z.infer<Q>, z.infer<B>>) => Promise<void>,
): void {
  const koaPath = definition.path.replace(/\{(\w+)\}/g, ':$1');
  const responses: RouteConfig['responses'] = {};
  for (const [status, response] of Object.entries(definition.responses)) {
    responses[Number(status)] = {
      description: response.description,
      ...(response.schema ? { content: { [response.contentType ?? 'application/json']: { schema: response.schema } } } : {}),
    };
  }
  const errorStatuses = new Set([...(definition.access === 'public' ? [] : [401, 403]), ...(definition.errors ?? [])]);
  if (definition.body || definition.query) errorStatuses.add(422);
  if (definition.params) errorStatuses.add(404);
  for (const status of errorStatuses) {
    responses[status] = { description: commonErrors[status] ?? 'Error', content: { 'application/json': { schema: errorSchema } } };
  }
  registry.registerPath({
    method: definition.method,
    path: `/api/v1${definition.path}`,
    summary: definition.summary,
    tags: [definition.tag],
    security: definition.access === 'public' ? [] : [{ bearer: [] }],
    request: {
      ...(definition.params ? { params: definition.params as any } : {}),
      ...(definition.query ? { query: definition.query as any } : {}),
      ...(definition.body ? { body: { content: { 'application/json': { schema: definition.body } }, required: true } } : {}),
      ...(definition.rawBody
        ? { body: { description: definition.rawBody.description, content: { [definition.rawBody.contentType]: { schema: z.string().openapi({ format: 'binary' }) } }, required: true } }
        : {}),
    },
    responses,
  });

  (router[definition.method] as (path: string, handler: (ctx: unknown) => Promise<void>) => void)(koaPath, async (rawCtx) => {
    const ctx = rawCtx as unknown as AppContext;
    const principal = definition.access === 'public' ? undefined : await authenticate(ctx);
    if (definition.access === 'tenant_admin' && principal && !isTenantAdmin(principal)) {
      throw forbidden('This action needs the tenant_admin role');
    }
    if (definition.access === 'authenticated' && !definition.keyAsItself && principal?.kind === 'api_key' && hasFilesScope(principal)) {
      throw new AppError(400, 'ACT_AS_USER_REQUIRED', 'A files-scoped API key acts for a user: send X-Act-As-User: usr_…');
    }
    const params = parseOrThrow(definition.params, ctx.params, 'path');
    const query = parseOrThrow(definition.query, ctx.query, 'query');
    let body;
    if (definition.body) {
      const text = await readJsonText(ctx);
      definition.verifyRawBody?.(ctx, text ?? '');
      body = parseOrThrow(definition.body, parseJson(text), 'body');
    }
    ctx.state.input = { params, query, body };
    await handler(ctx, { params, query, body: body as z.infer<B>, principal: principal as Principal });
  });
}
