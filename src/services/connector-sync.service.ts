// The rules of one connector sync run, called by the connector activities: begin/finish a job (conditional
// UPDATEs), process one page of a source directory (exclude, diff against the import state, import new and
// changed files streamed through the one commit path), and move files that vanished at the source to the trash.
import { createHash } from 'node:crypto';
import path from 'node:path/posix';
import picomatch from 'picomatch';
import { sql } from 'kysely';
import type { Connector, ConnectorImportState, ConnectorJob, Db, Node, UploadSession } from '../db/database';
import { AppError, payloadTooLarge } from '../errors';
import type { Logger } from '../logger';
import type { BlobStorage } from '../storage/blob-storage';
import { SourceAuthError, SourceEntryError, SourceUnreachableError, type ConnectorSource, type SourceEntry } from '../connectors/source';
import { sha256Hex, storeChunk } from './chunk-store';
import { accessNode } from './access.service';
import { appendJobLog, insertJob } from './connectors.service';
import { getTenant } from './identity.service';
import type { Principal } from './principal';
import { releaseReservations } from './quota-reservations.service';
import { findLiveSibling, createFolder, trashNode } from './tree.service';
import { createUploadSession, defaultChunkSize } from './upload-sessions.service';
import { commitVersion, type StoredChunk } from './versions.service';

export interface SyncDeps {
  db: Db;
  storage: BlobStorage;
  logger: Logger;
}

/** What an activity reports while it works (the Temporal UI's pending-activity view shows it). */
export interface SyncProgress {
  directory: string;
  file?: string;
  scanned: number;
  imported: number;
  errors: number;
}

export interface JobContext {
  job: ConnectorJob;
  connector: Connector;
  principal: Principal;
}

/** The job and its connector; undefined when the job is gone (connector deleted) or no longer running. */
export async function loadRunningJob(db: Db, jobId: string): Promise<JobContext | undefined> {
  const job = await db.selectFrom('connector_jobs').selectAll().where('id', '=', jobId).executeTakeFirst();
  if (!job || job.status !== 'running') return undefined;
  const connector = await db.selectFrom('connectors').selectAll().where('id', '=', job.connector_id).executeTakeFirst();
  if (!connector) return undefined;
  const user = await db.selectFrom('users').selectAll().where('id', '=', connector.created_by).executeTakeFirstOrThrow();
  // Imports are committed as the connector's creator, with exactly that user's rights on the target folder.
  const principal: Principal = { kind: 'user', tenantId: connector.tenant_id, userId: user.id, roles: user.roles, email: user.email };
  return { job, connector, principal };
}

/** How a job reads its source: SharePoint has a change feed (Graph delta); SMB is walked directory by directory. */
export type SyncPlan = { mode: 'walk' } | { mode: 'changes'; cursor: string | null };

const changeFeedKinds = new Set(['sharepoint']);

export function syncPlan(connector: Connector): SyncPlan {
  return changeFeedKinds.has(connector.kind) ? { mode: 'changes', cursor: connector.sync_cursor } : { mode: 'walk' };
}

/**
 * Keeps where the connector's change feed continues — only when the job recorded no error, so files that
 * failed are offered again by the next run (which finds the rest unchanged).
 */
export async function saveSyncCursor(db: Db, jobId: string, cursor: string): Promise<boolean> {
  const saved = await sql`update connectors c set sync_cursor = ${cursor}
    from connector_jobs j where j.id = ${jobId} and j.connector_id = c.id and j.status = 'running' and j.error_count = 0`.execute(db);
  return Number(saved.numAffectedRows ?? 0) > 0;
}

/** queued → running (one conditional UPDATE). A retried call finds it running already; anything else stops the run. */
export async function beginJob(db: Db, jobId: string, runId: string): Promise<boolean> {
  const begun = await db
    .updateTable('connector_jobs')
    .set({ status: 'running', started_at: sql`coalesce(started_at, now())`, run_id: sql`coalesce(run_id, ${runId})` })
    .where('id', '=', jobId)
    .where('status', 'in', ['queued', 'running'])
    .returning('id')
    .executeTakeFirst();
  if (begun) await appendJobLog(db, jobId, 'job started');
  return Boolean(begun);
}

