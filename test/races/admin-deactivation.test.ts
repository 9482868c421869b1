// Issue #7 (low): a tenant must keep an active tenant admin. Two admins deactivating each other in parallel:
// one wins, the other is refused; the tenant always has an active admin afterwards. Self-deactivation → 409.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Dispatcher } from 'undici';
import { sql } from 'kysely';
import { api, createTestTenant, startTestStack, tokenFor, type TestStack } from '../helpers/stack';
import { burst, statusCounts } from '../helpers/race';
import { assertError } from '../helpers/assertions';

describe('races: deactivating tenant admins', () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack();
  });
  after(() => stack.close());

  async function admins(tenantId: string, count: number) {
    const list: { id: string; token: string }[] = [];
    for (let i = 0; i < count; i += 1) {
      const token = await tokenFor(stack, tenantId, `admin-${i}`, { admin: true });
      const me = await api(stack.baseUrl, 'GET', '/api/v1/me', { token });
      assert.equal(me.status, 200, me.text);
      list.push({ id: me.body.id, token });
    }
    return list;
  }

  const activeAdmins = (tenantId: string) =>
    stack.services.db.selectFrom('users').select('id').where('tenant_id', '=', tenantId).where('is_active', '=', true).where(sql<boolean>`roles @> array['tenant_admin']`).execute();

  const deactivate = (token: string, userId: string, dispatcher?: Dispatcher) =>
    api(stack.baseUrl, 'POST', `/api/v1/admin/users/${userId}/deactivate`, { token, dispatcher });

  test('two admins deactivating each other, 20 requests at once: exactly one succeeds, one admin stays active', async () => {
    const tenantId = (await createTestTenant(stack)).id;
    const [a, b] = await admins(tenantId, 2);
    const responses = await burst(stack.baseUrl, 20, (i, dispatcher) => (i % 2 ? deactivate(a!.token, b!.id, dispatcher) : deactivate(b!.token, a!.id, dispatcher)));
    const counts = statusCounts(responses);
    for (const r of responses) assert.ok([200, 403, 409].includes(r.status), `${r.status} ${r.text}`);
    for (const r of responses.filter((x) => x.status === 409)) assertError(r, 409, 'LAST_TENANT_ADMIN');
    for (const r of responses.filter((x) => x.status === 403)) assertError(r, 403, 'AUTHZ_USER_SUSPENDED');
    // Repeats of the winning deactivation are harmless 200s; a deactivation of the other admin never succeeds.
    const winners = new Set(responses.filter((r) => r.status === 200).map((r) => r.body.id));
    assert.equal(winners.size, 1, JSON.stringify(counts));
    const active = await activeAdmins(tenantId);
    assert.equal(active.length, 1, 'one active admin remains');
    assert.ok(!winners.has(active[0]!.id));
  });

  test('the last active admin cannot be deactivated; with a second admin it can; nobody deactivates themselves', async () => {
    const tenantId = (await createTestTenant(stack)).id;
    const [a, b] = await admins(tenantId, 2);
    assertError(await deactivate(a!.token, a!.id), 409, 'CANNOT_DEACTIVATE_SELF');
    assert.equal((await deactivate(a!.token, b!.id)).status, 200);
    // An API key with the admin scope is not a user: the last-admin rule still holds for it.
    const key = await api(stack.baseUrl, 'POST', '/api/v1/admin/api-keys', { token: a!.token, body: { name: 'ops', scopes: ['admin'] } });
    assert.equal(key.status, 201, key.text);
    assertError(await deactivate(key.body.secret, a!.id), 409, 'LAST_TENANT_ADMIN');
    assert.equal((await activeAdmins(tenantId)).length, 1);
    // Members come and go freely.
    const member = await api(stack.baseUrl, 'GET', '/api/v1/me', { token: await tokenFor(stack, tenantId, 'member') });
    assert.equal((await deactivate(key.body.secret, member.body.id)).status, 200);
    // Re-activating the second admin makes the first one deactivatable again.
    assert.equal((await api(stack.baseUrl, 'POST', `/api/v1/admin/users/${b!.id}/activate`, { token: a!.token })).status, 200);
    assert.equal((await deactivate(key.body.secret, a!.id)).status, 200);
    assert.deepEqual((await activeAdmins(tenantId)).map((u) => u.id), [b!.id]);
  });
});
