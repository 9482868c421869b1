// Connectors (spec §10): CRUD with sealed secrets, the connection test, sync jobs (start, list, get, cancel,
// retry) and each connector's Temporal Schedule. "A running sync → 409" is one INSERT against a partial unique
// index (one queued/running job per connector), so parallel sync requests start exactly one job.
import { sql } from 'kysely';
import { ScheduleNotFoundError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Config } from '../config';
import type { ConflictResolution, Connector, ConnectorJob, ConnectorJobTrigger, ConnectorKind, ConnectorSchedule, Db } from '../db/database';
import { AppError, ValidationError, conflict, forbidden, notFound, serviceUnavailable } from '../errors';
import { newId } from '../ids';
import type { Logger } from '../logger';
import type { TaskQueues } from '../temporal/task-queues';
import { scaiSearchAttributes } from '../temporal/search-attributes';
import { workflowIds } from '../temporal/workflow-ids';
import { connectorScheduledSyncWorkflow, connectorSyncWorkflow } from '../workflows/connector-sync.workflow';
import { openSource } from '../connectors';
import { SourceAuthError, SourceEntryError, SourceUnreachableError } from '../connectors/source';
import { accessNode } from './access.service';
import { openSecret, sealSecret, SecretKeyMismatchError } from './connector-secrets';
import type { Principal } from './principal';

export interface ConnectorDeps {
  db: Db;
  config: Config;
  temporal: Client;
  taskQueues: TaskQueues;
  secretKey: Buffer;
  logger: Logger;
}

/** Office lock/temp files and OS metadata never belong in an import (spec §10). */
export const defaultExcludePatterns = ['~$*', 'Thumbs.db', '.DS_Store'];
export const defaultDirectoryTimeoutSeconds = 300;
/** Items one workflow run handles before it continues as new (a million-file share never bloats one history). */
export const defaultItemsPerRun = 2000;

/** What every kind of connector has (spec §10: "Both: …"). */
export interface CommonConnectorInput {
  name?: string;
  target_folder_id: string;
  exclude_patterns?: string[];
  conflict_resolution?: ConflictResolution;
  schedule?: ConnectorSchedule | null;
  directory_timeout_seconds?: number;
  enabled?: boolean;
}

export interface SmbConnectorInput extends CommonConnectorInput {
  host: string;
  port?: number;
  share: string;
  path?: string;
  domain?: string | null;
  username: string;
  password: string;
}

export type SmbConnectorChanges = Partial<SmbConnectorInput>;

export interface SharePointConnectorInput extends CommonConnectorInput {
  azure_tenant_id: string;
  azure_client_id: string;
  azure_client_secret: string;
  site: string;
  drive?: string | null;
  folder?: string;
}

export type SharePointConnectorChanges = Partial<SharePointConnectorInput>;

const smbSettingKeys = ['host', 'port', 'share', 'path', 'domain', 'username'] as const;
const sharePointSettingKeys = ['azure_tenant_id', 'azure_client_id', 'site', 'drive', 'folder'] as const;

/** Connectors commit imported files as the admin who created them, so a user token is needed. */
function creatorOf(principal: Principal): string {
  if (principal.kind !== 'user') throw forbidden('Connectors import files as their creator: use a tenant admin user token');
  return principal.userId;
}

export async function createSmbConnector(deps: ConnectorDeps, principal: Principal, input: SmbConnectorInput): Promise<Connector> {
  const settings = { host: input.host, port: input.port ?? 445, share: input.share, path: input.path ?? '', domain: input.domain ?? null, username: input.username };
  return insertConnector(deps, principal, 'smb', input, settings, { password: input.password }, `${input.host}/${input.share}`);
}

export async function createSharePointConnector(deps: ConnectorDeps, principal: Principal, input: SharePointConnectorInput): Promise<Connector> {
  const settings = { azure_tenant_id: input.azure_tenant_id, azure_client_id: input.azure_client_id, site: input.site, drive: input.drive ?? null, folder: input.folder ?? '' };
  const name = `${input.site.replace(/^https:\/\//i, '')}${input.folder ? `/${input.folder.replace(/^\/+/, '')}` : ''}`;
  return insertConnector(deps, principal, 'sharepoint', input, settings, { client_secret: input.azure_client_secret }, name);
}