/** running → succeeded, or partially_failed when any error row was recorded (one conditional UPDATE). */
export async function finishJob(db: Db, jobId: string): Promise<string | null> {
  const finished = await db
    .updateTable('connector_jobs')
    .set({ status: sql`case when error_count > 0 then 'partially_failed' else 'succeeded' end`, finished_at: sql`now()` })
    .where('id', '=', jobId)
    .where('status', '=', 'running')
    .returning(['status', 'files_scanned', 'files_added', 'files_updated', 'files_deleted', 'files_skipped', 'error_count'])
    .executeTakeFirst();
  if (finished) {
    await appendJobLog(
      db,
      jobId,
      `job ${finished.status}: scanned ${finished.files_scanned}, added ${finished.files_added}, updated ${finished.files_updated}, deleted ${finished.files_deleted}, skipped ${finished.files_skipped}, errors ${finished.error_count}`,
    );
  }
  const row = await db.selectFrom('connector_jobs').select('status').where('id', '=', jobId).executeTakeFirst();
  return row?.status ?? null;
}

/** running → canceled when the workflow was cancelled from Temporal itself (the API marks its own cancels). */
export async function markJobCanceled(db: Db, jobId: string): Promise<void> {
  const canceled = await db.updateTable('connector_jobs').set({ status: 'canceled', finished_at: sql`now()` }).where('id', '=', jobId).where('status', 'in', ['queued', 'running']).returning('id').executeTakeFirst();
  if (canceled) await appendJobLog(db, jobId, 'job canceled (workflow cancelled)');
}

/** A job for a schedule firing, unless the connector is disabled, gone or already syncing. */
export async function createScheduledJob(db: Db, connectorId: string): Promise<{ jobId: string; workflowId: string } | null> {
  const connector = await db.selectFrom('connectors').select(['id', 'tenant_id', 'enabled']).where('id', '=', connectorId).executeTakeFirst();
  if (!connector?.enabled) return null;
  const job = await insertJob(db, connector, 'schedule', null);
  if (!job) return null;
  await appendJobLog(db, job.id, 'job queued (trigger schedule)');
  return { jobId: job.id, workflowId: job.workflow_id };
}

/** Counts that are added to the job row in batches while a page runs (so they move while the job runs). */
export class JobCounters {
  scanned = 0;
  added = 0;
  updated = 0;
  deleted = 0;
  skipped = 0;
  bytes = 0;
  errors = 0;
  private lastFlush = Date.now();

  constructor(
    private readonly db: Db,
    private readonly jobId: string,
  ) {}

  async flush(force = false): Promise<void> {
    if (!force && Date.now() - this.lastFlush < 1000) return;
    this.lastFlush = Date.now();
    const { scanned, added, updated, deleted, skipped, bytes } = this;
    if (scanned + added + updated + deleted + skipped + bytes === 0) return;
    this.scanned = this.added = this.updated = this.deleted = this.skipped = this.bytes = 0;
    await this.db
      .updateTable('connector_jobs')
      .set({
        files_scanned: sql`files_scanned + ${scanned}`,
        files_added: sql`files_added + ${added}`,
        files_updated: sql`files_updated + ${updated}`,
        files_deleted: sql`files_deleted + ${deleted}`,
        files_skipped: sql`files_skipped + ${skipped}`,
        bytes: sql`bytes + ${bytes}`,
      })
      .where('id', '=', this.jobId)
      .execute();
  }

  /** An error row for one path; the job goes on (and ends partially_failed). */
  async error(path: string, code: string, reason: string): Promise<void> {
    this.errors += 1;
    await this.db.insertInto('connector_job_errors').values({ job_id: this.jobId, path, code, reason: reason.slice(0, 1000) }).execute();
    await this.db.updateTable('connector_jobs').set({ error_count: sql`error_count + 1` }).where('id', '=', this.jobId).execute();
    await appendJobLog(this.db, this.jobId, `error ${code} at ${path || '/'}: ${reason}`);
  }
}

/** Office `~$*` temp files, Thumbs.db… : matched against the entry's name and its path, case-insensitively. */
export function excludeMatcher(patterns: string[]): (entry: { name: string; path: string }) => boolean {
  if (patterns.length === 0) return () => false;
  const isMatch = picomatch(patterns, { dot: true, nocase: true });
  return (entry) => isMatch(entry.name) || isMatch(entry.path);
}

/** A directory still to walk, and where its listing continues (null: from the start). */
export interface PendingDirectory {
  directory: string;
  pageToken: string | null;
  /** When the directory must be done (epoch ms), set by its first page. */
  deadline?: number;
}

