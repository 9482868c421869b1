// Uploads through the HTTP API against both blob drivers: byte-exact round trips, chunk rules, checksum
// mismatch, expiry, size caps, parallel finalizes, dedup (counted in the bucket), chunks/check isolation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { createSession, download, newUser, putChunk, randomData, sha256, uploadDirect, uploadResumable, type TestUser } from '../helpers/files';
import { countObjects, s3TestEnv } from '../helpers/s3';
import type { S3Storage } from '../../src/storage/s3-storage';

const KiB = 1024;
const MiB = 1024 * KiB;

for (const driver of ['filesystem', 's3'] as const) {
  describe(`round trips through the ${driver} driver`, () => {
    let stack: TestStack;
    let alice: TestUser;
    before(async () => {
      stack = await startTestStack({ workers: true, env: driver === 's3' ? s3TestEnv() : {} });
      assert.equal(stack.services.storage.driver, driver);
      alice = await newUser(stack, (await createTestTenant(stack)).id, 'alice');
    });
    after(() => stack.close());

    const chunk = 64 * KiB;
    for (const [label, size] of [
      ['0 bytes', 0],
      ['1 byte', 1],
      ['exactly one chunk', chunk],
      ['one chunk + 1', chunk + 1],
      ['several chunks', 5 * chunk + 123],
    ] as const) {
      test(`resumable: ${label}`, async () => {
        const data = randomData(size);
        const { session, finalize } = await uploadResumable(stack, alice.token, alice.rootFolderId, `r-${size}.bin`, data, { chunkSize: chunk });
        assert.equal(session.body.chunk_count, Math.ceil(size / chunk));
        assert.equal(finalize.status, 200, finalize.text);
        assert.equal(finalize.body.file.size, size);
        assert.equal(finalize.body.version.checksum_sha256, sha256(data));
        const got = await download(stack, `/api/v1/files/${finalize.body.file.id}/content`, { token: alice.token });
        assert.equal(got.status, 200);
        assert.equal(got.headers.get('content-length'), String(size));
        assert.equal(got.headers.get('x-checksum-sha256'), sha256(data));
        assert.equal(sha256(got.body), sha256(data));
      });
    }

    test('resumable: 100 MiB in 8 MiB chunks, 4 in parallel', async () => {
      const data = randomData(100 * MiB);
      const { finalize } = await uploadResumable(stack, alice.token, alice.rootFolderId, 'big.bin', data, { chunkSize: 8 * MiB, parallel: 4 });
      assert.equal(finalize.status, 200, finalize.text);
      const got = await download(stack, `/api/v1/files/${finalize.body.file.id}/content`, { token: alice.token });
      assert.equal(got.body.length, data.length);
      assert.equal(sha256(got.body), sha256(data));
    });

    test('direct upload: 0 bytes and 20 MiB, byte-exact', async () => {
      for (const size of [0, 20 * MiB + 7]) {
        const data = randomData(size);
        const response = await uploadDirect(stack, alice.token, alice.rootFolderId, `d-${size}.bin`, data, { 'x-checksum-sha256': sha256(data) });
        assert.equal(response.status, 201, JSON.stringify(response.body));
        const got = await download(stack, `/api/v1/files/${response.body.file.id}/content`, { token: alice.token });
        assert.equal(sha256(got.body), sha256(data));
      }
    });
  });
}

