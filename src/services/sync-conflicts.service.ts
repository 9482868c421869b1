// Sync conflicts (spec §9, issue #12 item 4): a write made against a base version that is no longer current is
// refused with 409 VERSION_CONFLICT, and — when the client names its device (X-Device-Id) — recorded for that
// device. A conflict blocks that one file, never the change feed. Resolutions:
//  - keep_server: the client's write is dropped (an upload kept open for it is aborted);
//  - keep_client: the client's write is applied over the server's (an upload is committed as the new version; a
//    rename, move or delete is made again without the base);
//  - keep_both (uploads): the client's content is saved beside the server's as
//    "name (conflict from DEVICE YYYY-MM-DD).ext".
// A space whose conflict_policy is keep_both resolves upload conflicts that way at once.
import type { Selectable } from 'kysely';
import type { ConflictPolicy, Db, SyncConflictsTable, SyncResolution } from '../db/database';
import { AppError, conflict, notFound } from '../errors';
import { isId, newId } from '../ids';
import { accessNode } from './access.service';
import { conflictCopyName } from './names';
import type { Principal } from './principal';
import type { SyncDevice } from './sync-devices.service';
import { findLiveSibling, trashNode, updateNode, type NodeTarget } from './tree.service';
import { abortUpload, getOwnSession } from './upload-sessions.service';
import { missingChunks } from './upload-finalization.service';

export type SyncConflict = Selectable<SyncConflictsTable>;

/** The caller's device named by X-Device-Id (404 when it is not theirs), or null without one. */
export async function deviceForWrite(db: Db, principal: Principal, deviceId: string | undefined): Promise<SyncDevice | null> {
  if (!deviceId) return null;
  if (principal.kind !== 'user' || !isId('device', deviceId)) throw notFound('Device');
  const device = await db.selectFrom('sync_devices').selectAll().where('id', '=', deviceId).where('tenant_id', '=', principal.tenantId).where('user_id', '=', principal.userId).executeTakeFirst();
  if (!device) throw notFound('Device');
  return device;
}

/** A name for the client's copy beside `name` in `parentId` that no live sibling has. */
export async function freeConflictCopyName(db: Db, parentId: string, name: string, deviceName: string, now = new Date()): Promise<string> {
  for (let attempt = 1; attempt < 100; attempt++) {
    const candidate = conflictCopyName(name, deviceName, now, attempt);
    if (!(await findLiveSibling(db, parentId, candidate))) return candidate;
  }
  throw conflict('Too many conflict copies of this file today', 'NAME_CONFLICT');
}

export async function spaceConflictPolicy(db: Db, spaceId: string): Promise<ConflictPolicy> {
  const space = await db.selectFrom('spaces').select('conflict_policy').where('id', '=', spaceId).executeTakeFirstOrThrow();
  return space.conflict_policy;
}

