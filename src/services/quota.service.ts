// Quotas (spec §7): who a version is charged to, atomic charge/refund at commit, usage, limits, recalculation.
import { sql, type Transaction } from 'kysely';
import type { Database, Db, QuotaCharge, QuotaLevel } from '../db/database';
import { AppError } from '../errors';

export class QuotaExceededError extends AppError {
  constructor(readonly level: QuotaLevel, readonly subjectId: string, limitBytes: number, usedBytes: number) {
    super(507, 'QUOTA_EXCEEDED', `Quota exceeded at the ${level} level`, { level, id: subjectId, limit_bytes: limitBytes, used_bytes: usedBytes });
  }
}

type Executor = Db | Transaction<Database>;

/**
 * The subjects a version in `spaceId` uploaded by `userId` is charged to, in the fixed order every commit
 * locks them (partner, tenant, share, groups, user), so concurrent commits never deadlock.
 */
export async function chargeSubjects(db: Executor, tenantId: string, userId: string, spaceId: string): Promise<QuotaCharge[]> {
  // One round trip (every commit asks): the tenant's partner, the space's kind, and the user's groups that
  // have a quota of their own (only those are charged).
  const row = await sql<{ partner_id: string | null; space_kind: string; group_ids: string[] }>`
    select t.partner_id, s.kind as space_kind,
      array(select gm.group_id from group_members gm
            join quotas q on q.subject_id = gm.group_id and q.level = 'group'
            where gm.user_id = ${userId} order by gm.group_id) as group_ids
    from tenants t, spaces s where t.id = ${tenantId} and s.id = ${spaceId}`.execute(db);
  const found = row.rows[0];
  if (!found) throw new Error(`chargeSubjects: tenant ${tenantId} or space ${spaceId} not found`);
  const subjects: QuotaCharge[] = [];
  if (found.partner_id) subjects.push({ level: 'partner', subject_id: found.partner_id });
  subjects.push({ level: 'tenant', subject_id: tenantId });
  if (found.space_kind === 'share') subjects.push({ level: 'share', subject_id: spaceId });
  for (const groupId of found.group_ids) subjects.push({ level: 'group', subject_id: groupId });
  subjects.push({ level: 'user', subject_id: userId });
  return subjects;
}

/** Creates missing quota rows (a user's with the tenant's default limit) in one statement. */
export async function ensureQuotaRows(trx: Executor, tenantId: string, subjects: QuotaCharge[]): Promise<void> {
  if (subjects.length === 0) return;
  const values = sql.join(subjects.map((s) => sql`(${s.level}, ${s.subject_id})`));
  await sql`insert into quotas (tenant_id, level, subject_id, limit_bytes)
    select t.id, v.level, v.subject_id, case when v.level = 'user' then (t.settings->>'default_user_quota_bytes')::bigint end
    from (values ${values}) as v(level, subject_id) cross join tenants t
    where t.id = ${tenantId}
    on conflict (level, subject_id) do nothing`.execute(trx);
}

/** Fails with 507 when `bytes` more would not fit at some level (the early check at session creation). */
export async function assertFits(db: Db, tenantId: string, subjects: QuotaCharge[], bytes: number): Promise<void> {
  await ensureQuotaRows(db, tenantId, subjects);
  for (const subject of subjects) {
    const row = await db.selectFrom('quotas').selectAll().where('level', '=', subject.level).where('subject_id', '=', subject.subject_id).executeTakeFirstOrThrow();
    if (row.limit_bytes !== null && row.used_bytes + bytes > row.limit_bytes) throw new QuotaExceededError(subject.level, subject.subject_id, row.limit_bytes, row.used_bytes);
  }
}

const levelRank = { partner: 0, tenant: 1, share: 2, group: 3, user: 4 } as const;

/** Subjects in the fixed lock order every quota writer uses (partner, tenant, share, groups, user), without duplicates. */
export function inLockOrder(subjects: QuotaCharge[]): QuotaCharge[] {
  const unique = new Map(subjects.map((s) => [`${s.level}:${s.subject_id}`, s]));
  return [...unique.values()].sort((a, b) => levelRank[a.level] - levelRank[b.level] || (a.subject_id < b.subject_id ? -1 : a.subject_id > b.subject_id ? 1 : 0));
}

