// SMB connectors and their sync jobs (spec §10), for tenant admins: CRUD, connection test, sync, job history,
// cancel and retry. Handlers parse, call one service function and present; the rules live in the services.
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import * as connectors from '../../services/connectors.service';
import { routeDefiner } from '../route';
import { z } from '../openapi';
import type { AppContext } from '../context';
import { cursorParts, decodeCursor, pageQuery, pageSchema, toPage } from '../pagination';
import { connectorJobSchema, presentConnectorJob, presentSmbConnector, smbConnectorSchema } from '../presenters/connectors';

const idParam = z.object({ id: z.string().max(64) });
const jobParams = z.object({ id: z.string().max(64), job_id: z.string().max(64) });

// A hostname or an IP literal: no scheme, path, credentials or whitespace.
const host = z.string().min(1).max(253).regex(/^[A-Za-z0-9.\-:[\]]+$/, 'a hostname or IP address');
// Five or six cron fields of the usual characters (Temporal parses the rest; a bad one is refused here, not at 5xx).
const cron = z.string().min(9).max(120).regex(/^\s*(\S+\s+){4,5}\S+\s*$/, 'a cron expression of 5 or 6 fields').regex(/^[0-9A-Za-z*/,\-?#LW\s]+$/, 'cron characters only');
const schedule = z.union([z.object({ cron }).strict(), z.object({ interval_seconds: z.number().int().min(10).max(31 * 24 * 3600) }).strict()]).nullable();
const excludePatterns = z.array(z.string().min(1).max(256)).max(100);

const smbFields = {
  name: z.string().trim().min(1).max(255),
  host,
  port: z.number().int().min(1).max(65535),
  share: z.string().min(1).max(80).regex(/^[^\\/]+$/, 'a share name without slashes'),
  path: z.string().max(1024),
  domain: z.string().max(255).nullable(),
  username: z.string().min(1).max(256),
  password: z.string().min(1).max(1024),
  target_folder_id: z.string().min(1).max(64),
  exclude_patterns: excludePatterns,
  conflict_resolution: z.enum(['overwrite', 'keep_both', 'skip', 'manual']),
  schedule,
  directory_timeout_seconds: z.number().int().min(1).max(86400),
  enabled: z.boolean(),
};

const createBody = z.object({
  ...smbFields,
  name: smbFields.name.optional(),
  port: smbFields.port.default(445),
  path: smbFields.path.default(''),
  domain: smbFields.domain.optional(),
  exclude_patterns: smbFields.exclude_patterns.optional(),
  conflict_resolution: smbFields.conflict_resolution.default('overwrite'),
  schedule: smbFields.schedule.optional(),
  directory_timeout_seconds: smbFields.directory_timeout_seconds.optional(),
  enabled: smbFields.enabled.default(true),
});

const patchBody = z.object(smbFields).partial();

const jobCursor = z.tuple([cursorParts.timestamp, cursorParts.id]);
const jobEnvelope = z.object({ job: connectorJobSchema });

const ui = (ctx: AppContext) => ({ uiUrl: ctx.deps.config.temporal.uiUrl, namespace: ctx.deps.config.temporal.namespace });

export function registerConnectorRoutes(router: Router, registry: OpenAPIRegistry): void {
  const route = routeDefiner(router, registry);

  route(
    {
      method: 'post',
      path: '/smb-connectors',
      summary: 'Create an SMB connector (the password is sealed with AES-256-GCM and never returned)',
      tag: 'connectors',
      access: 'tenant_admin',
      body: createBody,
      responses: { 201: { description: 'The connector', schema: smbConnectorSchema } },
      errors: [409, 503],
    },
    async (ctx, { principal, body }) => {
      ctx.status = 201;
      ctx.body = presentSmbConnector(await connectors.createSmbConnector(ctx.deps, principal, body));
    },
  );

  route(
    {
      method: 'get',
      path: '/smb-connectors',
      summary: "The tenant's SMB connectors",
      tag: 'connectors',
      access: 'tenant_admin',
      query: pageQuery,
      responses: { 200: { description: 'A page of connectors', schema: pageSchema(smbConnectorSchema) } },
      errors: [400],
    },
    async (ctx, { principal, query }) => {
      const after = decodeCursor(query.cursor, cursorParts.id);
      const rows = await connectors.listConnectors(ctx.deps.db, principal.tenantId, 'smb', query.limit, after);
      const page = toPage(rows, query.limit, (c) => c.id);
      ctx.body = { items: page.items.map(presentSmbConnector), next_cursor: page.next_cursor };
    },
  );

  route(
    { method: 'get', path: '/smb-connectors/{id}', summary: 'An SMB connector', tag: 'connectors', access: 'tenant_admin', params: idParam, responses: { 200: { description: 'The connector', schema: smbConnectorSchema } } },
    async (ctx, { principal, params }) => {
      ctx.body = presentSmbConnector(await connectors.getConnector(ctx.deps.db, principal.tenantId, 'smb', params.id));
    },
  );

  route(
    {
      method: 'patch',
      path: '/smb-connectors/{id}',
      summary: 'Change an SMB connector; a password rotates the secret; enabled pauses/resumes its schedule',
      tag: 'connectors',
      access: 'tenant_admin',
      params: idParam,
      body: patchBody,
      responses: { 200: { description: 'The connector', schema: smbConnectorSchema } },
      errors: [503],
    },
    async (ctx, { principal, params, body }) => {
      ctx.body = presentSmbConnector(await connectors.updateSmbConnector(ctx.deps, principal, params.id, body));
    },
  );

  route(
    {
      method: 'delete',
      path: '/smb-connectors/{id}',
      summary: 'Delete an SMB connector (its active job is canceled, its schedule and history removed; imported files stay)',
      tag: 'connectors',
      access: 'tenant_admin',
      params: idParam,
      responses: { 204: { description: 'Deleted' } },
      errors: [503],
    },
    async (ctx, { principal, params }) => {
      await connectors.deleteConnector(ctx.deps, principal.tenantId, 'smb', params.id);
      ctx.status = 204;
    },
  );

  route(
    {
      method: 'post',
      path: '/smb-connectors/{id}/test',
      summary: 'Connect and list the root: 200, 401 credentials rejected, 502 unreachable (within seconds)',
      tag: 'connectors',
      access: 'tenant_admin',
      params: idParam,
      responses: { 200: { description: 'The source answered', schema: z.object({ ok: z.literal(true), latency_ms: z.number() }) } },
      errors: [409, 502],
    },
    async (ctx, { principal, params }) => {
      ctx.body = await connectors.testConnector(ctx.deps, principal.tenantId, 'smb', params.id);
    },
  );

  route(
    {
      method: 'post',
      path: '/smb-connectors/{id}/sync',
      summary: 'Start a sync job (409 CONNECTOR_SYNC_RUNNING while one is queued or running)',
      tag: 'connectors',
      access: 'tenant_admin',
      params: idParam,
      responses: { 202: { description: 'The queued job', schema: jobEnvelope } },
      errors: [409, 503],
    },
    async (ctx, { principal, params }) => {
      const detail = await connectors.requestSync(ctx.deps, principal, 'smb', params.id, ctx.state.requestId);
      ctx.status = 202;
      ctx.body = { job: presentConnectorJob(detail.job, ui(ctx), detail) };
    },
  );

  route(
    {
      method: 'get',
      path: '/smb-connectors/{id}/jobs',
      summary: "The connector's sync jobs, newest first",
      tag: 'connectors',
      access: 'tenant_admin',
      params: idParam,
      query: pageQuery,
      responses: { 200: { description: 'A page of jobs', schema: pageSchema(connectorJobSchema) } },
      errors: [400],
    },
    async (ctx, { principal, params, query }) => {
      const after = decodeCursor(query.cursor, jobCursor);
      const rows = await connectors.listConnectorJobs(ctx.deps.db, principal.tenantId, 'smb', params.id, query.limit, after);
      const page = toPage(rows, query.limit, connectors.jobCursorOf);
      ctx.body = { items: page.items.map((job) => presentConnectorJob(job, ui(ctx))), next_cursor: page.next_cursor };
    },
  );

  route(
    {
      method: 'get',
      path: '/smb-connectors/{id}/jobs/{job_id}',
      summary: 'A sync job: status, counts, recent errors, log tail (stderr) and its workflow',
      tag: 'connectors',
      access: 'tenant_admin',
      params: jobParams,
      responses: { 200: { description: 'The job', schema: connectorJobSchema } },
    },
    async (ctx, { principal, params }) => {
      const detail = await connectors.getConnectorJob(ctx.deps.db, principal.tenantId, 'smb', params.id, params.job_id);
      ctx.body = presentConnectorJob(detail.job, ui(ctx), detail);
    },
  );

  route(
    {
      method: 'post',
      path: '/smb-connectors/{id}/jobs/{job_id}/cancel',
      summary: 'Cancel a queued or running job (409 CONNECTOR_JOB_FINISHED when it already ended)',
      tag: 'connectors',
      access: 'tenant_admin',
      params: jobParams,
      responses: { 200: { description: 'The canceled job', schema: jobEnvelope } },
      errors: [409],
    },
    async (ctx, { principal, params }) => {
      const detail = await connectors.cancelConnectorJob(ctx.deps, principal.tenantId, 'smb', params.id, params.job_id);
      ctx.body = { job: presentConnectorJob(detail.job, ui(ctx), detail) };
    },
  );

  route(
    {
      method: 'post',
      path: '/smb-connectors/{id}/jobs/{job_id}/retry',
      summary: 'Run a finished job again as a new job (trigger retry)',
      tag: 'connectors',
      access: 'tenant_admin',
      params: jobParams,
      responses: { 202: { description: 'The new job', schema: jobEnvelope } },
      errors: [409, 503],
    },
    async (ctx, { principal, params }) => {
      const detail = await connectors.requestRetry(ctx.deps, principal, 'smb', params.id, params.job_id, ctx.state.requestId);
      ctx.status = 202;
      ctx.body = { job: presentConnectorJob(detail.job, ui(ctx), detail) };
    },
  );
}
