// Sync from a source's change feed (SharePoint's Graph delta), called by the connector activities: one page of
// changes at a time, items tracked by their source id so renames and moves move the ScaiDrive file or folder
// (no download), content imported only when its version (cTag) changed, deleted items to the trash. A full
// enumeration (the first run, or after the cursor expired) also marks what it saw, so the vanished-file pass can
// trash what is gone; an incremental page needs no such pass (deletions come as `deleted` items).
import { sql } from 'kysely';
import type { ConnectorImportState, Db } from '../db/database';
import { AppError } from '../errors';
import { SourceAuthError, SourceEntryError, SourceUnreachableError, type ConnectorSource, type SourceChange, type SourceEntry } from '../connectors/source';
import {
  excludeMatcher,
  FolderResolver,
  JobCounters,
  keepBothName,
  recoverPendingImport,
  streamImport,
  trackedTarget,
  type JobContext,
  type SyncDeps,
  type SyncProgress,
} from './connector-sync.service';
import { appendJobLog } from './connectors.service';
import { createFolder, findLiveSibling, trashNode, updateNode } from './tree.service';

export interface ChangesPageResult {
  stopped: boolean;
  /** The next page of this enumeration; null once the last page was handled. */
  nextPage: string | null;
  /** On the last page: where the next run continues. */
  resumeCursor: string | null;
  items: number;
}

/** Where a source item lives in ScaiDrive: the folder (by id) and the mirrored path under the target. */
interface Place {
  folderId: string;
  path: string;
}

const joinPath = (parent: string, name: string) => (parent ? `${parent}/${name}` : name);

/** Files of one page imported at once (directories go first, one by one: their children need them). */
const importConcurrency = 4;

