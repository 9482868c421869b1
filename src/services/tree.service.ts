// The node tree: folders, names, listing, rename/move, trash (delete, restore, purge), locks.
import { sql, type Transaction } from 'kysely';
import type { Database, Db, Node, QuotaCharge } from '../db/database';
import { AppError, badRequest, conflict, forbidden, notFound } from '../errors';
import { newId } from '../ids';
import { appendChange } from './changelog.service';
import { accessNode, assertNotLockedByOther, type NodeAccess } from './access.service';
import type { Principal } from './principal';
import { isTenantAdmin } from './principal';
import { charge, refund } from './quota.service';

/** Why a name is not acceptable, or null when it is (spec §5: no `/`, NUL, `.`/`..`, ≤ 255 bytes). */
export function nameProblem(name: string): string | null {
  if (name.length === 0) return 'Name must not be empty';
  if (Buffer.byteLength(name, 'utf8') > 255) return 'Name must be at most 255 bytes';
  if (name === '.' || name === '..') return 'Name must not be "." or ".."';
  if (name.includes('/') || name.includes('\\')) return 'Name must not contain "/" or "\\"';
  if (/[\u0000-\u001f]/.test(name)) return 'Name must not contain control characters';
  if (name !== name.trim()) return 'Name must not start or end with whitespace';
  return null;
}

export function assertValidName(name: string): void {
  const problem = nameProblem(name);
  if (problem) throw badRequest(problem, 'INVALID_NAME');
}

export const userIdOf = (principal: Principal): string | null => (principal.kind === 'user' ? principal.userId : null);

/** Locks the folder row (serialising sibling changes) and checks it is a live folder. */
export async function lockLiveFolder(trx: Transaction<Database>, folderId: string): Promise<Node> {
  const folder = await trx.selectFrom('nodes').selectAll().where('id', '=', folderId).forUpdate().executeTakeFirst();
  if (!folder || folder.kind !== 'folder') throw notFound('Folder');
  if (folder.deleted_at) throw new AppError(410, 'IN_TRASH', 'Folder is in the trash');
  return folder;
}

export async function findLiveSibling(trx: Transaction<Database> | Db, parentId: string, name: string, exceptId?: string): Promise<Node | undefined> {
  let query = trx.selectFrom('nodes').selectAll().where('parent_id', '=', parentId).where(sql`lower(name)`, '=', name.toLowerCase()).where('deleted_at', 'is', null);
  if (exceptId) query = query.where('id', '!=', exceptId);
  return query.executeTakeFirst();
}

function nameTaken(name: string): AppError {
  return conflict(`An item named "${name}" already exists in this folder`, 'NAME_CONFLICT');
}

export async function createFolder(db: Db, principal: Principal, parentId: string, name: string): Promise<Node> {
  assertValidName(name);
  const { space } = await accessNode(db, principal, parentId, 'write', { kind: 'folder' });
  return db.transaction().execute(async (trx) => {
    const parent = await lockLiveFolder(trx, parentId);
    if (await findLiveSibling(trx, parent.id, name)) throw nameTaken(name);
    const folder = await trx
      .insertInto('nodes')
      .values({ id: newId('folder'), tenant_id: space.tenant_id, space_id: space.id, parent_id: parent.id, kind: 'folder', name, created_by: userIdOf(principal) })
      .returningAll()
      .executeTakeFirstOrThrow();
    await appendChange(trx, 'created', folder, { actorId: userIdOf(principal) });
    return folder;
  });
}

export interface ChildrenCursor {
  name: string;
  id: string;
}

export function isChildrenCursor(value: unknown): value is ChildrenCursor {
  return typeof value === 'object' && value !== null && typeof (value as ChildrenCursor).name === 'string' && typeof (value as ChildrenCursor).id === 'string';
}

