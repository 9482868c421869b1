// JSON shapes of connectors and their sync jobs. Secrets are never part of a response (only `has_password`).
import type { Connector, ConnectorJob } from '../../db/database';
import type { JobDetail } from '../../services/connectors.service';
import { z } from '../openapi';
import { iso } from './time';

const scheduleSchema = z.union([z.object({ cron: z.string() }), z.object({ interval_seconds: z.number().int() })]).nullable();

const commonFields = {
  id: z.string(),
  name: z.string(),
  target_folder_id: z.string(),
  exclude_patterns: z.array(z.string()),
  conflict_resolution: z.enum(['overwrite', 'keep_both', 'skip', 'manual']),
  schedule: scheduleSchema,
  directory_timeout_seconds: z.number().int(),
  enabled: z.boolean(),
  created_by: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
};

/** The fields every kind shares. */
function presentCommon(connector: Connector) {
  return {
    id: connector.id,
    name: connector.name,
    target_folder_id: connector.target_folder_id,
    exclude_patterns: connector.exclude_patterns,
    conflict_resolution: connector.conflict_resolution,
    schedule: connector.schedule,
    directory_timeout_seconds: connector.directory_timeout_seconds,
    enabled: connector.enabled,
    created_by: connector.created_by,
    created_at: iso(connector.created_at),
    updated_at: iso(connector.updated_at),
  };
}

export const smbConnectorSchema = z
  .object({
    ...commonFields,
    kind: z.literal('smb'),
    host: z.string(),
    port: z.number().int(),
    share: z.string(),
    path: z.string(),
    domain: z.string().nullable(),
    username: z.string(),
    has_password: z.boolean(),
  })
  .openapi('SmbConnector');

export function presentSmbConnector(connector: Connector) {
  const settings = connector.settings as { host: string; port: number; share: string; path: string; domain: string | null; username: string };
  return {
    ...presentCommon(connector),
    kind: 'smb' as const,
    host: settings.host,
    port: settings.port,
    share: settings.share,
    path: settings.path,
    domain: settings.domain ?? null,
    username: settings.username,
    has_password: connector.secret_ciphertext.length > 0,
  };
}

export const sharePointConnectorSchema = z
  .object({
    ...commonFields,
    kind: z.literal('sharepoint'),
    azure_tenant_id: z.string(),
    azure_client_id: z.string(),
    has_client_secret: z.boolean(),
    site: z.string(),
    drive: z.string().nullable(),
    folder: z.string(),
  })
  .openapi('SharePointConnector');

export function presentSharePointConnector(connector: Connector) {
  const settings = connector.settings as { azure_tenant_id: string; azure_client_id: string; site: string; drive: string | null; folder: string };
  return {
    ...presentCommon(connector),
    kind: 'sharepoint' as const,
    azure_tenant_id: settings.azure_tenant_id,
    azure_client_id: settings.azure_client_id,
    has_client_secret: connector.secret_ciphertext.length > 0,
    site: settings.site,
    drive: settings.drive ?? null,
    folder: settings.folder ?? '',
  };
}

export const connectorJobSchema = z
  .object({
    id: z.string(),
    connector_id: z.string(),
    status: z.enum(['queued', 'running', 'succeeded', 'partially_failed', 'failed', 'canceled']),
    trigger: z.enum(['manual', 'schedule', 'retry']),
    retry_of: z.string().nullable(),
    created_at: z.string(),
    started_at: z.string().nullable(),
    finished_at: z.string().nullable(),
    files_scanned: z.number().int(),
    files_added: z.number().int(),
    files_updated: z.number().int(),
    files_deleted: z.number().int(),
    files_skipped: z.number().int(),
    bytes: z.number().int(),
    error_count: z.number().int(),
    error: z.object({ code: z.string(), status: z.number().int().nullable(), detail: z.string().nullable() }).nullable(),
    recent_errors: z.array(z.object({ path: z.string(), code: z.string(), reason: z.string(), at: z.string() })).optional(),
    stderr: z.string().optional(),
    workflow_id: z.string(),
    run_id: z.string().nullable(),
    temporal_ui_url: z.string(),
  })
  .openapi('ConnectorJob');

export interface TemporalUi {
  uiUrl: string;
  namespace: string;
}

/** A job as listed; with `detail` also its recent errors and log tail (`stderr`). */
export function presentConnectorJob(job: ConnectorJob, ui: TemporalUi, detail?: Omit<JobDetail, 'job'>) {
  const base = `${ui.uiUrl}/namespaces/${encodeURIComponent(ui.namespace)}/workflows/${encodeURIComponent(job.workflow_id)}`;
  return {
    id: job.id,
    connector_id: job.connector_id,
    status: job.status,
    trigger: job.trigger,
    retry_of: job.retry_of,
    created_at: iso(job.created_at),
    started_at: iso(job.started_at),
    finished_at: iso(job.finished_at),
    files_scanned: job.files_scanned,
    files_added: job.files_added,
    files_updated: job.files_updated,
    files_deleted: job.files_deleted,
    files_skipped: job.files_skipped,
    bytes: job.bytes,
    error_count: job.error_count,
    error: job.error_code ? { code: job.error_code, status: job.error_status, detail: job.error_detail } : null,
    ...(detail
      ? {
          recent_errors: detail.errors.map((e) => ({ path: e.path, code: e.code, reason: e.reason, at: iso(e.at) })),
          stderr: detail.logTail.join('\n'),
        }
      : {}),
    workflow_id: job.workflow_id,
    run_id: job.run_id,
    temporal_ui_url: job.run_id ? `${base}/${encodeURIComponent(job.run_id)}/history` : base,
  };
}
