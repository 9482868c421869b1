// The node tree: folders, names, listing, rename/move, trash (delete, restore, purge), locks.
import { sql, type Transaction } from 'kysely';
import type { Database, Db, Node, QuotaCharge } from '../db/database';
import { AppError, badRequest, conflict, forbidden, gone, notFound } from '../errors';
import { newId } from '../ids';
import { appendChange, appendSubtree } from './changelog.service';
import { accessNode, assertNotLockedByOther, type NodeAccess } from './access.service';
import { nameProblem, normalizedName } from './names';
import type { Principal } from './principal';
import { isTenantAdmin } from './principal';
import { charge, refund } from './quota.service';
import { lockTree } from './tree-lock';
import { ancestry, maxTreeDepth, subtreeCte, subtreeIds } from './tree-walk';

export { nameProblem };

/** The name as stored (NFC), or 400 INVALID_NAME saying what is wrong with it. */
export function validName(name: string): string {
  const checked = normalizedName(name);
  if (checked.problem) throw badRequest(checked.problem, 'INVALID_NAME');
  return checked.name;
}

export function assertValidName(name: string): void {
  validName(name);
}

export const userIdOf = (principal: Principal): string | null => (principal.kind === 'user' ? principal.userId : null);

/** Locks the folder row (serialising sibling changes) and checks it is a live folder. */
export async function lockLiveFolder(trx: Transaction<Database>, folderId: string): Promise<Node> {
  const folder = await trx.selectFrom('nodes').selectAll().where('id', '=', folderId).forUpdate().executeTakeFirst();
  if (!folder || folder.kind !== 'folder') throw notFound('Folder');
  if (folder.deleted_at) throw new AppError(410, 'IN_TRASH', 'Folder is in the trash');
  return folder;
}

/**
 * Holds the folder row against moves, deletes and commits into it (FOR KEY SHARE, which only FOR UPDATE
 * conflicts with) and checks it is a live folder. Taken before any quota row: every transaction locks
 * upload session → folder → quota rows in that order, so none can deadlock another.
 */
export async function holdLiveFolder(trx: Transaction<Database>, folderId: string): Promise<void> {
  const folder = await trx.selectFrom('nodes').select(['kind', 'deleted_at']).where('id', '=', folderId).forKeyShare().executeTakeFirst();
  if (!folder || folder.kind !== 'folder') throw notFound('Folder');
  if (folder.deleted_at) throw new AppError(410, 'IN_TRASH', 'Folder is in the trash');
}

/**
 * The live sibling whose name equals `name` by the one comparison rule, the database's `node_name_key`
 * (NFC, lower-cased) — the same key the unique index and the listing order use.
 */
export async function findLiveSibling(trx: Transaction<Database> | Db, parentId: string, name: string, exceptId?: string): Promise<Node | undefined> {
  let query = trx.selectFrom('nodes').selectAll().where('parent_id', '=', parentId).where('name_key', '=', sql<string>`node_name_key(${name})`).where('deleted_at', 'is', null);
  if (exceptId) query = query.where('id', '!=', exceptId);
  return query.executeTakeFirst();
}

function nameTaken(name: string): AppError {
  return conflict(`An item named "${name}" already exists in this folder`, 'NAME_CONFLICT');
}

/** 409 when a folder at `parentDepth` could not take a subtree `height` levels tall within the walk bound. */
function assertDepthFits(parentDepth: number, height: number, code: string): void {
  if (parentDepth + 1 + height >= maxTreeDepth) throw conflict(`Folders can be nested at most ${maxTreeDepth - 1} levels deep`, code);
}

export async function createFolder(db: Db, principal: Principal, parentId: string, requestedName: string): Promise<Node> {
  const name = validName(requestedName);
  const { space } = await accessNode(db, principal, parentId, 'write', { kind: 'folder' });
  return db.transaction().execute(async (trx) => {
    // Shared tree lock: a trash of an ancestor either runs before (410 below) or after (and takes this folder along).
    await lockTree(trx, space.tenant_id, 'shared');
    const parent = await lockLiveFolder(trx, parentId);
    const where = await ancestry(trx, parent.id, parent.id);
    assertDepthFits(where.depth, 0, 'TREE_TOO_DEEP');
    if (await findLiveSibling(trx, parent.id, name)) throw nameTaken(name);
    const folder = await trx
      .insertInto('nodes')
      .values({ id: newId('folder'), tenant_id: space.tenant_id, space_id: parent.space_id, parent_id: parent.id, kind: 'folder', name, created_by: userIdOf(principal) })
      .returningAll()
      .executeTakeFirstOrThrow();
    await appendChange(trx, 'created', folder, { actorId: userIdOf(principal) });
    return folder;
  });
}

