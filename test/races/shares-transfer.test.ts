// Issue #7 finding 11: parallel ownership transfers of one share. Exactly one wins; the share ends with one
// owner member row and `spaces.owner_user_id` naming that same user.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { burst, statusCounts } from '../helpers/race';
import { assertError } from '../helpers/assertions';
import { V1, addMember, createShare, uniq, user, type ShareUser } from '../shares/share-helpers';

describe('races: share transfer', () => {
  let stack: TestStack;
  let tenantId: string;

  before(async () => {
    stack = await startTestStack();
    tenantId = (await createTestTenant(stack)).id;
  });
  after(() => stack.close());

  async function ownership(shareId: string) {
    const db = stack.services.db;
    const owners = await db.selectFrom('share_members').select(['principal_id', 'principal_type']).where('share_id', '=', shareId).where('role', '=', 'owner').execute();
    const space = await db.selectFrom('spaces').select('owner_user_id').where('id', '=', shareId).executeTakeFirstOrThrow();
    return { owners, ownerUserId: space.owner_user_id };
  }

  test('20 parallel transfers by the owner to 20 different members: one 200, the rest 403; one owner afterwards', async () => {
    const owner = await user(stack, tenantId, uniq('owner'));
    const share = await createShare(stack, owner);
    const members: ShareUser[] = [];
    for (let i = 0; i < 20; i += 1) {
      const member = await user(stack, tenantId, uniq('heir'));
      await addMember(stack, owner, share.id, 'user', member.userId, 'contributor');
      members.push(member);
    }

    const responses = await burst(stack.baseUrl, 20, (i, dispatcher) =>
      api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/transfer`, { token: owner.token, body: { user_id: members[i]!.userId }, dispatcher }),
    );
    assert.deepEqual(statusCounts(responses), { 200: 1, 403: 19 }, JSON.stringify(responses.map((r) => [r.status, r.body?.code])));
    for (const refused of responses.filter((r) => r.status !== 200)) assertError(refused, 403, 'FORBIDDEN');

    const winner = responses.find((r) => r.status === 200)!;
    const { owners, ownerUserId } = await ownership(share.id);
    assert.equal(owners.length, 1, `one owner row: ${JSON.stringify(owners)}`);
    assert.equal(owners[0]!.principal_type, 'user');
    assert.equal(owners[0]!.principal_id, ownerUserId, 'the owner row and spaces.owner_user_id agree');
    assert.equal(winner.body.owner_user_id, ownerUserId, 'the 200 named the user who owns it now');
    // The previous owner stays as an admin; the losers' roles are untouched.
    const roles = await stack.services.db.selectFrom('share_members').select(['principal_id', 'role']).where('share_id', '=', share.id).execute();
    const roleOf = new Map(roles.map((r) => [r.principal_id, r.role]));
    assert.equal(roleOf.get(owner.userId), 'admin');
    for (const member of members.filter((m) => m.userId !== ownerUserId)) assert.equal(roleOf.get(member.userId), 'contributor');
    // Exactly one transfer is on the audit trail.
    const audit = await stack.services.db.selectFrom('audit_log').select('details').where('action', '=', 'share.transferred').where('target_id', '=', share.id).execute();
    assert.equal(audit.length, 1);
    assert.deepEqual(audit[0]!.details, { from: owner.userId, to: ownerUserId });
  });

  test('the new owner can transfer on; the previous owner no longer can', async () => {
    const owner = await user(stack, tenantId, uniq('owner'));
    const heir = await user(stack, tenantId, uniq('heir'));
    const third = await user(stack, tenantId, uniq('third'));
    const share = await createShare(stack, owner);
    const first = await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/transfer`, { token: owner.token, body: { user_id: heir.userId } });
    assert.equal(first.status, 200, first.text);
    assertError(await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/transfer`, { token: owner.token, body: { user_id: third.userId } }), 403, 'FORBIDDEN');
    assertError(await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/transfer`, { token: heir.token, body: { user_id: heir.userId } }), 409, 'CONFLICT');
    const onward = await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/transfer`, { token: heir.token, body: { user_id: third.userId } });
    assert.equal(onward.status, 200, onward.text);
    const { owners, ownerUserId } = await ownership(share.id);
    assert.deepEqual(owners.map((o) => o.principal_id), [third.userId]);
    assert.equal(ownerUserId, third.userId);
  });

  test('a transfer to a member racing a share admin removing or demoting that member: one owner row, never a 500', async () => {
    for (const action of ['remove', 'demote'] as const) {
      const owner = await user(stack, tenantId, uniq('owner'));
      const shareAdmin = await user(stack, tenantId, uniq('admin'));
      const heir = await user(stack, tenantId, uniq('heir'));
      const share = await createShare(stack, owner);
      await addMember(stack, owner, share.id, 'user', shareAdmin.userId, 'admin');
      const grant = await addMember(stack, owner, share.id, 'user', heir.userId, 'contributor');
      const responses = await burst(stack.baseUrl, 20, (i, dispatcher) => {
        if (i % 2 === 0) return api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/transfer`, { token: owner.token, body: { user_id: heir.userId }, dispatcher });
        const path = `${V1}/shares/${share.id}/members/${grant.id}`;
        return action === 'remove'
          ? api(stack.baseUrl, 'DELETE', path, { token: shareAdmin.token, dispatcher })
          : api(stack.baseUrl, 'PATCH', path, { token: shareAdmin.token, body: { role: 'reader' }, dispatcher });
      });
      for (const r of responses) assert.ok(r.status < 500, `${action}: ${r.status} ${r.text}`);
      assert.equal(responses.filter((r, i) => i % 2 === 0 && r.status === 200).length, 1, `${action}: one transfer`);
      const { owners, ownerUserId } = await ownership(share.id);
      assert.equal(ownerUserId, heir.userId);
      assert.deepEqual(owners.map((o) => o.principal_id), [heir.userId], `${action}: the new owner keeps exactly one owner row`);
    }
  });

  test('a transfer racing the delete of the same share by its owner: never a deleted share with a new owner, never a 500', async () => {
    const owner = await user(stack, tenantId, uniq('owner'));
    const heir = await user(stack, tenantId, uniq('heir'));
    const share = await createShare(stack, owner);
    const responses = await burst(stack.baseUrl, 20, (i, dispatcher) =>
      i % 2 === 0
        ? api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/transfer`, { token: owner.token, body: { user_id: heir.userId }, dispatcher })
        : api(stack.baseUrl, 'DELETE', `${V1}/shares/${share.id}`, { token: owner.token, dispatcher }),
    );
    for (const r of responses) assert.ok(r.status < 500, `${r.status} ${r.text}`);
    const transferred = responses.filter((r, i) => i % 2 === 0 && r.status === 200).length;
    const deleted = responses.filter((r, i) => i % 2 === 1 && r.status === 204).length;
    assert.ok(transferred <= 1 && deleted <= 1, JSON.stringify(statusCounts(responses)));
    const space = await stack.services.db.selectFrom('spaces').select('owner_user_id').where('id', '=', share.id).executeTakeFirst();
    if (deleted === 1) {
      assert.equal(space, undefined);
      // The delete ran as the owner: it committed before any transfer could.
      assert.equal(transferred, 0, 'a transfer by someone who no longer owned a deleted share');
    } else {
      assert.equal(transferred, 1);
      assert.equal(space?.owner_user_id, heir.userId);
    }
  });
});
