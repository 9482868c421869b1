// Tenant administration through the API: settings, users, API keys (hashed, scoped, revocable), groups.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createTestTenant, startTestStack, tokenFor, type TestStack } from '../helpers/stack';

describe('tenant administration', () => {
  let stack: TestStack;
  let tenantId: string;
  let admin: string;

  before(async () => {
    stack = await startTestStack();
    tenantId = (await createTestTenant(stack)).id;
    admin = await tokenFor(stack, tenantId, 'admin', { admin: true });
  });
  after(() => stack.close());

  test('GET/PATCH /admin/tenant reads and merges settings', async () => {
    const before = await api(stack.baseUrl, 'GET', '/api/v1/admin/tenant', { token: admin });
    assert.equal(before.status, 200);
    assert.deepEqual(before.body.settings, {
      max_file_size_bytes: 10 * 1024 ** 3,
      trash_retention_days: 30,
      changelog_retention_days: 90,
      upload_session_ttl_hours: 24,
      default_user_quota_bytes: null,
    });
    const patched = await api(stack.baseUrl, 'PATCH', '/api/v1/admin/tenant', { token: admin, body: { name: 'Renamed', settings: { trash_retention_days: 7 } } });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.name, 'Renamed');
    assert.equal(patched.body.settings.trash_retention_days, 7);
    assert.equal(patched.body.settings.changelog_retention_days, 90);
  });

  test('GET /admin/users paginates with an opaque cursor and stable order', async () => {
    for (const name of ['u1', 'u2', 'u3', 'u4']) await api(stack.baseUrl, 'GET', '/api/v1/me', { token: await tokenFor(stack, tenantId, name) });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await api(stack.baseUrl, 'GET', `/api/v1/admin/users?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: admin });
      assert.equal(page.status, 200);
      assert.ok(page.body.items.length <= 2);
      seen.push(...page.body.items.map((u: any) => u.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    assert.equal(seen.length, 5); // admin + four users
    assert.deepEqual([...seen].sort(), seen);
    const inactive = await api(stack.baseUrl, 'GET', '/api/v1/admin/users?is_active=false', { token: admin });
    assert.deepEqual(inactive.body.items, []);
  });

  test('API keys: secret shown once, stored hashed, scoped, revocable', async () => {
    const created = await api(stack.baseUrl, 'POST', '/api/v1/admin/api-keys', { token: admin, body: { name: 'backup job', scopes: ['files:read'] } });
    assert.equal(created.status, 201);
    assert.match(created.body.secret, /^sdk_/);
    const stored = await stack.services.db.selectFrom('api_keys').selectAll().where('id', '=', created.body.id).executeTakeFirstOrThrow();
    assert.notEqual(stored.key_hash, created.body.secret);
    assert.ok(!JSON.stringify(stored).includes(created.body.secret));

    const me = await api(stack.baseUrl, 'GET', '/api/v1/me', { token: created.body.secret });
    assert.equal(me.status, 200);
    assert.deepEqual([me.body.kind, me.body.tenant_id, me.body.scopes], ['api_key', tenantId, ['files:read']]);
    // A files:read key is not an admin.
    assert.equal((await api(stack.baseUrl, 'GET', '/api/v1/admin/tenant', { token: created.body.secret })).status, 403);

    const adminKey = await api(stack.baseUrl, 'POST', '/api/v1/admin/api-keys', { token: admin, body: { name: 'provisioning', scopes: ['admin'] } });
    assert.equal((await api(stack.baseUrl, 'GET', '/api/v1/admin/tenant', { token: adminKey.body.secret })).status, 200);

    const listed = await api(stack.baseUrl, 'GET', '/api/v1/admin/api-keys', { token: admin });
    assert.equal(listed.body.items.length, 2);
    assert.ok(listed.body.items.every((k: any) => k.secret === undefined));

    assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/admin/api-keys/${created.body.id}`, { token: admin })).status, 204);
    const revoked = await api(stack.baseUrl, 'GET', '/api/v1/me', { token: created.body.secret });
    assert.equal(revoked.status, 401);
    assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/admin/api-keys/${created.body.id}`, { token: admin })).status, 404);
    assert.equal((await api(stack.baseUrl, 'GET', '/api/v1/me', { token: 'sdk_not-a-real-key' })).status, 401);
  });

  test('groups CRUD with members; other tenants see none of it', async () => {
    const group = await api(stack.baseUrl, 'POST', '/api/v1/admin/groups', { token: admin, body: { name: 'Engineering' } });
    assert.equal(group.status, 201);
    const user = (await api(stack.baseUrl, 'GET', '/api/v1/me', { token: await tokenFor(stack, tenantId, 'engineer') })).body;
    assert.equal((await api(stack.baseUrl, 'POST', `/api/v1/admin/groups/${group.body.id}/members`, { token: admin, body: { user_id: user.id } })).status, 204);
    assert.equal((await api(stack.baseUrl, 'POST', `/api/v1/admin/groups/${group.body.id}/members`, { token: admin, body: { user_id: user.id } })).status, 409);
    const members = await api(stack.baseUrl, 'GET', `/api/v1/admin/groups/${group.body.id}/members`, { token: admin });
    assert.deepEqual(members.body.items.map((m: any) => m.id), [user.id]);
    assert.equal((await api(stack.baseUrl, 'GET', `/api/v1/admin/groups/${group.body.id}`, { token: admin })).body.member_count, 1);
    const renamed = await api(stack.baseUrl, 'PATCH', `/api/v1/admin/groups/${group.body.id}`, { token: admin, body: { name: 'R&D' } });
    assert.equal(renamed.body.name, 'R&D');

    const otherAdmin = await tokenFor(stack, (await createTestTenant(stack)).id, 'other-admin', { admin: true });
    for (const [method, path] of [
      ['GET', `/api/v1/admin/groups/${group.body.id}`],
      ['PATCH', `/api/v1/admin/groups/${group.body.id}`],
      ['DELETE', `/api/v1/admin/groups/${group.body.id}`],
      ['GET', `/api/v1/admin/groups/${group.body.id}/members`],
      ['DELETE', `/api/v1/admin/groups/${group.body.id}/members/${user.id}`],
      ['POST', `/api/v1/admin/users/${user.id}/deactivate`],
    ] as const) {
      const response = await api(stack.baseUrl, method, path, { token: otherAdmin, body: method === 'PATCH' ? { name: 'x' } : undefined });
      assert.equal(response.status, 404, `${method} ${path}`);
    }

    assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/admin/groups/${group.body.id}/members/${user.id}`, { token: admin })).status, 204);
    assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/admin/groups/${group.body.id}`, { token: admin })).status, 204);
    assert.equal((await api(stack.baseUrl, 'GET', `/api/v1/admin/groups/${group.body.id}`, { token: admin })).status, 404);
  });
});