async function insertConnector(
  deps: ConnectorDeps,
  principal: Principal,
  kind: ConnectorKind,
  input: CommonConnectorInput,
  settings: Record<string, unknown>,
  secret: Record<string, string>,
  defaultName: string,
): Promise<Connector> {
  const createdBy = creatorOf(principal);
  // The creator must be able to write where the imports go (checked again by every commit).
  await accessNode(deps.db, principal, input.target_folder_id, 'write', { kind: 'folder' });
  const id = newId('connector');
  const sealed = sealSecret(deps.secretKey, id, secret);
  // The row commits only once its schedule exists (a schedule Temporal refuses leaves nothing behind).
  return deps.db.transaction().execute(async (trx) => {
    const connector = await trx
      .insertInto('connectors')
      .values({
        id,
        tenant_id: principal.tenantId,
        kind,
        name: input.name ?? defaultName.slice(0, 255),
        settings: JSON.stringify(settings),
        secret_ciphertext: sealed.ciphertext,
        secret_key_id: sealed.keyId,
        target_folder_id: input.target_folder_id,
        exclude_patterns: JSON.stringify(input.exclude_patterns ?? defaultExcludePatterns),
        conflict_resolution: input.conflict_resolution ?? 'overwrite',
        schedule: JSON.stringify(input.schedule ?? null),
        directory_timeout_seconds: input.directory_timeout_seconds ?? defaultDirectoryTimeoutSeconds,
        enabled: input.enabled ?? true,
        created_by: createdBy,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await syncSchedule(deps, connector);
    return connector;
  });
}

/** A connector of this tenant and kind, else 404 (another tenant's id is indistinguishable from none). */
export async function getConnector(db: Db, tenantId: string, kind: ConnectorKind, id: string): Promise<Connector> {
  const connector = await db.selectFrom('connectors').selectAll().where('id', '=', id).where('tenant_id', '=', tenantId).where('kind', '=', kind).executeTakeFirst();
  if (!connector) throw notFound('Connector');
  return connector;
}

/** Up to `limit + 1` connectors in id order after `after`. */
export async function listConnectors(db: Db, tenantId: string, kind: ConnectorKind, limit: number, after?: string): Promise<Connector[]> {
  let query = db.selectFrom('connectors').selectAll().where('tenant_id', '=', tenantId).where('kind', '=', kind).orderBy('id').limit(limit + 1);
  if (after) query = query.where('id', '>', after);
  return query.execute();
}

export async function updateSmbConnector(deps: ConnectorDeps, principal: Principal, id: string, changes: SmbConnectorChanges): Promise<Connector> {
  const settingChanges = Object.fromEntries(smbSettingKeys.filter((k) => changes[k] !== undefined).map((k) => [k, changes[k]]));
  return patchConnector(deps, principal, 'smb', id, changes, settingChanges, changes.password !== undefined ? { password: changes.password } : undefined);
}

/** PATCH with azure_client_secret rotates the secret (the seed's fix for an expired Azure client secret). */
export async function updateSharePointConnector(deps: ConnectorDeps, principal: Principal, id: string, changes: SharePointConnectorChanges): Promise<Connector> {
  const settingChanges = Object.fromEntries(sharePointSettingKeys.filter((k) => changes[k] !== undefined).map((k) => [k, changes[k]]));
  return patchConnector(deps, principal, 'sharepoint', id, changes, settingChanges, changes.azure_client_secret !== undefined ? { client_secret: changes.azure_client_secret } : undefined);
}

async function patchConnector(
  deps: ConnectorDeps,
  principal: Principal,
  kind: ConnectorKind,
  id: string,
  changes: Partial<CommonConnectorInput>,
  settingChanges: Record<string, unknown>,
  secret: Record<string, string> | undefined,
): Promise<Connector> {
  const current = await getConnector(deps.db, principal.tenantId, kind, id);
  if (changes.target_folder_id !== undefined && changes.target_folder_id !== current.target_folder_id) {
    await accessNode(deps.db, principal, changes.target_folder_id, 'write', { kind: 'folder' });
  }
  // A new secret is sealed anew under the current key (and its id).
  const sealed = secret ? sealSecret(deps.secretKey, id, secret) : undefined;
  return deps.db.transaction().execute(async (trx) => {
    const updated = await trx
      .updateTable('connectors')
      .set({
        ...(Object.keys(settingChanges).length ? { settings: sql`settings || ${JSON.stringify(settingChanges)}::jsonb` } : {}),
        ...(sealed ? { secret_ciphertext: sealed.ciphertext, secret_key_id: sealed.keyId } : {}),
        ...(changes.name !== undefined ? { name: changes.name } : {}),
        ...(changes.target_folder_id !== undefined ? { target_folder_id: changes.target_folder_id } : {}),
        ...(changes.exclude_patterns !== undefined ? { exclude_patterns: JSON.stringify(changes.exclude_patterns) } : {}),
        ...(changes.conflict_resolution !== undefined ? { conflict_resolution: changes.conflict_resolution } : {}),
        ...(changes.schedule !== undefined ? { schedule: JSON.stringify(changes.schedule) } : {}),
        ...(changes.directory_timeout_seconds !== undefined ? { directory_timeout_seconds: changes.directory_timeout_seconds } : {}),
        ...(changes.enabled !== undefined ? { enabled: changes.enabled } : {}),
        updated_at: sql`now()`,
      })
      .where('id', '=', id)
      .where('tenant_id', '=', principal.tenantId)
      .where('kind', '=', kind)
      .returningAll()
      .executeTakeFirst();
    if (!updated) throw notFound('Connector');
    if (changes.schedule !== undefined || changes.enabled !== undefined) await syncSchedule(deps, updated);
    return updated;
  });
}

/** Deletes the connector: its active job is canceled first, its schedule removed, its history with it. */
export async function deleteConnector(deps: ConnectorDeps, tenantId: string, kind: ConnectorKind, id: string): Promise<void> {
  const connector = await getConnector(deps.db, tenantId, kind, id);
  // One transaction holding the connector row: a job inserted meanwhile waits on its foreign key and then
  // finds the connector gone (404), so no job is started for a connector being deleted.
  const canceled = await deps.db.transaction().execute(async (trx) => {
    const locked = await trx.selectFrom('connectors').select('id').where('id', '=', id).where('tenant_id', '=', tenantId).forUpdate().executeTakeFirst();
    if (!locked) throw notFound('Connector');
    const jobs = await trx.selectFrom('connector_jobs').select('workflow_id').where('connector_id', '=', id).where('status', 'in', ['queued', 'running']).execute();
    await trx.deleteFrom('connectors').where('id', '=', id).execute();
    return jobs;
  });
  for (const job of canceled) await cancelWorkflow(deps, job.workflow_id);
  await deleteSchedule(deps, connector.id);
}

/** The connector's secret, opened; a secret sealed under another key is a clear 409, not garbage. */
export function connectorSecret(secretKey: Buffer, connector: Connector): Record<string, string> {
  try {
    return openSecret(secretKey, connector.id, { ciphertext: connector.secret_ciphertext, keyId: connector.secret_key_id });
  } catch (error) {
    if (error instanceof SecretKeyMismatchError) throw conflict(error.message, 'CONNECTOR_SECRET_KEY_MISMATCH', { key_id: error.keyId });
    throw error;
  }
}

/** How long the connection test may take before the source counts as unreachable. */
const testTimeoutMs = 8000;

/** Connects and lists the root: 200 when it works, 401 credentials rejected, 502 unreachable (within seconds). */
export async function testConnector(deps: ConnectorDeps, tenantId: string, kind: ConnectorKind, id: string): Promise<{ ok: true; latency_ms: number }> {
  const connector = await getConnector(deps.db, tenantId, kind, id);
  const secret = connectorSecret(deps.secretKey, connector);
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const attempt = (async () => {
    const source = await openSource(connector.kind, connector.settings, secret, { timeoutMs: testTimeoutMs, graph: deps.config.graph });
    try {
      await source.test();
    } finally {
      await source.close();
    }
  })();
  try {
    await Promise.race([attempt, new Promise((_, reject) => (timer = setTimeout(() => reject(new SourceUnreachableError(`no answer within ${testTimeoutMs / 1000} s`)), testTimeoutMs)))]);
  } catch (error) {
    attempt.catch(() => undefined);
    throw sourceErrorToHttp(error);
  } finally {
    clearTimeout(timer);
  }
  return { ok: true, latency_ms: Date.now() - started };
}

/** The HTTP face of a source failure (the same semantics a failed job records). */
export function sourceErrorToHttp(error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof SourceAuthError) return new AppError(401, 'CONNECTOR_AUTH_FAILED', error.message);
  if (error instanceof SourceEntryError) return new AppError(502, 'CONNECTOR_PATH_UNAVAILABLE', error.message);
  const message = error instanceof Error ? error.message : String(error);
  return new AppError(502, 'CONNECTOR_UNREACHABLE', error instanceof SourceUnreachableError ? message : `Source unreachable: ${message}`);
}

// ---- jobs -------------------------------------------------------------------------------------------

export interface JobDetail {
  job: ConnectorJob;
  errors: { path: string; code: string; reason: string; at: Date }[];
  logTail: string[];
}

/**
 * Inserts a queued job unless the connector has one queued or running: one statement against the partial
 * unique index, so of parallel requests exactly one gets a row. Null when another job is active.
 */
export async function insertJob(db: Db, connector: Pick<Connector, 'id' | 'tenant_id'>, trigger: ConnectorJobTrigger, createdBy: string | null, retryOf: string | null = null): Promise<ConnectorJob | undefined> {
  const id = newId('job');
  try {
    const row = await sql<ConnectorJob>`
      insert into connector_jobs (id, tenant_id, connector_id, trigger, retry_of, workflow_id, created_by)
      values (${id}, ${connector.tenant_id}, ${connector.id}, ${trigger}, ${retryOf}, ${workflowIds.connectorSync(connector.id, id)}, ${createdBy})
      on conflict (connector_id) where status in ('queued', 'running') do nothing
      returning *`.execute(db);
    return row.rows[0];
  } catch (error) {
    // The connector was deleted between our read and this insert (foreign key violation).
    if ((error as { code?: string }).code === '23503') throw notFound('Connector');
    throw error;
  }
}

async function activeJobId(db: Db, connectorId: string): Promise<string | null> {
  const row = await db.selectFrom('connector_jobs').select('id').where('connector_id', '=', connectorId).where('status', 'in', ['queued', 'running']).executeTakeFirst();
  return row?.id ?? null;
}

/**
 * Fails the connector's active job when its workflow is closed (terminated, timed out, or ended without
 * writing the job's outcome). A job whose workflow is not found yet is being started: it stays.
 */
async function failOrphanedJob(deps: ConnectorDeps, connectorId: string): Promise<boolean> {
  const active = await deps.db.selectFrom('connector_jobs').select(['id', 'workflow_id']).where('connector_id', '=', connectorId).where('status', 'in', ['queued', 'running']).executeTakeFirst();
  if (!active) return true;
  let status: string;
  try {
    status = (await deps.temporal.workflow.getHandle(active.workflow_id).describe()).status.name;
  } catch (error) {
    // Not started yet, or Temporal cannot say: the job stays (the caller answers 409 naming it).
    if (!(error instanceof WorkflowNotFoundError)) deps.logger.warn({ err: error, job_id: active.id }, 'describing the active job\'s workflow failed');
    return false;
  }
  if (status === 'RUNNING' || status === 'CONTINUED_AS_NEW') return false;
  return failJob(deps.db, active.id, { code: 'CONNECTOR_WORKFLOW_CLOSED', status: 500, detail: `The job's workflow ended as ${status.toLowerCase()} without finishing the job` });
}

export interface StartSyncOptions {
  trigger: 'manual' | 'retry';
  createdBy: string | null;
  retryOf?: string;
  requestId?: string;
  /** Tests shorten the continue-as-new interval. */
  itemsPerRun?: number;
}

/** Starts a sync job (202) or answers 409 CONNECTOR_SYNC_RUNNING naming the active job. */
export async function startSync(deps: ConnectorDeps, connector: Connector, options: StartSyncOptions): Promise<ConnectorJob> {
  if (!connector.enabled) throw conflict('The connector is disabled: enable it (PATCH {"enabled": true}) to sync', 'CONNECTOR_DISABLED');
  let job = await insertJob(deps.db, connector, options.trigger, options.createdBy, options.retryOf ?? null);
  // An active job whose workflow was closed outside ScaiDrive (terminated in the Temporal UI) would block the
  // connector forever: it is failed, and this request gets its job after all.
  if (!job && (await failOrphanedJob(deps, connector.id))) job = await insertJob(deps.db, connector, options.trigger, options.createdBy, options.retryOf ?? null);
  if (!job) {
    throw conflict('A sync of this connector is already queued or running', 'CONNECTOR_SYNC_RUNNING', { job_id: await activeJobId(deps.db, connector.id) });
  }
  let runId: string;
  try {
    const handle = await deps.temporal.workflow.start(connectorSyncWorkflow, {
      workflowId: job.workflow_id,
      taskQueue: deps.taskQueues.connectors,
      args: [{ jobId: job.id, connectorId: connector.id, tenantId: connector.tenant_id, itemsPerRun: options.itemsPerRun ?? defaultItemsPerRun }],
      typedSearchAttributes: scaiSearchAttributes({ tenantId: connector.tenant_id, connectorId: connector.id, jobId: job.id }),
      memo: options.requestId ? { request_id: options.requestId } : undefined,
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
    });
    runId = handle.firstExecutionRunId;
  } catch (error) {
    // No workflow will ever run this job: fail it (conditionally) so the connector is free again.
    await failJob(deps.db, job.id, { code: 'WORKFLOW_START_FAILED', status: 503, detail: 'The sync workflow could not be started' });
    deps.logger.error({ err: error, job_id: job.id }, 'connector sync workflow start failed');
    throw serviceUnavailable('Temporal is unavailable: the sync could not be started');
  }
  const started = await deps.db.updateTable('connector_jobs').set({ run_id: runId }).where('id', '=', job.id).returningAll().executeTakeFirst();
  if (!started) {
    // The connector (and this job with it) was deleted meanwhile: its workflow finds no job and ends; stop it now.
    await cancelWorkflow(deps, job.workflow_id);
    throw notFound('Connector');
  }
  await appendJobLog(deps.db, job.id, `job queued (trigger ${options.trigger})`).catch(() => undefined);
  return started;
}

export type JobCursor = [createdAt: string, id: string];

/** Up to `limit + 1` jobs of the connector, newest first, after the keyset cursor. */
export async function listJobs(db: Db, connectorId: string, limit: number, after?: JobCursor): Promise<ConnectorJob[]> {
  let query = db.selectFrom('connector_jobs').selectAll().where('connector_id', '=', connectorId).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1);
  if (after) query = query.where(sql<boolean>`(created_at, id) < (${new Date(after[0])}, ${after[1]})`);
  return query.execute();
}