export interface PageInput {
  jobId: string;
  directory: string;
  pageToken: string | null;
  /** When this directory must be done (epoch ms), set by its first page. */
  deadline?: number;
}

export interface PageResult {
  /** The job is no longer running (canceled, connector deleted): the workflow stops. */
  stopped: boolean;
  subdirectories: string[];
  nextPageToken: string | null;
  deadline: number;
  items: number;
}

class DirectoryTimeout extends Error {}

/** Files of one page imported at once. */
const importConcurrency = 4;

function withDeadline<T>(promise: Promise<T>, deadline: number): Promise<T> {
  const remaining = deadline - Date.now();
  if (remaining <= 0) {
    promise.catch(() => undefined);
    return Promise.reject(new DirectoryTimeout());
  }
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DirectoryTimeout()), remaining);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * One page of one source directory: list it, skip excluded entries, import new and changed files, mark every
 * listed file as seen by this job (the trash pass spares them). Idempotent: a retried page finds imported
 * files unchanged against the import state, and an import cut short is recovered, never committed twice.
 */
export async function syncPage(
  deps: SyncDeps,
  context: JobContext,
  source: ConnectorSource,
  input: PageInput,
  report: (progress: SyncProgress) => void,
  /** True once the job was canceled (the activity's cancellation): the page stops between files. */
  shouldStop: () => boolean = () => false,
): Promise<PageResult> {
  const { connector } = context;
  const deadline = input.deadline ?? Date.now() + connector.directory_timeout_seconds * 1000;
  const counters = new JobCounters(deps.db, input.jobId);
  const progress: SyncProgress = { directory: input.directory || '/', scanned: 0, imported: 0, errors: 0 };
  const excluded = excludeMatcher(connector.exclude_patterns);
  const folders = new FolderResolver(deps.db, context.principal, connector.target_folder_id);
  let page;
  try {
    page = await withDeadline(source.list(input.directory, input.pageToken), deadline);
  } catch (error) {
    if (error instanceof DirectoryTimeout) {
      await counters.error(input.directory, 'DIRECTORY_TIMEOUT', `listing took longer than ${connector.directory_timeout_seconds} s`);
      return { stopped: false, subdirectories: [], nextPageToken: null, deadline, items: 0 };
    }
    if (error instanceof SourceEntryError) {
      await counters.error(input.directory, 'DIRECTORY_FAILED', error.message);
      return { stopped: false, subdirectories: [], nextPageToken: null, deadline, items: 0 };
    }
    throw error;
  }
  if (input.pageToken === null && input.directory !== '') {
    try {
      await mirrorDirectory(deps.db, context, folders, input.directory);
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      await counters.error(input.directory, error.code, error.detail);
    }
  }
  const subdirectories: string[] = [];
  const seen: string[] = [];
  let timedOut = false;
  const fileEntries: SourceEntry[] = [];
  for (const entry of page.entries) {
    if (excluded(entry)) counters.skipped += 1;
    // Subdirectories are walked with their own time budget, even when this directory runs out of its own.
    else if (entry.kind === 'directory') subdirectories.push(entry.path);
    else fileEntries.push(entry);
  }
  // The import state of the whole page in one query: a run with nothing changed costs no query per file.
  const states = await importStates(deps.db, connector.id, fileEntries.map((entry) => entry.path));
  let stopped = false;
  let failure: unknown;
  const importOne = async (entry: SourceEntry): Promise<void> => {
    if (timedOut || stopped || failure) return;
    if (shouldStop()) {
      stopped = true;
      return;
    }
    if (Date.now() > deadline) {
      // The rest of this directory's files are left alone (and spared by the trash pass); the job goes on.
      timedOut = true;
      await counters.error(input.directory, 'DIRECTORY_TIMEOUT', `directory took longer than ${connector.directory_timeout_seconds} s`);
      return;
    }
    counters.scanned += 1;
    progress.scanned += 1;
    progress.file = entry.path;
    seen.push(entry.path);
    report(progress);
    try {
      const outcome = await importEntry(deps, context, source, folders, entry, states.get(entry.path), () => report(progress));
      if (outcome.kind === 'added') counters.added += 1;
      if (outcome.kind === 'updated') counters.updated += 1;
      if (outcome.kind === 'skipped') counters.skipped += 1;
      if (outcome.kind === 'added' || outcome.kind === 'updated') {
        counters.bytes += outcome.bytes;
        progress.imported += 1;
      }
      if (outcome.kind === 'conflict') {
        progress.errors += 1;
        await counters.error(entry.path, 'CONFLICT', 'changed in ScaiDrive and at the source (conflict_resolution manual)');
      }
    } catch (error) {
      // Credentials and reachability fail the whole page (the activity retries, then the job fails).
      if (error instanceof SourceAuthError || error instanceof SourceUnreachableError || !(error instanceof SourceEntryError || error instanceof AppError)) {
        failure ??= error;
        return;
      }
      progress.errors += 1;
      await counters.error(entry.path, error.code, error.message);
    }
    await counters.flush();
  };
  // A few files at once (the SMB client multiplexes requests on its connection). Names equal by ScaiDrive's
  // rule (NFC, case-insensitive) go through one lane in order, so two of them never race for one name.
  const lanes = new Map<string, SourceEntry[]>();
  for (const entry of fileEntries) {
    const key = entry.name.normalize('NFC').toLowerCase();
    lanes.set(key, [...(lanes.get(key) ?? []), entry]);
  }
  const queue = [...lanes.values()];
  await Promise.all(
    Array.from({ length: Math.min(importConcurrency, queue.length) }, async () => {
      for (let lane = queue.shift(); lane; lane = queue.shift()) for (const entry of lane) await importOne(entry);
    }),
  );
  if (failure) {
    // What this page did commit is counted before the page fails (its retry finds those files unchanged).
    await counters.flush(true).catch(() => undefined);
    throw failure;
  }
  if (stopped) {
    await markSeen(deps.db, connector.id, input.jobId, seen);
    await counters.flush(true);
    return { stopped: true, subdirectories: [], nextPageToken: null, deadline, items: 0 };
  }
  await markSeen(deps.db, connector.id, input.jobId, seen);
  await counters.flush(true);
  return { stopped: false, subdirectories, nextPageToken: timedOut ? null : page.nextPageToken, deadline, items: page.entries.length };
}