describe('upload sessions', () => {
  let stack: TestStack;
  let tenantId: string;
  let alice: TestUser;
  before(async () => {
    stack = await startTestStack({ workers: true, env: { SCAIDRIVE_WORKFLOW_WAIT_SECONDS: '30' } });
    tenantId = (await createTestTenant(stack, { max_file_size_bytes: 2 * MiB })).id;
    alice = await newUser(stack, tenantId, 'alice');
  });
  after(() => stack.close());

  const chunk = 64 * KiB;
  const newSession = async (name: string, data: Buffer, extra: Record<string, unknown> = {}) => {
    const response = await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name, size: data.length, chunk_size: chunk, checksum_sha256: sha256(data), ...extra });
    assert.equal(response.status, 201, response.text);
    return response.body;
  };
  const slice = (data: Buffer, index: number) => data.subarray(index * chunk, (index + 1) * chunk);
  const finalize = (id: string) => api(stack.baseUrl, 'POST', `/api/v1/uploads/${id}/finalize`, { token: alice.token });

  test('chunks in any order, repeated and replaced, give the right file', async () => {
    const data = randomData(4 * chunk);
    const session = await newSession('order.bin', data);
    assert.equal(session.status, 'open');
    assert.equal((await putChunk(stack, alice.token, session.id, 3, slice(data, 3))).status, 200);
    assert.equal((await putChunk(stack, alice.token, session.id, 1, randomData(chunk))).status, 200); // wrong bytes first…
    assert.equal((await putChunk(stack, alice.token, session.id, 0, slice(data, 0))).status, 200);
    assert.equal((await putChunk(stack, alice.token, session.id, 1, slice(data, 1))).status, 200); // …replaced
    assert.equal((await putChunk(stack, alice.token, session.id, 1, slice(data, 1))).status, 200); // idempotent repeat
    const partial = await api(stack.baseUrl, 'GET', `/api/v1/uploads/${session.id}`, { token: alice.token });
    assert.deepEqual(partial.body.received_chunks, [0, 1, 3]);
    const early = await finalize(session.id);
    assert.equal(early.status, 400);
    assert.equal(early.body.code, 'UPLOAD_INCOMPLETE');
    assert.deepEqual(early.body.details.missing_chunks, [2]);
    assert.equal((await putChunk(stack, alice.token, session.id, 2, slice(data, 2), { 'x-chunk-sha256': sha256(slice(data, 2)) })).status, 200);
    const done = await finalize(session.id);
    assert.equal(done.status, 200, done.text);
    const status = await api(stack.baseUrl, 'GET', `/api/v1/uploads/${session.id}`, { token: alice.token });
    assert.equal(status.body.status, 'completed');
    assert.equal(status.body.file_id, done.body.file.id);
    const got = await download(stack, `/api/v1/files/${done.body.file.id}/content`, { token: alice.token });
    assert.equal(sha256(got.body), sha256(data));
    // Finalizing a completed session again answers the same file and version.
    const again = await finalize(session.id);
    assert.equal(again.status, 200);
    assert.equal(again.body.version.id, done.body.version.id);
  });

  test('bad chunks are refused: wrong size, wrong X-Chunk-Sha256, index out of range', async () => {
    const data = randomData(2 * chunk + 10);
    const session = await newSession('bad-chunks.bin', data);
    const short = await putChunk(stack, alice.token, session.id, 0, slice(data, 0).subarray(1));
    assert.equal(short.status, 400);
    assert.equal(short.body.code, 'CHUNK_SIZE_MISMATCH');
    const lastTooLong = await putChunk(stack, alice.token, session.id, 2, randomData(11));
    assert.equal(lastTooLong.status, 400);
    const badHash = await putChunk(stack, alice.token, session.id, 0, slice(data, 0), { 'x-chunk-sha256': sha256(Buffer.from('other')) });
    assert.equal(badHash.status, 400);
    assert.equal(badHash.body.code, 'CHECKSUM_MISMATCH');
    const outOfRange = await putChunk(stack, alice.token, session.id, 3, randomData(10));
    assert.equal(outOfRange.status, 400);
    assert.equal(outOfRange.body.code, 'CHUNK_INDEX_OUT_OF_RANGE');
    const status = await api(stack.baseUrl, 'GET', `/api/v1/uploads/${session.id}`, { token: alice.token });
    assert.deepEqual(status.body.received_chunks, []);
  });

  test('checksum mismatch at finalize → 400 CHECKSUM_MISMATCH, the session stays usable', async () => {
    const data = randomData(3 * chunk);
    const session = await newSession('mismatch.bin', data);
    const corrupted = Buffer.from(slice(data, 1));
    corrupted[17] = corrupted[17]! ^ 0xff;
    for (const [index, bytes] of [slice(data, 0), corrupted, slice(data, 2)].entries()) await putChunk(stack, alice.token, session.id, index, bytes);
    const failed = await finalize(session.id);
    assert.equal(failed.status, 400, failed.text);
    assert.equal(failed.body.code, 'CHECKSUM_MISMATCH');
    assert.equal(failed.body.details.expected, sha256(data));
    const status = await api(stack.baseUrl, 'GET', `/api/v1/uploads/${session.id}`, { token: alice.token });
    assert.equal(status.body.status, 'open');
    assert.equal(status.body.error.code, 'CHECKSUM_MISMATCH');
    // Nothing was committed.
    const versions = await stack.services.db.selectFrom('versions').select('id').where('upload_id', '=', session.id).execute();
    assert.equal(versions.length, 0);
    // Re-send the bad chunk; finalize runs again (a new run of the same workflow id) and succeeds.
    assert.equal((await putChunk(stack, alice.token, session.id, 1, slice(data, 1))).status, 200);
    const fixed = await finalize(session.id);
    assert.equal(fixed.status, 200, fixed.text);
    assert.equal(fixed.body.version.checksum_sha256, sha256(data));
  });

  test('two parallel finalizes attach to one run and produce one version', async () => {
    const data = randomData(3 * chunk + 5);
    const session = await newSession('parallel.bin', data);
    for (let i = 0; i < 4; i++) await putChunk(stack, alice.token, session.id, i, slice(data, i));
    const [a, b] = await Promise.all([finalize(session.id), finalize(session.id)]);
    assert.equal(a.status, 200, a.text);
    assert.equal(b.status, 200, b.text);
    assert.equal(a.body.version.id, b.body.version.id);
    const versions = await stack.services.db.selectFrom('versions').select('id').where('file_id', '=', a.body.file.id).execute();
    assert.equal(versions.length, 1);
    const changes = await stack.services.db.selectFrom('change_log').select('type').where('node_id', '=', a.body.file.id).execute();
    assert.deepEqual(changes.map((c) => c.type), ['created']);
    const run = await stack.services.temporal.workflow.getHandle(`upload-finalize/${session.id}`).describe();
    assert.deepEqual(run.searchAttributes.ScaiTenantId, [tenantId]);
    assert.deepEqual(run.searchAttributes.ScaiFileId, [a.body.file.id]);
  });

  test('an expired session → 410 UPLOAD_EXPIRED', async () => {
    const data = randomData(2 * chunk);
    const session = await newSession('expired.bin', data);
    await putChunk(stack, alice.token, session.id, 0, slice(data, 0));
    await stack.services.db.updateTable('upload_sessions').set({ expires_at: new Date(Date.now() - 1000) }).where('id', '=', session.id).execute();
    const put = await putChunk(stack, alice.token, session.id, 1, slice(data, 1));
    assert.equal(put.status, 410);
    assert.equal(put.body.code, 'UPLOAD_EXPIRED');
    const fin = await finalize(session.id);
    assert.equal(fin.status, 410);
    assert.equal((await api(stack.baseUrl, 'GET', `/api/v1/uploads/${session.id}`, { token: alice.token })).body.status, 'expired');
  });

  test('over the tenant cap → 413 PAYLOAD_TOO_LARGE: session, direct with Content-Length, direct streamed', async () => {
    const session = await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: 'huge.bin', size: 2 * MiB + 1 });
    assert.equal(session.status, 413);
    assert.equal(session.body.code, 'PAYLOAD_TOO_LARGE');

    const declared = await uploadDirect(stack, alice.token, alice.rootFolderId, 'huge-direct.bin', randomData(2 * MiB + 1));
    assert.equal(declared.status, 413);
    assert.equal(declared.body.code, 'PAYLOAD_TOO_LARGE');

    // No Content-Length (chunked transfer): refused by counting, and nothing is committed.
    const streamed = await new Promise<{ status: number; body: any }>((resolve, reject) => {
      const url = new URL(`${stack.baseUrl}/api/v1/folders/${alice.rootFolderId}/files/huge-stream.bin`);
      let answered = false;
      const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'PUT', headers: { authorization: `Bearer ${alice.token}`, 'transfer-encoding': 'chunked' } }, (res) => {
        answered = true;
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      });
      // Once answered, the server closes the connection on the rest of our body: that reset is expected.
      req.on('error', (error) => (answered ? undefined : reject(error)));
      let sent = 0;
      const pump = () => {
        while (sent < 3 * MiB) {
          sent += 256 * KiB;
          if (!req.write(randomData(256 * KiB))) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    assert.equal(streamed.status, 413);
    assert.equal(streamed.body.code, 'PAYLOAD_TOO_LARGE');
    const children = await api(stack.baseUrl, 'GET', `/api/v1/folders/${alice.rootFolderId}/children?limit=1000`, { token: alice.token });
    assert.ok(!children.body.items.some((n: any) => n.name.startsWith('huge')));
  });

  test('base_version_id must be the current version (409 VERSION_CONFLICT)', async () => {
    const first = await uploadDirect(stack, alice.token, alice.rootFolderId, 'based.txt', Buffer.from('v1'));
    const second = await uploadDirect(stack, alice.token, alice.rootFolderId, 'based.txt', Buffer.from('v2'), { 'x-base-version-id': first.body.version.id });
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.equal(second.body.version.number, 2);
    const stale = await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: 'based.txt', size: 2, base_version_id: first.body.version.id });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.code, 'VERSION_CONFLICT');
    assert.equal(stale.body.details.current_version_id, second.body.version.id);
  });

  test('abort deletes the session; other users (same or other tenant) cannot see it', async () => {
    const data = randomData(chunk);
    const session = await newSession('abort.bin', data);
    const bob = await newUser(stack, tenantId, 'bob');
    const mallory = await newUser(stack, (await createTestTenant(stack)).id, 'mallory');
    for (const intruder of [bob, mallory]) {
      assert.equal((await api(stack.baseUrl, 'GET', `/api/v1/uploads/${session.id}`, { token: intruder.token })).status, 404);
      assert.equal((await putChunk(stack, intruder.token, session.id, 0, data)).status, 404);
      assert.equal((await api(stack.baseUrl, 'POST', `/api/v1/uploads/${session.id}/finalize`, { token: intruder.token })).status, 404);
      assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/uploads/${session.id}`, { token: intruder.token })).status, 404);
      assert.equal((await api(stack.baseUrl, 'POST', `/api/v1/uploads/${session.id}/chunks/check`, { token: intruder.token, body: { sha256: [sha256(data)] } })).status, 404);
      const foreignParent = await createSession(stack, intruder.token, { parent_id: alice.rootFolderId, name: 'x', size: 1 });
      assert.equal(foreignParent.status, 404);
    }
    assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/uploads/${session.id}`, { token: alice.token })).status, 204);
    assert.equal((await api(stack.baseUrl, 'GET', `/api/v1/uploads/${session.id}`, { token: alice.token })).status, 404);
  });

  test('validation: bad name, negative size, tiny chunk size → 422', async () => {
    const response = await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: 'a/b', size: -1, chunk_size: 10 });
    assert.equal(response.status, 422);
    assert.deepEqual(response.body.detail.map((i: any) => [i.loc.join('.'), i.type]).sort(), [
      ['body.chunk_size', 'greater_than_equal'],
      ['body.name', 'value_error'],
      ['body.size', 'greater_than_equal'],
    ]);
  });
});