export const jobCursorOf = (job: ConnectorJob): JobCursor => [job.created_at.toISOString(), job.id];

const recentErrorCount = 20;
const logTailLines = 50;

export async function getJob(db: Db, connectorId: string, jobId: string): Promise<JobDetail> {
  const job = await db.selectFrom('connector_jobs').selectAll().where('id', '=', jobId).where('connector_id', '=', connectorId).executeTakeFirst();
  if (!job) throw notFound('Job');
  return describeJob(db, job);
}

export async function describeJob(db: Db, job: ConnectorJob): Promise<JobDetail> {
  const errors = await db.selectFrom('connector_job_errors').select(['path', 'code', 'reason', 'at']).where('job_id', '=', job.id).orderBy('id', 'desc').limit(recentErrorCount).execute();
  const log = await db.selectFrom('connector_job_log').select(['line', 'at']).where('job_id', '=', job.id).orderBy('id', 'desc').limit(logTailLines).execute();
  return { job, errors, logTail: log.reverse().map((l) => `${l.at.toISOString()} ${l.line}`) };
}

/** Cancels a queued or running job (one conditional UPDATE); a finished job is 409 CONNECTOR_JOB_FINISHED. */
export async function cancelJob(deps: ConnectorDeps, connectorId: string, jobId: string): Promise<ConnectorJob> {
  const canceled = await deps.db
    .updateTable('connector_jobs')
    .set({ status: 'canceled', finished_at: sql`now()` })
    .where('id', '=', jobId)
    .where('connector_id', '=', connectorId)
    .where('status', 'in', ['queued', 'running'])
    .returningAll()
    .executeTakeFirst();
  if (!canceled) {
    const { job } = await getJob(deps.db, connectorId, jobId);
    throw conflict(`The job already finished (${job.status})`, 'CONNECTOR_JOB_FINISHED', { status: job.status });
  }
  await appendJobLog(deps.db, jobId, 'job canceled by an admin');
  await cancelWorkflow(deps, canceled.workflow_id);
  return canceled;
}