/** A children-listing cursor: the database's sort key of the last row (never recomputed here) and its id. */
export interface ChildrenCursor {
  key: string;
  id: string;
}

export function isChildrenCursor(value: unknown): value is ChildrenCursor {
  if (typeof value !== 'object' || value === null) return false;
  const { key, id } = value as ChildrenCursor;
  return typeof key === 'string' && key.length <= 1024 && typeof id === 'string' && id.length > 0 && id.length <= 64;
}

export const childrenCursorOf = (node: Node): ChildrenCursor => ({ key: node.name_key, id: node.id });

/** Live children ordered by (name_key, id): stable, and an index walk however large the folder. */
/** A node the caller names by id; its kind when the route says which (a folder route never touches a file). */
/**
 * A sync client's write made against `baseVersionId` (If-Match / base_version_id): checked under the node's row
 * lock, so a version committed meanwhile is a 409 VERSION_CONFLICT, never silently overwritten.
 */
function assertBaseVersion(node: Node, baseVersionId: string | undefined): void {
  if (baseVersionId === undefined || node.current_version_id === baseVersionId) return;
  throw conflict('The file changed since base_version_id: it is not the current version', 'VERSION_CONFLICT', {
    base_version_id: baseVersionId,
    current_version_id: node.current_version_id,
  });
}

export interface NodeTarget {
  id: string;
  kind?: Node['kind'];
}

/** A folder's live children for a caller who may read it (the listing below, after the access check). */
export async function listFolder(db: Db, principal: Principal, folderId: string, limit: number, after?: ChildrenCursor): Promise<Node[]> {
  await accessNode(db, principal, folderId, 'read', { kind: 'folder' });
  return listChildren(db, folderId, limit, after);
}

export async function listChildren(db: Db, folderId: string, limit: number, after?: ChildrenCursor): Promise<Node[]> {
  let query = db.selectFrom('nodes').selectAll().where('parent_id', '=', folderId).where('deleted_at', 'is', null).orderBy('name_key').orderBy('id').limit(limit + 1);
  if (after) query = query.where(sql`(name_key, id)`, '>', sql`(${after.key}, ${after.id})`);
  return query.execute();
}

/**
 * Rename and/or move a file or folder. Folder moves hold the tenant's tree lock exclusively, so the check
 * "the target is not inside the folder" and the move see the same tree: two crossing moves cannot both pass
 * (the second gets 409 INVALID_MOVE) and no cycle can ever form.
 */
