// Tenant groups and their members (used by quotas and share grants).
import { sql } from 'kysely';
import type { Db } from '../db/database';
import { conflict, notFound } from '../errors';
import { newId } from '../ids';

const withMemberCount = (db: Db, tenantId: string) =>
  db
    .selectFrom('groups')
    .selectAll('groups')
    .select((eb) => eb.selectFrom('group_members').whereRef('group_members.group_id', '=', 'groups.id').select(eb.fn.countAll<number>().as('n')).as('member_count'))
    .where('groups.tenant_id', '=', tenantId);

export async function createGroup(db: Db, tenantId: string, name: string) {
  const existing = await db.selectFrom('groups').select('id').where('tenant_id', '=', tenantId).where(sql`lower(name)`, '=', name.toLowerCase()).executeTakeFirst();
  if (existing) throw conflict(`A group named "${name}" already exists`);
  return db.insertInto('groups').values({ id: newId('group'), tenant_id: tenantId, name }).returningAll().executeTakeFirstOrThrow();
}

export async function listGroups(db: Db, tenantId: string, limit: number, after?: string) {
  let query = withMemberCount(db, tenantId).orderBy('groups.id').limit(limit + 1);
  if (after) query = query.where('groups.id', '>', after);
  return query.execute();
}

export async function getGroup(db: Db, tenantId: string, groupId: string) {
  const group = await withMemberCount(db, tenantId).where('groups.id', '=', groupId).executeTakeFirst();
  if (!group) throw notFound('Group');
  return group;
}

export async function renameGroup(db: Db, tenantId: string, groupId: string, name: string) {
  await getGroup(db, tenantId, groupId);
  await db.updateTable('groups').set({ name }).where('id', '=', groupId).execute();
  return getGroup(db, tenantId, groupId);
}

export async function deleteGroup(db: Db, tenantId: string, groupId: string) {
  const result = await db.deleteFrom('groups').where('tenant_id', '=', tenantId).where('id', '=', groupId).executeTakeFirst();
  if (result.numDeletedRows === 0n) throw notFound('Group');
}

export async function addGroupMember(db: Db, tenantId: string, groupId: string, userId: string) {
  await getGroup(db, tenantId, groupId);
  const user = await db.selectFrom('users').select('id').where('tenant_id', '=', tenantId).where('id', '=', userId).executeTakeFirst();
  if (!user) throw notFound('User');
  const inserted = await db
    .insertInto('group_members')
    .values({ group_id: groupId, user_id: userId, tenant_id: tenantId })
    .onConflict((oc) => oc.columns(['group_id', 'user_id']).doNothing())
    .executeTakeFirst();
  if (inserted.numInsertedOrUpdatedRows === 0n) throw conflict('User is already a member of this group');
}

export async function removeGroupMember(db: Db, tenantId: string, groupId: string, userId: string) {
  const result = await db.deleteFrom('group_members').where('tenant_id', '=', tenantId).where('group_id', '=', groupId).where('user_id', '=', userId).executeTakeFirst();
  if (result.numDeletedRows === 0n) throw notFound('Group member');
}

export async function listGroupMembers(db: Db, tenantId: string, groupId: string) {
  await getGroup(db, tenantId, groupId);
  return db
    .selectFrom('group_members')
    .innerJoin('users', 'users.id', 'group_members.user_id')
    .selectAll('users')
    .where('group_members.tenant_id', '=', tenantId)
    .where('group_members.group_id', '=', groupId)
    .orderBy('users.id')
    .execute();
}