/** A new job (trigger `retry`) for a finished one; an active job of the connector is 409 CONNECTOR_SYNC_RUNNING. */
export async function retryJob(deps: ConnectorDeps, connector: Connector, jobId: string, options: { createdBy: string | null; requestId?: string }): Promise<ConnectorJob> {
  const { job } = await getJob(deps.db, connector.id, jobId);
  if (job.status === 'queued' || job.status === 'running') {
    throw conflict('This job is still queued or running', 'CONNECTOR_SYNC_RUNNING', { job_id: job.id });
  }
  return startSync(deps, connector, { trigger: 'retry', createdBy: options.createdBy, retryOf: job.id, requestId: options.requestId });
}

async function cancelWorkflow(deps: ConnectorDeps, workflowId: string): Promise<void> {
  try {
    await deps.temporal.workflow.getHandle(workflowId).cancel();
  } catch (error) {
    // Already closed or never started: the job row is what counts; the workflow checks it at every page.
    if (!(error instanceof WorkflowNotFoundError)) deps.logger.warn({ err: error, workflow_id: workflowId }, 'cancelling the connector workflow failed');
  }
}

/** Ends a queued or running job as failed with HTTP semantics (401 credentials, 502 unreachable…). */
export async function failJob(db: Db, jobId: string, failure: { code: string; status: number; detail: string }): Promise<boolean> {
  const failed = await db
    .updateTable('connector_jobs')
    .set({ status: 'failed', finished_at: sql`now()`, error_code: failure.code, error_status: failure.status, error_detail: failure.detail.slice(0, 2000) })
    .where('id', '=', jobId)
    .where('status', 'in', ['queued', 'running'])
    .returning('id')
    .executeTakeFirst();
  if (failed) await appendJobLog(db, jobId, `job failed: ${failure.code} (${failure.status}) ${failure.detail}`);
  return Boolean(failed);
}

