// Who may read or set a quota subject's usage and limit. A subject the caller may not see answers 404 whether
// or not it exists (no existence oracle); 403 only where the caller can see the subject but not do this.
import type { Db, QuotaLevel } from '../db/database';
import { forbidden, notFound } from '../errors';
import { roleInSpace } from './access.service';
import { isTenantAdmin, type Principal } from './principal';

const levelNames: Record<QuotaLevel, string> = { tenant: 'Tenant', partner: 'Partner', user: 'User', group: 'Group', share: 'Share' };

/**
 * Resolves when the caller may read (`forWrite` false) or set the subject's quota. Readers: tenant admins,
 * the user themself, a group's members, a share's owner. Writers: tenant admins; partner limits need a
 * partner (or platform) admin.
 */
export async function authorizeQuotaSubject(db: Db, principal: Principal, level: QuotaLevel, subjectId: string, forWrite: boolean): Promise<void> {
  const admin = isTenantAdmin(principal);
  const self = principal.kind === 'user' ? principal.userId : null;
  const hidden = () => notFound(levelNames[level]);
  switch (level) {
    case 'tenant':
      if (subjectId !== principal.tenantId || !admin) throw hidden();
      return;
    case 'partner': {
      const tenant = await db.selectFrom('tenants').select('partner_id').where('id', '=', principal.tenantId).executeTakeFirstOrThrow();
      if (!admin || !tenant.partner_id || tenant.partner_id !== subjectId) throw hidden();
      const partnerAdmin = principal.kind === 'user' && principal.roles.some((r) => r === 'partner_admin' || r === 'platform_admin');
      // A tenant admin sees its partner's usage; only partner admins change the partner's limit.
      if (forWrite && !partnerAdmin) throw forbidden('Partner quotas are set by partner admins');
      return;
    }
    case 'user': {
      if (!admin && self !== subjectId) throw hidden();
      const user = await db.selectFrom('users').select('id').where('id', '=', subjectId).where('tenant_id', '=', principal.tenantId).executeTakeFirst();
      if (!user) throw hidden();
      if (forWrite && !admin) throw forbidden("Only tenant admins can set users' quotas");
      return;
    }
    case 'group': {
      const group = await db.selectFrom('groups').select('id').where('id', '=', subjectId).where('tenant_id', '=', principal.tenantId).executeTakeFirst();
      if (!group) throw hidden();
      if (admin) return;
      const member = self && (await db.selectFrom('group_members').select('user_id').where('group_id', '=', subjectId).where('user_id', '=', self).executeTakeFirst());
      if (!member) throw hidden();
      if (forWrite) throw forbidden('Group quotas are set by tenant admins');
      return;
    }
    case 'share': {
      const share = await db.selectFrom('spaces').selectAll().where('id', '=', subjectId).where('tenant_id', '=', principal.tenantId).where('kind', '=', 'share').executeTakeFirst();
      if (!share) throw hidden();
      if (admin) return;
      // Members see the share exist (403); everyone else learns nothing (404).
      const role = await roleInSpace(db, principal, share);
      if (!role) throw hidden();
      if (forWrite || role !== 'owner') throw forbidden('Share quotas are for tenant admins and the share owner');
      return;
    }
  }
}

/** Recalculation recomputes the whole tenant's counters: tenant admins only. */
export function assertMayRecalculate(principal: Principal): void {
  if (!isTenantAdmin(principal)) throw forbidden('Recalculation is for tenant admins');
}