export async function updateNode(db: Db, principal: Principal, target: NodeTarget, changes: { name?: string; parentId?: string; baseVersionId?: string }): Promise<Node> {
  const access = await accessNode(db, principal, target.id, 'write', { kind: target.kind });
  if (!access.node.parent_id) throw forbidden('The root folder cannot be renamed or moved');
  const requestedName = changes.name !== undefined ? validName(changes.name) : undefined;
  assertNotLockedByOther(access.node, principal);
  if (changes.parentId !== undefined && changes.parentId !== access.node.parent_id) {
    await accessNode(db, principal, changes.parentId, 'write', { kind: 'folder' });
  }
  const folderMove = access.node.kind === 'folder' && changes.parentId !== undefined;
  return db.transaction().execute(async (trx) => {
    await lockTree(trx, access.node.tenant_id, folderMove ? 'exclusive' : 'shared');
    // Parent before child, the order every sibling change locks in.
    const seen = await trx.selectFrom('nodes').select(['parent_id']).where('id', '=', access.node.id).executeTakeFirst();
    if (!seen?.parent_id) throw notFound(access.node.kind === 'folder' ? 'Folder' : 'File');
    const targetParentId = changes.parentId ?? seen.parent_id;
    const parent = await lockLiveFolder(trx, targetParentId);
    const node = await trx.selectFrom('nodes').selectAll().where('id', '=', access.node.id).forUpdate().executeTakeFirst();
    if (!node?.parent_id) throw notFound(access.node.kind === 'folder' ? 'Folder' : 'File');
    if (node.deleted_at) throw gone('The item is in the trash', 'IN_TRASH');
    assertNotLockedByOther(node, principal);
    assertBaseVersion(node, changes.baseVersionId);
    // A concurrent move of this file changed its folder between the two reads: a rename happens in the new one.
    if (changes.parentId === undefined && node.parent_id !== parent.id) await lockLiveFolder(trx, node.parent_id);
    const newParentId = changes.parentId ?? node.parent_id;
    const name = requestedName ?? node.name;
    const moved = newParentId !== node.parent_id;
    if (node.kind === 'folder' && moved) {
      const where = await ancestry(trx, newParentId, node.id);
      if (where.contains || where.unsound) throw conflict('A folder cannot be moved into itself or its subfolders', 'INVALID_MOVE');
      const height = await sql<{ height: number }>`${subtreeCte(node.id)} select coalesce(max(depth), 0)::int as height from subtree`.execute(trx);
      assertDepthFits(where.depth, height.rows[0]!.height, 'INVALID_MOVE');
    }
    if (await findLiveSibling(trx, newParentId, name, node.id)) throw nameTaken(name);
    const updated = await trx
      .updateTable('nodes')
      .set({ name, parent_id: newParentId, updated_at: sql`now()` })
      .where('id', '=', node.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    const targetSpaceId = moved ? parent.space_id : node.space_id;
    if (targetSpaceId !== node.space_id) {
      await moveSpaceCharges(trx, node, targetSpaceId);
      await sql`${subtreeCte(node.id)} update nodes set space_id = ${targetSpaceId} where id in ${subtreeIds}`.execute(trx);
      updated.space_id = targetSpaceId;
    }
    const actorId = userIdOf(principal);
    const fromSpaceId = targetSpaceId !== node.space_id ? node.space_id : null;
    if (moved) await appendChange(trx, 'moved', updated, { actorId, fromSpaceId, versionId: updated.current_version_id });
    if (fromSpaceId && node.kind === 'folder') await appendSubtree(trx, 'moved', node, { actorId, fromSpaceId });
    if (name !== node.name) await appendChange(trx, 'renamed', updated, { actorId, versionId: updated.current_version_id });
    return updated;
  });
}

/**
 * A subtree moving to another space takes its share-level quota along: the source share is refunded, the
 * target share charged atomically (507 when it does not fit), and each version's charge list follows.
 * User, group, tenant and partner charges do not change with a move.
 */
async function moveSpaceCharges(trx: Transaction<Database>, node: Node, targetSpaceId: string): Promise<void> {
  const target = await trx.selectFrom('spaces').select(['id', 'kind']).where('id', '=', targetSpaceId).executeTakeFirstOrThrow();
  const versions = await sql<{ id: string; size: number; charged: QuotaCharge[] }>`${subtreeCte(node.id)}
    select v.id, v.size, v.charged from versions v where v.file_id in ${subtreeIds}`.execute(trx);
  if (versions.rows.length === 0) return;
  const bySourceShare = new Map<string, number>();
  let total = 0;
  for (const version of versions.rows) {
    total += Number(version.size);
    for (const charge of version.charged) if (charge.level === 'share') bySourceShare.set(charge.subject_id, (bySourceShare.get(charge.subject_id) ?? 0) + Number(version.size));
  }
  for (const [shareId, bytes] of bySourceShare) await refund(trx, [{ level: 'share', subject_id: shareId }], bytes);
  if (target.kind === 'share') await charge(trx, node.tenant_id, [{ level: 'share', subject_id: target.id }], total);
  for (const version of versions.rows) {
    const charged = [...version.charged.filter((c) => c.level !== 'share'), ...(target.kind === 'share' ? [{ level: 'share' as const, subject_id: target.id }] : [])];
    await trx.updateTable('versions').set({ charged: JSON.stringify(charged) }).where('id', '=', version.id).execute();
  }
}

/**
 * Moves a node and its live subtree to the trash. The exclusive tree lock makes it atomic with creations:
 * a folder or file added under it either committed before (and is trashed with it) or comes after and gets
 * 410 IN_TRASH.
 */
export async function trashNode(db: Db, principal: Principal, target: NodeTarget, options: { onlyIfEmpty?: boolean; baseVersionId?: string } = {}): Promise<void> {
  const access = await accessNode(db, principal, target.id, 'write', { kind: target.kind });
  if (!access.node.parent_id) throw forbidden('The root folder cannot be deleted');
  assertNotLockedByOther(access.node, principal);
  const actorId = userIdOf(principal);
  await db.transaction().execute(async (trx) => {
    await lockTree(trx, access.node.tenant_id, 'exclusive');
    const node = await trx.selectFrom('nodes').selectAll().where('id', '=', access.node.id).forUpdate().executeTakeFirst();
    if (!node) throw notFound(access.node.kind === 'folder' ? 'Folder' : 'File');
    if (node.deleted_at) throw gone('The item is already in the trash', 'IN_TRASH');
    assertNotLockedByOther(node, principal);
    assertBaseVersion(node, options.baseVersionId);
    if (options.onlyIfEmpty && node.kind === 'folder') {
      // Under the exclusive tree lock nothing can be created in it meanwhile: "empty" holds until the commit.
      const child = await trx.selectFrom('nodes').select('id').where('parent_id', '=', node.id).where('deleted_at', 'is', null).limit(1).executeTakeFirst();
      if (child) throw conflict('The folder is not empty', 'FOLDER_NOT_EMPTY');
    }
    if (node.kind === 'folder') {
      // Deleting a folder writes to everything in it: a file someone else locked blocks it.
      const locked = await sql<Node>`${subtreeCte(node.id, { liveOnly: true })}
        select * from nodes where id in ${subtreeIds} and lock_expires_at > now() and lock_user_id is distinct from ${actorId} limit 1`.execute(trx);
      if (locked.rows[0]) assertNotLockedByOther(locked.rows[0], principal);
    }
    const deletedAt = new Date();
    await sql`${subtreeCte(node.id, { liveOnly: true })}
      update nodes set deleted_at = ${deletedAt}, deleted_by = ${actorId}, trash_root = (id = ${node.id})
      where id in ${subtreeIds} and deleted_at is null`.execute(trx);
    await appendChange(trx, 'deleted', node, { actorId });
  });
}

/**
 * Restores a trashed node (and what was deleted with it) to its original folder. When that name is taken
 * now: 409 NAME_CONFLICT, or with `onConflict: 'rename'` a free name "name (restored N)".
 * When the original folder is itself gone, the node comes back at the space root.
 * The trash row is re-checked under its row lock: of parallel restores and purges exactly one wins, the
 * others find it no longer in the trash (404).
 */
export async function restoreNode(db: Db, principal: Principal, nodeId: string, onConflict: 'fail' | 'rename'): Promise<Node> {
  const access = await accessNode(db, principal, nodeId, 'write', { trashed: 'allow' });
  const { space } = access;
  if (!access.node.deleted_at || !access.node.trash_root) throw notFound('Trash item');
  return db.transaction().execute(async (trx) => {
    // Shared: purges and trashes (exclusive) cannot run meanwhile, so the original folder stays as seen.
    await lockTree(trx, access.node.tenant_id, 'shared');
    const seen = await trx.selectFrom('nodes').select(['parent_id']).where('id', '=', access.node.id).executeTakeFirst();
    if (!seen) throw notFound('Trash item');
    const original = seen.parent_id ? await trx.selectFrom('nodes').select(['id', 'deleted_at']).where('id', '=', seen.parent_id).executeTakeFirst() : undefined;
    const parent = await lockLiveFolder(trx, original && !original.deleted_at ? original.id : space.root_folder_id);
    const node = await trx
      .selectFrom('nodes')
      .selectAll()
      .where('id', '=', access.node.id)
      .where('deleted_at', 'is not', null)
      .where('trash_root', '=', true)
      .forUpdate()
      .executeTakeFirst();
    if (!node) throw notFound('Trash item');
    let name = node.name;
    for (let attempt = 1; await findLiveSibling(trx, parent.id, name); attempt++) {
      if (onConflict === 'fail') throw nameTaken(name);
      const dot = node.kind === 'file' ? node.name.lastIndexOf('.') : -1;
      name = dot > 0 ? `${node.name.slice(0, dot)} (restored ${attempt})${node.name.slice(dot)}` : `${node.name} (restored ${attempt})`;
    }
    // Rename/re-parent while still in the trash: the live-sibling unique index is checked per statement.
    await trx.updateTable('nodes').set({ name, parent_id: parent.id, updated_at: sql`now()` }).where('id', '=', node.id).execute();
    await sql`${subtreeCte(node.id)}
      update nodes set deleted_at = null, deleted_by = null, trash_root = false
      where id in ${subtreeIds} and deleted_at = ${node.deleted_at}`.execute(trx);
    const restored = await trx.selectFrom('nodes').selectAll().where('id', '=', node.id).executeTakeFirstOrThrow();
    await appendChange(trx, 'restored', restored, { actorId: userIdOf(principal), versionId: restored.current_version_id });
    if (restored.kind === 'folder') await appendSubtree(trx, 'restored', restored, { actorId: userIdOf(principal) });
    return restored;
  });
}

/**
 * Purges a trash item for good (DELETE /trash/{id} and the trash-cleanup schedule): nodes and versions go,
 * quotas are refunded once; chunks are left to the sweep. Returns false when it is no longer in the trash
 * (a parallel purge or a restore won), which the API answers 404.
 */
export async function purgeTrashItem(db: Db, tenantId: string, nodeId: string, actorId: string | null): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    // Exclusive: no restore can take a node out of this subtree while it is being deleted.
    await lockTree(trx, tenantId, 'exclusive');
    const node = await trx
      .selectFrom('nodes')
      .selectAll()
      .where('id', '=', nodeId)
      .where('tenant_id', '=', tenantId)
      .where('deleted_at', 'is not', null)
      .where('trash_root', '=', true)
      .forUpdate()
      .executeTakeFirst();
    if (!node) return false;
    const subtree = await sql<{ id: string }>`${subtreeCte(node.id)} select id from ${subtreeIds} as ids`.execute(trx);
    const ids = subtree.rows.map((r) => r.id);
    const versions = await trx.selectFrom('versions').select(['id', 'size', 'charged']).where('file_id', 'in', ids).execute();
    for (const version of versions) await refund(trx, version.charged as QuotaCharge[], version.size);
    await trx.deleteFrom('versions').where('file_id', 'in', ids).execute();
    // One statement: the parent_id references are checked at its end, when the whole subtree is gone.
    await trx.deleteFrom('nodes').where('id', 'in', ids).execute();
    await appendChange(trx, 'purged', node, { actorId });
    return true;
  });
}