export async function syncChangesPage(
  deps: SyncDeps,
  context: JobContext,
  source: ConnectorSource,
  cursor: string | null,
  report: (progress: SyncProgress) => void,
  shouldStop: () => boolean = () => false,
): Promise<ChangesPageResult> {
  if (!source.changes) throw new Error(`connector kind ${context.connector.kind} has no change feed`);
  const { db } = deps;
  const { connector, job } = context;
  const page = await source.changes(cursor);
  const counters = new JobCounters(db, job.id);
  const progress: SyncProgress = { directory: '/', scanned: 0, imported: 0, errors: 0 };
  const excluded = excludeMatcher(connector.exclude_patterns);
  const folders = new FolderResolver(db, context.principal, connector.target_folder_id);
  const rows = await statesById(db, connector.id, page.changes.map((c) => c.id));

  /** The ScaiDrive place of a source parent; null when the parent is excluded (or unknown: an error row). */
  const placeOf = async (change: SourceChange): Promise<Place | null | 'excluded'> => {
    if (change.parentId === null) return { folderId: connector.target_folder_id, path: '' };
    const parent = rows.get(change.parentId) ?? (await statesById(db, connector.id, [change.parentId])).get(change.parentId);
    if (!parent) return null;
    if (!parent.file_id) return 'excluded';
    return { folderId: parent.file_id, path: parent.path };
  };

  const fail = async (path: string, error: unknown): Promise<void> => {
    // Credentials and reachability fail the page (the activity retries, then the job fails).
    if (error instanceof SourceAuthError || error instanceof SourceUnreachableError || !(error instanceof SourceEntryError || error instanceof AppError)) throw error;
    progress.errors += 1;
    await counters.error(path, error.code, error instanceof AppError ? error.detail : error.message);
  };

  const handle = async (change: SourceChange): Promise<void> => {
    const known = rows.get(change.id);
    if (change.deleted) {
      if (known) counters.deleted += await removeImported(deps, context, known);
      return;
    }
    const place = await placeOf(change);
    if (place === 'excluded') {
      counters.skipped += change.kind === 'file' ? 1 : 0;
      if (change.kind === 'directory') await recordExcludedDirectory(db, context, change);
      return;
    }
    if (!place) {
      await fail(change.name, new SourceEntryError('SOURCE_NOT_FOUND', `${change.name}: its parent folder is unknown (not yet imported)`));
      return;
    }
    const path = joinPath(place.path, change.name);
    progress.directory = place.path || '/';
    if (change.kind === 'directory') {
      if (excluded({ name: change.name, path })) return recordExcludedDirectory(db, context, change);
      try {
        await applyDirectory(deps, context, change, place, path, known);
      } catch (error) {
        await fail(path, error);
      }
      return;
    }
    const entry: SourceEntry = { name: change.name, path, kind: 'file', size: change.size, mtime: change.mtime, id: change.id, version: change.version };
    if (excluded(entry)) {
      counters.skipped += 1;
      return;
    }
    counters.scanned += 1;
    progress.scanned += 1;
    progress.file = path;
    report(progress);
    try {
      const outcome = await applyFile(deps, context, source, folders, entry, place, known, () => report(progress));
      if (outcome === 'skipped') counters.skipped += 1;
      if (outcome === 'conflict') {
        progress.errors += 1;
        await counters.error(path, 'CONFLICT', 'changed in ScaiDrive and at the source (conflict_resolution manual)');
      }
      if (typeof outcome === 'object') {
        if (outcome.kind === 'added') counters.added += 1;
        else counters.updated += 1;
        counters.bytes += outcome.bytes;
        progress.imported += 1;
      }
    } catch (error) {
      await fail(path, error);
    }
    await counters.flush();
  };

  // Directories first, in the feed's order (parents before children); then the files, a few at once.
  for (const change of page.changes.filter((c) => c.kind === 'directory' || c.deleted)) {
    if (shouldStop()) return { stopped: true, nextPage: null, resumeCursor: null, items: 0 };
    await handle(change);
    // A directory created or moved in this page is the parent of files below.
    if (!change.deleted) {
      const fresh = await statesById(db, connector.id, [change.id]);
      const row = fresh.get(change.id);
      if (row) rows.set(change.id, row);
    }
  }
  // Names equal by ScaiDrive's rule (NFC, case-insensitive) in one folder go through one lane in order, so two
  // of them never race for one name (the second then meets the first and follows conflict_resolution).
  const lanes = new Map<string, SourceChange[]>();
  for (const change of page.changes.filter((c) => c.kind === 'file' && !c.deleted)) {
    const key = `${change.parentId ?? ''}/${change.name.normalize('NFC').toLowerCase()}`;
    lanes.set(key, [...(lanes.get(key) ?? []), change]);
  }
  const queue = [...lanes.values()];
  let stopped = false;
  await Promise.all(
    Array.from({ length: Math.min(importConcurrency, queue.length) }, async () => {
      for (let lane = queue.shift(); lane && !stopped; lane = queue.shift()) {
        for (const change of lane) {
          if (shouldStop()) stopped = true;
          if (stopped) break;
          await handle(change);
        }
      }
    }),
  );
  // What this page saw counts for the vanished pass of a full enumeration.
  const seen = page.changes.filter((c) => !c.deleted).map((c) => c.id);
  if (seen.length) await db.updateTable('connector_import_state').set({ last_seen_job_id: job.id }).where('connector_id', '=', connector.id).where('source_id', 'in', seen).execute();
  await counters.flush(true);
  if (stopped) return { stopped: true, nextPage: null, resumeCursor: null, items: 0 };
  return { stopped: false, nextPage: page.nextPage, resumeCursor: page.resumeCursor, items: page.changes.length };
}

async function statesById(db: Db, connectorId: string, ids: string[]): Promise<Map<string, ConnectorImportState>> {
  if (ids.length === 0) return new Map();
  const rows = await db.selectFrom('connector_import_state').selectAll().where('connector_id', '=', connectorId).where('source_id', 'in', [...new Set(ids)]).execute();
  return new Map(rows.map((row) => [row.source_id!, row]));
}

