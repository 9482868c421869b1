// JSON shape of an audit trail entry (sharing actions).
import type { Selectable } from 'kysely';
import type { AuditLogTable } from '../../db/database';
import { z } from '../openapi';
import { iso } from './time';

export const auditEntrySchema = z
  .object({ id: z.number().int(), actor_id: z.string().nullable(), action: z.string(), target_type: z.string(), target_id: z.string(), details: z.record(z.string(), z.unknown()), at: z.string() })
  .openapi('AuditEntry');

export const presentAuditEntry = (row: Selectable<AuditLogTable>) => ({
  id: row.id,
  actor_id: row.actor_id,
  action: row.action,
  target_type: row.target_type,
  target_id: row.target_id,
  details: row.details,
  at: iso(row.at),
});
