// SMB and SharePoint connectors and their sync jobs (spec §10), for tenant admins: CRUD, connection test, sync,
// job history, cancel and retry — the same routes for every kind under `/{kind}-connectors`, only the create and
// patch bodies and the presentation differ. Handlers parse, call one service function and present.
import type Router from '@koa/router';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import * as connectors from '../../services/connectors.service';
import { routeDefiner } from '../route';
import { z } from '../openapi';
import type { AppContext } from '../context';
import { cursorParts, decodeCursor, pageQuery, pageSchema, toPage } from '../pagination';
import { connectorJobSchema, presentConnectorJob, presentSharePointConnector, presentSmbConnector, sharePointConnectorSchema, smbConnectorSchema } from '../presenters/connectors';
import type { Connector, ConnectorKind } from '../../db/database';
import type { Principal } from '../../services/principal';

const idParam = z.object({ id: z.string().max(64) });
const jobParams = z.object({ id: z.string().max(64), job_id: z.string().max(64) });

// A hostname or an IP literal: no scheme, path, credentials or whitespace.
const host = z.string().min(1).max(253).regex(/^[A-Za-z0-9.\-:[\]]+$/, 'a hostname or IP address');
// Five or six cron fields of the usual characters (Temporal parses the rest; a bad one is refused here, not at 5xx).
const cron = z.string().min(9).max(120).regex(/^\s*(\S+\s+){4,5}\S+\s*$/, 'a cron expression of 5 or 6 fields').regex(/^[0-9A-Za-z*/,\-?#LW\s]+$/, 'cron characters only');
const schedule = z.union([z.object({ cron }).strict(), z.object({ interval_seconds: z.number().int().min(10).max(31 * 24 * 3600) }).strict()]).nullable();
const excludePatterns = z.array(z.string().min(1).max(256)).max(100);

const commonFields = {
  name: z.string().trim().min(1).max(255),
  target_folder_id: z.string().min(1).max(64),
  exclude_patterns: excludePatterns,
  conflict_resolution: z.enum(['overwrite', 'keep_both', 'skip', 'manual']),
  schedule,
  directory_timeout_seconds: z.number().int().min(1).max(86400),
  enabled: z.boolean(),
};

/** Defaults of the common fields on create (the service fills exclude_patterns and the timeout). */
const commonCreate = {
  ...commonFields,
  name: commonFields.name.optional(),
  exclude_patterns: commonFields.exclude_patterns.optional(),
  conflict_resolution: commonFields.conflict_resolution.default('overwrite'),
  schedule: commonFields.schedule.optional(),
  directory_timeout_seconds: commonFields.directory_timeout_seconds.optional(),
  enabled: commonFields.enabled.default(true),
};

const smbFields = {
  ...commonFields,
  host,
  port: z.number().int().min(1).max(65535),
  share: z.string().min(1).max(80).regex(/^[^\\/]+$/, 'a share name without slashes'),
  path: z.string().max(1024),
  domain: z.string().max(255).nullable(),
  username: z.string().min(1).max(256),
  password: z.string().min(1).max(1024),
};

const smbCreateBody = z.object({
  ...smbFields,
  ...commonCreate,
  port: smbFields.port.default(445),
  path: smbFields.path.default(''),
  domain: smbFields.domain.optional(),
});

const smbPatchBody = z.object(smbFields).partial();

// Azure ids are GUIDs (a tenant may also be given as its verified domain); a site is an https URL or a Graph site id.
const azureId = z.string().min(1).max(256).regex(/^[A-Za-z0-9.\-]+$/, 'a GUID or a domain name');
const sharePointFields = {
  ...commonFields,
  azure_tenant_id: azureId,
  azure_client_id: azureId,
  azure_client_secret: z.string().min(1).max(1024),
  site: z.union([z.url({ protocol: /^https$/ }).max(2048), z.string().min(1).max(512).regex(/^[A-Za-z0-9.\-,]+$/, 'an https site URL or a Graph site id')]),
  drive: z.string().min(1).max(256).nullable(),
  folder: z.string().max(1024),
};

const sharePointCreateBody = z.object({
  ...sharePointFields,
  ...commonCreate,
  drive: sharePointFields.drive.optional(),
  folder: sharePointFields.folder.default(''),
});

const sharePointPatchBody = z.object(sharePointFields).partial();

const jobCursor = z.tuple([cursorParts.timestamp, cursorParts.id]);
const jobEnvelope = z.object({ job: connectorJobSchema });

const ui = (ctx: AppContext) => ({ uiUrl: ctx.deps.config.temporal.uiUrl, namespace: ctx.deps.config.temporal.namespace });

/** What differs between connector kinds: the path, the bodies, the presentation and the create/update calls. */
interface ConnectorKindRoutes<C extends z.ZodType, P extends z.ZodType> {
  kind: ConnectorKind;
  label: string;
  secretField: string;
  createBody: C;
  patchBody: P;
  schema: z.ZodType;
  present: (connector: Connector) => unknown;
  create: (ctx: AppContext, principal: Principal, body: z.infer<C>) => Promise<Connector>;
  update: (ctx: AppContext, principal: Principal, id: string, body: z.infer<P>) => Promise<Connector>;
}

const kinds = [
  {
    kind: 'smb',
    label: 'SMB',
    secretField: 'password',
    createBody: smbCreateBody,
    patchBody: smbPatchBody,
    schema: smbConnectorSchema,
    present: presentSmbConnector,
    create: (ctx, principal, body) => connectors.createSmbConnector(ctx.deps, principal, body),
    update: (ctx, principal, id, body) => connectors.updateSmbConnector(ctx.deps, principal, id, body),
  } satisfies ConnectorKindRoutes<typeof smbCreateBody, typeof smbPatchBody>,
  {
    kind: 'sharepoint',
    label: 'SharePoint',
    secretField: 'azure_client_secret',
    createBody: sharePointCreateBody,
    patchBody: sharePointPatchBody,
    schema: sharePointConnectorSchema,
    present: presentSharePointConnector,
    create: (ctx, principal, body) => connectors.createSharePointConnector(ctx.deps, principal, body),
    update: (ctx, principal, id, body) => connectors.updateSharePointConnector(ctx.deps, principal, id, body),
  } satisfies ConnectorKindRoutes<typeof sharePointCreateBody, typeof sharePointPatchBody>,
];

export function registerConnectorRoutes(router: Router, registry: OpenAPIRegistry): void {
  for (const spec of kinds) registerKind(router, registry, spec as ConnectorKindRoutes<z.ZodType, z.ZodType>);
}

function registerKind(router: Router, registry: OpenAPIRegistry, spec: ConnectorKindRoutes<z.ZodType, z.ZodType>): void {
  const route = routeDefiner(router, registry);
  const { kind, label } = spec;
  const base = `/${kind}-connectors`;

  route(
    {
      method: 'post',
      path: base,
      summary: `Create a ${label} connector (the ${spec.secretField} is sealed with AES-256-GCM and never returned)`,
      tag: 'connectors',
      access: 'tenant_admin',
      body: spec.createBody,
      responses: { 201: { description: 'The connector', schema: spec.schema } },
      errors: [409, 503],
    },
    async (ctx, { principal, body }) => {
      ctx.status = 201;
      ctx.body = spec.present(await spec.create(ctx, principal, body));
    },
  );

  route(
    {
      method: 'get',
      path: base,
      summary: `The tenant's ${label} connectors`,
      tag: 'connectors',
      access: 'tenant_admin',
      query: pageQuery,
      responses: { 200: { description: 'A page of connectors', schema: pageSchema(spec.schema) } },
      errors: [400],
    },
    async (ctx, { principal, query }) => {
      const after = decodeCursor(query.cursor, cursorParts.id);
      const rows = await connectors.listConnectors(ctx.deps.db, principal.tenantId, kind, query.limit, after);
      const page = toPage(rows, query.limit, (c) => c.id);
      ctx.body = { items: page.items.map(spec.present), next_cursor: page.next_cursor };
    },
  );

  route(
    { method: 'get', path: `${base}/{id}`, summary: `A ${label} connector`, tag: 'connectors', access: 'tenant_admin', params: idParam, responses: { 200: { description: 'The connector', schema: spec.schema } } },
    async (ctx, { principal, params }) => {
      ctx.body = spec.present(await connectors.getConnector(ctx.deps.db, principal.tenantId, kind, params.id));
    },
  );

  route(
    {
      method: 'patch',
      path: `${base}/{id}`,
      summary: `Change a ${label} connector; ${spec.secretField} rotates the secret; enabled pauses/resumes its schedule`,
      tag: 'connectors',
      access: 'tenant_admin',
      params: idParam,
      body: spec.patchBody,
      responses: { 200: { description: 'The connector', schema: spec.schema } },
      errors: [503],
    },
    async (ctx, { principal, params, body }) => {
      ctx.body = spec.present(await spec.update(ctx, principal, params.id, body));
    },
  );

  route(
    {
      method: 'delete',
      path: `${base}/{id}`,
      summary: `Delete a ${label} connector (its active job is canceled, its schedule and history removed; imported files stay)`,
      tag: 'connectors',
      access: 'tenant_admin',
      params: idParam,
      responses: { 204: { description: 'Deleted' } },
      errors: [503],
    },
    async (ctx, { principal, params }) => {
      await connectors.deleteConnector(ctx.deps, principal.tenantId, kind, params.id);
      ctx.status = 204;
    },
  );

  route(
    {
      method: 'post',
      path: `${base}/{id}/test`,
      summary: 'Connect and look at the root: 200, 401 credentials rejected, 502 unreachable (within seconds)',
      tag: 'connectors',
      access: 'tenant_admin',
      params: idParam,
      responses: { 200: { description: 'The source answered', schema: z.object({ ok: z.literal(true), latency_ms: z.number() }) } },
      errors: [409, 502],
    },
    async (ctx, { principal, params }) => {
      ctx.body = await connectors.testConnector(ctx.deps, principal.tenantId, kind, params.id);
    },
  );

  route(
    {
      method: 'post',
      path: `${base}/{id}/sync`,
      summary: 'Start a sync job (409 CONNECTOR_SYNC_RUNNING while one is queued or running)',
      tag: 'connectors',
      access: 'tenant_admin',
      params: idParam,
      responses: { 202: { description: 'The queued job', schema: jobEnvelope } },
      errors: [409, 503],
    },
    async (ctx, { principal, params }) => {
      const detail = await connectors.requestSync(ctx.deps, principal, kind, params.id, ctx.state.requestId);
      ctx.status = 202;
      ctx.body = { job: presentConnectorJob(detail.job, ui(ctx), detail) };
    },
  );

  route(
    {
      method: 'get',
      path: `${base}/{id}/jobs`,
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
      const rows = await connectors.listConnectorJobs(ctx.deps.db, principal.tenantId, kind, params.id, query.limit, after);
      const page = toPage(rows, query.limit, connectors.jobCursorOf);
      ctx.body = { items: page.items.map((job) => presentConnectorJob(job, ui(ctx))), next_cursor: page.next_cursor };
    },
  );

  route(
    {
      method: 'get',
      path: `${base}/{id}/jobs/{job_id}`,
      summary: 'A sync job: status, counts, recent errors, log tail (stderr) and its workflow',
      tag: 'connectors',
      access: 'tenant_admin',
      params: jobParams,
      responses: { 200: { description: 'The job', schema: connectorJobSchema } },
    },
    async (ctx, { principal, params }) => {
      const detail = await connectors.getConnectorJob(ctx.deps.db, principal.tenantId, kind, params.id, params.job_id);
      ctx.body = presentConnectorJob(detail.job, ui(ctx), detail);
    },
  );

  route(
    {
      method: 'post',
      path: `${base}/{id}/jobs/{job_id}/cancel`,
      summary: 'Cancel a queued or running job (409 CONNECTOR_JOB_FINISHED when it already ended)',
      tag: 'connectors',
      access: 'tenant_admin',
      params: jobParams,
      responses: { 200: { description: 'The canceled job', schema: jobEnvelope } },
      errors: [409],
    },
    async (ctx, { principal, params }) => {
      const detail = await connectors.cancelConnectorJob(ctx.deps, principal.tenantId, kind, params.id, params.job_id);
      ctx.body = { job: presentConnectorJob(detail.job, ui(ctx), detail) };
    },
  );

  route(
    {
      method: 'post',
      path: `${base}/{id}/jobs/{job_id}/retry`,
      summary: 'Run a finished job again as a new job (trigger retry)',
      tag: 'connectors',
      access: 'tenant_admin',
      params: jobParams,
      responses: { 202: { description: 'The new job', schema: jobEnvelope } },
      errors: [409, 503],
    },
    async (ctx, { principal, params }) => {
      const detail = await connectors.requestRetry(ctx.deps, principal, kind, params.id, params.job_id, ctx.state.requestId);
      ctx.status = 202;
      ctx.body = { job: presentConnectorJob(detail.job, ui(ctx), detail) };
    },
  );
}
