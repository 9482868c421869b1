// The audit trail of sharing actions (who granted what to whom, links, ownership), written in the
// transaction of the action it records.
import type { Transaction } from 'kysely';
import type { Database, Db } from '../db/database';

export interface AuditEntry {
  tenantId: string;
  actorId: string | null;
  /** e.g. share.created, member.added, member.role_changed, member.removed, share.transferred, link.created, link.revoked */
  action: string;
  targetType: 'share' | 'member' | 'invitation' | 'link' | 'node';
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