/** An excluded directory is remembered (no folder; a path no source can have, `:` being invalid in names) so its children are skipped, not reported as orphans. */
async function recordExcludedDirectory(db: Db, context: JobContext, change: SourceChange): Promise<void> {
  // A folder mirrored before and excluded now (the patterns changed): its old record gives way (the folder stays).
  await db.deleteFrom('connector_import_state').where('connector_id', '=', context.connector.id).where('source_id', '=', change.id).where('file_id', 'is not', null).execute();
  await db
    .insertInto('connector_import_state')
    .values({ connector_id: context.connector.id, path: `:excluded:/${change.id}`, tenant_id: context.connector.tenant_id, kind: 'directory', source_id: change.id, file_id: null, last_seen_job_id: context.job.id })
    .onConflict((oc) => oc.columns(['connector_id', 'path']).doUpdateSet({ last_seen_job_id: context.job.id }))
    .execute();
}

/** Moves a row (and, for a directory, every row under it) to a new mirrored path. */
async function repath(db: Db, connectorId: string, from: string, to: string, directory: boolean): Promise<void> {
  await db.transaction().execute(async (trx) => {
    // A stale row at the destination (an item gone from there) gives way: the source has one item per path.
    await trx.deleteFrom('connector_import_state').where('connector_id', '=', connectorId).where('path', '=', to).execute();
    await trx.updateTable('connector_import_state').set({ path: to }).where('connector_id', '=', connectorId).where('path', '=', from).execute();
    if (directory) {
      await sql`update connector_import_state set path = ${to} || substr(path, ${from.length + 1})
        where connector_id = ${connectorId} and starts_with(path, ${`${from}/`})`.execute(trx);
    }
  });
}

/** A folder at the source: created (or adopted) under its parent, or moved/renamed along with the source. */
async function applyDirectory(deps: SyncDeps, context: JobContext, change: SourceChange, place: Place, path: string, known: ConnectorImportState | undefined): Promise<void> {
  const { db } = deps;
  const { connector, principal, job } = context;
  const folder = known?.file_id ? await db.selectFrom('nodes').selectAll().where('id', '=', known.file_id).executeTakeFirst() : undefined;
  if (known && folder && !folder.deleted_at) {
    if (folder.parent_id !== place.folderId || folder.name !== change.name) {
      await updateNode(db, principal, { id: folder.id, kind: 'folder' }, { parentId: place.folderId, name: change.name });
    }
    if (known.path !== path) await repath(db, connector.id, known.path, path, true);
    return;
  }
  let target = await findLiveSibling(db, place.folderId, change.name);
  if (!target) {
    try {
      target = await createFolder(db, principal, place.folderId, change.name);
    } catch (error) {
      if (!(error instanceof AppError && error.code === 'NAME_CONFLICT')) throw error;
      target = await findLiveSibling(db, place.folderId, change.name);
    }
  }
  if (!target || target.kind !== 'folder') throw new AppError(409, 'NAME_CONFLICT', `A file named "${change.name}" is where the source has a folder`);
  const state = { kind: 'directory' as const, file_id: target.id, source_id: change.id, last_seen_job_id: job.id };
  if (known) await db.deleteFrom('connector_import_state').where('connector_id', '=', connector.id).where('path', '=', known.path).execute();
  await db
    .insertInto('connector_import_state')
    .values({ connector_id: connector.id, path, tenant_id: connector.tenant_id, ...state })
    .onConflict((oc) => oc.columns(['connector_id', 'path']).doUpdateSet(state))
    .execute();
}

type FileOutcome = { kind: 'added' | 'updated'; bytes: number } | 'unchanged' | 'skipped' | 'conflict';

/**
 * A file at the source: moved/renamed with the source (no download), and its content imported only when
 * its version changed (into the same ScaiDrive file), under the connector's conflict_resolution.
 */
