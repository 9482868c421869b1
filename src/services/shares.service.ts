// Shares as spaces with members (users and groups) and roles; invitations by email. Every grant change
// appends `permissions_changed` to the change log and an audit row, in the same transaction.
import { createHash, randomBytes } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Database, Db, QuotaCharge, ShareMember, ShareRole, Space } from '../db/database';
import { conflict, forbidden, gone, notFound } from '../errors';
import { newId } from '../ids';
import { highestRole, roleAllows, roleInSpace, type Action, type SpaceRole } from './access.service';
import { recordAudit } from './audit.service';
import { appendChange } from './changelog.service';
import { isTenantAdmin, type Principal } from './principal';
import { refund } from './quota.service';
import { countHit, rateLimited } from './rate-counters';
import { reachableSpaces } from './spaces.service';

function userOf(principal: Principal): string {
  if (principal.kind !== 'user') throw forbidden('Shares need a user token');
  return principal.userId;
}

/** The share with the caller's role; 404 when they cannot see it, 403 when the role does not allow `action`. */
export async function accessShare(db: Db, principal: Principal, shareId: string, action: Action | 'owner'): Promise<{ share: Space; role: SpaceRole }> {
  const share = await db.selectFrom('spaces').selectAll().where('id', '=', shareId).where('tenant_id', '=', principal.tenantId).where('kind', '=', 'share').executeTakeFirst();
  if (!share) throw notFound('Share');
  const role = await roleInSpace(db, principal, share);
  if (!role) throw notFound('Share');
  if (action === 'owner' ? role !== 'owner' : !roleAllows(role, action)) {
    throw forbidden(action === 'owner' ? 'Only the share owner can do this' : `Your role (${role}) does not allow this`);
  }
  return { share, role };
}

async function permissionsChanged(trx: Transaction<Database>, share: Space, actorId: string | null): Promise<void> {
  const root = await trx.selectFrom('nodes').selectAll().where('id', '=', share.root_folder_id).executeTakeFirstOrThrow();
  await appendChange(trx, 'permissions_changed', root, { actorId });
}

export async function createShare(db: Db, principal: Principal, name: string): Promise<Space> {
  const userId = userOf(principal);
  return db.transaction().execute(async (trx) => {
    const shareId = newId('share');
    const rootId = newId('folder');
    const share = await trx
      .insertInto('spaces')
      .values({ id: shareId, tenant_id: principal.tenantId, kind: 'share', name, owner_user_id: userId, root_folder_id: rootId })
      .returningAll()
      .executeTakeFirstOrThrow();
    await trx.insertInto('nodes').values({ id: rootId, tenant_id: principal.tenantId, space_id: shareId, parent_id: null, kind: 'folder', name: '', created_by: userId }).execute();
    await trx
      .insertInto('share_members')
      .values({ id: newId('member'), tenant_id: principal.tenantId, share_id: shareId, principal_type: 'user', principal_id: userId, role: 'owner', created_by: userId })
      .execute();
    await recordAudit(trx, { tenantId: principal.tenantId, actorId: userId, action: 'share.created', targetType: 'share', targetId: shareId, details: { name } });
    return share;
  });
}

/** Shares the caller belongs to; with `all`, every share of the tenant (tenant admins only). */
export async function listShares(db: Db, principal: Principal, all: boolean): Promise<Space[]> {
  if (all) {
    if (!isTenantAdmin(principal)) throw forbidden('Listing all shares is for tenant admins');
    return db.selectFrom('spaces').selectAll().where('tenant_id', '=', principal.tenantId).where('kind', '=', 'share').orderBy('id').execute();
  }
  return reachableSpaces(db, principal.tenantId, userOf(principal)).where('kind', '=', 'share').orderBy('id').execute();
}

export async function renameShare(db: Db, principal: Principal, shareId: string, name: string): Promise<Space> {
  await accessShare(db, principal, shareId, 'manage');
  return db.updateTable('spaces').set({ name }).where('id', '=', shareId).returningAll().executeTakeFirstOrThrow();
}

