// Typed kysely database: table interfaces and the pool factory.
import { Kysely, PostgresDialect, type ColumnType, type Generated, type GeneratedAlways, type Selectable } from 'kysely';
import pg from 'pg';
import { abandonScope, trackCheckout, type QueryScope } from './query-scope';

// BIGINT columns come back as strings by default; our sizes fit in a JS number (< 2^53 bytes).
pg.types.setTypeParser(20, (value) => Number(value));

type Json<T> = ColumnType<T, string | T, string | T>;

export interface TenantSettings {
  max_file_size_bytes: number;
  trash_retention_days: number;
  changelog_retention_days: number;
  upload_session_ttl_hours: number;
  default_user_quota_bytes: number | null;
}

export interface PartnersTable {
  id: string;
  name: string;
  created_at: Generated<Date>;
}

export interface TenantsTable {
  id: string;
  partner_id: string | null;
  name: string;
  settings: Json<TenantSettings>;
  is_active: Generated<boolean>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface UsersTable {
  id: string;
  tenant_id: string;
  external_id: string;
  email: string | null;
  name: string | null;
  roles: ColumnType<string[], string[] | undefined, string[]>;
  is_active: Generated<boolean>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  last_seen_at: Date | null;
}

export interface GroupsTable {
  id: string;
  tenant_id: string;
  name: string;
  created_at: Generated<Date>;
}

export interface GroupMembersTable {
  group_id: string;
  user_id: string;
  tenant_id: string;
  created_at: Generated<Date>;
}

export interface ApiKeysTable {
  id: string;
  tenant_id: string;
  name: string;
  key_hash: string;
  scopes: ColumnType<string[], string[], string[]>;
  created_by: string | null;
  created_at: Generated<Date>;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

export interface IdentityEventsTable {
  id: string;
  tenant_id: string;
  type: string;
  subject: string;
  received_at: Generated<Date>;
  applied_at: Date | null;
}

export interface SpacesTable {
  id: string;
  tenant_id: string;
  kind: 'personal' | 'share';
  name: string;
  owner_user_id: string;
  root_folder_id: string;
  created_at: Generated<Date>;
  conflict_policy: Generated<ConflictPolicy>;
}

export type ConflictPolicy = 'manual' | 'keep_both';
export type SyncResolution = 'keep_server' | 'keep_client' | 'keep_both';

export interface SyncConflictsTable {
  id: string;
  tenant_id: string;
  user_id: string;
  device_id: string;
  node_id: string;
  space_id: string;
  operation: 'upload' | 'rename' | 'move' | 'delete';
  base_version_id: string | null;
  server_version_id: string | null;
  upload_id: string | null;
  request: ColumnType<Record<string, string | null>, string | undefined, string>;
  status: Generated<'open' | 'resolved'>;
  resolution: SyncResolution | null;
  auto_resolved: Generated<boolean>;
  resolved_at: Date | null;
  created_at: Generated<Date>;
}

export interface NodesTable {
  id: string;
  tenant_id: string;
  space_id: string;
  parent_id: string | null;
  kind: 'folder' | 'file';
  name: string;
  /** node_name_key(name) = lower(normalize(name, NFC)), made by the database: the sibling-unique and sort key. */
  name_key: GeneratedAlways<string>;
  current_version_id: string | null;
  size: Generated<number>;
  checksum_sha256: string | null;
  created_by: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  deleted_at: Date | null;
  deleted_by: string | null;
  trash_root: Generated<boolean>;
  lock_user_id: string | null;
  lock_expires_at: Date | null;
  locked_at: Date | null;
}

export interface QuotaCharge {
  level: QuotaLevel;
  subject_id: string;
}

export interface VersionsTable {
  id: string;
  tenant_id: string;
  file_id: string;
  number: number;
  size: number;
  checksum_sha256: string;
  chunk_count: number;
  created_by: string | null;
  upload_id: string | null;
  charged: Json<QuotaCharge[]>;
  /** SHA-256 over the ordered chunk hashes: equal manifests mean equal bytes. */
  manifest_sha256: string | null;
  created_at: Generated<Date>;
}

export interface VersionChunksTable {
  version_id: string;
  index: number;
  tenant_id: string;
  sha256: string;
  offset: number;
  size: number;
}

export interface ChunksTable {
  tenant_id: string;
  sha256: string;
  size: number;
  created_at: Generated<Date>;
  last_seen_at: Generated<Date>;
}

export type UploadStatus = 'open' | 'finalizing' | 'completed' | 'failed' | 'expired';

export interface UploadSessionsTable {
  id: string;
  tenant_id: string;
  user_id: string;
  space_id: string;
  parent_id: string;
  name: string;
  size: number;
  chunk_size: number;
  chunk_count: number;
  checksum_sha256: string | null;
  /** 'proxied' (chunks through the API) or 'direct' (presigned PUTs to the store). */
  transfer: ColumnType<'proxied' | 'direct', 'proxied' | 'direct' | undefined, never>;
  /** The whole-file hash kept as chunks arrive, live in the process `hash_owner`: chunks [0, hashed_chunks) hashed. */
  hashed_chunks: Generated<number>;
  /** The process following the session's hash (see upload-hash.service.ts) and when it last made progress. */
  hash_owner: string | null;
  hash_owner_seen_at: Date | null;
  /** The file's SHA-256 once hashed_chunks = chunk_count; valid for the manifest whose chain is `hashed_chain`. */
  hashed_sha256: string | null;
  /** Chain digest of the hashed chunks' SHA-256s: '' for none, then sha256(previous chain + chunk sha256). */
  hashed_chain: Generated<string>;
  base_version_id: string | null;
  status: Generated<UploadStatus>;
  error_code: string | null;
  error_detail: string | null;
  file_id: string | null;
  version_id: string | null;
  /** Declared bytes held against the quotas while the session is open (0 once released or converted). */
  reserved_bytes: Generated<number>;
  /** The quota subjects those bytes are held on, so exactly these are released. */
  reserved_subjects: ColumnType<QuotaCharge[], string | undefined, string>;
  expires_at: Date;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface UploadChunksTable {
  upload_id: string;
  index: number;
  tenant_id: string;
  user_id: string;
  sha256: string;
  size: number;
  created_at: Generated<Date>;
}

export type QuotaLevel = 'user' | 'group' | 'share' | 'tenant' | 'partner';

export interface QuotasTable {
  tenant_id: string;
  level: QuotaLevel;
  subject_id: string;
  limit_bytes: number | null;
  used_bytes: Generated<number>;
  /** Declared bytes of open upload sessions, held until finalize, abort or expiry. */
  reserved_bytes: Generated<number>;
  calculated_at: Date | null;
}

export type ChangeType = 'created' | 'updated' | 'moved' | 'renamed' | 'deleted' | 'restored' | 'purged' | 'permissions_changed';

export interface ChangeLogTable {
  seq: Generated<number>;
  tenant_id: string;
  type: ChangeType;
  node_id: string;
  parent_id: string | null;
  space_id: string;
  version_id: string | null;
  name: string | null;
  actor_id: string | null;
  at: Generated<Date>;
  /** The tenant's commit order, assigned at COMMIT (null only inside the writing transaction). */
  position: Generated<number | null>;
  kind: 'folder' | 'file' | null;
  /** A move to another space: the space it left (its readers see the node go). */
  from_space_id: string | null;
}

export interface ChangeLogHeadsTable {
  tenant_id: string;
  position: number;
  pruned_through: number;
}

/** A run an operator retried: the row is the claim that exactly one new run follows it (see workflows.service). */
export interface WorkflowRetriesTable {
  workflow_id: string;
  previous_run_id: string;
  tenant_id: string;
  request_id: string;
  /** The run the retry started; null while it is being started. */
  run_id: string | null;
  claimed_at: Generated<Date>;
}

export interface SyncDevicesTable {
  id: string;
  tenant_id: string;
  user_id: string;
  name: string;
  platform: string;
  cursor: string | null;
  cursor_updated_at: Date | null;
  created_at: Generated<Date>;
}

export interface SyncSpaceSetsTable {
  tenant_id: string;
  id: string;
  spaces: string[];
  created_at: Generated<Date>;
}

export interface SyncSnapshotsTable {
  id: string;
  tenant_id: string;
  user_id: string;
  position: number;
  spaces: string[];
  entries: number;
  created_at: Generated<Date>;
}

export type ShareRole = 'owner' | 'admin' | 'contributor' | 'reader';

export interface ShareMembersTable {
  id: string;
  tenant_id: string;
  share_id: string;
  principal_type: 'user' | 'group';
  principal_id: string;
  role: ShareRole;
  created_by: string | null;
  created_at: Generated<Date>;
}

export interface InvitationsTable {
  id: string;
  tenant_id: string;
  share_id: string;
  email: string;
  role: ShareRole;
  token_hash: string;
  status: Generated<'pending' | 'accepted' | 'declined' | 'revoked' | 'expired'>;
  expires_at: Date;
  created_by: string | null;
  responded_by: string | null;
  responded_at: Date | null;
  created_at: Generated<Date>;
}

export interface MailOutboxTable {
  id: Generated<number>;
  tenant_id: string;
  kind: string;
  recipient: string;
  subject: string;
  body: string;
  created_at: Generated<Date>;
  sent_at: Date | null;
}

export interface LinksTable {
  id: string;
  tenant_id: string;
  node_id: string;
  token_hash: string;
  password_hash: string | null;
  expires_at: Date | null;
  allowed_ips: ColumnType<string[], string[] | undefined, string[]>;
  require_email: ColumnType<string[], string[] | undefined, string[]>;
  max_downloads: number | null;
  max_views: number | null;
  download_count: Generated<number>;
  view_count: Generated<number>;
  enabled: Generated<boolean>;
  revoked_at: Date | null;
  created_by: string | null;
  created_at: Generated<Date>;
}

export interface LinkPasswordFailuresTable {
  link_id: string;
  address: string;
  window_start: Date;
  failures: Generated<number>;
}

export interface LinkEmailCodesTable {
  link_id: string;
  email: string;
  code_hash: string;
  attempts: Generated<number>;
  expires_at: Date;
}

/** A rate counter of the public link endpoints: one fixed window of one scope for one subject (address or '*'). */
export interface LinkRateCountersTable {
  link_id: string;
  scope: string;
  subject: string;
  window_start: Date;
  count: Generated<number>;
}

/** A fixed-window rate counter shared by API replicas: `key` names what is counted for whom. */
export interface RateCountersTable {
  key: string;
  window_start: Date;
  count: Generated<number>;
}

export interface AuditLogTable {
  id: Generated<number>;
  tenant_id: string;
  actor_id: string | null;
  action: string;
  target_type: string;
  target_id: string;
  details: Json<Record<string, unknown>>;
  at: Generated<Date>;
}

export type ConnectorKind = 'smb' | 'sharepoint';
export type ConflictResolution = 'overwrite' | 'keep_both' | 'skip' | 'manual';
export type ConnectorSchedule = { cron: string } | { interval_seconds: number };

/** A source ScaiDrive imports from; `settings` holds the non-secret fields, the secret is AES-256-GCM sealed. */
export interface ConnectorsTable {
  id: string;
  tenant_id: string;
  kind: ConnectorKind;
  name: string;
  settings: Json<Record<string, unknown>>;
  secret_ciphertext: string;
  secret_key_id: string;
  target_folder_id: string;
  exclude_patterns: Json<string[]>;
  conflict_resolution: ConflictResolution;
  schedule: Json<ConnectorSchedule | null>;
  directory_timeout_seconds: number;
  enabled: Generated<boolean>;
  created_by: string;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  /** Delta-fed sources: where the change feed continues (set when a job imported everything up to it). */
  sync_cursor: Generated<string | null>;
}

export type ConnectorJobStatus = 'queued' | 'running' | 'succeeded' | 'partially_failed' | 'failed' | 'canceled';
export type ConnectorJobTrigger = 'manual' | 'schedule' | 'retry';

export interface ConnectorJobsTable {
  id: string;
  tenant_id: string;
  connector_id: string;
  status: Generated<ConnectorJobStatus>;
  trigger: ConnectorJobTrigger;
  retry_of: string | null;
  workflow_id: string;
  run_id: string | null;
  created_by: string | null;
  created_at: Generated<Date>;
  started_at: Date | null;
  finished_at: Date | null;
  files_scanned: Generated<number>;
  files_added: Generated<number>;
  files_updated: Generated<number>;
  files_deleted: Generated<number>;
  files_skipped: Generated<number>;
  bytes: Generated<number>;
  error_count: Generated<number>;
  error_code: string | null;
  error_status: number | null;
  error_detail: string | null;
}

export interface ConnectorJobErrorsTable {
  id: Generated<number>;
  job_id: string;
  path: string;
  code: string;
  reason: string;
  at: Generated<Date>;
}

export interface ConnectorJobLogTable {
  id: Generated<number>;
  job_id: string;
  line: string;
  at: Generated<Date>;
}

/** Per connector and source path: what was imported last, and an import in flight. */
export type SearchStatus = 'pending' | 'extracting' | 'embedding' | 'indexed' | 'unsupported' | 'failed';

/** Per version: its search index status and extracted text (vectors live in Weaviate). */
export interface SearchDocumentsTable {
  version_id: string;
  tenant_id: string;
  file_id: string;
  status: Generated<SearchStatus>;
  reason: string | null;
  format: string | null;
  text: string | null;
  truncated: Generated<boolean>;
  passages: Generated<number>;
  vector_space: string | null;
  tsv: GeneratedAlways<string>;
  updated_at: Generated<Date>;
  /** `high` for users' fresh commits, `low` for connector imports, backfills and re-index. */
  priority: Generated<SearchPriority>;
  /** When a dispatcher last started its workflow (null: not yet). */
  dispatched_at: Date | null;
  queued_at: Generated<Date>;
}

export type SearchPriority = 'high' | 'low';

/** Files whose passages must leave Weaviate (written by a trigger when a file row is deleted). */
export interface SearchRemovalsTable {
  id: Generated<string>;
  tenant_id: string;
  file_id: string;
  created_at: Generated<Date>;
}

export interface ConnectorImportStateTable {
  connector_id: string;
  path: string;
  tenant_id: string;
  size: number | null;
  mtime: Date | null;
  file_id: string | null;
  version_id: string | null;
  last_seen_job_id: string | null;
  pending_upload_id: string | null;
  pending_size: number | null;
  pending_mtime: Date | null;
  /** 'directory' rows track a mirrored folder (file_id is the folder's id). */
  kind: Generated<'file' | 'directory'>;
  /** Delta-fed sources: the item's id at the source (stable across renames and moves) and its content version. */
  source_id: string | null;
  source_version: string | null;
  pending_source_version: string | null;
}

export interface Database {
  share_members: ShareMembersTable;
  invitations: InvitationsTable;
  mail_outbox: MailOutboxTable;
  links: LinksTable;
  link_password_failures: LinkPasswordFailuresTable;
  link_email_codes: LinkEmailCodesTable;
  link_rate_counters: LinkRateCountersTable;
  audit_log: AuditLogTable;
  rate_counters: RateCountersTable;
  spaces: SpacesTable;
  nodes: NodesTable;
  versions: VersionsTable;
  version_chunks: VersionChunksTable;
  chunks: ChunksTable;
  upload_sessions: UploadSessionsTable;
  upload_chunks: UploadChunksTable;
  quotas: QuotasTable;
  change_log: ChangeLogTable;
  partners: PartnersTable;
  tenants: TenantsTable;
  users: UsersTable;
  groups: GroupsTable;
  group_members: GroupMembersTable;
  api_keys: ApiKeysTable;
  identity_events: IdentityEventsTable;
  connectors: ConnectorsTable;
  connector_jobs: ConnectorJobsTable;
  connector_job_errors: ConnectorJobErrorsTable;
  connector_job_log: ConnectorJobLogTable;
  connector_import_state: ConnectorImportStateTable;
  search_documents: SearchDocumentsTable;
  search_removals: SearchRemovalsTable;
  change_log_heads: ChangeLogHeadsTable;
  sync_devices: SyncDevicesTable;
  sync_space_sets: SyncSpaceSetsTable;
  sync_snapshots: SyncSnapshotsTable;
  sync_conflicts: SyncConflictsTable;
  workflow_retries: WorkflowRetriesTable;
}

export type Tenant = Selectable<TenantsTable>;
export type User = Selectable<UsersTable>;
export type Group = Selectable<GroupsTable>;
export type ApiKey = Selectable<ApiKeysTable>;
export type Space = Selectable<SpacesTable>;
export type Node = Selectable<NodesTable>;
export type Version = Selectable<VersionsTable>;
export type UploadSession = Selectable<UploadSessionsTable>;
export type ShareMember = Selectable<ShareMembersTable>;
export type Invitation = Selectable<InvitationsTable>;
export type Link = Selectable<LinksTable>;
export type Connector = Selectable<ConnectorsTable>;
export type ConnectorJob = Selectable<ConnectorJobsTable>;
export type ConnectorImportState = Selectable<ConnectorImportStateTable>;

export type Db = Kysely<Database>;

export interface DbOptions {
  poolSize?: number;
  /** Every statement is cancelled after this long (PostgreSQL `statement_timeout`); 0 = no limit. */
  statementTimeoutMs?: number;
}

/** A pg pool whose checked-out clients are registered with the current request's query scope. */
class TrackedPool extends pg.Pool {
  override connect(): Promise<pg.PoolClient>;
  override connect(callback: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void): void;
  override connect(callback?: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void): Promise<pg.PoolClient> | void {
    if (callback) return super.connect(callback);
    return super.connect().then((client) => {
      trackCheckout(client);
      return client;
    });
  }
}

/** A one-connection pool per Db for cancelling its queries (see query-scope.ts), usable when the main pool is exhausted. */
const cancelPools = new WeakMap<Db, pg.Pool>();

export function createDb(url: string, options: DbOptions = {}): Db {
  const timeouts = options.statementTimeoutMs
    ? { statement_timeout: options.statementTimeoutMs, idle_in_transaction_session_timeout: options.statementTimeoutMs * 2 }
    : {};
  const pool = new TrackedPool({ connectionString: url, max: options.poolSize ?? 10, connectionTimeoutMillis: 5000, ...timeouts });
  const cancelPool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 5000, idleTimeoutMillis: 10_000 });
  // An idle client losing its connection (DB restart) must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  cancelPool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  cancelPools.set(db, cancelPool);
  const destroy = db.destroy.bind(db);
  db.destroy = async () => {
    await cancelPool.end().catch(() => undefined);
    await destroy();
  };
  return db;
}

/** Cancels the database work of an abandoned request (its client disconnected). */
export function abandonRequestQueries(db: Db, scope: QueryScope): Promise<void> {
  const cancelPool = cancelPools.get(db);
  return cancelPool ? abandonScope(scope, cancelPool) : Promise.resolve();
}