/** The 507 naming the level that refused, with its current figures. */
export async function quotaExceeded(trx: Executor, subject: QuotaCharge): Promise<never> {
  const row = await trx.selectFrom('quotas').selectAll().where('level', '=', subject.level).where('subject_id', '=', subject.subject_id).executeTakeFirstOrThrow();
  throw new QuotaExceededError(subject.level, subject.subject_id, row.limit_bytes ?? 0, row.used_bytes);
}

/**
 * Adds `bytes` to one counter (`used_bytes` for a charge, `reserved_bytes` for an upload session's hold) of every
 * subject inside the caller's transaction, in lock order. Each UPDATE only succeeds while `used + reserved +
 * bytes <= limit` and holds the row lock until commit: parallel writers cannot both pass a limit only one fits.
 */
export async function addWithinLimits(trx: Transaction<Database>, tenantId: string, subjects: QuotaCharge[], bytes: number, counter: 'used_bytes' | 'reserved_bytes'): Promise<void> {
  await ensureQuotaRows(trx, tenantId, subjects);
  for (const subject of inLockOrder(subjects)) {
    const updated = await trx
      .updateTable('quotas')
      .set({ [counter]: sql`${sql.ref(counter)} + ${bytes}` })
      .where('level', '=', subject.level)
      .where('subject_id', '=', subject.subject_id)
      .where((eb) => eb.or([eb('limit_bytes', 'is', null), eb(sql`used_bytes + reserved_bytes + ${bytes}`, '<=', eb.ref('limit_bytes'))]))
      .returning('used_bytes')
      .executeTakeFirst();
    if (!updated) await quotaExceeded(trx, subject);
  }
}

/** Charges `bytes` to every subject (see addWithinLimits). */
export const charge = (trx: Transaction<Database>, tenantId: string, subjects: QuotaCharge[], bytes: number) => addWithinLimits(trx, tenantId, subjects, bytes, 'used_bytes');

export async function refund(trx: Transaction<Database>, subjects: QuotaCharge[], bytes: number): Promise<void> {
  for (const subject of subjects) {
    await trx
      .updateTable('quotas')
      .set({ used_bytes: sql`greatest(used_bytes - ${bytes}, 0)` })
      .where('level', '=', subject.level)
      .where('subject_id', '=', subject.subject_id)
      .execute();
  }
}

export async function usage(db: Db, tenantId: string, level: QuotaLevel, subjectId: string) {
  await ensureQuotaRows(db, tenantId, [{ level, subject_id: subjectId }]);
  const row = await db.selectFrom('quotas').selectAll().where('level', '=', level).where('subject_id', '=', subjectId).executeTakeFirstOrThrow();
  return { level, id: subjectId, used_bytes: row.used_bytes, limit_bytes: row.limit_bytes, calculated_at: row.calculated_at?.toISOString() ?? null };
}

export async function setLimit(db: Db, tenantId: string, level: QuotaLevel, subjectId: string, limitBytes: number | null): Promise<void> {
  await db
    .insertInto('quotas')
    .values({ tenant_id: tenantId, level, subject_id: subjectId, limit_bytes: limitBytes })
    .onConflict((oc) => oc.columns(['level', 'subject_id']).doUpdateSet({ limit_bytes: limitBytes }))
    .execute();
}

/** Recomputes every counter of the tenant (and its partner) from the versions actually stored. */
export async function recalculateTenant(db: Db, tenantId: string): Promise<{ subjects: number }> {
  return db.transaction().execute(async (trx) => {
    const tenant = await trx.selectFrom('tenants').select(['partner_id']).where('id', '=', tenantId).executeTakeFirstOrThrow();
    // A version records the subjects it was charged to, so each counter is the sum of those versions' sizes.
    const usedBytes = sql<number>`(select coalesce(sum(v.size), 0) from versions v
      where v.charged @> jsonb_build_array(jsonb_build_object('level', quotas.level, 'subject_id', quotas.subject_id)))`;
    const result = await trx
      .updateTable('quotas')
      .set({ used_bytes: usedBytes, calculated_at: sql`now()` })
      .where((eb) => eb.or([eb('tenant_id', '=', tenantId), ...(tenant.partner_id ? [eb.and([eb('level', '=', 'partner'), eb('subject_id', '=', tenant.partner_id)])] : [])]))
      .executeTakeFirst();
    return { subjects: Number(result.numUpdatedRows) };
  });
}