/** One line of the job's log tail (`stderr`). Never carries secrets: callers pass paths and codes only. */
export async function appendJobLog(db: Db, jobId: string, line: string): Promise<void> {
  await db.insertInto('connector_job_log').values({ job_id: jobId, line: line.slice(0, 1000) }).execute();
}

// ---- schedules --------------------------------------------------------------------------------------

/** Schedule ids live in the namespace; a test stack's prefix keeps stacks sharing one Temporal apart. */
function scheduleId(connectorId: string): string {
  return workflowIds.connectorSchedule(connectorId);
}

async function deleteSchedule(deps: ConnectorDeps, connectorId: string): Promise<void> {
  try {
    await deps.temporal.schedule.getHandle(scheduleId(connectorId)).delete();
  } catch (error) {
    if (!(error instanceof ScheduleNotFoundError)) throw error;
  }
}

/** Makes the connector's Temporal Schedule match its row: absent without a schedule, paused while disabled. */
export async function syncSchedule(deps: ConnectorDeps, connector: Connector): Promise<void> {
  try {
    if (!connector.schedule) return await deleteSchedule(deps, connector.id);
    const spec = 'cron' in connector.schedule ? { cronExpressions: [connector.schedule.cron] } : { intervals: [{ every: connector.schedule.interval_seconds * 1000 }] };
    const action = {
      type: 'startWorkflow' as const,
      workflowType: connectorScheduledSyncWorkflow,
      workflowId: scheduleId(connector.id),
      taskQueue: deps.taskQueues.connectors,
      args: [{ connectorId: connector.id, tenantId: connector.tenant_id }] as [{ connectorId: string; tenantId: string }],
      typedSearchAttributes: scaiSearchAttributes({ tenantId: connector.tenant_id, connectorId: connector.id }),
    };
    const handle = deps.temporal.schedule.getHandle(scheduleId(connector.id));
    try {
      await handle.update((previous) => ({ ...previous, spec, action, state: { ...previous.state, paused: !connector.enabled } }));
    } catch (error) {
      if (!(error instanceof ScheduleNotFoundError)) throw error;
      await deps.temporal.schedule.create({ scheduleId: scheduleId(connector.id), spec, action, policies: { overlap: 'SKIP', catchupWindow: '1 minute' }, state: { paused: !connector.enabled } });
    }
  } catch (error) {
    if (isInvalidArgument(error)) {
      const field = connector.schedule && 'cron' in connector.schedule ? 'cron' : 'interval_seconds';
      throw new ValidationError([{ loc: ['body', 'schedule', field], msg: `Temporal refused the schedule: ${(error as Error).message}`, type: 'value_error' }]);
    }
    deps.logger.error({ err: error, connector_id: connector.id }, 'updating the connector schedule failed');
    throw serviceUnavailable('Temporal is unavailable: the connector schedule could not be updated');
  }
}

