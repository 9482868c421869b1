// Sync devices (spec §9): a user's registered sync clients and the cursor each one stored. The server never moves
// a device's cursor by itself; only `POST /sync/cursor` does (the client after consuming changes, or an operator
// unsticking a device).
import { sql, type Selectable } from 'kysely';
import type { Db, SyncDevicesTable } from '../db/database';
import { forbidden, notFound } from '../errors';
import { isId, newId } from '../ids';
import type { Principal } from './principal';

export type SyncDevice = Selectable<SyncDevicesTable>;

/** Devices one user may register (a runaway client creating one per start cannot grow the table forever). */
export const maxDevicesPerUser = 100;

function requireUserId(principal: Principal): string {
  if (principal.kind !== 'user') throw forbidden('Sync devices belong to a user (an API key acts for one with X-Act-As-User)');
  return principal.userId;
}

export async function registerDevice(db: Db, principal: Principal, input: { name: string; platform: string }): Promise<SyncDevice> {
  const userId = requireUserId(principal);
  // Under the user's row lock: parallel registrations are counted one after another and cannot pass the cap together.
  const inserted = await db.transaction().execute(async (trx) => {
    await trx.selectFrom('users').select('id').where('id', '=', userId).forUpdate().execute();
    const result = await sql<SyncDevice>`
      insert into sync_devices (id, tenant_id, user_id, name, platform)
      select ${newId('device')}, ${principal.tenantId}, ${userId}, ${input.name}, ${input.platform}
      where (select count(*) from sync_devices where tenant_id = ${principal.tenantId} and user_id = ${userId}) < ${maxDevicesPerUser}
      returning *`.execute(trx);
    return result.rows[0];
  });
  if (!inserted) throw forbidden(`A user can register at most ${maxDevicesPerUser} devices: revoke unused ones first`, 'DEVICE_LIMIT_REACHED');
  return inserted;
}

export async function listDevices(db: Db, principal: Principal): Promise<SyncDevice[]> {
  const userId = requireUserId(principal);
  return db.selectFrom('sync_devices').selectAll().where('tenant_id', '=', principal.tenantId).where('user_id', '=', userId).orderBy('created_at').orderBy('id').execute();
}

/** Revokes a device: its stored cursor goes with it (and its conflicts, which reference it). */
export async function revokeDevice(db: Db, principal: Principal, deviceId: string): Promise<void> {
  const userId = requireUserId(principal);
  if (!isId('device', deviceId)) throw notFound('Device');
  const deleted = await db.deleteFrom('sync_devices').where('id', '=', deviceId).where('tenant_id', '=', principal.tenantId).where('user_id', '=', userId).executeTakeFirst();
  if (Number(deleted.numDeletedRows) === 0) throw notFound('Device');
}

/** Stores a device's position (a cursor the feed handed out to this user; the router has verified it). */
export async function storeDeviceCursor(db: Db, principal: Principal, deviceId: string, cursor: string): Promise<SyncDevice> {
  const userId = requireUserId(principal);
  if (!isId('device', deviceId)) throw notFound('Device');
  const updated = await db
    .updateTable('sync_devices')
    .set({ cursor, cursor_updated_at: new Date() })
    .where('id', '=', deviceId)
    .where('tenant_id', '=', principal.tenantId)
    .where('user_id', '=', userId)
    .returningAll()
    .executeTakeFirst();
  if (!updated) throw notFound('Device');
  return updated;
}