async function importStates(db: Db, connectorId: string, paths: string[]): Promise<Map<string, ConnectorImportState>> {
  if (paths.length === 0) return new Map();
  const rows = await db.selectFrom('connector_import_state').selectAll().where('connector_id', '=', connectorId).where('kind', '=', 'file').where('path', 'in', paths).execute();
  return new Map(rows.map((row) => [row.path, row]));
}

/**
 * A listed source directory: its folder exists under the target (empty directories are mirrored too) and it
 * is recorded as seen by this job, so the trash pass knows it did not vanish.
 */
async function mirrorDirectory(db: Db, context: JobContext, folders: FolderResolver, directory: string): Promise<void> {
  const folderId = await folders.folderFor(directory);
  const state = { kind: 'directory' as const, file_id: folderId, last_seen_job_id: context.job.id };
  await db
    .insertInto('connector_import_state')
    .values({ connector_id: context.connector.id, path: directory, tenant_id: context.connector.tenant_id, ...state })
    .onConflict((oc) => oc.columns(['connector_id', 'path']).doUpdateSet(state))
    .execute();
}

async function markSeen(db: Db, connectorId: string, jobId: string, paths: string[]): Promise<void> {
  if (paths.length === 0) return;
  await db.updateTable('connector_import_state').set({ last_seen_job_id: jobId }).where('connector_id', '=', connectorId).where('path', 'in', paths).execute();
}

/** Finds or creates the ScaiDrive folder for a source directory under the target folder (cached per page). */
export class FolderResolver {
  private readonly cache = new Map<string, string>();
  private readonly writable = new Map<string, Promise<void>>();
  private maxFileSize: Promise<number> | undefined;

  constructor(
    private readonly db: Db,
    private readonly principal: Principal,
    private readonly rootId: string,
  ) {
    this.cache.set('', rootId);
  }

