// External links, recipient side (spec §8, seed 003): metadata, folder listings (subfolders only inside the
// linked folder), downloads with Range, 404/410 per condition, and view/download caps that stay exact under
// 50 parallel requests (one atomic UPDATE per use).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { pino } from 'pino';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, randomData, sha256, uploadDirect, type TestUser } from '../helpers/files';
import { assertError, createLink, publicApi, publicDownload } from './link-helpers';

describe('external links: recipient side', () => {
  let stack: TestStack;
  let alice: TestUser;
  let data: Buffer;
  let fileId: string;
  let sharedId: string;
  let subId: string;
  let deepFileId: string;
  let deepData: Buffer;
  let outsideFileId: string;
  let outsideFolderId: string;

  const folder = async (parentId: string, name: string) => {
    const response = await api(stack.baseUrl, 'POST', '/api/v1/folders', { token: alice.token, body: { parent_id: parentId, name } });
    assert.equal(response.status, 201, response.text);
    return response.body.id as string;
  };
  const upload = async (parentId: string, name: string, bytes: Buffer) => {
    const response = await uploadDirect(stack, alice.token, parentId, name, bytes);
    assert.equal(response.status, 201, JSON.stringify(response.body));
    return response.body.file.id as string;
  };

  before(async () => {
    stack = await startTestStack();
    const tenantId = (await createTestTenant(stack)).id;
    alice = await newUser(stack, tenantId, 'alice');
    sharedId = await folder(alice.rootFolderId, 'Shared');
    subId = await folder(sharedId, 'Sub');
    data = randomData(100_000);
    fileId = await upload(sharedId, 'report.bin', data);
    deepData = randomData(5000);
    deepFileId = await upload(subId, 'deep.bin', deepData);
    for (const name of ['b.txt', 'c.txt', 'd.txt']) await upload(sharedId, name, randomData(10));
    outsideFolderId = await folder(alice.rootFolderId, 'Private');
    outsideFileId = await upload(outsideFolderId, 'secret.txt', randomData(50));
  });
  after(() => stack.close());

  const counts = (linkId: string) => stack.services.db.selectFrom('links').select(['download_count', 'view_count']).where('id', '=', linkId).executeTakeFirstOrThrow();

  test('a file link: metadata (counts a view), full download and ranges (each counts a download)', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId, { max_downloads: 100 });
    const meta = await publicApi(stack, 'GET', link.token);
    assert.equal(meta.status, 200, meta.text);
    assert.deepEqual(
      { ...meta.body, updated_at: undefined },
      { id: fileId, kind: 'file', name: 'report.bin', size: data.length, checksum_sha256: sha256(data), updated_at: undefined, expires_at: null, views_remaining: null, downloads_remaining: 100 },
    );
    assert.equal(meta.headers.get('cache-control'), 'no-store');
    assert.equal(meta.headers.get('referrer-policy'), 'no-referrer');
    assert.deepEqual(await counts(link.id), { download_count: 0, view_count: 1 });

    const full = await publicDownload(stack, link.token);
    assert.equal(full.status, 200);
    assert.ok(full.body.equals(data));
    assert.equal(full.headers.get('content-length'), String(data.length));
    assert.equal(full.headers.get('x-checksum-sha256'), sha256(data));
    assert.match(full.headers.get('content-disposition') ?? '', /filename\*=UTF-8''report\.bin/);

    const part = await publicDownload(stack, link.token, '', { range: 'bytes=1000-1999' });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 1000-1999/${data.length}`);
    assert.ok(part.body.equals(data.subarray(1000, 2000)));
    const suffix = await publicDownload(stack, link.token, '', { range: 'bytes=-10' });
    assert.equal(suffix.status, 206);
    assert.ok(suffix.body.equals(data.subarray(data.length - 10)));
    assert.deepEqual(await counts(link.id), { download_count: 3, view_count: 1 });

    // A file link has no children, and file_id cannot point elsewhere.
    assertError(await publicApi(stack, 'GET', link.token, '/children'), 404);
    assertError(await publicDownload(stack, link.token, `?file_id=${outsideFileId}`), 404);
  });

  test('a folder link: listing with pagination, subfolders via folder_id, downloads via file_id — only inside the folder', async () => {
    const link = await createLink(stack, alice.token, 'folder', sharedId);
    const meta = await publicApi(stack, 'GET', link.token);
    assert.equal(meta.status, 200, meta.text);
    assert.equal(meta.body.kind, 'folder');
    assert.equal(meta.body.name, 'Shared');
    assert.equal(meta.body.checksum_sha256, null);

    const listing = await publicApi(stack, 'GET', link.token, '/children');
    assert.equal(listing.status, 200, listing.text);
    assert.deepEqual(listing.body.items.map((n: { name: string }) => n.name), ['b.txt', 'c.txt', 'd.txt', 'report.bin', 'Sub']);
    assert.deepEqual(Object.keys(listing.body.items[0]).sort(), ['checksum_sha256', 'id', 'kind', 'name', 'size', 'updated_at']);
    assert.ok(!listing.text.includes(alice.userId) && !listing.text.includes(alice.spaceId), 'no internal ids leak');

    const names: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<typeof publicApi>> = await publicApi(stack, 'GET', link.token, `/children?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(page.status, 200, page.text);
      names.push(...page.body.items.map((n: { name: string }) => n.name));
      cursor = page.body.next_cursor;
    } while (cursor);
    assert.deepEqual(names, ['b.txt', 'c.txt', 'd.txt', 'report.bin', 'Sub']);

    const sub = await publicApi(stack, 'GET', link.token, `/children?folder_id=${subId}`);
    assert.equal(sub.status, 200, sub.text);
    assert.deepEqual(sub.body.items.map((n: { id: string }) => n.id), [deepFileId]);
    const self = await publicApi(stack, 'GET', link.token, `/children?folder_id=${sharedId}&limit=1`);
    assert.equal(self.status, 200);

    const deep = await publicDownload(stack, link.token, `?file_id=${deepFileId}`);
    assert.equal(deep.status, 200);
    assert.ok(deep.body.equals(deepData));
    const deepRange = await publicDownload(stack, link.token, `?file_id=${deepFileId}`, { range: 'bytes=10-19' });
    assert.equal(deepRange.status, 206);
    assert.ok(deepRange.body.equals(deepData.subarray(10, 20)));

    // Outside the linked folder: its parent, a sibling folder, a file elsewhere, unknown ids → 404.
    for (const id of [outsideFolderId, alice.rootFolderId, 'fld_01JAAAAAAAAAAAAAAAAAAAAAAA']) {
      assertError(await publicApi(stack, 'GET', link.token, `/children?folder_id=${id}`), 404);
    }
    for (const id of [outsideFileId, 'fil_01JAAAAAAAAAAAAAAAAAAAAAAA', subId]) assertError(await publicDownload(stack, link.token, `?file_id=${id}`), 404);
    assertError(await publicApi(stack, 'GET', link.token, `/children?folder_id=${deepFileId}`), 404);
    const missing = await publicDownload(stack, link.token);
    assertError(missing, 422, 'VALIDATION_ERROR');
    assert.deepEqual(JSON.parse(missing.body.toString()).detail[0].loc, ['query', 'file_id']);
    assertError(await publicApi(stack, 'GET', link.token, '/children?limit=0'), 422, 'VALIDATION_ERROR');
    assertError(await publicApi(stack, 'GET', link.token, '/children?cursor=bogus'), 400, 'INVALID_CURSOR');

    // Only requests that passed every check were counted.
    assert.deepEqual(await counts(link.id), { download_count: 2, view_count: 1 + 1 + 3 + 2 }, "metadata, listing, three pages, subfolder, self");

    // Something trashed inside the folder is gone for the link too.
    const trashed = await upload(subId, 'soon-gone.txt', randomData(10));
    assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/files/${trashed}`, { token: alice.token })).status, 204);
    assertError(await publicDownload(stack, link.token, `?file_id=${trashed}`), 410, 'IN_TRASH');
  });

  test('unknown and malformed tokens → 404', async () => {
    for (const token of ['AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'x', '..%2F..']) {
      assertError(await publicApi(stack, 'GET', token), 404);
      assertError(await publicApi(stack, 'GET', token, '/children'), 404);
      assertError(await publicDownload(stack, token), 404);
      assertError(await publicApi(stack, 'POST', token, '/unlock', { body: { password: 'x' } }), 404);
    }
  });

  test('410: expired, disabled (200 again when re-enabled), revoked, and a trashed file (200 again when restored)', async () => {
    const expired = await createLink(stack, alice.token, 'file', fileId, { expires_at: new Date(Date.now() + 3600_000).toISOString() });
    assert.equal((await publicApi(stack, 'GET', expired.token)).status, 200);
    await stack.services.db.updateTable('links').set({ expires_at: sql`now() - interval '1 second'` }).where('id', '=', expired.id).execute();
    assertError(await publicApi(stack, 'GET', expired.token), 410, 'LINK_EXPIRED');
    assertError(await publicDownload(stack, expired.token), 410, 'LINK_EXPIRED');
    const listed = await api(stack.baseUrl, 'GET', `/api/v1/files/${fileId}/links`, { token: alice.token });
    assert.equal(listed.body.items.find((l: { id: string }) => l.id === expired.id).status, 'expired');

    const toggled = await createLink(stack, alice.token, 'file', fileId);
    await api(stack.baseUrl, 'PATCH', `/api/v1/links/${toggled.id}`, { token: alice.token, body: { enabled: false } });
    assertError(await publicApi(stack, 'GET', toggled.token), 410, 'LINK_DISABLED');
    assertError(await publicDownload(stack, toggled.token), 410, 'LINK_DISABLED');
    await api(stack.baseUrl, 'PATCH', `/api/v1/links/${toggled.id}`, { token: alice.token, body: { enabled: true } });
    assert.equal((await publicApi(stack, 'GET', toggled.token)).status, 200);
    assert.equal((await publicDownload(stack, toggled.token)).status, 200);

    await api(stack.baseUrl, 'DELETE', `/api/v1/links/${toggled.id}`, { token: alice.token });
    assertError(await publicApi(stack, 'GET', toggled.token), 410, 'LINK_REVOKED');
    assertError(await publicDownload(stack, toggled.token), 410, 'LINK_REVOKED');

    const victimId = await upload(sharedId, 'to-trash.txt', randomData(20));
    const onFile = await createLink(stack, alice.token, 'file', victimId);
    const onFolder = await createLink(stack, alice.token, 'folder', subId);
    assert.equal((await publicDownload(stack, onFile.token)).status, 200);
    assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/files/${victimId}`, { token: alice.token })).status, 204);
    assertError(await publicApi(stack, 'GET', onFile.token), 410, 'IN_TRASH');
    assertError(await publicDownload(stack, onFile.token), 410, 'IN_TRASH');
    const restored = await api(stack.baseUrl, 'POST', `/api/v1/trash/${victimId}/restore`, { token: alice.token });
    assert.equal(restored.status, 200, restored.text);
    assert.equal((await publicDownload(stack, onFile.token)).status, 200);

    // Trashing an ancestor folder takes the linked subfolder with it.
    const parentId = await folder(alice.rootFolderId, 'Doomed');
    const childId = await folder(parentId, 'Inner');
    const inner = await createLink(stack, alice.token, 'folder', childId);
    assert.equal((await publicApi(stack, 'GET', inner.token, '/children')).status, 200);
    assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/folders/${parentId}`, { token: alice.token })).status, 204);
    assertError(await publicApi(stack, 'GET', inner.token, '/children'), 410, 'IN_TRASH');
    assert.equal((await publicApi(stack, 'GET', onFolder.token)).status, 200, 'other links are untouched');
  });

  test('50 parallel downloads of a link with max_downloads=10: exactly 10 × 200 and 40 × 429 with Retry-After; download_count = 10', async () => {
    const link = await createLink(stack, alice.token, 'file', fileId, { max_downloads: 10 });
    const responses = await Promise.all(Array.from({ length: 50 }, () => publicDownload(stack, link.token)));
    const ok = responses.filter((r) => r.status === 200);
    const limited = responses.filter((r) => r.status === 429);
    assert.equal(ok.length, 10, `statuses: ${responses.map((r) => r.status).join(',')}`);
    assert.equal(limited.length, 40);
    for (const response of ok) assert.ok(response.body.equals(data), 'every successful download is complete');
    for (const response of limited) {
      assert.equal(response.headers.get('retry-after'), '3600');
      assert.equal(JSON.parse(response.body.toString()).code, 'LINK_DOWNLOAD_LIMIT_REACHED');
    }
    assert.deepEqual(await counts(link.id), { download_count: 10, view_count: 0 });
    // Views are a separate cap; the exhausted download cap shows in the metadata.
    const meta = await publicApi(stack, 'GET', link.token);
    assert.equal(meta.status, 200);
    assert.equal(meta.body.downloads_remaining, 0);
    assertError(await publicDownload(stack, link.token, '', { range: 'bytes=0-0' }), 429, 'LINK_DOWNLOAD_LIMIT_REACHED');
  });

  test('20 parallel views of a link with max_views=5 (metadata and listings alike): exactly 5 × 200 and 15 × 429; view_count = 5', async () => {
    const link = await createLink(stack, alice.token, 'folder', sharedId, { max_views: 5 });
    const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => publicApi(stack, 'GET', link.token, i % 2 ? '/children' : '')));
    assert.equal(responses.filter((r) => r.status === 200).length, 5, `statuses: ${responses.map((r) => r.status).join(',')}`);
    const limited = responses.filter((r) => r.status === 429);
    assert.equal(limited.length, 15);
    for (const response of limited) {
      assert.equal(response.headers.get('retry-after'), '3600');
      assert.equal(response.body.code, 'LINK_VIEW_LIMIT_REACHED');
    }
    assert.deepEqual(await counts(link.id), { download_count: 0, view_count: 5 });
    // Downloads are not views: the file inside is still downloadable.
    assert.equal((await publicDownload(stack, link.token, `?file_id=${fileId}`)).status, 200);
  });

  test('request logs never hold a link token, a password or an emailed code', async () => {
    const lines: string[] = [];
    const original = stack.services.logger;
    // The request pipeline logs through ctx.deps.logger, which is this services object.
    stack.services.logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    try {
      const link = await createLink(stack, alice.token, 'file', fileId, { password: 'log-me-not', require_email: ['@partner.test'] });
      await publicApi(stack, 'GET', link.token);
      await publicApi(stack, 'GET', link.token, '/children?limit=2');
      await publicDownload(stack, link.token, '?file_id=x', { 'x-link-password': 'log-me-not' });
      await publicApi(stack, 'POST', link.token, '/unlock', { body: { password: 'log-me-not' } });
      await publicApi(stack, 'POST', link.token, '/unlock', { body: { wrong: true } });
      await publicApi(stack, 'POST', link.token, '/verify-email', { body: { email: 'pat@partner.test' } });
      const mail = await stack.services.db.selectFrom('mail_outbox').select('body').where('recipient', '=', 'pat@partner.test').executeTakeFirstOrThrow();
      const code = /\b(\d{6})\b/.exec(mail.body)![1]!;
      await publicApi(stack, 'POST', link.token, '/verify-email/confirm', { body: { email: 'pat@partner.test', code } });
      const requests = lines.filter((line) => line.includes('"msg":"request"'));
      assert.ok(requests.length >= 7, `${requests.length} request lines`);
      assert.ok(requests.some((line) => line.includes('/public/links/[redacted]/verify-email/confirm')), requests.join(''));
      const everything = lines.join('');
      for (const secret of [link.token, 'log-me-not', `"${code}"`]) assert.ok(!everything.includes(secret), `the log holds ${secret}`);
    } finally {
      stack.services.logger = original;
    }
  });
});
