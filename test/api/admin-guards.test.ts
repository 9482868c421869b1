// Issue #7 (low) in the admin and quota endpoints: quota usage never reveals whether an id the caller may not
// see exists (404 either way), and the audit trail's since/until take ISO-8601 with offsets.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { assertError } from '../helpers/assertions';
import { V1, addMember, addToGroup, createGroup, createShare, uniq, user, type ShareUser } from '../shares/share-helpers';

/** `date` written as local time at `offsetMinutes` from UTC, e.g. 2020-01-01T05:00:00+05:00. */
function inZone(date: Date, offsetMinutes: number): string {
  const local = new Date(date.getTime() + offsetMinutes * 60_000).toISOString().slice(0, 19);
  const abs = Math.abs(offsetMinutes);
  return `${local}${offsetMinutes < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

describe('admin and quota guards', () => {
  let stack: TestStack;
  let tenantId: string;
  let admin: ShareUser;

  before(async () => {
    stack = await startTestStack();
    tenantId = (await createTestTenant(stack)).id;
    admin = await user(stack, tenantId, uniq('admin'), { admin: true });
  });
  after(() => stack.close());

  const usage = (path: string, who: ShareUser) => api(stack.baseUrl, 'GET', `${V1}/quotas/usage/${path}`, { token: who.token });

  test('quota usage: a subject the caller may not see is 404 exactly like an unknown id', async () => {
    const member = await user(stack, tenantId, uniq('member'));
    const other = await user(stack, tenantId, uniq('other'));
    const group = await createGroup(stack, admin);
    const othersShare = await createShare(stack, other);
    const unknown = { users: 'usr_01ARZ3NDEKTSV4RRFFQ69G5FAV', groups: 'grp_01ARZ3NDEKTSV4RRFFQ69G5FAV', shares: 'shr_01ARZ3NDEKTSV4RRFFQ69G5FAV' };
    const hidden = { users: other.userId, groups: group.id, shares: othersShare.id };
    for (const segment of ['users', 'groups', 'shares'] as const) {
      const missing = await usage(`${segment}/${unknown[segment]}`, member);
      const existing = await usage(`${segment}/${hidden[segment]}`, member);
      assertError(missing, 404, 'NOT_FOUND', `unknown ${segment}`);
      assertError(existing, 404, 'NOT_FOUND', `another's ${segment}`);
      assert.equal(existing.body.detail, missing.body.detail, `${segment}: the same answer for both`);
    }

    // What the caller may see: their own usage, their group's, a share they own; admins see everything.
    assert.equal((await usage(`users/${member.userId}`, member)).status, 200);
    await addToGroup(stack, admin, group.id, member.userId);
    assert.equal((await usage(`groups/${group.id}`, member)).status, 200);
    const mine = await createShare(stack, member);
    assert.equal((await usage(`shares/${mine.id}`, member)).status, 200);
    for (const path of [`users/${other.userId}`, `groups/${group.id}`, `shares/${othersShare.id}`]) assert.equal((await usage(path, admin)).status, 200, path);
    // A member of someone else's share sees that it exists but not its quota: 403.
    await addMember(stack, other, othersShare.id, 'user', member.userId, 'reader');
    assertError(await usage(`shares/${othersShare.id}`, member), 403, 'FORBIDDEN');
    // Another tenant's admin learns nothing either.
    const foreignAdmin = await user(stack, (await createTestTenant(stack)).id, uniq('foreign'), { admin: true });
    assertError(await usage(`users/${member.userId}`, foreignAdmin), 404, 'NOT_FOUND');
    assertError(await api(stack.baseUrl, 'PUT', `${V1}/admin/quotas/share/${mine.id}`, { token: foreignAdmin.token, body: { limit_bytes: 1 } }), 404, 'NOT_FOUND');
  });

  test('audit since/until accept ISO-8601 with an offset; other formats are 422', async () => {
    const share = await createShare(stack, admin);
    const audit = (query: string) => api(stack.baseUrl, 'GET', `${V1}/admin/audit?target_id=${share.id}&${query}`, { token: admin.token });
    // 2020-01-01T00:00:00+05:00 is 2019-12-31T19:00:00Z: long before the share was created.
    const since = await audit(`since=${encodeURIComponent('2020-01-01T00:00:00+05:00')}`);
    assert.equal(since.status, 200, since.text);
    assert.deepEqual(since.body.items.map((e: any) => e.action), ['share.created']);
    const created = Date.parse(since.body.items[0].at);
    // The offset is honoured: the same instant written in three zones filters the same way.
    const inOneHour = new Date(created + 3600_000);
    for (const until of [inOneHour.toISOString(), inZone(inOneHour, 120), inZone(inOneHour, -570)]) {
      const res = await audit(`until=${encodeURIComponent(until)}`);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.items.length, 1, until);
    }
    // A second after the creation, written half an hour behind UTC: nothing since then.
    const later = inZone(new Date(created + 1000), -30);
    const none = await audit(`since=${encodeURIComponent(later)}`);
    assert.equal(none.status, 200, none.text);
    assert.deepEqual(none.body.items, [], later);
    for (const bad of ['yesterday', '2020-01-01', '2020-13-01T00:00:00Z', '2020-01-01T00:00:00+5']) {
      const res = await audit(`since=${encodeURIComponent(bad)}`);
      assert.equal(res.status, 422, `${bad}: ${res.text}`);
      assert.deepEqual(res.body.detail[0].loc, ['query', 'since']);
    }
  });
});