/** DELETE /trash/{id}: exactly one of parallel purges (or a purge and a restore) wins; the rest get 404. */
export async function purgeNode(db: Db, principal: Principal, nodeId: string): Promise<void> {
  const access = await accessNode(db, principal, nodeId, 'write', { trashed: 'allow' });
  if (!access.node.deleted_at || !access.node.trash_root) throw notFound('Trash item');
  if (!(await purgeTrashItem(db, access.node.tenant_id, access.node.id, userIdOf(principal)))) throw notFound('Trash item');
}

export const lockDurationMs = 60 * 60 * 1000;

export async function lockFile(db: Db, principal: Principal, fileId: string): Promise<Node> {
  const access = await accessNode(db, principal, fileId, 'write', { kind: 'file' });
  const userId = userIdOf(principal);
  if (!userId) throw forbidden('Only users can lock files');
  return db.transaction().execute(async (trx) => {
    const node = await trx.selectFrom('nodes').selectAll().where('id', '=', access.node.id).forUpdate().executeTakeFirstOrThrow();
    assertNotLockedByOther(node, principal);
    return trx
      .updateTable('nodes')
      .set({ lock_user_id: userId, locked_at: sql`now()`, lock_expires_at: new Date(Date.now() + lockDurationMs) })
      .where('id', '=', node.id)
      .returningAll()
      .executeTakeFirstOrThrow();
  });
}