  async folderFor(directory: string): Promise<string> {
    const cached = this.cache.get(directory);
    if (cached) return cached;
    const parentDir = directory.includes('/') ? directory.slice(0, directory.lastIndexOf('/')) : '';
    const parentId = await this.folderFor(parentDir);
    const name = directory.slice(directory.lastIndexOf('/') + 1);
    let folder = await findLiveSibling(this.db, parentId, name);
    if (!folder) {
      try {
        folder = await createFolder(this.db, this.principal, parentId, name);
      } catch (error) {
        // Created by someone else in the meantime (a retried page, a user): use theirs.
        if (!(error instanceof AppError && error.code === 'NAME_CONFLICT')) throw error;
        folder = await findLiveSibling(this.db, parentId, name);
      }
    }
    if (!folder || folder.kind !== 'folder') throw new AppError(409, 'NAME_CONFLICT', `A file named "${name}" is where the source has a folder`);
    this.cache.set(directory, folder.id);
    return folder.id;
  }

  /** The connector's user may write into the folder (checked once per folder and page) and the size is allowed. */
  async assertCanImport(folderId: string, size: number): Promise<void> {
    this.maxFileSize ??= getTenant(this.db, this.principal.tenantId).then((tenant) => tenant.settings.max_file_size_bytes);
    if (size > (await this.maxFileSize)) throw payloadTooLarge(`File of ${size} bytes exceeds the tenant's ${await this.maxFileSize}-byte limit`);
    let writable = this.writable.get(folderId);
    if (!writable) {
      writable = accessNode(this.db, this.principal, folderId, 'write', { kind: 'folder' }).then(() => undefined);
      this.writable.set(folderId, writable);
    }
    await writable;
  }
}

type ImportOutcome = { kind: 'added' | 'updated'; bytes: number } | { kind: 'unchanged' | 'skipped' | 'conflict' };

/** "report (from source).pdf": the keep_both name for the source's copy of a file changed on both sides. */
/**
 * Where a source's new bytes for a file imported before go: a new version of that file, or — when a user
 * changed it in ScaiDrive since the import (its current version is not the imported one) — what the
 * connector's conflict_resolution says: skip it, report a conflict, keep both, or overwrite.
 */
export function trackedTarget(policy: Connector['conflict_resolution'], tracked: Node, importedVersionId: string | null): { parentId: string; name: string; fileId?: string } | 'skipped' | 'conflict' {
  const changedHere = tracked.current_version_id !== importedVersionId;
  if (changedHere && policy === 'skip') return 'skipped';
  if (changedHere && policy === 'manual') return 'conflict';
  if (changedHere && policy === 'keep_both') return { parentId: tracked.parent_id!, name: keepBothName(tracked.name) };
  return { parentId: tracked.parent_id!, name: tracked.name, fileId: tracked.id };
}

export function keepBothName(name: string): string {
  const ext = path.extname(name);
  return `${name.slice(0, name.length - ext.length)} (from source)${ext}`;
}

/** A deterministic name for a source file whose name collides, by ScaiDrive's case-insensitive rule, with another imported file. */
function disambiguatedName(name: string, sourcePath: string): string {
  const ext = path.extname(name);
  return `${name.slice(0, name.length - ext.length)} (${createHash('sha256').update(sourcePath).digest('hex').slice(0, 6)})${ext}`;
}

async function importEntry(
  deps: SyncDeps,
  context: JobContext,
  source: ConnectorSource,
  folders: FolderResolver,
  entry: SourceEntry,
  known: ConnectorImportState | undefined,
  heartbeat: () => void,
): Promise<ImportOutcome> {
  const { db } = deps;
  const { connector } = context;
  // Only this job writes this connector's import state (one running job per connector), so the page's read holds.
  let state = known;
  if (state?.pending_upload_id) state = await recoverPendingImport(db, connector.id, entry.path, state.pending_upload_id);
  const unchanged = state?.version_id && state.size === entry.size && state.mtime?.getTime() === entry.mtime.getTime();
  if (unchanged) return { kind: 'unchanged' };

  // Where the bytes go: the file imported before (wherever a user moved it), or a name in the mirrored folder.
  let target: { parentId: string; name: string; fileId?: string } | undefined;
  const tracked: Node | undefined = state?.file_id ? await db.selectFrom('nodes').selectAll().where('id', '=', state.file_id).executeTakeFirst() : undefined;
  if (tracked && !tracked.deleted_at && tracked.parent_id) {
    const resolved = trackedTarget(connector.conflict_resolution, tracked, state?.version_id ?? null);
    if (resolved === 'skipped' || resolved === 'conflict') return { kind: resolved };
    target = resolved;
  } else {
    const parentId = await folders.folderFor(entry.path.includes('/') ? entry.path.slice(0, entry.path.lastIndexOf('/')) : '');
    let name = entry.name;
    const sibling = await findLiveSibling(db, parentId, name);
    if (sibling?.kind === 'file') {
      const owner = await db.selectFrom('connector_import_state').select('path').where('connector_id', '=', connector.id).where('file_id', '=', sibling.id).executeTakeFirst();
      // Names differing only in case at the source: ScaiDrive's names are case-insensitive, so the second gets its own name.
      if (owner && owner.path !== entry.path) name = disambiguatedName(name, entry.path);
      else if (!owner && connector.conflict_resolution === 'skip') return { kind: 'skipped' };
      else if (!owner && connector.conflict_resolution === 'manual') return { kind: 'conflict' };
      else if (!owner && connector.conflict_resolution === 'keep_both') name = keepBothName(name);
    }
    target = { parentId, name };
  }
  const bytes = await streamImport(deps, context, source, folders, entry, target, heartbeat);
  return { kind: state?.version_id ? 'updated' : 'added', bytes };
}

