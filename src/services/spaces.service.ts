// Spaces: every user's personal space (created on first use) with its root folder.
import { sql } from 'kysely';
import type { Db, Space } from '../db/database';
import { newId } from '../ids';
import type { Principal } from './principal';

export async function ensurePersonalSpace(db: Db, tenantId: string, userId: string): Promise<Space> {
  const existing = await db.selectFrom('spaces').selectAll().where('owner_user_id', '=', userId).where('kind', '=', 'personal').executeTakeFirst();
  if (existing) return existing;
  return db.transaction().execute(async (trx) => {
    const spaceId = newId('space');
    const rootId = newId('folder');
    const inserted = await trx
      .insertInto('spaces')
      .values({ id: spaceId, tenant_id: tenantId, kind: 'personal', name: 'Personal', owner_user_id: userId, root_folder_id: rootId })
      .onConflict((oc) => oc.column('owner_user_id').where(sql<boolean>`kind = 'personal'`).doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!inserted) {
      // A concurrent first request created it.
      return trx.selectFrom('spaces').selectAll().where('owner_user_id', '=', userId).where('kind', '=', 'personal').executeTakeFirstOrThrow();
    }
    await trx.insertInto('nodes').values({ id: rootId, tenant_id: tenantId, space_id: spaceId, parent_id: null, kind: 'folder', name: '', created_by: userId }).execute();
    return inserted;
  });
}

/** A query over the spaces `userId` can reach: owned ones, and shares granted to them or to one of their groups. */
export function reachableSpaces(db: Db, tenantId: string, userId: string) {
  return db
    .selectFrom('spaces')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where((eb) =>
      eb.or([
        eb('owner_user_id', '=', userId),
        eb(
          'id',
          'in',
          eb
            .selectFrom('share_members')
            .select('share_id')
            .where((m) =>
              m.or([
                m.and([m('principal_type', '=', 'user'), m('principal_id', '=', userId)]),
                m.and([m('principal_type', '=', 'group'), m('principal_id', 'in', m.selectFrom('group_members').select('group_id').where('user_id', '=', userId))]),
              ]),
            ),
        ),
      ]),
    );
}

/** The spaces a user can reach: their personal space first, then shares. */
export async function listSpaces(db: Db, tenantId: string, userId: string): Promise<Space[]> {
  await ensurePersonalSpace(db, tenantId, userId);
  return reachableSpaces(db, tenantId, userId).orderBy('kind').orderBy('id').execute();
}

/** The spaces a caller can reach: a user's own and shared ones; an API key reaches none of them itself. */
export async function spacesOf(db: Db, principal: Principal): Promise<Space[]> {
  return principal.kind === 'user' ? listSpaces(db, principal.tenantId, principal.userId) : [];
}

/** The caller's personal space (created on first use); API keys have none. */
export async function personalSpaceOf(db: Db, principal: Principal): Promise<Space | null> {
  return principal.kind === 'user' ? ensurePersonalSpace(db, principal.tenantId, principal.userId) : null;
}