/** Releases a lock: the holder, or a tenant admin with `force`. */
export async function unlockFile(db: Db, principal: Principal, access: NodeAccess, force: boolean): Promise<void> {
  const node = access.node;
  const heldByOther = node.lock_user_id && node.lock_expires_at && node.lock_expires_at.getTime() > Date.now() && node.lock_user_id !== userIdOf(principal);
  if (heldByOther && !(force && isTenantAdmin(principal))) {
    if (force) throw forbidden('Only tenant admins can force-unlock');
    assertNotLockedByOther(node, principal);
  }
  await db.updateTable('nodes').set({ lock_user_id: null, locked_at: null, lock_expires_at: null }).where('id', '=', node.id).execute();
}

/**
 * DELETE /files/{id}/lock. A tenant admin with `force` may clear a lock in any space of the tenant, without
 * access to the content (one UPDATE scoped to the tenant); anyone else goes through the access check.
 */
export async function releaseFileLock(db: Db, principal: Principal, fileId: string, force: boolean): Promise<void> {
  if (force && isTenantAdmin(principal)) {
    const cleared = await db
      .updateTable('nodes')
      .set({ lock_user_id: null, locked_at: null, lock_expires_at: null, updated_at: sql`now()` })
      .where('id', '=', fileId)
      .where('tenant_id', '=', principal.tenantId)
      .where('kind', '=', 'file')
      .returning('id')
      .executeTakeFirst();
    if (!cleared) throw notFound('File');
    return;
  }
  await unlockFile(db, principal, await accessNode(db, principal, fileId, 'write', { kind: 'file' }), force);
}