/**
 * Temporal refused the spec itself: the schedule client rethrows gRPC INVALID_ARGUMENT as a TypeError
 * ("Minute is not in range [0-59]"); a raw INVALID_ARGUMENT (code 3) may also sit in the cause chain.
 */
function isInvalidArgument(error: unknown): boolean {
  if (error instanceof TypeError) return true;
  for (let current = error as { code?: unknown; cause?: unknown } | undefined, depth = 0; current && depth < 5; current = current.cause as typeof current, depth++) {
    if (current.code === 3) return true;
  }
  return false;
}

// ---- entry points of the routes (one call per request) ---------------------------------------------

/** POST /{kind}-connectors/{id}/sync: a manual job, or 409 CONNECTOR_SYNC_RUNNING. */
export async function requestSync(deps: ConnectorDeps, principal: Principal, kind: ConnectorKind, id: string, requestId?: string): Promise<JobDetail> {
  const connector = await getConnector(deps.db, principal.tenantId, kind, id);
  const job = await startSync(deps, connector, { trigger: 'manual', createdBy: principal.kind === 'user' ? principal.userId : null, requestId });
  return describeJob(deps.db, job);
}

/** POST …/jobs/{job_id}/retry: a new job with trigger `retry`. */
export async function requestRetry(deps: ConnectorDeps, principal: Principal, kind: ConnectorKind, id: string, jobId: string, requestId?: string): Promise<JobDetail> {
  const connector = await getConnector(deps.db, principal.tenantId, kind, id);
  const job = await retryJob(deps, connector, jobId, { createdBy: principal.kind === 'user' ? principal.userId : null, requestId });
  return describeJob(deps.db, job);
}

export async function listConnectorJobs(db: Db, tenantId: string, kind: ConnectorKind, id: string, limit: number, after?: JobCursor): Promise<ConnectorJob[]> {
  const connector = await getConnector(db, tenantId, kind, id);
  return listJobs(db, connector.id, limit, after);
}

export async function getConnectorJob(db: Db, tenantId: string, kind: ConnectorKind, id: string, jobId: string): Promise<JobDetail> {
  const connector = await getConnector(db, tenantId, kind, id);
  return getJob(db, connector.id, jobId);
}

export async function cancelConnectorJob(deps: ConnectorDeps, tenantId: string, kind: ConnectorKind, id: string, jobId: string): Promise<JobDetail> {
  const connector = await getConnector(deps.db, tenantId, kind, id);
  return describeJob(deps.db, await cancelJob(deps, connector.id, jobId));
}
