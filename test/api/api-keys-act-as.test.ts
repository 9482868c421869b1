// API keys that integrations can use (issue #8 §5, Box's As-User): a files-scoped key acts for the user in
// X-Act-As-User with exactly that user's permissions, read-only for files:read; admin-only keys cannot touch
// files; every key request is in the audit trail with the key id.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, randomData, sha256, uploadDirect, download, type TestUser } from '../helpers/files';
import { assertError } from '../helpers/assertions';

const V1 = '/api/v1';

describe('API keys acting as a user', () => {
  let stack: TestStack;
  let admin: TestUser;
  let alice: TestUser;
  let bob: TestUser;
  let outsider: TestUser;
  const keys: Record<'write' | 'read' | 'admin', { id: string; secret: string }> = {} as never;
  let fileId: string;
  const content = randomData(10_000);

  before(async () => {
    stack = await startTestStack();
    const tenantId = (await createTestTenant(stack)).id;
    admin = await newUser(stack, tenantId, 'admin', { admin: true });
    alice = await newUser(stack, tenantId, 'alice');
    bob = await newUser(stack, tenantId, 'bob');
    outsider = await newUser(stack, (await createTestTenant(stack)).id, 'outsider');
    for (const [name, scopes] of [['write', ['files:write']], ['read', ['files:read']], ['admin', ['admin']]] as const) {
      const res = await api(stack.baseUrl, 'POST', `${V1}/admin/api-keys`, { token: admin.token, body: { name, scopes } });
      assert.equal(res.status, 201, res.text);
      keys[name] = { id: res.body.id, secret: res.body.secret };
    }
    const uploaded = await uploadDirect(stack, alice.token, alice.rootFolderId, 'report.bin', content);
    assert.equal(uploaded.status, 201);
    fileId = uploaded.body.file.id;
  });
  after(() => stack.close());

  const as = (key: 'write' | 'read' | 'admin', userId?: string): { token: string; headers: Record<string, string> } => ({
    token: keys[key].secret,
    headers: userId ? { 'x-act-as-user': userId } : {},
  });

  test("a files:write key acting for alice reads and writes exactly what alice can", async () => {
    const children = await api(stack.baseUrl, 'GET', `${V1}/folders/${alice.rootFolderId}/children`, as('write', alice.userId));
    assert.equal(children.status, 200, children.text);
    assert.deepEqual(children.body.items.map((n: any) => n.name), ['report.bin']);
    const got = await download(stack, `${V1}/files/${fileId}/content`, { token: keys.write.secret, headers: { 'x-act-as-user': alice.userId } });
    assert.equal(got.status, 200);
    assert.equal(sha256(got.body), sha256(content));
    const folder = await api(stack.baseUrl, 'POST', `${V1}/folders`, { ...as('write', alice.userId), body: { parent_id: alice.rootFolderId, name: 'from-integration' } });
    assert.equal(folder.status, 201, folder.text);
    assert.equal(folder.body.created_by, alice.userId);
    const upload = await uploadDirect(stack, keys.write.secret, alice.rootFolderId, 'integration.txt', Buffer.from('hi'), { 'x-act-as-user': alice.userId });
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    // Acting for bob, the same key sees only bob's permissions: alice's file does not exist for him.
    assertError(await api(stack.baseUrl, 'GET', `${V1}/files/${fileId}`, as('write', bob.userId)), 404, 'NOT_FOUND');
  });

  test('a download whose audit write is held up still carries every byte', async () => {
    // The audit row of a key request is written after the handler, before Koa pipes the body into the response.
    // With the audit table locked, the file's bytes are read meanwhile; none may be lost (they once were: a
    // 200 with headers and no body, the client waiting until the connection was closed).
    let downloading!: ReturnType<typeof download>;
    await stack.services.db.transaction().execute(async (trx) => {
      await sql`lock table audit_log in share row exclusive mode`.execute(trx);
      downloading = download(stack, `${V1}/files/${fileId}/content`, { token: keys.write.secret, headers: { 'x-act-as-user': alice.userId } });
      await sleep(1_000);
    });
    const got = await downloading;
    assert.equal(got.status, 200);
    assert.equal(got.body.length, content.length);
    assert.equal(sha256(got.body), sha256(content));
  });

  test('a files:read key may look but never change anything', async () => {
    assert.equal((await api(stack.baseUrl, 'GET', `${V1}/files/${fileId}`, as('read', alice.userId))).status, 200);
    assertError(await api(stack.baseUrl, 'POST', `${V1}/folders`, { ...as('read', alice.userId), body: { parent_id: alice.rootFolderId, name: 'nope' } }), 403, 'API_KEY_READ_ONLY');
    assertError(await api(stack.baseUrl, 'DELETE', `${V1}/files/${fileId}`, as('read', alice.userId)), 403, 'API_KEY_READ_ONLY');
    assert.equal((await api(stack.baseUrl, 'GET', `${V1}/files/${fileId}`, { token: alice.token })).status, 200, 'still there');
  });

  test('without X-Act-As-User a files key gets 400; admin-only keys cannot act for users; bad users are refused', async () => {
    assertError(await api(stack.baseUrl, 'GET', `${V1}/files/${fileId}`, as('write')), 400, 'ACT_AS_USER_REQUIRED');
    assertError(await api(stack.baseUrl, 'GET', `${V1}/files/${fileId}`, as('admin', alice.userId)), 403, 'FORBIDDEN');
    const adminOnFiles = await api(stack.baseUrl, 'GET', `${V1}/files/${fileId}`, as('admin'));
    assert.ok(adminOnFiles.status === 403 || adminOnFiles.status === 404, `admin key on a file: ${adminOnFiles.status}`);
    assertError(await api(stack.baseUrl, 'GET', `${V1}/files/${fileId}`, as('write', outsider.userId)), 403, 'ACT_AS_USER_INVALID');
    assertError(await api(stack.baseUrl, 'GET', `${V1}/files/${fileId}`, as('write', 'usr_\u00e9')), 400, 'ACT_AS_USER_INVALID');
    const me = await api(stack.baseUrl, 'GET', `${V1}/me`, as('write'));
    assert.equal(me.status, 200, 'a key may still ask who it is');
    assert.equal(me.body.kind, 'api_key');
    const deactivated = await api(stack.baseUrl, 'POST', `${V1}/admin/users/${bob.userId}/deactivate`, { token: admin.token });
    assert.equal(deactivated.status, 200, deactivated.text);
    assertError(await api(stack.baseUrl, 'GET', `${V1}/folders/${bob.rootFolderId}/children`, as('write', bob.userId)), 403, 'AUTHZ_USER_SUSPENDED');
  });

  test('every request made with a key is in the audit trail with the key id', async () => {
    const before = await api(stack.baseUrl, 'GET', `${V1}/admin/audit?action=api_key.request&actor_id=${keys.read.id}&limit=1000`, { token: admin.token });
    const count = before.body.items.length;
    await api(stack.baseUrl, 'GET', `${V1}/files/${fileId}`, as('read', alice.userId));
    await api(stack.baseUrl, 'POST', `${V1}/folders`, { ...as('read', alice.userId), body: { parent_id: alice.rootFolderId, name: 'refused' } });
    const audit = await api(stack.baseUrl, 'GET', `${V1}/admin/audit?action=api_key.request&actor_id=${keys.read.id}&limit=1000`, { token: admin.token });
    assert.equal(audit.status, 200, audit.text);
    assert.equal(audit.body.items.length, count + 2);
    const [refused, read] = audit.body.items;
    assert.deepEqual(
      { ...read.details, target: read.target_id },
      { method: 'GET', route: '/api/v1/files/:id', status: 200, act_as_user: alice.userId, target: keys.read.id },
    );
    assert.equal(refused.details.status, 403);
    assert.equal(refused.details.method, 'POST');
  });
});