describe('deduplication', () => {
  let stack: TestStack;
  let tenantId: string;
  before(async () => {
    stack = await startTestStack({ workers: true, env: s3TestEnv() });
    tenantId = (await createTestTenant(stack)).id;
  });
  after(() => stack.close());

  test('re-uploading identical content writes no new chunk objects', async () => {
    const alice = await newUser(stack, tenantId, 'alice');
    const storage = stack.services.storage as S3Storage;
    const data = randomData(3 * 64 * KiB + 99);
    const first = await uploadResumable(stack, alice.token, alice.rootFolderId, 'one.bin', data, { chunkSize: 64 * KiB });
    assert.equal(first.finalize.status, 200, first.finalize.text);
    const objectsAfterFirst = await countObjects(storage, `${tenantId}/chunks/`);
    assert.equal(objectsAfterFirst, 4);
    const dedupBefore = (await stack.services.metrics.chunksDeduplicated.get()).values[0]?.value ?? 0;

    const second = await uploadResumable(stack, alice.token, alice.rootFolderId, 'two.bin', data, { chunkSize: 64 * KiB });
    assert.equal(second.finalize.status, 200);
    assert.equal(await countObjects(storage, `${tenantId}/chunks/`), 4);
    const dedupAfter = (await stack.services.metrics.chunksDeduplicated.get()).values[0]?.value ?? 0;
    assert.equal(dedupAfter - dedupBefore, 4);
    const chunkResponse = await putChunk(stack, alice.token, (await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: 'three.bin', size: 64 * KiB, chunk_size: 64 * KiB })).body.id, 0, data.subarray(0, 64 * KiB));
    assert.equal(chunkResponse.body.deduplicated, true);
  });

  test('chunks/check only reveals chunks the caller holds', async () => {
    const alice = await newUser(stack, tenantId, 'alice2');
    const bob = await newUser(stack, tenantId, 'bob2');
    const data = randomData(2 * 64 * KiB);
    const hashes = [sha256(data.subarray(0, 64 * KiB)), sha256(data.subarray(64 * KiB))];
    const up = await uploadResumable(stack, alice.token, alice.rootFolderId, 'secret.bin', data, { chunkSize: 64 * KiB });
    assert.equal(up.finalize.status, 200);

    const aliceSession = (await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: 'again.bin', size: data.length, chunk_size: 64 * KiB })).body;
    const aliceCheck = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${aliceSession.id}/chunks/check`, {
      token: alice.token,
      body: { sha256: [...hashes, sha256(Buffer.from('never uploaded'))], attach: hashes.map((h, index) => ({ index, sha256: h })) },
    });
    assert.equal(aliceCheck.status, 200);
    assert.deepEqual([...aliceCheck.body.known].sort(), [...hashes].sort());
    assert.deepEqual(aliceCheck.body.attached, [0, 1]);
    // Alice finalizes without sending a byte.
    const fin = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${aliceSession.id}/finalize`, { token: alice.token });
    assert.equal(fin.status, 200, fin.text);

    // Bob knows the hashes but holds none of those chunks: nothing is revealed, nothing attached.
    const bobSession = (await createSession(stack, bob.token, { parent_id: bob.rootFolderId, name: 'stolen.bin', size: data.length, chunk_size: 64 * KiB })).body;
    const bobCheck = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${bobSession.id}/chunks/check`, {
      token: bob.token,
      body: { sha256: hashes, attach: hashes.map((h, index) => ({ index, sha256: h })) },
    });
    assert.equal(bobCheck.status, 200);
    assert.deepEqual(bobCheck.body.known, []);
    assert.deepEqual(bobCheck.body.attached, []);
    const bobFinalize = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${bobSession.id}/finalize`, { token: bob.token });
    assert.equal(bobFinalize.status, 400);
    assert.equal(bobFinalize.body.code, 'UPLOAD_INCOMPLETE');
  });
});