/**
 * An import cut short (worker killed): if its commit happened, the state is completed from the session (no
 * second version); otherwise the half-written session is discarded and its reservation released.
 */
export async function recoverPendingImport(db: Db, connectorId: string, sourcePath: string, uploadId: string) {
  const session = await db.selectFrom('upload_sessions').selectAll().where('id', '=', uploadId).executeTakeFirst();
  if (session?.status === 'completed' && session.version_id) {
    await db
      .updateTable('connector_import_state')
      .set({ size: sql`pending_size`, mtime: sql`pending_mtime`, source_version: sql`pending_source_version`, file_id: session.file_id, version_id: session.version_id, pending_upload_id: null, pending_size: null, pending_mtime: null, pending_source_version: null })
      .where('connector_id', '=', connectorId)
      .where('path', '=', sourcePath)
      .where('pending_upload_id', '=', uploadId)
      .execute();
  } else {
    await discardSession(db, uploadId);
    await db.updateTable('connector_import_state').set({ pending_upload_id: null, pending_size: null, pending_mtime: null, pending_source_version: null }).where('connector_id', '=', connectorId).where('path', '=', sourcePath).where('pending_upload_id', '=', uploadId).execute();
  }
  return db.selectFrom('connector_import_state').selectAll().where('connector_id', '=', connectorId).where('path', '=', sourcePath).executeTakeFirst();
}

/** Deletes an uncommitted session (one conditional DELETE) and releases what it reserved. */
async function discardSession(db: Db, uploadId: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const deleted = await trx.deleteFrom('upload_sessions').where('id', '=', uploadId).where('status', '!=', 'completed').returning(['reserved_bytes', 'reserved_subjects']).executeTakeFirst();
    if (deleted) await releaseReservations(trx, [{ subjects: deleted.reserved_subjects, bytes: deleted.reserved_bytes }]);
  });
}

/**
 * Streams one source file into chunks (one chunk buffered at a time) while hashing the whole, then commits
 * through commitVersion. A file that fits in one chunk (most of a file server) commits its chunk directly, its
 * import state written in the commit's transaction, so a crash leaves either both or neither. A longer file
 * gets an upload session from its second chunk on: the session holds the quota reservation and keeps the
 * stored chunks referenced, and the import state records it first, so a crash mid-file is recovered (no
 * second version) by the next attempt.
 */
