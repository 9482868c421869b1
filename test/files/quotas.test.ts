// Quotas through the API: atomic enforcement under parallel commits, the binding level named in 507,
// usage endpoints, admin limits, recalculation by the quota-recalc workflow.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { createSession, newUser, putChunk, randomData, uploadDirect, type TestUser } from '../helpers/files';
import { createPartner, createTenant } from '../../src/services/identity.service';

const fileSize = 10_000;

describe('quotas', () => {
  let stack: TestStack;
  let tenantId: string;
  let admin: TestUser;

  before(async () => {
    stack = await startTestStack({ workers: true, env: { SCAIDRIVE_WORKFLOW_WAIT_SECONDS: '60' } });
    const partner = await createPartner(stack.services.db, 'Quota partner');
    tenantId = (await createTenant(stack.services.db, { name: 'quota tenant', partnerId: partner.id })).id;
    admin = await newUser(stack, tenantId, 'admin', { admin: true });
  });
  after(() => stack.close());

  const setLimit = (level: string, id: string, limit: number | null) => api(stack.baseUrl, 'PUT', `/api/v1/admin/quotas/${level}/${id}`, { token: admin.token, body: { limit_bytes: limit } });
  const usageOf = (path: string, token = admin.token) => api(stack.baseUrl, 'GET', `/api/v1/quotas/usage/${path}`, { token });

  test('20 parallel uploads against a user quota that fits 10: exactly 10 are admitted, all of them commit, usage is their sum', async () => {
    const user = await newUser(stack, tenantId, 'racer');
    assert.equal((await setLimit('user', user.userId, 10 * fileSize)).status, 200);
    // Declared bytes are reserved at session creation (spec §6), so the race for the quota happens there.
    const created = await Promise.all(
      Array.from({ length: 20 }, (_, i) => createSession(stack, user.token, { parent_id: user.rootFolderId, name: `race-${i}.bin`, size: fileSize })),
    );
    assert.deepEqual(created.map((r) => r.status).sort(), [...Array(10).fill(201), ...Array(10).fill(507)]);
    for (const refused of created.filter((r) => r.status === 507)) {
      assert.equal(refused.body.code, 'QUOTA_EXCEEDED');
      assert.deepEqual(refused.body.details, { level: 'user', id: user.userId, limit_bytes: 10 * fileSize, used_bytes: 0 });
      assert.match(refused.body.detail, /user level/);
    }
    const sessions = created.filter((r) => r.status === 201).map((r) => r.body.id as string);
    await Promise.all(sessions.map(async (id) => assert.equal((await putChunk(stack, user.token, id, 0, randomData(fileSize))).status, 200)));
    const results = await Promise.all(sessions.map((id) => api(stack.baseUrl, 'POST', `/api/v1/uploads/${id}/finalize`, { token: user.token })));
    assert.deepEqual(results.map((r) => r.status), Array(10).fill(200));
    const usage = await usageOf(`users/${user.userId}`, user.token);
    assert.equal(usage.status, 200);
    assert.equal(usage.body.used_bytes, 10 * fileSize);
    assert.equal(usage.body.limit_bytes, 10 * fileSize);
    const versions = await stack.services.db.selectFrom('versions').innerJoin('nodes', 'nodes.id', 'versions.file_id').select('versions.size').where('nodes.space_id', '=', user.spaceId).execute();
    assert.equal(versions.length, 10);
    const row = await stack.services.db.selectFrom('quotas').select('reserved_bytes').where('level', '=', 'user').where('subject_id', '=', user.userId).executeTakeFirstOrThrow();
    assert.equal(row.reserved_bytes, 0, 'every reservation became a charge');

    // The commit is checked atomically too: a limit lowered under an open session refuses it with 507, and the
    // session stays open (with its reservation) so it can commit once space is freed.
    await setLimit('user', user.userId, 11 * fileSize);
    const late = await createSession(stack, user.token, { parent_id: user.rootFolderId, name: 'late.bin', size: fileSize });
    assert.equal(late.status, 201, late.text);
    assert.equal((await putChunk(stack, user.token, late.body.id, 0, randomData(fileSize))).status, 200);
    await setLimit('user', user.userId, 10 * fileSize);
    const refused = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${late.body.id}/finalize`, { token: user.token });
    assert.equal(refused.status, 507, refused.text);
    assert.deepEqual(refused.body.details, { level: 'user', id: user.userId, limit_bytes: 10 * fileSize, used_bytes: 10 * fileSize });
    const refusedStatus = await api(stack.baseUrl, 'GET', `/api/v1/uploads/${late.body.id}`, { token: user.token });
    assert.equal(refusedStatus.body.status, 'open');
    assert.equal(refusedStatus.body.error.code, 'QUOTA_EXCEEDED');
  });

  test('the early check at session creation names the binding level', async () => {
    const user = await newUser(stack, tenantId, 'early');
    await setLimit('user', user.userId, 5000);
    const response = await createSession(stack, user.token, { parent_id: user.rootFolderId, name: 'too-big.bin', size: 5001 });
    assert.equal(response.status, 507);
    assert.equal(response.body.details.level, 'user');
  });

  test('group, tenant and partner limits bind too, and 507 says which', async () => {
    const member = await newUser(stack, tenantId, 'grouped');
    const group = await api(stack.baseUrl, 'POST', '/api/v1/admin/groups', { token: admin.token, body: { name: 'Limited' } });
    await api(stack.baseUrl, 'POST', `/api/v1/admin/groups/${group.body.id}/members`, { token: admin.token, body: { user_id: member.userId } });
    assert.equal((await setLimit('group', group.body.id, 15_000)).status, 200);
    assert.equal((await uploadDirect(stack, member.token, member.rootFolderId, 'g1.bin', randomData(fileSize))).status, 201);
    const overGroup = await uploadDirect(stack, member.token, member.rootFolderId, 'g2.bin', randomData(fileSize));
    assert.equal(overGroup.status, 507);
    assert.equal(overGroup.body.details.level, 'group');
    assert.equal(overGroup.body.details.id, group.body.id);
    assert.equal((await usageOf(`groups/${group.body.id}`, member.token)).body.used_bytes, fileSize);
    await setLimit('group', group.body.id, null);

    const tenantUsage = (await usageOf('tenant')).body.used_bytes;
    await setLimit('tenant', tenantId, tenantUsage + 5000);
    const overTenant = await uploadDirect(stack, member.token, member.rootFolderId, 't.bin', randomData(fileSize));
    assert.equal(overTenant.status, 507);
    assert.equal(overTenant.body.details.level, 'tenant');
    await setLimit('tenant', tenantId, null);

    const partnerId = (await stack.services.db.selectFrom('tenants').select('partner_id').where('id', '=', tenantId).executeTakeFirstOrThrow()).partner_id!;
    // Partner limits are set by partner admins only.
    assert.equal((await setLimit('partner', partnerId, 1)).status, 403);
    const token = await stack.services.devIssuer!.sign({ tenantId, subject: 'partner-admin', roles: ['tenant_admin', 'partner_admin'] });
    const set = await api(stack.baseUrl, 'PUT', `/api/v1/admin/quotas/partner/${partnerId}`, { token, body: { limit_bytes: tenantUsage + 5000 } });
    assert.equal(set.status, 200, set.text);
    const overPartner = await uploadDirect(stack, member.token, member.rootFolderId, 'p.bin', randomData(fileSize));
    assert.equal(overPartner.status, 507);
    assert.equal(overPartner.body.details.level, 'partner');
    await api(stack.baseUrl, 'PUT', `/api/v1/admin/quotas/partner/${partnerId}`, { token, body: { limit_bytes: null } });
  });

  test('usage counts trash until purge', async () => {
    const user = await newUser(stack, tenantId, 'trasher');
    const file = await uploadDirect(stack, user.token, user.rootFolderId, 'x.bin', randomData(fileSize));
    assert.equal((await usageOf(`users/${user.userId}`, user.token)).body.used_bytes, fileSize);
    await api(stack.baseUrl, 'DELETE', `/api/v1/files/${file.body.file.id}`, { token: user.token });
    assert.equal((await usageOf(`users/${user.userId}`, user.token)).body.used_bytes, fileSize);
    assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/trash/${file.body.file.id}`, { token: user.token })).status, 204);
    assert.equal((await usageOf(`users/${user.userId}`, user.token)).body.used_bytes, 0);
  });

  test('?recalculate=true runs quota-recalc/{tenant_id} and repairs drifted counters', async () => {
    const before = await usageOf('tenant');
    assert.equal(before.status, 200);
    const truth = before.body.used_bytes;
    assert.ok(truth > 0);
    await stack.services.db.updateTable('quotas').set({ used_bytes: 123 }).where('level', '=', 'tenant').where('subject_id', '=', tenantId).execute();
    assert.equal((await usageOf('tenant')).body.used_bytes, 123);
    const repaired = await usageOf('tenant?recalculate=true');
    assert.equal(repaired.status, 200);
    assert.equal(repaired.body.used_bytes, truth);
    assert.ok(repaired.body.calculated_at);
    const run = await stack.services.temporal.workflow.getHandle(`quota-recalc/${tenantId}`).describe();
    assert.equal(run.status.name, 'COMPLETED');
    assert.deepEqual(run.searchAttributes.ScaiTenantId, [tenantId]);
  });

  test('who may read and set quotas', async () => {
    const member = await newUser(stack, tenantId, 'nosy');
    const other = await newUser(stack, tenantId, 'other');
    assert.equal((await usageOf('tenant', member.token)).status, 403);
    // Another user's usage is not the member's to see: 404, as for an id that does not exist (no oracle).
    assert.equal((await usageOf(`users/${other.userId}`, member.token)).status, 404);
    assert.equal((await usageOf('tenant?recalculate=true', member.token)).status, 403);
    assert.equal((await api(stack.baseUrl, 'PUT', `/api/v1/admin/quotas/user/${member.userId}`, { token: member.token, body: { limit_bytes: null } })).status, 403);
    const stranger = await newUser(stack, (await createTestTenant(stack)).id, 'stranger', { admin: true });
    assert.equal((await api(stack.baseUrl, 'PUT', `/api/v1/admin/quotas/user/${member.userId}`, { token: stranger.token, body: { limit_bytes: 1 } })).status, 404);
    assert.equal((await usageOf(`users/${member.userId}`, stranger.token)).status, 404);
    const invalid = await setLimit('user', member.userId, -5);
    assert.equal(invalid.status, 422);
    assert.equal(invalid.body.detail[0].type, 'greater_than_equal');
  });
});