/** Deletes the share and everything in it (owner only); the quota its versions used is refunded. */
export async function deleteShare(db: Db, principal: Principal, shareId: string): Promise<void> {
  const { share } = await accessShare(db, principal, shareId, 'owner');
  await db.transaction().execute(async (trx) => {
    // Re-checked under the share row lock: a transfer that committed since the check above wins.
    const owned = await trx.selectFrom('spaces').select('id').where('id', '=', share.id).where('owner_user_id', '=', userOf(principal)).forUpdate().executeTakeFirst();
    if (!owned) throw forbidden('Only the share owner can do this');
    const versions = await trx
      .selectFrom('versions')
      .innerJoin('nodes', 'nodes.id', 'versions.file_id')
      .select(['versions.size', 'versions.charged'])
      .where('nodes.space_id', '=', share.id)
      .execute();
    for (const version of versions) await refund(trx, version.charged as QuotaCharge[], version.size);
    await trx.deleteFrom('quotas').where('level', '=', 'share').where('subject_id', '=', share.id).execute();
    // Sync clients learn that the whole space went away from the deletion of its root.
    const root = await trx.selectFrom('nodes').selectAll().where('id', '=', share.root_folder_id).executeTakeFirstOrThrow();
    await appendChange(trx, 'deleted', root, { actorId: userOf(principal) });
    // Versions go with their nodes (cascade); chunk objects are left to the sweep.
    await sql`delete from nodes where space_id = ${share.id}`.execute(trx);
    await trx.deleteFrom('spaces').where('id', '=', share.id).execute();
    await recordAudit(trx, { tenantId: share.tenant_id, actorId: userOf(principal), action: 'share.deleted', targetType: 'share', targetId: share.id, details: { name: share.name } });
  });
}

/**
 * Hands the share to another user of the tenant (owner only); the previous owner stays as an admin.
 * The ownership change is one conditional UPDATE on the share row (`owner_user_id = caller`), so of parallel
 * transfers exactly one applies: the others wait for its row lock, find the caller no longer owner, and get 403.
 */
export async function transferShare(db: Db, principal: Principal, shareId: string, newOwnerId: string): Promise<Space> {
  const { share } = await accessShare(db, principal, shareId, 'owner');
  const actorId = userOf(principal);
  if (newOwnerId === actorId) throw conflict('That user already owns the share');
  const target = await db.selectFrom('users').select(['id', 'is_active']).where('id', '=', newOwnerId).where('tenant_id', '=', share.tenant_id).executeTakeFirst();
  if (!target) throw notFound('User');
  return db.transaction().execute(async (trx) => {
    const updated = await trx
      .updateTable('spaces')
      .set({ owner_user_id: newOwnerId })
      .where('id', '=', share.id)
      .where('kind', '=', 'share')
      .where('owner_user_id', '=', actorId)
      .returningAll()
      .executeTakeFirst();
    if (!updated) {
      // Another transfer (or a delete) got there first; the owner check above no longer holds.
      const still = await trx.selectFrom('spaces').select('id').where('id', '=', share.id).executeTakeFirst();
      if (!still) throw notFound('Share');
      throw forbidden('Only the share owner can do this');
    }
    // Under the share row lock: the previous owner becomes an admin, the new one the owner.
    await trx
      .updateTable('share_members')
      .set({ role: 'admin' })
      .where('share_id', '=', share.id)
      .where('principal_type', '=', 'user')
      .where('principal_id', '=', actorId)
      .where('role', '=', 'owner')
      .execute();
    await upsertMember(trx, share, 'user', newOwnerId, 'owner', actorId);
    await permissionsChanged(trx, share, actorId);
    await recordAudit(trx, { tenantId: share.tenant_id, actorId, action: 'share.transferred', targetType: 'share', targetId: share.id, details: { from: actorId, to: newOwnerId } });
    return updated;
  });
}