export async function streamImport(
  deps: SyncDeps,
  context: JobContext,
  source: ConnectorSource,
  folders: FolderResolver,
  entry: SourceEntry,
  target: { parentId: string; name: string; fileId?: string },
  heartbeat: () => void,
): Promise<number> {
  const { db, storage } = deps;
  const { connector, principal } = context;
  if (principal.kind !== 'user') throw new Error('connector principal must be a user');
  await folders.assertCanImport(target.parentId, entry.size);
  const commitInput = { tenantId: connector.tenant_id, userId: principal.userId, parentId: target.parentId, name: target.name, fileId: target.fileId, indexPriority: 'low' as const };
  // Delta-fed sources also record the item's id and content version (SMB entries have neither).
  const sourceIdentity = { source_id: entry.id ?? null, source_version: entry.version ?? null };
  const importedState = (fileId: string, versionId: string) => ({ size: entry.size, mtime: entry.mtime, file_id: fileId, version_id: versionId, pending_upload_id: null, pending_size: null, pending_mtime: null, pending_source_version: null, ...sourceIdentity });

  let session: UploadSession | undefined;
  let storing: Promise<void> | undefined;
  /** From the second chunk on: a session recorded in the import state before its first chunk is stored. */
  const openSession = async () => {
    session = await createUploadSession(db, principal, { parentId: target.parentId, name: target.name, size: entry.size });
    const pending = { kind: 'file' as const, pending_upload_id: session.id, pending_size: entry.size, pending_mtime: entry.mtime, last_seen_job_id: context.job.id, source_id: entry.id ?? null, pending_source_version: entry.version ?? null };
    await db
      .insertInto('connector_import_state')
      .values({ connector_id: connector.id, path: entry.path, tenant_id: connector.tenant_id, size: null, mtime: null, ...pending })
      .onConflict((oc) => oc.columns(['connector_id', 'path']).doUpdateSet(pending))
      .execute();
    return session;
  };
  try {
    const stream = entry.id && source.readItem ? await source.readItem(entry.id, entry.path) : await source.read(entry.path);
    const whole = createHash('sha256');
    let total = 0;
    let buffered: Buffer[] = [];
    let bufferedBytes = 0;
    const chunks: StoredChunk[] = [];
    let chunkCount = 0;
    // One chunk is stored while the next one is read (two chunks in memory at most): the source and the
    // storage work at the same time instead of taking turns.
    const flush = async () => {
      const data = Buffer.concat(buffered, bufferedBytes);
      buffered = [];
      bufferedBytes = 0;
      if (storing) await storing;
      const index = chunkCount++;
      const uploadId = session?.id;
      storing = (async () => {
        const sha256 = sha256Hex(data);
        await storeChunk(db, storage, connector.tenant_id, sha256, data);
        if (uploadId) await db.insertInto('upload_chunks').values({ upload_id: uploadId, index, tenant_id: connector.tenant_id, user_id: principal.userId, sha256, size: data.length }).execute();
        chunks[index] = { sha256, size: data.length };
        heartbeat();
      })();
      // Awaited by the next flush or at the end; never an unhandled rejection meanwhile.
      storing.catch(() => undefined);
    };
    try {
      for await (const part of stream as AsyncIterable<Buffer>) {
        let piece = part;
        total += piece.length;
        whole.update(piece);
        while (piece.length > 0) {
          if (bufferedBytes === defaultChunkSize) {
            // More than one chunk: the session (and the first chunk's reference) before anything else is stored.
            if (!session) await openSession();
            await flush();
          }
          const take = Math.min(piece.length, defaultChunkSize - bufferedBytes);
          buffered.push(piece.subarray(0, take));
          bufferedBytes += take;
          piece = piece.subarray(take);
        }
      }
    } finally {
      stream.destroy();
    }
    if (bufferedBytes > 0) await flush();
    if (storing) await storing;
    const checksum = whole.digest('hex');
    if (!session) {
      const committed = await commitVersion(db, {
        ...commitInput,
        size: total,
        checksumSha256: checksum,
        source: { chunks },
        alongside: async (trx, { file, version }) => {
          const state = { ...importedState(file.id, version.id), kind: 'file' as const, last_seen_job_id: context.job.id };
          await trx
            .insertInto('connector_import_state')
            .values({ connector_id: connector.id, path: entry.path, tenant_id: connector.tenant_id, ...state })
            .onConflict((oc) => oc.columns(['connector_id', 'path']).doUpdateSet(state))
            .execute();
        },
      });
      return committed.version.size;
    }
    const open: UploadSession = session;
    await db.updateTable('upload_sessions').set({ size: total, chunk_count: chunkCount, status: 'finalizing' }).where('id', '=', open.id).where('status', '=', 'open').execute();
    const committed = await commitVersion(db, { ...commitInput, size: total, checksumSha256: checksum, source: { uploadId: open.id } });
    await db
      .updateTable('connector_import_state')
      .set(importedState(committed.file.id, committed.version.id))
      .where('connector_id', '=', connector.id)
      .where('path', '=', entry.path)
      .where('pending_upload_id', '=', open.id)
      .execute();
    return total;
  } catch (error) {
    // A chunk still being stored finishes (or fails) before the half-written session is discarded.
    await (storing as Promise<void> | undefined)?.catch(() => undefined);
    const open = session as UploadSession | undefined;
    if (open) await recoverPendingImport(db, connector.id, entry.path, open.id);
    throw error;
  }
}