export async function recordConflict(
  db: Db,
  input: Pick<SyncConflict, 'tenant_id' | 'user_id' | 'device_id' | 'node_id' | 'space_id' | 'operation' | 'base_version_id' | 'server_version_id'> & {
    uploadId?: string | null;
    request?: Record<string, string | null>;
    autoResolved?: SyncResolution;
  },
): Promise<SyncConflict> {
  const { uploadId, request, autoResolved, ...row } = input;
  return db
    .insertInto('sync_conflicts')
    .values({
      ...row,
      id: newId('conflict'),
      upload_id: uploadId ?? null,
      request: JSON.stringify(request ?? {}),
      ...(autoResolved ? { status: 'resolved' as const, resolution: autoResolved, auto_resolved: true, resolved_at: new Date() } : {}),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** The 409 a conflicting write gets, naming the recorded conflict when there is one. */
export function versionConflict(detail: string, details: Record<string, unknown>, recorded: SyncConflict | null): AppError {
  return conflict(detail, 'VERSION_CONFLICT', { ...details, ...(recorded ? { conflict_id: recorded.id, upload_id: recorded.upload_id } : {}) });
}

function isVersionConflict(error: unknown): error is AppError {
  return error instanceof AppError && error.code === 'VERSION_CONFLICT';
}

/**
 * Rename and/or move a node; with `baseVersionId`, only if the file's current version is still that one (checked
 * under its row lock by updateNode) — on a mismatch the conflict is recorded for the device and the 409 names it.
 */
export async function updateNodeWithBase(db: Db, principal: Principal, target: NodeTarget, changes: { name?: string; parentId?: string; baseVersionId?: string }, deviceId?: string) {
  const device = changes.baseVersionId === undefined ? null : await deviceForWrite(db, principal, deviceId);
  try {
    return await updateNode(db, principal, target, changes);
  } catch (error) {
    if (!isVersionConflict(error) || !device) throw error;
    throw await withRecord(db, principal, device, target, error, changes.parentId !== undefined ? 'move' : 'rename', { name: changes.name ?? null, parent_id: changes.parentId ?? null });
  }
}

/** Moves a node to the trash; with `baseVersionId`, only if the file's current version is still that one. */
export async function trashNodeWithBase(db: Db, principal: Principal, target: NodeTarget, baseVersionId: string | undefined, deviceId?: string): Promise<void> {
  const device = baseVersionId === undefined ? null : await deviceForWrite(db, principal, deviceId);
  try {
    await trashNode(db, principal, target, { baseVersionId });
  } catch (error) {
    if (!isVersionConflict(error) || !device) throw error;
    throw await withRecord(db, principal, device, target, error, 'delete', {});
  }
}

async function withRecord(db: Db, principal: Principal, device: SyncDevice, target: NodeTarget, error: AppError, operation: 'rename' | 'move' | 'delete', request: Record<string, string | null>): Promise<AppError> {
  const { node, space } = await accessNode(db, principal, target.id, 'read');
  const recorded = await recordConflict(db, {
    tenant_id: principal.tenantId,
    user_id: device.user_id,
    device_id: device.id,
    node_id: node.id,
    space_id: space.id,
    operation,
    base_version_id: String(error.details?.base_version_id ?? ''),
    server_version_id: node.current_version_id,
    request,
  });
  return versionConflict(error.message, error.details ?? {}, recorded);
}

export async function listConflicts(db: Db, principal: Principal, options: { deviceId?: string; includeResolved: boolean; limit: number; after?: string }): Promise<SyncConflict[]> {
  if (principal.kind !== 'user') return [];
  let query = db.selectFrom('sync_conflicts').selectAll().where('tenant_id', '=', principal.tenantId).where('user_id', '=', principal.userId).orderBy('id').limit(options.limit + 1);
  if (options.deviceId) query = query.where('device_id', '=', options.deviceId);
  if (!options.includeResolved) query = query.where('status', '=', 'open');
  if (options.after) query = query.where('id', '>', options.after);
  return query.execute();
}

/** An open conflict that holds this upload session back (finalize waits for its resolution). */
export async function openConflictOfUpload(db: Db, uploadId: string): Promise<SyncConflict | undefined> {
  return db.selectFrom('sync_conflicts').selectAll().where('upload_id', '=', uploadId).where('status', '=', 'open').executeTakeFirst();
}

export interface Resolved {
  conflict: SyncConflict;
  /** An upload session to finalize now (keep_client / keep_both of an upload conflict). */
  finalizeUploadId: string | null;
}

/**
 * Resolves an open conflict. The transition open → resolved is one conditional UPDATE, so of parallel resolutions
 * exactly one applies (the others get 409 CONFLICT_RESOLVED); when applying the client's write fails, the conflict
 * is opened again.
 */
export async function resolveConflict(db: Db, principal: Principal, conflictId: string, resolution: SyncResolution): Promise<Resolved> {
  if (principal.kind !== 'user' || !isId('conflict', conflictId)) throw notFound('Conflict');
  const found = await db.selectFrom('sync_conflicts').selectAll().where('id', '=', conflictId).where('tenant_id', '=', principal.tenantId).where('user_id', '=', principal.userId).executeTakeFirst();
  if (!found) throw notFound('Conflict');
  if (found.status !== 'open') throw conflict(`The conflict was already resolved (${found.resolution})`, 'CONFLICT_RESOLVED');
  if (resolution === 'keep_both' && found.operation !== 'upload') {
    throw conflict('keep_both applies to content conflicts; resolve a rename, move or delete with keep_server or keep_client', 'RESOLUTION_NOT_APPLICABLE');
  }
  const upload = found.upload_id ? await getOwnSession(db, principal, found.upload_id) : null;
  if (found.operation === 'upload' && resolution !== 'keep_server') {
    if (!upload) throw conflict("The client's content was not kept (a direct upload): upload it again with POST /uploads, or resolve keep_server", 'UPLOAD_REQUIRED');
    const { missing } = await missingChunks(db, upload);
    if (missing.length > 0) throw conflict(`Send the upload's remaining chunks first (${missing.length} missing)`, 'UPLOAD_INCOMPLETE', { upload_id: upload.id, missing_chunks: missing.slice(0, 100) });
  }

  const claimed = await db
    .updateTable('sync_conflicts')
    .set({ status: 'resolved', resolution, resolved_at: new Date() })
    .where('id', '=', found.id)
    .where('status', '=', 'open')
    .returningAll()
    .executeTakeFirst();
  if (!claimed) throw conflict('The conflict was resolved meanwhile', 'CONFLICT_RESOLVED');
  try {
    return { conflict: claimed, finalizeUploadId: await applyResolution(db, principal, claimed, resolution) };
  } catch (error) {
    await db.updateTable('sync_conflicts').set({ status: 'open', resolution: null, resolved_at: null }).where('id', '=', claimed.id).execute();
    throw error;
  }
}

async function applyResolution(db: Db, principal: Principal, resolved: SyncConflict, resolution: SyncResolution): Promise<string | null> {
  const target: NodeTarget = { id: resolved.node_id, kind: 'file' };
  if (resolved.operation === 'upload') {
    const uploadId = resolved.upload_id;
    if (resolution === 'keep_server') {
      if (uploadId) await abortUpload(db, principal, uploadId).catch((error: unknown) => (error instanceof AppError && error.status === 404 ? undefined : Promise.reject(error)));
      return null;
    }
    const session = await getOwnSession(db, principal, uploadId!);
    if (resolution === 'keep_client') {
      // On top of whatever is current now (a newer server version meanwhile is a new conflict at commit).
      const file = await db.selectFrom('nodes').select('current_version_id').where('id', '=', resolved.node_id).executeTakeFirst();
      await db.updateTable('upload_sessions').set({ base_version_id: file?.current_version_id ?? null }).where('id', '=', session.id).where('status', '=', 'open').execute();
    } else {
      const device = await db.selectFrom('sync_devices').select('name').where('id', '=', resolved.device_id).executeTakeFirst();
      const name = await freeConflictCopyName(db, session.parent_id, session.name, device?.name ?? 'device');
      await db.updateTable('upload_sessions').set({ name, base_version_id: null }).where('id', '=', session.id).where('status', '=', 'open').execute();
    }
    return session.id;
  }
  if (resolution === 'keep_server') return null;
  if (resolved.operation === 'delete') await trashNode(db, principal, target);
  else await updateNode(db, principal, target, { name: resolved.request.name ?? undefined, parentId: resolved.request.parent_id ?? undefined });
  return null;
}

/** Sets how a space treats upload conflicts (space managers only: owner/admin of a share, the owner of a personal space). */
export async function setConflictPolicy(db: Db, principal: Principal, spaceId: string, policy: ConflictPolicy): Promise<{ space_id: string; conflict_policy: ConflictPolicy }> {
  const space = await db.selectFrom('spaces').select(['id', 'root_folder_id']).where('id', '=', spaceId).where('tenant_id', '=', principal.tenantId).executeTakeFirst();
  if (!space) throw notFound('Space');
  await accessNode(db, principal, space.root_folder_id, 'manage');
  const updated = await db.updateTable('spaces').set({ conflict_policy: policy }).where('id', '=', space.id).returning(['id', 'conflict_policy']).executeTakeFirstOrThrow();
  return { space_id: updated.id, conflict_policy: updated.conflict_policy };
}

/**
 * A direct upload whose base matched when it started but not at its commit (another device committed meanwhile):
 * recorded like any upload conflict, without a kept upload (the body is gone; keep_client needs it sent again).
 */
export async function recordLateUploadConflict(db: Db, principal: Principal, deviceId: string, session: { space_id: string }, baseVersionId: string, error: AppError): Promise<AppError> {
  const device = await deviceForWrite(db, principal, deviceId);
  const baseFile = await db.selectFrom('versions').select('file_id').where('id', '=', baseVersionId).where('tenant_id', '=', principal.tenantId).executeTakeFirst();
  if (!device || !baseFile) return error;
  const current = await db.selectFrom('nodes').select('current_version_id').where('id', '=', baseFile.file_id).executeTakeFirst();
  const recorded = await recordConflict(db, {
    tenant_id: principal.tenantId,
    user_id: device.user_id,
    device_id: device.id,
    node_id: baseFile.file_id,
    space_id: session.space_id,
    operation: 'upload',
    base_version_id: baseVersionId,
    server_version_id: current?.current_version_id ?? null,
  });
  return versionConflict(error.message, error.details ?? {}, recorded);
}