async function upsertMember(trx: Transaction<Database>, share: Space, type: 'user' | 'group', principalId: string, role: ShareRole, actorId: string | null) {
  return trx
    .insertInto('share_members')
    .values({ id: newId('member'), tenant_id: share.tenant_id, share_id: share.id, principal_type: type, principal_id: principalId, role, created_by: actorId })
    .onConflict((oc) => oc.columns(['share_id', 'principal_type', 'principal_id']).doUpdateSet({ role }))
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function listMembers(db: Db, principal: Principal, shareId: string): Promise<ShareMember[]> {
  await accessShare(db, principal, shareId, 'read');
  return db.selectFrom('share_members').selectAll().where('share_id', '=', shareId).orderBy('id').execute();
}

export type GrantableRole = Exclude<ShareRole, 'owner'>;

export async function addMember(db: Db, principal: Principal, shareId: string, input: { principalType: 'user' | 'group'; principalId: string; role: GrantableRole }): Promise<ShareMember> {
  const { share } = await accessShare(db, principal, shareId, 'manage');
  const table = input.principalType === 'user' ? 'users' : 'groups';
  const exists = await db.selectFrom(table).select('id').where('id', '=', input.principalId).where('tenant_id', '=', share.tenant_id).executeTakeFirst();
  if (!exists) throw notFound(input.principalType === 'user' ? 'User' : 'Group');
  const actorId = userOf(principal);
  return db.transaction().execute(async (trx) => {
    const member = await trx
      .insertInto('share_members')
      .values({ id: newId('member'), tenant_id: share.tenant_id, share_id: share.id, principal_type: input.principalType, principal_id: input.principalId, role: input.role, created_by: actorId })
      .onConflict((oc) => oc.columns(['share_id', 'principal_type', 'principal_id']).doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!member) throw conflict('That principal is already a member of this share', 'MEMBER_EXISTS');
    await permissionsChanged(trx, share, actorId);
    await recordAudit(trx, { tenantId: share.tenant_id, actorId, action: 'member.added', targetType: 'member', targetId: member.id, details: { share_id: share.id, principal_type: input.principalType, principal_id: input.principalId, role: input.role } });
    return member;
  });
}

async function loadMember(db: Db, shareId: string, memberId: string): Promise<ShareMember> {
  const member = await db.selectFrom('share_members').selectAll().where('id', '=', memberId).where('share_id', '=', shareId).executeTakeFirst();
  if (!member) throw notFound('Member');
  return member;
}

/** Why a conditional member change touched no row: the member is gone (404) or became the owner (403). Always throws. */
async function explainUnchangedMember(trx: Transaction<Database>, memberId: string, ownerMessage: string): Promise<never> {
  const current = await trx.selectFrom('share_members').select('role').where('id', '=', memberId).executeTakeFirst();
  if (!current) throw notFound('Member');
  throw forbidden(ownerMessage);
}

export async function changeMemberRole(db: Db, principal: Principal, shareId: string, memberId: string, role: GrantableRole): Promise<ShareMember> {
  const { share } = await accessShare(db, principal, shareId, 'manage');
  const member = await loadMember(db, shareId, memberId);
  if (member.role === 'owner') throw forbidden("The owner's role changes only by transferring ownership");
  const actorId = userOf(principal);
  return db.transaction().execute(async (trx) => {
    // Conditional: a member removed meanwhile is 404, one made owner by a transfer meanwhile keeps that role.
    const updated = await trx.updateTable('share_members').set({ role }).where('id', '=', member.id).where('role', '!=', 'owner').returningAll().executeTakeFirst();
    if (!updated) return explainUnchangedMember(trx, member.id, "The owner's role changes only by transferring ownership");
    await permissionsChanged(trx, share, actorId);
    await recordAudit(trx, { tenantId: share.tenant_id, actorId, action: 'member.role_changed', targetType: 'member', targetId: member.id, details: { share_id: share.id, from: member.role, to: role } });
    return updated;
  });
}

export async function removeMember(db: Db, principal: Principal, shareId: string, memberId: string): Promise<void> {
  const { share } = await accessShare(db, principal, shareId, 'manage');
  const member = await loadMember(db, shareId, memberId);
  if (member.role === 'owner') throw forbidden('The owner cannot be removed; transfer ownership first');
  const actorId = userOf(principal);
  await db.transaction().execute(async (trx) => {
    // Conditional, so a transfer to this member that committed meanwhile never loses its owner row.
    const removed = await trx.deleteFrom('share_members').where('id', '=', member.id).where('role', '!=', 'owner').executeTakeFirst();
    if (removed.numDeletedRows === 0n) await explainUnchangedMember(trx, member.id, 'The owner cannot be removed; transfer ownership first');
    await permissionsChanged(trx, share, actorId);
    await recordAudit(trx, { tenantId: share.tenant_id, actorId, action: 'member.removed', targetType: 'member', targetId: member.id, details: { share_id: share.id, principal_type: member.principal_type, principal_id: member.principal_id, role: member.role } });
  });
}

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

/** How many invitations one user may send: enough for onboarding a team, too few to spam an address. */
export const invitationRateLimit = { limit: 20, windowSeconds: 600 };

/**
 * Invites an address to the share. At most one pending invitation per share and address (a second one is
 * 409 INVITATION_PENDING naming the first: its token was shown once and is not stored, so it cannot be
 * handed out again), and at most `invitationRateLimit` invitations per inviter (429 RATE_LIMITED).
 */
export async function createInvitation(
  db: Db,
  principal: Principal,
  shareId: string,
  input: { email: string; role: GrantableRole; expiresInDays: number; acceptUrlBase: string },
) {
  const { share } = await accessShare(db, principal, shareId, 'manage');
  const actorId = userOf(principal);
  const email = input.email.toLowerCase();
  const token = randomBytes(32).toString('base64url');
  return db.transaction().execute(async (trx) => {
    // Counted inside the transaction: an invitation refused below (409) does not use up the budget.
    const retryAfter = await countHit(trx, { key: `invitation:${actorId}`, ...invitationRateLimit });
    if (retryAfter !== null) throw rateLimited(`At most ${invitationRateLimit.limit} invitations per ${invitationRateLimit.windowSeconds / 60} minutes; try again later`, retryAfter);
    // An expired invitation no longer holds the address's one pending slot.
    await trx
      .updateTable('invitations')
      .set({ status: 'expired' })
      .where('share_id', '=', share.id)
      .where('email', '=', email)
      .where('status', '=', 'pending')
      .where('expires_at', '<=', sql<Date>`now()`)
      .execute();
    // The partial unique index (share_id, email) where pending makes parallel duplicates insert nothing.
    const invitation = await trx
      .insertInto('invitations')
      .values({
        id: newId('invitation'),
        tenant_id: share.tenant_id,
        share_id: share.id,
        email,
        role: input.role,
        token_hash: hashToken(token),
        expires_at: new Date(Date.now() + input.expiresInDays * 86400 * 1000),
        created_by: actorId,
      })
      .onConflict((oc) => oc.columns(['share_id', 'email']).where('status', '=', 'pending').doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!invitation) {
      const pending = await trx.selectFrom('invitations').select(['id', 'expires_at']).where('share_id', '=', share.id).where('email', '=', email).where('status', '=', 'pending').executeTakeFirst();
      throw conflict('This address already has a pending invitation to this share', 'INVITATION_PENDING', {
        invitation_id: pending?.id ?? null,
        expires_at: pending?.expires_at.toISOString() ?? null,
      });
    }
    // The mail to send; delivery is a later activity. The token lives only here and in the response.
    await trx
      .insertInto('mail_outbox')
      .values({
        tenant_id: share.tenant_id,
        kind: 'share_invitation',
        recipient: invitation.email,
        subject: `You are invited to "${share.name}"`,
        body: `You were invited as ${input.role} to the share "${share.name}".\nAccept: ${input.acceptUrlBase}/${token}/accept\nThis invitation expires on ${invitation.expires_at.toISOString()}.`,
      })
      .execute();
    await recordAudit(trx, { tenantId: share.tenant_id, actorId, action: 'invitation.created', targetType: 'invitation', targetId: invitation.id, details: { share_id: share.id, email: invitation.email, role: input.role } });
    return { invitation, token };
  });
}

/** Accepts or declines by token: used → 409, expired → 410; accepting adds the caller as a member. */
export async function respondToInvitation(db: Db, principal: Principal, token: string, accept: boolean) {
  const userId = userOf(principal);
  return db.transaction().execute(async (trx) => {
    const invitation = await trx.selectFrom('invitations').selectAll().where('token_hash', '=', hashToken(token)).where('tenant_id', '=', principal.tenantId).forUpdate().executeTakeFirst();
    if (!invitation) throw notFound('Invitation');
    if (invitation.status === 'expired') throw gone('Invitation has expired', 'INVITATION_EXPIRED');
    if (invitation.status !== 'pending') throw conflict(`Invitation already ${invitation.status}`, 'INVITATION_USED');
    if (invitation.expires_at.getTime() <= Date.now()) throw gone('Invitation has expired', 'INVITATION_EXPIRED');
    // The token went to one address: only the user signed in with that address may use it.
    if (principal.kind !== 'user' || principal.email?.toLowerCase() !== invitation.email) {
      throw forbidden('This invitation was sent to another email address', 'INVITATION_EMAIL_MISMATCH');
    }
    const share = await trx.selectFrom('spaces').selectAll().where('id', '=', invitation.share_id).executeTakeFirstOrThrow();
    await trx
      .updateTable('invitations')
      .set({ status: accept ? 'accepted' : 'declined', responded_by: userId, responded_at: sql`now()` })
      .where('id', '=', invitation.id)
      .execute();
    let member: ShareMember | undefined;
    if (accept) {
      const existing = await trx.selectFrom('share_members').selectAll().where('share_id', '=', share.id).where('principal_type', '=', 'user').where('principal_id', '=', userId).executeTakeFirst();
      // Accepting never lowers a role the user already has.
      member =
        existing && highestRole([existing.role, invitation.role]) === existing.role ? existing : await upsertMember(trx, share, 'user', userId, invitation.role, userId);
      await permissionsChanged(trx, share, userId);
    }
    await recordAudit(trx, {
      tenantId: share.tenant_id,
      actorId: userId,
      action: accept ? 'invitation.accepted' : 'invitation.declined',
      targetType: 'invitation',
      targetId: invitation.id,
      details: { share_id: share.id, role: invitation.role },
    });
    return { invitation, share, member };
  });
}
