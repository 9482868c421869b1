// Link and download hardening (issue #7): a suspended tenant's public links and signed download URLs stop with
// 403 AUTHZ_TENANT_SUSPENDED (as its API calls do); HEAD on link content never counts a download; every
// content response carries X-Content-Type-Options: nosniff.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { burst, statusCounts } from '../helpers/race';
import { assertError } from '../helpers/assertions';
import { download, newUser, randomData, uploadDirect, type TestUser } from '../helpers/files';
import { createLink, publicApi, publicDownload } from './link-helpers';

describe('link and download hardening', () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack();
  });
  after(() => stack.close());

  async function ownerWithFile(name = 'page.html', data = Buffer.from('<script>alert(1)</script>')) {
    const tenantId = (await createTestTenant(stack)).id;
    const owner: TestUser = await newUser(stack, tenantId, 'owner');
    const upload = await uploadDirect(stack, owner.token, owner.rootFolderId, name, data);
    assert.equal(upload.status, 201);
    return { tenantId, owner, fileId: upload.body.file.id as string, data };
  }

  const setTenantActive = (tenantId: string, active: boolean) => stack.services.db.updateTable('tenants').set({ is_active: active }).where('id', '=', tenantId).execute();

  test('a suspended tenant: its public links and signed download URLs answer 403 AUTHZ_TENANT_SUSPENDED, and work again once reactivated', async () => {
    const { tenantId, owner, fileId, data } = await ownerWithFile();
    const open = await createLink(stack, owner.token, 'file', fileId);
    const locked = await createLink(stack, owner.token, 'file', fileId, { password: 'pw-suspended' });
    const emailOnly = await createLink(stack, owner.token, 'file', fileId, { require_email: ['x@example.test'] });
    const signed = await api(stack.baseUrl, 'GET', `/api/v1/files/${fileId}/download-url`, { token: owner.token });
    assert.equal(signed.status, 200, signed.text);
    const signedPath = new URL(signed.body.url).pathname + new URL(signed.body.url).search;
    assert.equal((await download(stack, signedPath)).status, 200);

    await setTenantActive(tenantId, false);
    assertError(await api(stack.baseUrl, 'GET', '/api/v1/me', { token: owner.token }), 403, 'AUTHZ_TENANT_SUSPENDED', 'its API');
    assertError(await publicApi(stack, 'GET', open.token), 403, 'AUTHZ_TENANT_SUSPENDED', 'metadata');
    const content = await publicDownload(stack, open.token);
    assertError({ status: content.status, body: JSON.parse(content.body.toString('utf8')) }, 403, 'AUTHZ_TENANT_SUSPENDED', 'link content');
    assertError(await publicApi(stack, 'POST', locked.token, '/unlock', { body: { password: 'pw-suspended' } }), 403, 'AUTHZ_TENANT_SUSPENDED', 'unlock');
    assertError(await publicApi(stack, 'POST', emailOnly.token, '/verify-email', { body: { email: 'x@example.test' } }), 403, 'AUTHZ_TENANT_SUSPENDED', 'verify-email');
    const viaSigned = await download(stack, signedPath);
    assertError({ status: viaSigned.status, body: JSON.parse(viaSigned.body.toString('utf8')) }, 403, 'AUTHZ_TENANT_SUSPENDED', 'signed URL');
    // Nothing was counted or mailed while suspended.
    const row = await stack.services.db.selectFrom('links').select(['view_count', 'download_count']).where('id', '=', open.id).executeTakeFirstOrThrow();
    assert.deepEqual(row, { view_count: 0, download_count: 0 });
    assert.equal((await stack.services.db.selectFrom('mail_outbox').select('id').where('tenant_id', '=', tenantId).execute()).length, 0);

    await setTenantActive(tenantId, true);
    const again = await publicDownload(stack, open.token);
    assert.equal(again.status, 200);
    assert.ok(again.body.equals(data));
    assert.equal((await download(stack, signedPath)).status, 200);
  });

  test('20 parallel HEADs on link content count nothing (headers as for GET); a GET counts one; HEAD at the cap → 429', async () => {
    const { owner, fileId, data } = await ownerWithFile('data.bin', randomData(3000));
    const link = await createLink(stack, owner.token, 'file', fileId, { max_downloads: 1 });
    const heads = await burst(stack.baseUrl, 20, (_, dispatcher) => fetch(`${stack.baseUrl}/api/v1/public/links/${link.token}/content`, { method: 'HEAD', dispatcher } as RequestInit));
    assert.deepEqual(statusCounts(heads), { 200: 20 });
    for (const head of heads) {
      assert.equal(head.headers.get('content-length'), String(data.length));
      assert.ok(head.headers.get('etag'));
      assert.equal(head.headers.get('x-content-type-options'), 'nosniff');
    }
    const ranged = await fetch(`${stack.baseUrl}/api/v1/public/links/${link.token}/content`, { method: 'HEAD', headers: { range: 'bytes=0-99' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers.get('content-length'), '100');
    assert.equal(ranged.headers.get('content-range'), `bytes 0-99/${data.length}`);
    const metaHead = await fetch(`${stack.baseUrl}/api/v1/public/links/${link.token}`, { method: 'HEAD' });
    assert.equal(metaHead.status, 200);
    let row = await stack.services.db.selectFrom('links').select(['download_count', 'view_count']).where('id', '=', link.id).executeTakeFirstOrThrow();
    assert.deepEqual(row, { download_count: 0, view_count: 0 }, 'HEAD never counts');

    const got = await publicDownload(stack, link.token);
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(data));
    row = await stack.services.db.selectFrom('links').select(['download_count', 'view_count']).where('id', '=', link.id).executeTakeFirstOrThrow();
    assert.deepEqual(row, { download_count: 1, view_count: 0 });
    const capped = await fetch(`${stack.baseUrl}/api/v1/public/links/${link.token}/content`, { method: 'HEAD' });
    assert.equal(capped.status, 429);
    assert.ok(capped.headers.get('retry-after'));
  });

  test('every content response carries X-Content-Type-Options: nosniff (file content, version content, signed URL, link content)', async () => {
    const { owner, fileId } = await ownerWithFile();
    const versions = await api(stack.baseUrl, 'GET', `/api/v1/files/${fileId}/versions`, { token: owner.token });
    const signed = await api(stack.baseUrl, 'GET', `/api/v1/files/${fileId}/download-url`, { token: owner.token });
    const link = await createLink(stack, owner.token, 'file', fileId);
    const responses = {
      'file content': await download(stack, `/api/v1/files/${fileId}/content`, { token: owner.token }),
      'file content range': await download(stack, `/api/v1/files/${fileId}/content`, { token: owner.token, headers: { range: 'bytes=0-3' } }),
      'version content': await download(stack, `/api/v1/files/${fileId}/versions/${versions.body.items[0].id}/content`, { token: owner.token }),
      'signed URL': await download(stack, new URL(signed.body.url).pathname),
      'link content': await publicDownload(stack, link.token),
    };
    for (const [what, response] of Object.entries(responses)) {
      assert.ok(response.status === 200 || response.status === 206, `${what}: ${response.status}`);
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff', what);
    }
  });
});
