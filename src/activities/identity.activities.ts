// Activities applying identity-provider events (ScaiKey webhooks) to users; idempotent by event id.
import { sql } from 'kysely';
import type { Db } from '../db/database';
import { newId } from '../ids';

export interface IdentityEvent {
  id: string;
  type: 'user.deactivated' | 'user.activated' | 'user.deleted';
  tenantId: string;
  subject: string;
}

export interface IdentityEventResult {
  userId: string | null;
  isActive: boolean | null;
}

export function createIdentityActivities(deps: { db: Db }) {
  return {
    /** Sets the user's active flag. A user never seen before is created inactive so their first login is refused. */
    async applyIdentityEvent(event: IdentityEvent): Promise<IdentityEventResult> {
      const isActive = event.type === 'user.activated';
      return deps.db.transaction().execute(async (trx) => {
        const tenant = await trx.selectFrom('tenants').select('id').where('id', '=', event.tenantId).executeTakeFirst();
        if (!tenant) return { userId: null, isActive: null };
        await trx
          .insertInto('identity_events')
          .values({ id: event.id, tenant_id: event.tenantId, type: event.type, subject: event.subject })
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
        // Lock the event row: a redelivered event (even after Temporal forgot the workflow) is applied once,
        // so an old "activated" can never undo a newer "deactivated".
        const recorded = await trx.selectFrom('identity_events').select('applied_at').where('id', '=', event.id).forUpdate().executeTakeFirstOrThrow();
        if (recorded.applied_at) {
          const existing = await trx
            .selectFrom('users')
            .select(['id', 'is_active'])
            .where('tenant_id', '=', event.tenantId)
            .where('external_id', '=', event.subject)
            .executeTakeFirst();
          return { userId: existing?.id ?? null, isActive: existing?.is_active ?? null };
        }
        const user = await trx
          .insertInto('users')
          .values({ id: newId('user'), tenant_id: event.tenantId, external_id: event.subject, is_active: isActive, roles: [] })
          .onConflict((oc) => oc.columns(['tenant_id', 'external_id']).doUpdateSet({ is_active: isActive, updated_at: sql`now()` }))
          .returning(['id', 'is_active'])
          .executeTakeFirstOrThrow();
        await trx.updateTable('identity_events').set({ applied_at: sql`now()` }).where('id', '=', event.id).execute();
        return { userId: user.id, isActive: user.is_active };
      });
    },
  };
}

export type IdentityActivities = ReturnType<typeof createIdentityActivities>;
