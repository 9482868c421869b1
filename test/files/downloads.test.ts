// Downloads (spec §5, RFC 9110): GET /files/{id}/content with Range/ETag/If-None-Match/If-Range across chunk
// boundaries, 0-byte files, version content, signed download URLs (no bearer token, expiry, tampering, trash)
// and tenant isolation. Every body is compared byte for byte with the uploaded buffer.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Readable } from 'node:stream';
import { signDownload } from '../../src/services/signed-urls';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { download, newUser, randomData, sha256, uploadDirect, uploadResumable, type TestUser } from '../helpers/files';
import { s3TestEnv } from '../helpers/s3';
import { chunkKey } from '../../src/services/chunk-store';

const size = 200_000;
const chunkSize = 65536;

describe('downloads', () => {
  let stack: TestStack;
  let tenantId: string;
  let alice: TestUser;
  let data: Buffer;
  let fileId: string;
  let contentPath: string;

  before(async () => {
    stack = await startTestStack({ workers: true });
    tenantId = (await createTestTenant(stack)).id;
    alice = await newUser(stack, tenantId, 'alice');
    data = randomData(size);
    const { finalize } = await uploadResumable(stack, alice.token, alice.rootFolderId, 'multi-chunk.bin', data, { chunkSize });
    assert.equal(finalize.status, 200, finalize.text);
    fileId = finalize.body.file.id;
    contentPath = `/api/v1/files/${fileId}/content`;
    // The manifest really spans several chunks (the range tests below depend on it).
    const chunks = await stack.services.db.selectFrom('version_chunks').select(['index', 'offset', 'size']).where('version_id', '=', finalize.body.version.id).orderBy('index').execute();
    assert.deepEqual(
      chunks.map((c) => [c.offset, c.size]),
      [
        [0, 65536],
        [65536, 65536],
        [131072, 65536],
        [196608, 3392],
      ],
    );
  });
  after(() => stack.close());

  /** GET `path` as `token` (alice by default; null sends no Authorization header at all). */
  const get = (headers: Record<string, string> = {}, path = contentPath, token: string | null = alice.token) => download(stack, path, { token: token ?? undefined, headers });

  /** Asserts a 206 for [start, end] of `source` with the right Content-Range, Content-Length and bytes. */
  function assertPartial(response: Awaited<ReturnType<typeof get>>, start: number, end: number, source = data) {
    assert.equal(response.status, 206, response.body.toString('utf8').slice(0, 200));
    assert.equal(response.headers.get('content-range'), `bytes ${start}-${end}/${source.length}`);
    assert.equal(response.headers.get('content-length'), String(end - start + 1));
    assert.equal(response.headers.get('accept-ranges'), 'bytes');
    assert.equal(response.headers.get('etag'), `"${sha256(source)}"`);
    assert.equal(response.body.length, end - start + 1);
    assert.ok(response.body.equals(source.subarray(start, end + 1)), `bytes ${start}-${end} differ from the source`);
  }

  function assertFull(response: Awaited<ReturnType<typeof get>>, source = data) {
    assert.equal(response.status, 200, response.body.toString('utf8').slice(0, 200));
    assert.equal(response.headers.get('content-range'), null);
    assert.equal(response.headers.get('content-length'), String(source.length));
    assert.equal(response.body.length, source.length);
    assert.ok(response.body.equals(source), 'the body differs from the source');
  }

  test('a full GET: 200 with Content-Length, strong ETag, X-Checksum-Sha256, Accept-Ranges and the exact bytes', async () => {
    const response = await get();
    assertFull(response);
    assert.equal(response.headers.get('etag'), `"${sha256(data)}"`);
    assert.equal(response.headers.get('x-checksum-sha256'), sha256(data));
    assert.equal(response.headers.get('accept-ranges'), 'bytes');
    assert.equal(response.headers.get('content-type'), 'application/octet-stream');
    assert.match(response.headers.get('content-disposition') ?? '', /^attachment; filename\*=UTF-8''multi-chunk\.bin$/);
  });

  test('single ranges: first byte, last byte, suffixes, open ends, chunk boundaries, clamped ends', async (t) => {
    const cases: [string, number, number][] = [
      ['bytes=0-0', 0, 0],
      ['bytes=-1', size - 1, size - 1],
      ['bytes=-500', size - 500, size - 1],
      ['bytes=199990-', 199_990, size - 1],
      ['bytes=65530-65545', 65_530, 65_545], // crosses the chunk 0 / chunk 1 boundary
      ['bytes=65535-65536', 65_535, 65_536], // exactly the last byte of one chunk and the first of the next
      ['bytes=65536-65536', 65_536, 65_536], // the first byte of the second chunk alone
      ['bytes=65000-140000', 65_000, 140_000], // spans three chunks
      ['bytes=196607-196608', 196_607, 196_608], // into the short last chunk
      ['bytes=100-65600', 100, 65_600],
      ['bytes=0-', 0, size - 1], // the whole content, as a 206
      ['bytes=199000-999999', 199_000, size - 1], // end beyond the size is clamped
      ['bytes=-300000', 0, size - 1], // a suffix longer than the content is the whole content
      [`bytes=0-${size - 1}`, 0, size - 1],
      [`bytes=${size - 1}-${size - 1}`, size - 1, size - 1],
    ];
    for (const [range, start, end] of cases) {
      await t.test(range, async () => assertPartial(await get({ range }), start, end));
    }
  });

  test('unsatisfiable ranges: 416 with Content-Range bytes */size and RANGE_NOT_SATISFIABLE', async () => {
    for (const range of ['bytes=200000-', 'bytes=300000-300010', `bytes=${size}-${size}`, 'bytes=-0']) {
      const response = await get({ range });
      assert.equal(response.status, 416, `${range}: ${response.status}`);
      assert.equal(response.headers.get('content-range'), `bytes */${size}`, range);
      const body = JSON.parse(response.body.toString('utf8'));
      assert.equal(body.code, 'RANGE_NOT_SATISFIABLE', range);
      assert.equal(typeof body.detail, 'string');
      assert.ok(body.request_id);
    }
  });

  test('malformed, foreign-unit and multi-range headers are ignored: 200 with the full body', async (t) => {
    for (const range of ['bytes=5-2', 'items=0-1', 'bytes=0-1,5-6', 'bytes=-', 'bytes=abc-def', 'bytes 0-1', 'bytes=1.5-3']) {
      await t.test(range, async () => assertFull(await get({ range })));
    }
  });

  test('If-None-Match: the ETag → 304 without a body; a list containing it, W/ and * also match; another → 200', async () => {
    const etag = `"${sha256(data)}"`;
    for (const value of [etag, `"nope", ${etag}`, `W/${etag}`, '*']) {
      const response = await get({ 'if-none-match': value });
      assert.equal(response.status, 304, value);
      assert.equal(response.body.length, 0, value);
      assert.equal(response.headers.get('etag'), etag, `${value}: a 304 carries the ETag (RFC 9110 §15.4.5)`);
    }
    // 304 wins over a Range as well.
    const withRange = await get({ 'if-none-match': etag, range: 'bytes=0-9' });
    assert.equal(withRange.status, 304);
    assert.equal(withRange.body.length, 0);

    assertFull(await get({ 'if-none-match': `"${'0'.repeat(64)}"` }));
    assertFull(await get({ 'if-none-match': `"${sha256(data).toUpperCase()}"` })); // entity tags compare case-sensitively
  });

  test('If-Range: the current ETag honours the Range, another ETag (or a weak one) sends the full content', async () => {
    const etag = `"${sha256(data)}"`;
    assertPartial(await get({ range: 'bytes=10-20', 'if-range': etag }), 10, 20);
    assertFull(await get({ range: 'bytes=10-20', 'if-range': `"${'f'.repeat(64)}"` }));
    // If-Range needs a strong comparison: a weak validator never matches (RFC 9110 §13.1.5).
    assertFull(await get({ range: 'bytes=10-20', 'if-range': `W/${etag}` }));
    // If-Range with a date while no Last-Modified is sent: the Range is ignored.
    assertFull(await get({ range: 'bytes=10-20', 'if-range': new Date(Date.now() + 3600_000).toUTCString() }));
    // An unsatisfiable Range with a non-matching If-Range is ignored too (full 200, never 416).
    assertFull(await get({ range: 'bytes=300000-', 'if-range': `"${'f'.repeat(64)}"` }));
  });

  test('HEAD answers the GET headers without a body', async () => {
    const response = await fetch(`${stack.baseUrl}${contentPath}`, { method: 'HEAD', headers: { authorization: `Bearer ${alice.token}` } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-length'), String(size));
    assert.equal(response.headers.get('etag'), `"${sha256(data)}"`);
    assert.equal(response.headers.get('x-checksum-sha256'), sha256(data));
    assert.equal((await response.arrayBuffer()).byteLength, 0);
  });

  test('a 0-byte file: 200 with Content-Length 0; any byte range is unsatisfiable', async () => {
    const empty = Buffer.alloc(0);
    const upload = await uploadDirect(stack, alice.token, alice.rootFolderId, 'empty.txt', empty);
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    assert.equal(upload.body.version.size, 0);
    const path = `/api/v1/files/${upload.body.file.id}/content`;
    const full = await get({}, path);
    assert.equal(full.status, 200);
    assert.equal(full.headers.get('content-length'), '0');
    assert.equal(full.body.length, 0);
    assert.equal(full.headers.get('etag'), `"${sha256(empty)}"`);
    assert.equal(full.headers.get('x-checksum-sha256'), sha256(empty));
    assert.equal(full.headers.get('content-type'), 'text/plain; charset=utf-8');
    for (const range of ['bytes=0-', 'bytes=0-0', 'bytes=-1']) {
      const response = await get({ range }, path);
      assert.equal(response.status, 416, range);
      assert.equal(response.headers.get('content-range'), 'bytes */0', range);
      assert.equal(JSON.parse(response.body.toString('utf8')).code, 'RANGE_NOT_SATISFIABLE');
    }
    const notModified = await get({ 'if-none-match': `"${sha256(empty)}"` }, path);
    assert.equal(notModified.status, 304);
  });

  test('a small direct upload (one 8 MiB chunk) serves ranges inside its single chunk', async () => {
    const small = randomData(10_000);
    const upload = await uploadDirect(stack, alice.token, alice.rootFolderId, 'small.bin', small);
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    const path = `/api/v1/files/${upload.body.file.id}/content`;
    assertFull(await get({}, path), small);
    assertPartial(await get({ range: 'bytes=1234-5678' }, path), 1234, 5678, small);
    assertPartial(await get({ range: 'bytes=-10' }, path), 9990, 9999, small);
  });

  test('version content: after a second upload the old version still serves its own bytes, ETag and ranges', async () => {
    const v1 = randomData(150_000);
    const v2 = randomData(90_000);
    const first = await uploadResumable(stack, alice.token, alice.rootFolderId, 'versioned.bin', v1, { chunkSize });
    assert.equal(first.finalize.status, 200, first.finalize.text);
    const id = first.finalize.body.file.id;
    const second = await uploadDirect(stack, alice.token, alice.rootFolderId, 'versioned.bin', v2);
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.equal(second.body.file.id, id);
    assert.equal(second.body.version.number, 2);

    assertFull(await get({}, `/api/v1/files/${id}/content`), v2);

    const versions = await api(stack.baseUrl, 'GET', `/api/v1/files/${id}/versions`, { token: alice.token });
    assert.equal(versions.status, 200);
    assert.deepEqual(
      versions.body.items.map((v: { number: number; is_current: boolean; size: number; checksum_sha256: string }) => [v.number, v.is_current, v.size, v.checksum_sha256]),
      [
        [2, true, v2.length, sha256(v2)],
        [1, false, v1.length, sha256(v1)],
      ],
    );
    const oldPath = `/api/v1/files/${id}/versions/${first.finalize.body.version.id}/content`;
    const old = await get({}, oldPath);
    assertFull(old, v1);
    assert.equal(old.headers.get('etag'), `"${sha256(v1)}"`);
    assert.equal(old.headers.get('x-checksum-sha256'), sha256(v1));
    assertPartial(await get({ range: 'bytes=65530-65545' }, oldPath), 65_530, 65_545, v1);
    assert.equal((await get({ 'if-none-match': `"${sha256(v1)}"` }, oldPath)).status, 304);
    // A version of another file is not found through this file.
    const foreign = await get({}, `/api/v1/files/${fileId}/versions/${first.finalize.body.version.id}/content`);
    assert.equal(foreign.status, 404);
  });

  test('redirect=1 on the filesystem driver: the API streams the bytes and says why there is no redirect', async () => {
    const data = randomData(1000);
    const upload = await uploadDirect(stack, alice.token, alice.rootFolderId, 'local.bin', data);
    const response = await fetch(`${stack.baseUrl}/api/v1/files/${upload.body.file.id}/content?redirect=1`, { headers: { authorization: `Bearer ${alice.token}` }, redirect: 'manual' });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-redirect-unavailable'), 'not on an object store');
    assert.ok(Buffer.from(await response.arrayBuffer()).equals(data));
    const bad = await fetch(`${stack.baseUrl}/api/v1/files/${upload.body.file.id}/content?redirect=maybe`, { headers: { authorization: `Bearer ${alice.token}` } });
    assert.equal(bad.status, 422);
  });

  describe('signed download URLs', () => {
    /** The signed URL's path, fetched on the test server (the stack's public URL has port 0). */
    function signedPath(url: string): string {
      assert.ok(url.startsWith(`${stack.config.publicUrl}/api/v1/downloads/`), url);
      return new URL(url).pathname;
    }

    test('GET /files/{id}/download-url: a 15-minute URL that works without a bearer token, with Range and ETag', async () => {
      const before = Date.now();
      const response = await api(stack.baseUrl, 'GET', `/api/v1/files/${fileId}/download-url`, { token: alice.token });
      assert.equal(response.status, 200, response.text);
      const expiresAt = Date.parse(response.body.expires_at);
      assert.ok(Math.abs(expiresAt - (before + 15 * 60_000)) < 5_000, `expires_at ${response.body.expires_at} is not about now + 15 min`);
      const path = signedPath(response.body.url);

      const full = await get({}, path, null);
      assertFull(full);
      assert.equal(full.headers.get('etag'), `"${sha256(data)}"`);
      assert.equal(full.headers.get('x-checksum-sha256'), sha256(data));
      assertPartial(await get({ range: 'bytes=65530-65545' }, path, null), 65_530, 65_545);
      assertPartial(await get({ range: 'bytes=-500' }, path, null), size - 500, size - 1);
      const unsatisfiable = await get({ range: 'bytes=300000-300010' }, path, null);
      assert.equal(unsatisfiable.status, 416);
      assert.equal(unsatisfiable.headers.get('content-range'), `bytes */${size}`);
      assert.equal((await get({ 'if-none-match': `"${sha256(data)}"` }, path, null)).status, 304);
    });

    test('a tampered token, a token signed with another key and garbage → 404; an expired token → 410', async () => {
      const response = await api(stack.baseUrl, 'GET', `/api/v1/files/${fileId}/download-url`, { token: alice.token });
      const token = signedPath(response.body.url).split('/').pop()!;
      const [payload, signature] = token.split('.') as [string, string];

      const flipped = signature.slice(0, -1) + (signature.endsWith('A') ? 'B' : 'A');
      const version = await stack.services.db.selectFrom('nodes').select('current_version_id').where('id', '=', fileId).executeTakeFirstOrThrow();
      const otherPayload = Buffer.from(JSON.stringify([tenantId, fileId, version.current_version_id, Math.floor(Date.now() / 1000) + 999_999])).toString('base64url');
      const grant = { tenantId, fileId, versionId: version.current_version_id!, expiresAt: Math.floor(Date.now() / 1000) + 600 };
      for (const bad of [
        `${payload}.${flipped}`, // signature altered
        `${otherPayload}.${signature}`, // payload altered (a later expiry) under the old signature
        signDownload(randomBytes(32), grant), // another server's key
        'garbage',
        `${payload}.`,
        `.${signature}`,
      ]) {
        const got = await get({}, `/api/v1/downloads/${bad}`, null);
        assert.equal(got.status, 404, `${bad}: ${got.status}`);
        assert.equal(JSON.parse(got.body.toString('utf8')).code, 'NOT_FOUND');
      }

      // Correctly signed but expired a second ago.
      const expired = signDownload(stack.services.secretKey, { ...grant, expiresAt: Math.floor(Date.now() / 1000) - 1 });
      const gone = await get({}, `/api/v1/downloads/${expired}`, null);
      assert.equal(gone.status, 410);
      assert.equal(JSON.parse(gone.body.toString('utf8')).code, 'URL_EXPIRED');
      // Correctly signed and still valid: works.
      assertFull(await get({}, `/api/v1/downloads/${signDownload(stack.services.secretKey, grant)}`, null));
      // Correctly signed, but for this file under another tenant: not found.
      const otherTenant = (await createTestTenant(stack)).id;
      const crossTenant = await get({}, `/api/v1/downloads/${signDownload(stack.services.secretKey, { ...grant, tenantId: otherTenant })}`, null);
      assert.equal(crossTenant.status, 404);
    });

    test('the signed URL of a file moved to the trash (or inside a trashed folder) → 410; restored → works again', async () => {
      const bytes = randomData(70_000);
      const upload = await uploadDirect(stack, alice.token, alice.rootFolderId, 'to-trash.bin', bytes);
      assert.equal(upload.status, 201, JSON.stringify(upload.body));
      const id = upload.body.file.id;
      const url = await api(stack.baseUrl, 'GET', `/api/v1/files/${id}/download-url`, { token: alice.token });
      const path = signedPath(url.body.url);
      assertFull(await get({}, path, null), bytes);

      assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/files/${id}`, { token: alice.token })).status, 204);
      const trashed = await get({}, path, null);
      assert.equal(trashed.status, 410);
      assert.equal(JSON.parse(trashed.body.toString('utf8')).code, 'IN_TRASH');
      assert.equal((await get({}, `/api/v1/files/${id}/content`)).status, 410);

      assert.equal((await api(stack.baseUrl, 'POST', `/api/v1/trash/${id}/restore`, { token: alice.token })).status, 200);
      assertFull(await get({}, path, null), bytes);

      // A file inside a trashed folder is gone through its signed URL too.
      const folder = await api(stack.baseUrl, 'POST', '/api/v1/folders', { token: alice.token, body: { parent_id: alice.rootFolderId, name: 'doomed' } });
      assert.equal(folder.status, 201, folder.text);
      const inner = await uploadDirect(stack, alice.token, folder.body.id, 'inner.bin', bytes);
      assert.equal(inner.status, 201, JSON.stringify(inner.body));
      const innerUrl = await api(stack.baseUrl, 'GET', `/api/v1/files/${inner.body.file.id}/download-url`, { token: alice.token });
      assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/folders/${folder.body.id}`, { token: alice.token })).status, 204);
      assert.equal((await get({}, signedPath(innerUrl.body.url), null)).status, 410);

      // Purged for good: the URL no longer finds anything.
      assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/files/${id}`, { token: alice.token })).status, 204);
      assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/trash/${id}`, { token: alice.token })).status, 204);
      assert.equal((await get({}, path, null)).status, 404);
    });

    test('download-url needs a bearer token and access to the file', async () => {
      assert.equal((await api(stack.baseUrl, 'GET', `/api/v1/files/${fileId}/download-url`)).status, 401);
      const bob = await newUser(stack, tenantId, 'bob');
      assert.equal((await api(stack.baseUrl, 'GET', `/api/v1/files/${fileId}/download-url`, { token: bob.token })).status, 404);
    });
  });

  test('tenant isolation: another tenant (and another user of the same tenant) get 404, never the bytes', async () => {
    const otherTenant = (await createTestTenant(stack)).id;
    const mallory = await newUser(stack, otherTenant, 'alice'); // same subject, other tenant
    for (const path of [contentPath, `/api/v1/files/${fileId}`, `/api/v1/files/${fileId}/versions`, `/api/v1/files/${fileId}/download-url`]) {
      const response = await get({}, path, mallory.token);
      assert.equal(response.status, 404, `${path}: ${response.status}`);
      assert.equal(JSON.parse(response.body.toString('utf8')).code, 'NOT_FOUND');
    }
    const carol = await newUser(stack, tenantId, 'carol');
    const response = await get({ range: 'bytes=0-0' }, contentPath, carol.token);
    assert.equal(response.status, 404);
    assert.equal((await get({}, contentPath, null)).status, 401);
  });

  test('Content-Disposition percent-encodes every character outside RFC 8187 attr-char', async () => {
    const name = "it's (draft)*! ü.txt";
    const upload = await uploadDirect(stack, alice.token, alice.rootFolderId, name, randomData(10));
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    const response = await get({}, `/api/v1/files/${upload.body.file.id}/content`);
    assert.equal(response.status, 200);
    const disposition = response.headers.get('content-disposition') ?? '';
    const match = /filename\*=UTF-8''(.*)$/.exec(disposition);
    assert.ok(match, disposition);
    // value-chars = *( pct-encoded / attr-char ); attr-char excludes "'", "(", ")", "*" (RFC 8187 §3.2.1).
    assert.match(match[1]!, /^(?:%[0-9A-F]{2}|[A-Za-z0-9!#$&+\-.^_`|~])*$/, `not a valid RFC 8187 ext-value: ${match[1]}`);
    assert.equal(decodeURIComponent(match[1]!), name);
  });
});

describe('downloads from S3 storage', () => {
  let stack: TestStack;
  let alice: TestUser;

  before(async () => {
    stack = await startTestStack({ workers: true, env: s3TestEnv() });
    alice = await newUser(stack, (await createTestTenant(stack)).id, 'alice');
  });
  after(() => stack.close());

  test('ranges across chunk boundaries, suffixes, 416 and the signed URL read the right bytes from the bucket', async () => {
    assert.equal(stack.services.storage.driver, 's3');
    const data = randomData(size);
    const { finalize } = await uploadResumable(stack, alice.token, alice.rootFolderId, 's3.bin', data, { chunkSize });
    assert.equal(finalize.status, 200, finalize.text);
    const path = `/api/v1/files/${finalize.body.file.id}/content`;
    const full = await download(stack, path, { token: alice.token });
    assert.equal(full.status, 200);
    assert.equal(full.headers.get('content-length'), String(size));
    assert.ok(full.body.equals(data));
    for (const [range, start, end] of [
      ['bytes=0-0', 0, 0],
      ['bytes=-1', size - 1, size - 1],
      ['bytes=65530-65545', 65_530, 65_545],
      ['bytes=65000-140000', 65_000, 140_000],
      ['bytes=199000-999999', 199_000, size - 1],
    ] as const) {
      const got = await download(stack, path, { token: alice.token, headers: { range } });
      assert.equal(got.status, 206, range);
      assert.equal(got.headers.get('content-range'), `bytes ${start}-${end}/${size}`, range);
      assert.ok(got.body.equals(data.subarray(start, end + 1)), range);
    }
    const unsatisfiable = await download(stack, path, { token: alice.token, headers: { range: 'bytes=200000-' } });
    assert.equal(unsatisfiable.status, 416);
    assert.equal(unsatisfiable.headers.get('content-range'), `bytes */${size}`);

    const url = await api(stack.baseUrl, 'GET', `/api/v1/files/${finalize.body.file.id}/download-url`, { token: alice.token });
    assert.equal(url.status, 200, url.text);
    const signed = await download(stack, new URL(url.body.url).pathname, { headers: { range: 'bytes=131000-131100' } });
    assert.equal(signed.status, 206);
    assert.ok(signed.body.equals(data.subarray(131_000, 131_101)));
  });

  test('redirect=1: a one-chunk file answers 302 to a presigned URL on the store (Range works there, same checksum); a multi-chunk file is streamed', async () => {
    const data = randomData(50_000);
    const upload = await uploadDirect(stack, alice.token, alice.rootFolderId, 'report final.pdf', data);
    assert.equal(upload.status, 201);
    const path = `/api/v1/files/${upload.body.file.id}/content?redirect=1`;
    const redirected = await fetch(`${stack.baseUrl}${path}`, { headers: { authorization: `Bearer ${alice.token}` }, redirect: 'manual' });
    assert.equal(redirected.status, 302);
    assert.equal(redirected.headers.get('x-checksum-sha256'), sha256(data));
    assert.equal(redirected.headers.get('etag'), `"${sha256(data)}"`);
    assert.match(redirected.headers.get('cache-control') ?? '', /no-store/);
    const location = redirected.headers.get('location')!;
    assert.ok(location.startsWith(process.env.TEST_S3_ENDPOINT!), location);
    // The store serves the bytes without any token of ours, with Range, the file's name and type.
    const whole = await fetch(location);
    assert.equal(whole.status, 200);
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(data));
    assert.equal(whole.headers.get('content-type'), 'application/pdf');
    assert.equal(whole.headers.get('content-disposition'), "attachment; filename*=UTF-8''report%20final.pdf");
    const ranged = await fetch(location, { headers: { range: 'bytes=1000-1999' } });
    assert.equal(ranged.status, 206);
    assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(data.subarray(1000, 2000)));
    // Without a token there is no redirect; with If-None-Match the client's copy still wins.
    assert.equal((await fetch(`${stack.baseUrl}${path}`, { redirect: 'manual' })).status, 401);
    const notModified = await fetch(`${stack.baseUrl}${path}`, { headers: { authorization: `Bearer ${alice.token}`, 'if-none-match': `"${sha256(data)}"` }, redirect: 'manual' });
    assert.equal(notModified.status, 304);
    // The signed download URL redirects too.
    const url = await api(stack.baseUrl, 'GET', `/api/v1/files/${upload.body.file.id}/download-url`, { token: alice.token });
    const viaSigned = await fetch(`${stack.baseUrl}${new URL(url.body.url).pathname}?redirect=1`, { redirect: 'manual' });
    assert.equal(viaSigned.status, 302);

    // Several chunks cannot be one object URL: streamed by the API, saying why.
    const big = randomData(size);
    const { finalize } = await uploadResumable(stack, alice.token, alice.rootFolderId, 'chunked.bin', big, { chunkSize });
    const streamed = await fetch(`${stack.baseUrl}/api/v1/files/${finalize.body.file.id}/content?redirect=1`, { headers: { authorization: `Bearer ${alice.token}`, range: 'bytes=70000-70009' }, redirect: 'manual' });
    assert.equal(streamed.status, 206);
    assert.equal(streamed.headers.get('x-redirect-unavailable'), 'stored in several chunks');
    assert.ok(Buffer.from(await streamed.arrayBuffer()).equals(big.subarray(70_000, 70_010)));
  });
  test('a chunk gone from the store mid-download: the body stops short and the connection closes (no hang)', async () => {
    const chunk = 1024 * 1024;
    const data = randomData(4 * chunk);
    const { finalize } = await uploadResumable(stack, alice.token, alice.rootFolderId, 'lost-chunk.bin', data, { chunkSize: chunk });
    assert.equal(finalize.status, 200, finalize.text);
    const tenantId = (await stack.services.db.selectFrom('nodes').select('tenant_id').where('id', '=', finalize.body.file.id).executeTakeFirstOrThrow()).tenant_id;
    // Behind the API's back: the third chunk's object disappears.
    await stack.services.storage.delete(chunkKey(tenantId, sha256(data.subarray(2 * chunk, 3 * chunk))));
    const url = new URL(`${stack.baseUrl}/api/v1/files/${finalize.body.file.id}/content`);
    const outcome = await new Promise<{ status: number; received: number; ended: boolean; aborted: boolean }>((resolve, reject) => {
      const req = http.get({ host: url.hostname, port: url.port, path: url.pathname, headers: { authorization: `Bearer ${alice.token}` } }, (res) => {
        let received = 0;
        let ended = false;
        res.on('data', (piece: Buffer) => (received += piece.length));
        res.on('end', () => (ended = true));
        res.on('close', () => resolve({ status: res.statusCode ?? 0, received, ended, aborted: !res.complete }));
      });
      req.on('error', () => undefined);
      setTimeout(() => reject(new Error('the download neither ended nor closed within 10 s')), 10_000).unref();
    });
    assert.equal(outcome.status, 200);
    assert.equal(outcome.received, 2 * chunk, 'the two chunks before the missing one arrived whole');
    assert.ok(outcome.aborted, 'the body is incomplete: the client can tell from Content-Length');
  });

  test('downloads whose clients stopped reading do not hold up other downloads or chunk uploads (their store connections are their own)', async () => {
    const chunk = 8 * 1024 * 1024;
    const data = randomData(4 * chunk);
    const { finalize } = await uploadResumable(stack, alice.token, alice.rootFolderId, 'stalled-downloads.bin', data, { chunkSize: chunk });
    assert.equal(finalize.status, 200, finalize.text);
    const url = new URL(`${stack.baseUrl}/api/v1/files/${finalize.body.file.id}/content`);
    const opened: http.ClientRequest[] = [];
    /** Fails instead of hanging: a store connection pool exhausted by stalled streams waits forever. */
    const within = <T>(what: string, work: Promise<T>): Promise<T> => {
      let timer: NodeJS.Timeout | undefined;
      const tooLong = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within 10 s next to stalled downloads`)), 10_000);
      });
      work.catch(() => undefined);
      return Promise.race([work, tooLong]).finally(() => clearTimeout(timer));
    };
    try {
      // 40 downloads that stop reading after their first bytes: each holds the chunk it streams and the one opened
      // ahead (80 store connections, more than the 64 that PUTs and HEADs may use).
      await within(
        'starting 40 downloads',
        Promise.all(
          Array.from({ length: 40 }, () =>
            new Promise<void>((resolve, reject) => {
              const req = http.get({ host: url.hostname, port: url.port, path: url.pathname, headers: { authorization: `Bearer ${alice.token}` } }, (res) => {
                res.once('data', () => {
                  res.pause();
                  resolve();
                });
              });
              opened.push(req);
              req.on('error', reject);
            }),
          ),
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 500)); // the stalled downloads' buffers fill up
      const small = randomData(100_000);
      const { finalize: other } = await within('an upload', uploadResumable(stack, alice.token, alice.rootFolderId, 'meanwhile.bin', small, { chunkSize: 65536 }));
      assert.equal(other.status, 200, other.text);
    } finally {
      for (const req of opened) req.destroy();
    }
  });

  test('a client gone mid-download: every object the API opened from the store (the one read ahead too) is released', async () => {
    const chunk = 1024 * 1024;
    const data = randomData(8 * chunk);
    const { finalize } = await uploadResumable(stack, alice.token, alice.rootFolderId, 'abandoned.bin', data, { chunkSize: chunk });
    assert.equal(finalize.status, 200, finalize.text);
    const storage = stack.services.storage;
    const get = storage.get.bind(storage);
    const opened: Readable[] = [];
    storage.get = async (key, range) => {
      const stream = await get(key, range);
      opened.push(stream);
      return stream;
    };
    try {
      const url = new URL(`${stack.baseUrl}/api/v1/files/${finalize.body.file.id}/content`);
      await new Promise<void>((resolve, reject) => {
        const req = http.get({ host: url.hostname, port: url.port, path: url.pathname, headers: { authorization: `Bearer ${alice.token}` } }, (res) => {
          let received = 0;
          res.on('data', (piece: Buffer) => {
            received += piece.length;
            // Gone after the first bytes of the second chunk: the third is open ahead by then.
            if (received > chunk + 1024) {
              req.destroy();
              resolve();
            }
          });
        });
        req.on('error', () => undefined);
        req.on('close', () => resolve());
        setTimeout(() => reject(new Error('the download did not start')), 10_000).unref();
      });
      assert.ok(opened.length >= 2, `${opened.length} objects opened`);
      const deadline = Date.now() + 5000;
      while (opened.some((stream) => !stream.destroyed)) {
        assert.ok(Date.now() < deadline, `${opened.filter((stream) => !stream.destroyed).length} of ${opened.length} store streams still open`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    } finally {
      storage.get = get;
    }
  });
});
