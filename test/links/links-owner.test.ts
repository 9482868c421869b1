// External links, owner side (spec §8): create on files and folders (token shown once, only its hash stored,
// password as an scrypt hash), list (never secrets), disable/enable, revoke, 404 for other users and tenants,
// validation 422s, and an audit trail that never holds the token or the password.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, randomData, uploadDirect, type TestUser } from '../helpers/files';
import { assertError, createLink } from './link-helpers';

const password = 'correct horse battery staple';
const inOneDay = () => new Date(Date.now() + 24 * 3600 * 1000).toISOString();

describe('external links: owner side', () => {
  let stack: TestStack;
  let tenantId: string;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let fileId: string;
  let folderId: string;

  before(async () => {
    stack = await startTestStack();
    tenantId = (await createTestTenant(stack)).id;
    alice = await newUser(stack, tenantId, 'alice');
    bob = await newUser(stack, tenantId, 'bob');
    carol = await newUser(stack, (await createTestTenant(stack)).id, 'carol');
    const upload = await uploadDirect(stack, alice.token, alice.rootFolderId, 'report.txt', randomData(1000));
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    fileId = upload.body.file.id;
    const folder = await api(stack.baseUrl, 'POST', '/api/v1/folders', { token: alice.token, body: { parent_id: alice.rootFolderId, name: 'Shared' } });
    assert.equal(folder.status, 201, folder.text);
    folderId = folder.body.id;
  });
  after(() => stack.close());

  test('creating a file link answers 201 with a one-time token and URL; only the token digest and an scrypt hash are stored', async () => {
    const expiresAt = inOneDay();
    const link = await createLink(stack, alice.token, 'file', fileId, {
      password,
      expires_at: expiresAt,
      allowed_ips: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'],
      require_email: ['Bob@Example.test', '@partner.test'],
      max_downloads: 5,
      max_views: 10,
    });
    assert.match(link.id, /^lnk_[0-9A-Z]{26}$/);
    assert.match(link.token, /^[A-Za-z0-9_-]{43}$/, 'a 32-byte base64url secret');
    assert.ok(link.url.endsWith(`/api/v1/public/links/${link.token}`), link.url);
    assert.ok(link.url.startsWith(stack.config.publicUrl));
    assert.deepEqual(
      { ...link, id: undefined, token: undefined, url: undefined, created_at: undefined },
      {
        id: undefined,
        token: undefined,
        url: undefined,
        created_at: undefined,
        node_id: fileId,
        status: 'active',
        has_password: true,
        expires_at: new Date(expiresAt).toISOString(),
        allowed_ips: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'],
        require_email: ['bob@example.test', '@partner.test'],
        max_downloads: 5,
        download_count: 0,
        max_views: 10,
        view_count: 0,
        enabled: true,
        revoked_at: null,
        created_by: alice.userId,
      },
    );
    const row = await stack.services.db.selectFrom('links').selectAll().where('id', '=', link.id).executeTakeFirstOrThrow();
    assert.equal(row.token_hash, createHash('sha256').update(link.token).digest('hex'));
    assert.match(row.password_hash ?? '', /^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    assert.ok(!row.password_hash!.includes(password));
    // A second link with the same password gets another salt.
    const again = await createLink(stack, alice.token, 'file', fileId, { password });
    const other = await stack.services.db.selectFrom('links').select('password_hash').where('id', '=', again.id).executeTakeFirstOrThrow();
    assert.notEqual(other.password_hash, row.password_hash);
    assert.notEqual(again.token, link.token);
  });

  test('a minimal folder link has no restrictions', async () => {
    const link = await createLink(stack, alice.token, 'folder', folderId);
    assert.equal(link.node_id, folderId);
    assert.equal(link.has_password, false);
    assert.equal(link.expires_at, null);
    assert.deepEqual(link.allowed_ips, []);
    assert.deepEqual(link.require_email, []);
    assert.equal(link.max_downloads, null);
    assert.equal(link.max_views, null);
  });

  test("listing a node's links: newest first, paginated, never the token or the password hash", async () => {
    const upload = await uploadDirect(stack, alice.token, folderId, 'listed.txt', randomData(10));
    const listedId = upload.body.file.id;
    const first = await createLink(stack, alice.token, 'file', listedId, { password });
    const second = await createLink(stack, alice.token, 'file', listedId, { max_views: 3 });
    const list = await api(stack.baseUrl, 'GET', `/api/v1/files/${listedId}/links`, { token: alice.token });
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.body.items.map((l: { id: string }) => l.id), [second.id, first.id]);
    assert.equal(list.body.next_cursor, null);
    for (const secret of [first.token, second.token, password, 'scrypt$', 'token_hash', 'password_hash']) assert.ok(!list.text.includes(secret), `the list leaks ${secret}`);
    assert.deepEqual(Object.keys(list.body.items[0]).sort(), [
      'allowed_ips', 'created_at', 'created_by', 'download_count', 'enabled', 'expires_at', 'has_password', 'id', 'max_downloads', 'max_views', 'node_id', 'require_email', 'revoked_at', 'status', 'view_count',
    ]);
    assert.equal(list.body.items[1].has_password, true);
    const page1 = await api(stack.baseUrl, 'GET', `/api/v1/files/${listedId}/links?limit=1`, { token: alice.token });
    assert.deepEqual(page1.body.items.map((l: { id: string }) => l.id), [second.id]);
    assert.ok(page1.body.next_cursor);
    const page2 = await api(stack.baseUrl, 'GET', `/api/v1/files/${listedId}/links?limit=1&cursor=${page1.body.next_cursor}`, { token: alice.token });
    assert.deepEqual(page2.body.items.map((l: { id: string }) => l.id), [first.id]);
    assert.equal(page2.body.next_cursor, null);
    // Folder links are listed on the folder.
    const folderList = await api(stack.baseUrl, 'GET', `/api/v1/folders/${folderId}/links`, { token: alice.token });
    assert.equal(folderList.status, 200);
    assert.ok(folderList.body.items.every((l: { node_id: string }) => l.node_id === folderId));
    assertError(await api(stack.baseUrl, 'GET', `/api/v1/files/${listedId}/links?cursor=garbage!`, { token: alice.token }), 400, 'INVALID_CURSOR');
  });

  test('the kind in the path must match the node: a file id under /folders (and vice versa) is 404', async () => {
    assertError(await api(stack.baseUrl, 'POST', `/api/v1/folders/${fileId}/links`, { token: alice.token, body: {} }), 404);
    assertError(await api(stack.baseUrl, 'POST', `/api/v1/files/${folderId}/links`, { token: alice.token, body: {} }), 404);
    assertError(await api(stack.baseUrl, 'GET', `/api/v1/files/${folderId}/links`, { token: alice.token }), 404);
    assertError(await api(stack.baseUrl, 'POST', `/api/v1/files/fil_01JAAAAAAAAAAAAAAAAAAAAAAA/links`, { token: alice.token, body: {} }), 404);
  });

  test('PATCH disables and re-enables a link; DELETE revokes it for good (410 afterwards)', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId);
    const disabled = await api(stack.baseUrl, 'PATCH', `/api/v1/links/${link.id}`, { token: alice.token, body: { enabled: false } });
    assert.equal(disabled.status, 200, disabled.text);
    assert.equal(disabled.body.enabled, false);
    assert.equal(disabled.body.status, 'disabled');
    const again = await api(stack.baseUrl, 'PATCH', `/api/v1/links/${link.id}`, { token: alice.token, body: { enabled: false } });
    assert.equal(again.status, 200, 'disabling twice is harmless');
    const enabled = await api(stack.baseUrl, 'PATCH', `/api/v1/links/${link.id}`, { token: alice.token, body: { enabled: true } });
    assert.equal(enabled.status, 200);
    assert.equal(enabled.body.status, 'active');
    const revoked = await api(stack.baseUrl, 'DELETE', `/api/v1/links/${link.id}`, { token: alice.token });
    assert.equal(revoked.status, 204, revoked.text);
    const list = await api(stack.baseUrl, 'GET', `/api/v1/files/${fileId}/links`, { token: alice.token });
    const listed = list.body.items.find((l: { id: string }) => l.id === link.id);
    assert.equal(listed.status, 'revoked');
    assert.ok(listed.revoked_at);
    assertError(await api(stack.baseUrl, 'PATCH', `/api/v1/links/${link.id}`, { token: alice.token, body: { enabled: true } }), 410, 'LINK_REVOKED');
    assertError(await api(stack.baseUrl, 'DELETE', `/api/v1/links/${link.id}`, { token: alice.token }), 410, 'LINK_REVOKED');
    const actions = await stack.services.db.selectFrom('audit_log').select(['action', 'actor_id', 'target_type']).where('target_id', '=', link.id).orderBy('id').execute();
    assert.deepEqual(
      actions.map((a) => a.action),
      ['link.created', 'link.disabled', 'link.enabled', 'link.revoked'],
    );
    assert.ok(actions.every((a) => a.actor_id === alice.userId && a.target_type === 'link'));
  });

  test('other users of the tenant and users of other tenants get 404 for everything', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId);
    for (const stranger of [bob, carol]) {
      assertError(await api(stack.baseUrl, 'POST', `/api/v1/files/${fileId}/links`, { token: stranger.token, body: {} }), 404);
      assertError(await api(stack.baseUrl, 'POST', `/api/v1/folders/${folderId}/links`, { token: stranger.token, body: {} }), 404);
      assertError(await api(stack.baseUrl, 'GET', `/api/v1/files/${fileId}/links`, { token: stranger.token }), 404);
      assertError(await api(stack.baseUrl, 'PATCH', `/api/v1/links/${link.id}`, { token: stranger.token, body: { enabled: false } }), 404);
      assertError(await api(stack.baseUrl, 'DELETE', `/api/v1/links/${link.id}`, { token: stranger.token }), 404);
    }
    const row = await stack.services.db.selectFrom('links').select(['enabled', 'revoked_at']).where('id', '=', link.id).executeTakeFirstOrThrow();
    assert.deepEqual(row, { enabled: true, revoked_at: null });
    assertError(await api(stack.baseUrl, 'PATCH', '/api/v1/links/lnk_01JAAAAAAAAAAAAAAAAAAAAAAA', { token: alice.token, body: { enabled: false } }), 404);
    assertError(await api(stack.baseUrl, 'DELETE', '/api/v1/links/not-a-link-id', { token: alice.token }), 404);
    assertError(await api(stack.baseUrl, 'POST', `/api/v1/files/${fileId}/links`, { body: {} }), 401);
  });

  test('validation: caps ≥ 1, expires_at in the future, valid CIDRs and addresses → else 422', async () => {
    const cases: [Record<string, unknown>, (string | number)[], string][] = [
      [{ max_downloads: 0 }, ['body', 'max_downloads'], 'greater_than_equal'],
      [{ max_views: -1 }, ['body', 'max_views'], 'greater_than_equal'],
      [{ max_downloads: 1.5 }, ['body', 'max_downloads'], 'int_type'],
      [{ max_views: '5' }, ['body', 'max_views'], 'int_type'],
      [{ expires_at: new Date(Date.now() - 60_000).toISOString() }, ['body', 'expires_at'], 'value_error'],
      [{ expires_at: 'tomorrow' }, ['body', 'expires_at'], 'value_error'],
      [{ allowed_ips: ['10.0.0.0/33'] }, ['body', 'allowed_ips', 0], 'value_error'],
      [{ allowed_ips: ['192.0.2.1', 'not-an-ip'] }, ['body', 'allowed_ips', 1], 'value_error'],
      [{ allowed_ips: ['2001:db8::/129'] }, ['body', 'allowed_ips', 0], 'value_error'],
      [{ allowed_ips: ['10.0.0.0/8/8'] }, ['body', 'allowed_ips', 0], 'value_error'],
      [{ allowed_ips: '10.0.0.0/8' }, ['body', 'allowed_ips'], 'value_error'],
      [{ require_email: ['nobody'] }, ['body', 'require_email', 0], 'value_error'],
      [{ password: '' }, ['body', 'password'], 'string_too_short'],
      [{ password: 42 }, ['body', 'password'], 'string_type'],
    ];
    for (const [body, loc, type] of cases) {
      const response = await api(stack.baseUrl, 'POST', `/api/v1/files/${fileId}/links`, { token: alice.token, body });
      assert.equal(response.status, 422, `${JSON.stringify(body)}: ${response.text}`);
      assert.equal(response.body.code, 'VALIDATION_ERROR');
      assert.deepEqual(response.body.detail.map((d: { loc: unknown }) => d.loc), [loc], `${JSON.stringify(body)}: ${response.text}`);
      assert.equal(response.body.detail[0].type, type, `${JSON.stringify(body)}: ${response.text}`);
    }
    assertError(await api(stack.baseUrl, 'PATCH', '/api/v1/links/lnk_01JAAAAAAAAAAAAAAAAAAAAAAA', { token: alice.token, body: {} }), 422, 'VALIDATION_ERROR');
  });

  test('the audit log records link actions with their settings, never the token or the password', async () => {
    const secret = 'hunter2-but-longer';
    const link = await createLink(stack, alice.token, 'folder', folderId, { password: secret, max_downloads: 2, require_email: ['@partner.test'] });
    await api(stack.baseUrl, 'PATCH', `/api/v1/links/${link.id}`, { token: alice.token, body: { enabled: false } });
    await api(stack.baseUrl, 'DELETE', `/api/v1/links/${link.id}`, { token: alice.token });
    const rows = await stack.services.db.selectFrom('audit_log').selectAll().where('tenant_id', '=', tenantId).execute();
    const created = rows.find((r) => r.action === 'link.created' && r.target_id === link.id);
    assert.ok(created);
    assert.deepEqual(created.details, {
      node_id: folderId,
      has_password: true,
      expires_at: null,
      allowed_ips: [],
      require_email: ['@partner.test'],
      max_downloads: 2,
      max_views: null,
    });
    const everything = JSON.stringify(rows);
    const tokenHash = createHash('sha256').update(link.token).digest('hex');
    for (const leaked of [link.token, tokenHash, secret, 'scrypt$']) assert.ok(!everything.includes(leaked), `the audit log holds ${leaked}`);
  });
});
