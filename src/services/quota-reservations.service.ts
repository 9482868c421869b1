// Quota reservations of upload sessions (spec §6): declared bytes are held against every quota subject
// while a session is open (`used + reserved + n <= limit`, one conditional UPDATE per subject), released
// once on abort or expiry, and turned into the real charge at commit.
import { sql, type Transaction } from 'kysely';
import type { Database, QuotaCharge } from '../db/database';
import { addWithinLimits, ensureQuotaRows, inLockOrder, quotaExceeded } from './quota.service';

/**
 * Holds `bytes` on every subject inside the caller's transaction, or fails with 507 naming the binding
 * level. The row locks are held until commit, so parallel reservations cannot both pass a limit.
 */
export const reserve = (trx: Transaction<Database>, tenantId: string, subjects: QuotaCharge[], bytes: number) => addWithinLimits(trx, tenantId, subjects, bytes, 'reserved_bytes');

/** Gives reserved bytes back. Callers release only after a conditional status change proved they own the release. */
export async function releaseReservations(trx: Transaction<Database>, releases: { subjects: QuotaCharge[]; bytes: number }[]): Promise<void> {
  const totals = new Map<string, { subject: QuotaCharge; bytes: number }>();
  for (const { subjects, bytes } of releases) {
    if (bytes <= 0) continue;
    for (const subject of subjects) {
      const key = `${subject.level}:${subject.subject_id}`;
      totals.set(key, { subject, bytes: (totals.get(key)?.bytes ?? 0) + bytes });
    }
  }
  for (const subject of inLockOrder([...totals.values()].map((t) => t.subject))) {
    const bytes = totals.get(`${subject.level}:${subject.subject_id}`)!.bytes;
    await trx
      .updateTable('quotas')
      .set({ reserved_bytes: sql`greatest(reserved_bytes - ${bytes}, 0)` })
      .where('level', '=', subject.level)
      .where('subject_id', '=', subject.subject_id)
      .execute();
  }
}

/**
 * The commit of a session: in one pass over the subjects in lock order, releases the session's own
 * reservation and charges `bytes`, each UPDATE conditional on `used + (reserved - own) + bytes <= limit`.
 * With no reservation this is the plain atomic charge.
 */
export async function chargeReserved(
  trx: Transaction<Database>,
  tenantId: string,
  reservation: { subjects: QuotaCharge[]; bytes: number },
  charged: QuotaCharge[],
  bytes: number,
): Promise<void> {
  await ensureQuotaRows(trx, tenantId, charged);
  const key = (s: QuotaCharge) => `${s.level}:${s.subject_id}`;
  const reservedOn = new Set(reservation.bytes > 0 ? reservation.subjects.map(key) : []);
  const chargedOn = new Set(charged.map(key));
  for (const subject of inLockOrder([...charged, ...(reservation.bytes > 0 ? reservation.subjects : [])])) {
    const own = reservedOn.has(key(subject)) ? reservation.bytes : 0;
    const add = chargedOn.has(key(subject)) ? bytes : 0;
    const remaining = sql<number>`greatest(reserved_bytes - ${own}, 0)`;
    let update = trx
      .updateTable('quotas')
      .set({ used_bytes: sql`used_bytes + ${add}`, reserved_bytes: remaining })
      .where('level', '=', subject.level)
      .where('subject_id', '=', subject.subject_id);
    // Releasing alone never fails; charging must fit beside everyone else's reservations.
    if (add > 0) update = update.where((eb) => eb.or([eb('limit_bytes', 'is', null), eb(sql`used_bytes + ${add} + ${remaining}`, '<=', eb.ref('limit_bytes'))]));
    const updated = await update.returning('used_bytes').executeTakeFirst();
    if (!updated) await quotaExceeded(trx, subject);
  }
}