/** Live children ordered by (lower(name), id): stable, and an index walk however large the folder. */
export async function listChildren(db: Db, folderId: string, limit: number, after?: ChildrenCursor): Promise<Node[]> {
  let query = db
    .selectFrom('nodes')
    .selectAll()
    .where('parent_id', '=', folderId)
    .where('deleted_at', 'is', null)
    .orderBy(sql`lower(name)`)
    .orderBy('id')
    .limit(limit + 1);
  if (after) query = query.where(sql`(lower(name), id)`, '>', sql`(${after.name}, ${after.id})`);
  return query.execute();
}

/** Rename and/or move a file or folder. Moving into its own subtree is refused. */
export async function updateNode(db: Db, principal: Principal, access: NodeAccess, changes: { name?: string; parentId?: string }): Promise<Node> {
  const { node } = access;
  if (!node.parent_id) throw forbidden('The root folder cannot be renamed or moved');
  if (changes.name !== undefined) assertValidName(changes.name);
  assertNotLockedByOther(node, principal);
  const targetParentId = changes.parentId ?? node.parent_id;
  const name = changes.name ?? node.name;
  let targetSpaceId = node.space_id;
  if (targetParentId !== node.parent_id) {
    const target = await accessNode(db, principal, targetParentId, 'write', { kind: 'folder' });
    targetSpaceId = target.space.id;
  }
  return db.transaction().execute(async (trx) => {
    const parent = await lockLiveFolder(trx, targetParentId);
    if (node.kind === 'folder' && targetParentId !== node.parent_id) {
      const cycle = await sql<{ id: string }>`
        with recursive ancestors(id, parent_id) as (
          select id, parent_id from nodes where id = ${parent.id}
          union all select n.id, n.parent_id from nodes n join ancestors a on n.id = a.parent_id)
        select id from ancestors where id = ${node.id}`.execute(trx);
      if (cycle.rows.length > 0) throw conflict('A folder cannot be moved into itself or its subfolders', 'INVALID_MOVE');
    }
    if (await findLiveSibling(trx, parent.id, name, node.id)) throw nameTaken(name);
    const updated = await trx
      .updateTable('nodes')
      .set({ name, parent_id: parent.id, updated_at: sql`now()` })
      .where('id', '=', node.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    if (targetSpaceId !== node.space_id) {
      await moveSpaceCharges(trx, node, targetSpaceId);
      await sql`with recursive subtree(id) as (select ${node.id}::text union all select n.id from nodes n join subtree s on n.parent_id = s.id)
        update nodes set space_id = ${targetSpaceId} where id in (select id from subtree)`.execute(trx);
      updated.space_id = targetSpaceId;
    }
    const actorId = userIdOf(principal);
    if (targetParentId !== node.parent_id) await appendChange(trx, 'moved', updated, { actorId });
    if (name !== node.name) await appendChange(trx, 'renamed', updated, { actorId });
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
  const versions = await sql<{ id: string; size: number; charged: QuotaCharge[] }>`
    with recursive subtree(id) as (select ${node.id}::text union all select n.id from nodes n join subtree s on n.parent_id = s.id)
    select v.id, v.size, v.charged from versions v where v.file_id in (select id from subtree)`.execute(trx);
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

/** Moves a node and its subtree to the trash. */
export async function trashNode(db: Db, principal: Principal, access: NodeAccess): Promise<void> {
  const { node } = access;
  if (!node.parent_id) throw forbidden('The root folder cannot be deleted');
  assertNotLockedByOther(node, principal);
  if (node.kind === 'folder') {
    // Deleting a folder writes to everything in it: a file someone else locked blocks it.
    const locked = await sql<Node>`with recursive subtree(id) as (select ${node.id}::text union all select n.id from nodes n join subtree s on n.parent_id = s.id where n.deleted_at is null)
      select * from nodes where id in (select id from subtree) and lock_expires_at > now() and lock_user_id is distinct from ${userIdOf(principal)} limit 1`.execute(db);
    if (locked.rows[0]) assertNotLockedByOther(locked.rows[0], principal);
  }
  await db.transaction().execute(async (trx) => {
    const deletedAt = new Date();
    await sql`with recursive subtree(id) as (select ${node.id}::text union all select n.id from nodes n join subtree s on n.parent_id = s.id where n.deleted_at is null)
      update nodes set deleted_at = ${deletedAt}, deleted_by = ${userIdOf(principal)}, trash_root = (id = ${node.id})
      where id in (select id from subtree) and deleted_at is null`.execute(trx);
    await appendChange(trx, 'deleted', node, { actorId: userIdOf(principal) });
  });
}

/**
 * Restores a trashed node (and what was deleted with it) to its original folder. When that name is taken
 * now: 409 NAME_CONFLICT, or with `onConflict: 'rename'` a free name "name (restored N)".
 * When the original folder is itself gone, the node comes back at the space root.
 */
export async function restoreNode(db: Db, principal: Principal, access: NodeAccess, onConflict: 'fail' | 'rename'): Promise<Node> {
  const { node, space } = access;
  if (!node.deleted_at || !node.trash_root) throw notFound('Trash item');
  return db.transaction().execute(async (trx) => {
    const original = await trx.selectFrom('nodes').select(['id', 'deleted_at']).where('id', '=', node.parent_id!).executeTakeFirst();
    const parentId = original && !original.deleted_at ? original.id : space.root_folder_id;
    const parent = await lockLiveFolder(trx, parentId);
    let name = node.name;
    for (let attempt = 1; await findLiveSibling(trx, parent.id, name); attempt++) {
      if (onConflict === 'fail') throw nameTaken(name);
      const dot = node.kind === 'file' ? node.name.lastIndexOf('.') : -1;
      name = dot > 0 ? `${node.name.slice(0, dot)} (restored ${attempt})${node.name.slice(dot)}` : `${node.name} (restored ${attempt})`;
    }
    // Rename/re-parent while still in the trash: the live-sibling unique index is checked per statement.
    await trx.updateTable('nodes').set({ name, parent_id: parent.id, updated_at: sql`now()` }).where('id', '=', node.id).execute();
    await sql`with recursive subtree(id) as (select ${node.id}::text union all select n.id from nodes n join subtree s on n.parent_id = s.id)
      update nodes set deleted_at = null, deleted_by = null, trash_root = false
      where id in (select id from subtree) and deleted_at = (select deleted_at from nodes where id = ${node.id})`.execute(trx);
    const restored = await trx.selectFrom('nodes').selectAll().where('id', '=', node.id).executeTakeFirstOrThrow();
    await appendChange(trx, 'restored', restored, { actorId: userIdOf(principal) });
    return restored;
  });
}

/** Deletes a trashed subtree for good: nodes and versions go, quotas are refunded; chunks are left to the sweep. */
export async function purgeNode(trx: Transaction<Database>, node: Node, actorId: string | null): Promise<number> {
  const subtree = await sql<{ id: string }>`with recursive subtree(id) as (select ${node.id}::text union all select n.id from nodes n join subtree s on n.parent_id = s.id)
    select id from subtree`.execute(trx);
  const ids = subtree.rows.map((r) => r.id);
  const versions = await trx.selectFrom('versions').select(['id', 'size', 'charged']).where('file_id', 'in', ids).execute();
  for (const version of versions) await refund(trx, version.charged as QuotaCharge[], version.size);
  await trx.deleteFrom('versions').where('file_id', 'in', ids).execute();
  // One statement: the parent_id references are checked at its end, when the whole subtree is gone.
  await trx.deleteFrom('nodes').where('id', 'in', ids).execute();
  await appendChange(trx, 'purged', node, { actorId });
  return versions.length;
}

export const lockDurationMs = 60 * 60 * 1000;

export async function lockFile(db: Db, principal: Principal, access: NodeAccess): Promise<Node> {
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
