// Invitations through HTTP (spec §3, §8): invite by email (token, mail in the outbox), validation, accept
// and decline by the invited address only, used → 409, expired → 410, other tenants → 404, who may invite,
// and the token never being written to the audit trail.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { V1, assertError, assertValidation, createShare, memberWithRole, uniq, user, type Share, type ShareUser } from './share-helpers';

describe('invitations', () => {
  let stack: TestStack;
  let tenantId: string;
  let otherTenantId: string;
  let owner: ShareUser;
  let share: Share;

  before(async () => {
    stack = await startTestStack();
    tenantId = (await createTestTenant(stack)).id;
    otherTenantId = (await createTestTenant(stack)).id;
    owner = await user(stack, tenantId, 'inv-owner');
    share = await createShare(stack, owner, 'Invitation share');
  });
  after(() => stack.close());

  const invite = (body: Record<string, unknown>, who: ShareUser = owner, shareId = share.id) => api(stack.baseUrl, 'POST', `${V1}/shares/${shareId}/invitations`, { token: who.token, body });
  const respond = (token: string, action: 'accept' | 'decline', who: ShareUser) => api(stack.baseUrl, 'POST', `${V1}/invitations/${token}/${action}`, { token: who.token });
  const outbox = (email: string) => stack.services.db.selectFrom('mail_outbox').selectAll().where('tenant_id', '=', tenantId).where('recipient', '=', email).execute();
  const newEmail = () => `${uniq('guest')}@example.test`;

  /** An invitation for a fresh address, and the user signed in with that address. */
  async function invited(role = 'contributor') {
    const email = newEmail();
    const res = await invite({ email, role });
    assert.equal(res.status, 201, res.text);
    const invitee = await user(stack, tenantId, uniq('invitee'), { email });
    return { email, invitation: res.body, invitee };
  }

  test('POST /shares/{id}/invitations → 201 with a token; one mail in the outbox carries the accept link', async () => {
    const email = newEmail();
    const res = await invite({ email, role: 'reader', expires_in_days: 3 });
    assert.equal(res.status, 201, res.text);
    assert.match(res.body.id, /^[a-z]+_[0-9A-Z]{26}$/);
    assert.equal(res.body.share_id, share.id);
    assert.equal(res.body.email, email);
    assert.equal(res.body.role, 'reader');
    assert.equal(res.body.status, 'pending');
    assert.equal(typeof res.body.token, 'string');
    assert.ok(res.body.token.length >= 20, 'an unguessable token');
    const expiresIn = Date.parse(res.body.expires_at) - Date.now();
    assert.ok(Math.abs(expiresIn - 3 * 86_400_000) < 60_000, `expires in 3 days: ${res.body.expires_at}`);
    const acceptUrl = `${stack.config.publicUrl}/api/v1/invitations/${res.body.token}/accept`;
    assert.equal(res.body.accept_url, acceptUrl);

    const mails = await outbox(email);
    assert.equal(mails.length, 1, JSON.stringify(mails));
    assert.equal(mails[0]!.kind, 'share_invitation');
    assert.ok(mails[0]!.body.includes(acceptUrl), mails[0]!.body);
    assert.ok(mails[0]!.subject.includes(share.name));
    assert.equal(mails[0]!.sent_at, null);

    // Only the hash is stored with the invitation.
    const row = await stack.services.db.selectFrom('invitations').selectAll().where('id', '=', res.body.id).executeTakeFirstOrThrow();
    assert.notEqual(row.token_hash, res.body.token);
    assert.ok(!JSON.stringify(row).includes(res.body.token));

    // The default lifetime is 7 days.
    const defaulted = await invite({ email: newEmail(), role: 'reader' });
    assert.equal(defaulted.status, 201, defaulted.text);
    assert.ok(Math.abs(Date.parse(defaulted.body.expires_at) - Date.now() - 7 * 86_400_000) < 60_000);
    // Two invitations never share a token.
    assert.notEqual(defaulted.body.token, res.body.token);
  });

  test('validation: expires_in_days 1–365, a real email, a grantable role', async () => {
    const email = newEmail();
    assertValidation(await invite({ email, role: 'reader', expires_in_days: 0 }), ['body', 'expires_in_days'], 'greater_than_equal');
    assertValidation(await invite({ email, role: 'reader', expires_in_days: 366 }), ['body', 'expires_in_days'], 'less_than_equal');
    assertValidation(await invite({ email, role: 'reader', expires_in_days: 1.5 }), ['body', 'expires_in_days'], 'int_type');
    assertValidation(await invite({ email, role: 'reader', expires_in_days: '7' }), ['body', 'expires_in_days'], 'int_type');
    for (const bad of ['not-an-email', 'a@', '@example.test', '', 'two words@example.test']) {
      assertValidation(await invite({ email: bad, role: 'reader' }), ['body', 'email'], undefined, bad);
    }
    assertValidation(await invite({ role: 'reader' }), ['body', 'email'], 'missing');
    assertValidation(await invite({ email, role: 'owner' }), ['body', 'role'], 'enum');
    assertValidation(await invite({ email, role: 'superuser' }), ['body', 'role'], 'enum');
    assert.equal((await outbox(email)).length, 0, 'refused invitations send no mail');
    for (const days of [1, 365]) assert.equal((await invite({ email: newEmail(), role: 'reader', expires_in_days: days })).status, 201, `${days} days`);
  });

  test("an absent enum field (role, principal_type) is reported as type 'missing', not 'enum'", async () => {
    // Seed 003: `missing` = required field absent; `enum` = value not in the allowed enum.
    const email = newEmail();
    const res = await invite({ email });
    assertValidation(res, ['body', 'role'], 'missing');
    assert.equal(res.body.detail.find((d: any) => d.loc[1] === 'role').msg, 'Field required');
    const members = (body: Record<string, unknown>) => api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/members`, { token: owner.token, body });
    assertValidation(await members({ principal_type: 'user', principal_id: owner.userId }), ['body', 'role'], 'missing');
    assertValidation(await members({ principal_id: owner.userId, role: 'reader' }), ['body', 'principal_type'], 'missing');
    assertValidation(await api(stack.baseUrl, 'PATCH', `${V1}/shares/${share.id}/members/mem_01ARZ3NDEKTSV4RRFFQ69G5FAV`, { token: owner.token, body: {} }), ['body', 'role'], 'missing');
  });

  test('the invited user accepts (200) and becomes a member with that role; again → 409 INVITATION_USED', async () => {
    const { invitation, invitee } = await invited('contributor');
    assertError(await api(stack.baseUrl, 'GET', `${V1}/shares/${share.id}`, { token: invitee.token }), 404);

    const accepted = await respond(invitation.token, 'accept', invitee);
    assert.equal(accepted.status, 200, accepted.text);
    assert.equal(accepted.body.share_id, share.id);
    assert.equal(accepted.body.status, 'accepted');
    assert.equal(accepted.body.member.principal_type, 'user');
    assert.equal(accepted.body.member.principal_id, invitee.userId);
    assert.equal(accepted.body.member.role, 'contributor');

    const perm = await api(stack.baseUrl, 'GET', `${V1}/shares/${share.id}/my-permission`, { token: invitee.token });
    assert.equal(perm.status, 200);
    assert.equal(perm.body.role, 'contributor');
    const members = await api(stack.baseUrl, 'GET', `${V1}/shares/${share.id}/members`, { token: owner.token });
    assert.ok(members.body.items.some((m: any) => m.principal_id === invitee.userId && m.role === 'contributor'));
    // The grant is a permission change like any other.
    const changes = await stack.services.db.selectFrom('change_log').selectAll().where('node_id', '=', share.root_folder_id).where('type', '=', 'permissions_changed').where('actor_id', '=', invitee.userId).execute();
    assert.equal(changes.length, 1);
    const row = await stack.services.db.selectFrom('invitations').selectAll().where('id', '=', invitation.id).executeTakeFirstOrThrow();
    assert.equal(row.status, 'accepted');
    assert.equal(row.responded_by, invitee.userId);

    assertError(await respond(invitation.token, 'accept', invitee), 409, 'INVITATION_USED');
    assertError(await respond(invitation.token, 'decline', invitee), 409, 'INVITATION_USED');
    assert.equal((await api(stack.baseUrl, 'GET', `${V1}/shares/${share.id}/my-permission`, { token: invitee.token })).body.role, 'contributor');
  });

  test('parallel accepts of one invitation: exactly one 200, the others 409 INVITATION_USED', async () => {
    const { invitation, invitee } = await invited('reader');
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => respond(invitation.token, i % 2 ? 'accept' : 'decline', invitee)));
    const ok = results.filter((r) => r.status === 200);
    assert.equal(ok.length, 1, JSON.stringify(results.map((r) => [r.status, r.body?.code])));
    for (const r of results.filter((x) => x.status !== 200)) assertError(r, 409, 'INVITATION_USED');
    const responses = await stack.services.db.selectFrom('audit_log').select('action').where('target_id', '=', invitation.id).where('action', 'in', ['invitation.accepted', 'invitation.declined']).execute();
    assert.equal(responses.length, 1);
  });

  test('decline (200) adds no member; a declined invitation is used (409 on accept and decline)', async () => {
    const { invitation, invitee } = await invited('admin');
    const declined = await respond(invitation.token, 'decline', invitee);
    assert.equal(declined.status, 200, declined.text);
    assert.equal(declined.body.status, 'declined');
    assert.equal(declined.body.member, null);
    assertError(await api(stack.baseUrl, 'GET', `${V1}/shares/${share.id}/my-permission`, { token: invitee.token }), 404);
    assertError(await respond(invitation.token, 'accept', invitee), 409, 'INVITATION_USED');
    assertError(await respond(invitation.token, 'decline', invitee), 409, 'INVITATION_USED');
    assertError(await api(stack.baseUrl, 'GET', `${V1}/shares/${share.id}`, { token: invitee.token }), 404);
  });

  test('an expired invitation → 410 INVITATION_EXPIRED (accept and decline), and adds no member', async () => {
    const { invitation, invitee } = await invited('reader');
    await stack.services.db.updateTable('invitations').set({ expires_at: new Date(Date.now() - 1000) }).where('id', '=', invitation.id).execute();
    assertError(await respond(invitation.token, 'accept', invitee), 410, 'INVITATION_EXPIRED');
    assertError(await respond(invitation.token, 'decline', invitee), 410, 'INVITATION_EXPIRED');
    assertError(await api(stack.baseUrl, 'GET', `${V1}/shares/${share.id}/my-permission`, { token: invitee.token }), 404);
    const row = await stack.services.db.selectFrom('invitations').selectAll().where('id', '=', invitation.id).executeTakeFirstOrThrow();
    assert.equal(row.status, 'pending');
  });

  test('only the invited address may respond: another email → 403; the address compares case-insensitively', async () => {
    const { invitation, invitee } = await invited('reader');
    const stranger = await user(stack, tenantId, uniq('stranger'));
    assertError(await respond(invitation.token, 'accept', stranger), 403);
    assertError(await respond(invitation.token, 'decline', stranger), 403);
    assertError(await api(stack.baseUrl, 'GET', `${V1}/shares/${share.id}/my-permission`, { token: stranger.token }), 404);
    // The invitation is still usable by its addressee.
    const upper = await user(stack, tenantId, invitee.subject, { email: invitee.email.toUpperCase() });
    assert.equal((await respond(invitation.token, 'accept', upper)).status, 200);

    // Invited with capitals, signed in with lower case.
    const email = `${uniq('Mixed')}@Example.Test`;
    const res = await invite({ email, role: 'reader' });
    assert.equal(res.status, 201, res.text);
    assert.equal((await outbox(email.toLowerCase())).length, 1);
    const lower = await user(stack, tenantId, uniq('lower'), { email: email.toLowerCase() });
    assert.equal((await respond(res.body.token, 'accept', lower)).status, 200);
  });

  test("another tenant's user → 404; an unknown token → 404", async () => {
    const { email, invitation, invitee } = await invited('reader');
    // Even with the very same address.
    const foreign = await user(stack, otherTenantId, uniq('foreign'), { email });
    for (const action of ['accept', 'decline'] as const) {
      const res = await respond(invitation.token, action, foreign);
      assertError(res, 404, 'NOT_FOUND');
      assert.ok(!res.text.includes(share.name) && !res.text.includes(share.id));
    }
    for (const token of ['x'.repeat(43), `${invitation.token.slice(0, -2)}zz`, 'does-not-exist-at-all']) {
      assertError(await respond(token, 'accept', invitee), 404, 'NOT_FOUND', token);
      assertError(await respond(token, 'decline', invitee), 404, 'NOT_FOUND', token);
    }
    assert.equal((await respond(invitation.token, 'accept', invitee)).status, 200);
    assert.equal((await api(stack.baseUrl, 'POST', `${V1}/invitations/${invitation.token}/accept`)).status, 401);
  });

  test('who may invite: owner and admin; contributor and reader → 403; a non-member → 404', async () => {
    const shareAdmin = (await memberWithRole(stack, tenantId, owner, share.id, 'admin')).user;
    const contributor = (await memberWithRole(stack, tenantId, owner, share.id, 'contributor')).user;
    const reader = (await memberWithRole(stack, tenantId, owner, share.id, 'reader')).user;
    const outsider = await user(stack, tenantId, uniq('outsider'));
    assert.equal((await invite({ email: newEmail(), role: 'admin' }, shareAdmin)).status, 201);
    for (const who of [contributor, reader]) {
      const email = newEmail();
      assertError(await invite({ email, role: 'reader' }, who), 403, undefined, who.subject);
      assert.equal((await outbox(email)).length, 0);
    }
    assertError(await invite({ email: newEmail(), role: 'reader' }, outsider), 404);
    assertError(await invite({ email: newEmail(), role: 'reader' }, owner, 'shr_01ARZ3NDEKTSV4RRFFQ69G5FAV'), 404);
  });

  test('accepting never lowers a role the user already has', async () => {
    const { user: member } = await memberWithRole(stack, tenantId, owner, share.id, 'admin');
    const res = await invite({ email: member.email, role: 'reader' });
    assert.equal(res.status, 201);
    const accepted = await respond(res.body.token, 'accept', member);
    assert.equal(accepted.status, 200, accepted.text);
    assert.equal(accepted.body.member.role, 'admin');
    assert.equal((await api(stack.baseUrl, 'GET', `${V1}/shares/${share.id}/my-permission`, { token: member.token })).body.role, 'admin');
  });

  test('the token never appears in the audit trail', async () => {
    const admin = await user(stack, tenantId, uniq('tadmin'), { admin: true });
    const { invitation, invitee } = await invited('reader');
    const declinedOne = await invited('reader');
    assert.equal((await respond(invitation.token, 'accept', invitee)).status, 200);
    assert.equal((await respond(declinedOne.invitation.token, 'decline', declinedOne.invitee)).status, 200);

    const rows = await stack.services.db.selectFrom('audit_log').selectAll().where('tenant_id', '=', tenantId).execute();
    const mine = rows.filter((r) => r.target_id === invitation.id);
    assert.deepEqual(mine.map((r) => r.action).sort(), ['invitation.accepted', 'invitation.created']);
    assert.deepEqual(
      rows.filter((r) => r.target_id === declinedOne.invitation.id).map((r) => r.action).sort(),
      ['invitation.created', 'invitation.declined'],
    );
    const dump = JSON.stringify(rows);
    for (const token of [invitation.token, declinedOne.invitation.token]) {
      assert.ok(!dump.includes(token), 'token in audit_log');
      assert.ok(!dump.includes(encodeURIComponent(token)));
    }
    const viaApi = await api(stack.baseUrl, 'GET', `${V1}/admin/audit?limit=1000`, { token: admin.token });
    assert.equal(viaApi.status, 200);
    assert.ok(viaApi.body.items.some((e: any) => e.target_id === invitation.id));
    assert.ok(!viaApi.text.includes(invitation.token));
    const created = mine.find((r) => r.action === 'invitation.created')!;
    assert.deepEqual(created.details, { share_id: share.id, email: invitation.email, role: 'reader' });
  });
});