async function applyFile(
  deps: SyncDeps,
  context: JobContext,
  source: ConnectorSource,
  folders: FolderResolver,
  entry: SourceEntry,
  place: Place,
  known: ConnectorImportState | undefined,
  heartbeat: () => void,
): Promise<FileOutcome> {
  const { db } = deps;
  const { connector, principal } = context;
  let row = known;
  if (row?.pending_upload_id) {
    await recoverPendingImport(db, connector.id, row.path, row.pending_upload_id);
    row = (await statesById(db, connector.id, [entry.id!])).get(entry.id!);
  }
  const node = row?.file_id ? await db.selectFrom('nodes').selectAll().where('id', '=', row.file_id).executeTakeFirst() : undefined;
  if (row && node && !node.deleted_at) {
    // Renamed or moved at the source: the same ScaiDrive file follows, no download.
    if (row.path !== entry.path) {
      if (node.parent_id !== place.folderId || node.name !== entry.name) {
        await updateNode(db, principal, { id: node.id, kind: 'file' }, { parentId: place.folderId, name: entry.name });
      }
      await repath(db, connector.id, row.path, entry.path, false);
      row = { ...row, path: entry.path };
    }
    if (row.source_version === entry.version) return 'unchanged';
    const target = trackedTarget(connector.conflict_resolution, node, row.version_id);
    if (target === 'skipped' || target === 'conflict') return target;
    return { kind: 'updated', bytes: await streamImport(deps, context, source, folders, entry, target, heartbeat) };
  }
  // New to ScaiDrive (or its file was deleted there): imported into the mirrored folder.
  let name = entry.name;
  const sibling = await findLiveSibling(db, place.folderId, name);
  if (sibling?.kind === 'file') {
    if (connector.conflict_resolution === 'skip') return 'skipped';
    if (connector.conflict_resolution === 'manual') return 'conflict';
    if (connector.conflict_resolution === 'keep_both') name = keepBothName(name);
  }
  if (row) await db.deleteFrom('connector_import_state').where('connector_id', '=', connector.id).where('path', '=', row.path).execute();
  return { kind: 'added', bytes: await streamImport(deps, context, source, folders, entry, { parentId: place.folderId, name }, heartbeat) };
}

/** A deleted item: an imported file to the trash (unless a user changed it), a folder once empty; its rows go. Returns files trashed. */
async function removeImported(deps: SyncDeps, context: JobContext, row: ConnectorImportState): Promise<number> {
  const { db } = deps;
  const { connector, principal, job } = context;
  const under = row.kind === 'directory'
    ? await db.selectFrom('connector_import_state').selectAll().where('connector_id', '=', connector.id).where(sql<boolean>`starts_with(path, ${`${row.path}/`})`).orderBy(sql`path collate "C"`, 'desc').execute()
    : [];
  let trashed = 0;
  for (const item of [...under, row]) {
    if (item.pending_upload_id) await recoverPendingImport(db, connector.id, item.path, item.pending_upload_id);
    const node = item.file_id ? await db.selectFrom('nodes').selectAll().where('id', '=', item.file_id).executeTakeFirst() : undefined;
    if (node && !node.deleted_at) {
      const keep = item.kind === 'file' && node.current_version_id !== item.version_id && connector.conflict_resolution !== 'overwrite';
      if (!keep) {
        try {
          await trashNode(db, principal, { id: node.id, kind: item.kind === 'file' ? 'file' : 'folder' }, { onlyIfEmpty: item.kind === 'directory' });
          if (item.kind === 'file') trashed += 1;
        } catch (error) {
          if (!(error instanceof AppError)) throw error;
          if (!['IN_TRASH', 'NOT_FOUND'].includes(error.code)) await appendJobLog(db, job.id, `kept ${item.path}: ${error.code}`);
        }
      }
    }
    await db.deleteFrom('connector_import_state').where('connector_id', '=', connector.id).where('path', '=', item.path).execute();
  }
  return trashed;
}