/**
 * Moves files the import brought in and this job did not see at the source to the trash (a file a user has
 * changed since is kept unless conflict_resolution is overwrite), then the folders of directories the source
 * no longer has, deepest first, each only once it is empty (what a user put there keeps its folder).
 * Directories this job could not list are spared whole: their entries were not seen, but they did not vanish.
 */
export async function trashVanished(deps: SyncDeps, context: JobContext, heartbeat: (done: number) => void): Promise<number> {
  const { db } = deps;
  const { connector, job, principal } = context;
  const failed = await db.selectFrom('connector_job_errors').select('path').where('job_id', '=', job.id).where('code', 'in', ['DIRECTORY_TIMEOUT', 'DIRECTORY_FAILED']).execute();
  const spared = (p: string) => failed.some((f) => f.path === '' || p === f.path || p.startsWith(`${f.path}/`));
  const forget = (row: ConnectorImportState) => db.deleteFrom('connector_import_state').where('connector_id', '=', connector.id).where('path', '=', row.path).execute();
  const trash = async (row: ConnectorImportState, kind: 'file' | 'folder', options: { onlyIfEmpty?: boolean } = {}): Promise<boolean> => {
    try {
      await trashNode(db, principal, { id: row.file_id!, kind }, options);
      return true;
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      // Already trashed, gone, locked by a user or holding a user's files: the record goes, the item stays as the user left it.
      if (!['IN_TRASH', 'NOT_FOUND'].includes(error.code)) await appendJobLog(db, job.id, `kept ${row.path}: ${error.code}`);
      return false;
    }
  };
  let deleted = 0;
  for await (const row of unseenRows(db, connector.id, job.id, 'file')) {
    if (spared(row.path)) continue;
    if (row.pending_upload_id) await recoverPendingImport(db, connector.id, row.path, row.pending_upload_id);
    const node = row.file_id ? await db.selectFrom('nodes').selectAll().where('id', '=', row.file_id).executeTakeFirst() : undefined;
    const keep = node && node.current_version_id !== row.version_id && connector.conflict_resolution !== 'overwrite';
    if (node && !node.deleted_at && !keep && (await trash(row, 'file'))) deleted += 1;
    await forget(row);
    heartbeat(deleted);
  }
  if (deleted > 0) await db.updateTable('connector_jobs').set({ files_deleted: sql`files_deleted + ${deleted}` }).where('id', '=', job.id).execute();
  let folders = 0;
  for await (const row of unseenRows(db, connector.id, job.id, 'directory')) {
    if (spared(row.path)) continue;
    const node = row.file_id ? await db.selectFrom('nodes').select(['deleted_at']).where('id', '=', row.file_id).executeTakeFirst() : undefined;
    if (node && !node.deleted_at && (await trash(row, 'folder', { onlyIfEmpty: true }))) folders += 1;
    await forget(row);
  }
  if (folders > 0) await appendJobLog(db, job.id, `moved ${folders} folder(s) of vanished directories to the trash`);
  return deleted;
}

/**
 * The connector's import-state rows of one kind that `jobId` did not see, in pages: files in path order,
 * directories deepest first (in byte order a directory's path sorts before everything under it, so descending
 * order puts children first). Rows are deleted as they are handled, so each page starts after the last one seen.
 */
async function* unseenRows(db: Db, connectorId: string, jobId: string, kind: 'file' | 'directory'): AsyncGenerator<ConnectorImportState> {
  const descending = kind === 'directory';
  // Byte order, where a path always sorts before its extensions (a language collation need not guarantee it).
  const byteOrder = sql<string>`path collate "C"`;
  let after: string | undefined;
  for (;;) {
    let query = db
      .selectFrom('connector_import_state')
      .selectAll()
      .where('connector_id', '=', connectorId)
      .where('kind', '=', kind)
      .where((eb) => eb.or([eb('last_seen_job_id', 'is', null), eb('last_seen_job_id', '!=', jobId)]))
      .orderBy(byteOrder, descending ? 'desc' : 'asc')
      .limit(200);
    if (after !== undefined) query = query.where(byteOrder, descending ? '<' : '>', after);
    const rows = await query.execute();
    if (rows.length === 0) return;
    after = rows[rows.length - 1]!.path;
    yield* rows;
  }
}
