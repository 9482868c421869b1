// The audit trail of sharing actions (who granted what to whom, links, ownership), written in the
// transaction of the action it records.
import type { Transaction } from 'kysely';
import type { Database, Db } from '../db/database';

export interface AuditEntry {
  tenantId: string;
  actorId: string | null;
  /** e.g. share.created, member.added, member.role_changed, member.removed, share.transferred, link.created, link.revoked */
  action: string;
  targetType: 'share' | 'member' | 'invitation' | 'link' | 'node' | 'api_key' | 'user';
  targetId: string;
  details?: Record<string, unknown>;
}

export async function recordAudit(db: Db | Transaction<Database>, entry: AuditEntry): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({
      tenant_id: entry.tenantId,
      actor_id: entry.actorId,
      action: entry.action,
      target_type: entry.targetType,
      target_id: entry.targetId,
      details: JSON.stringify(entry.details ?? {}),
    })
    .execute();
}

export interface AuditFilter {
  /** Keyset: entries with a smaller id than this (the previous page's last). */
  before?: number;
  limit: number;
  action?: string;
  actorId?: string;
  targetId?: string;
  since?: Date;
  until?: Date;
}

/** A tenant's audit entries, newest first. */
export async function listAuditEntries(db: Db, tenantId: string, filter: AuditFilter) {
  let select = db.selectFrom('audit_log').selectAll().where('tenant_id', '=', tenantId).orderBy('id', 'desc').limit(filter.limit);
  if (filter.before !== undefined) select = select.where('id', '<', filter.before);
  if (filter.action) select = select.where('action', '=', filter.action);
  if (filter.actorId) select = select.where('actor_id', '=', filter.actorId);
  if (filter.targetId) select = select.where('target_id', '=', filter.targetId);
  if (filter.since) select = select.where('at', '>=', filter.since);
  if (filter.until) select = select.where('at', '<', filter.until);
  return select.execute();
}
