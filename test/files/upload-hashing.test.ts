// The whole-file hash kept as chunks arrive (issue #13 item 3): whatever the order, re-sends, replicas or gaps,
// the committed checksum is the SHA-256 of the bytes, a wrong declared checksum is still CHECKSUM_MISMATCH,
// finalize uses the hash owner's saved SHA-256 when it covers the manifest (its activity says where it resumed: the
// chunk count, or 0 when it hashed the file), and a hashed chunk gone from storage still fails the finalize.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chunkKey } from '../../src/services/chunk-store';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { createSession, newUser, putChunk, randomData, sha256, type TestUser } from '../helpers/files';
import { startApiProcess, type ApiProcess } from '../helpers/api-process';
import { openPool } from '../helpers/race';

const chunkSize = 64 * 1024;

describe('upload hashing as chunks arrive', () => {
  let stack: TestStack;
  let alice: TestUser;
  let replica: ApiProcess;

  before(async () => {
    stack = await startTestStack({ workers: true });
    alice = await newUser(stack, (await createTestTenant(stack)).id, 'alice');
    replica = await startApiProcess(stack);
  });
  after(async () => {
    await replica.stop();
    await stack.close();
  });

  async function open(data: Buffer, checksum: string | null = sha256(data), size = chunkSize) {
    const session = await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: `h-${Math.random()}.bin`, size: data.length, chunk_size: size, ...(checksum ? { checksum_sha256: checksum } : {}) });
    assert.equal(session.status, 201, session.text);
    return session.body.id as string;
  }
  const chunkOf = (data: Buffer, index: number) => data.subarray(index * chunkSize, (index + 1) * chunkSize);
  const saved = (uploadId: string) => stack.services.db.selectFrom('upload_sessions').select(['hashed_chunks', 'hashed_chain']).where('id', '=', uploadId).executeTakeFirstOrThrow();

  async function hashedThrough(uploadId: string, count: number): Promise<void> {
    const deadline = Date.now() + 20_000;
    while ((await saved(uploadId)).hashed_chunks < count) {
      assert.ok(Date.now() < deadline, `hashed ${(await saved(uploadId)).hashed_chunks} of ${count} chunks`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  const finalize = (uploadId: string) => api(stack.baseUrl, 'POST', `/api/v1/uploads/${uploadId}/finalize`, { token: alice.token });

  /** Where the finalization's hashing continued from, read from the workflow's history (an activity's result, local or not). */
  async function resumedAtChunk(uploadId: string): Promise<number | undefined> {
    const history = await stack.services.temporal.workflow.getHandle(`upload-finalize/${uploadId}`).fetchHistory();
    for (const event of history.events ?? []) {
      const data = (event.activityTaskCompletedEventAttributes?.result ?? event.markerRecordedEventAttributes?.details?.result)?.payloads?.[0]?.data;
      if (!data) continue;
      const result = JSON.parse(Buffer.from(data).toString('utf8')) as { resumedAtChunk?: number };
      if (result && typeof result === 'object' && 'resumedAtChunk' in result) return result.resumedAtChunk;
    }
    return undefined;
  }

  /** The hash owners' held bytes in this (in-process) API, from its Prometheus metrics. */
  async function heldBytes(): Promise<number> {
    const response = await api(stack.baseUrl, 'GET', '/metrics');
    const line = /^scaidrive_upload_hash_held_bytes (\d+)$/m.exec(response.text);
    assert.ok(line, 'the gauge is exported');
    return Number(line[1]);
  }

  // First in this file: before it, the process's hash owners hold nothing.
  test('what the hash owner holds in memory stays within its cap while chunks arrive and is all let go once hashed', async () => {
    // 1 MiB chunks: the default buffer budget (128 MiB) lets the owner hold 16 MiB.
    const mib = 1024 * 1024;
    const cap = 16 * mib;
    assert.equal(await heldBytes(), 0);
    const inReverse = randomData(24 * mib);
    const reverseId = await open(inReverse, sha256(inReverse), mib);
    for (let index = 23; index >= 1; index--) {
      const response = await putChunk(stack, alice.token, reverseId, index, inReverse.subarray(index * mib, (index + 1) * mib));
      assert.equal(response.status, 200, JSON.stringify(response.body));
      const held = await heldBytes();
      assert.ok(held <= cap, `${held} bytes held after chunk ${index}`);
    }
    assert.equal(await heldBytes(), cap, 'the chunks nearest the frontier are held, the rest spooled');
    assert.equal((await putChunk(stack, alice.token, reverseId, 0, inReverse.subarray(0, mib))).status, 200);
    await hashedThrough(reverseId, 24);

    // In order, 4 in parallel: chunks waiting for the one before them, and those taken into a step, within the cap.
    const inOrder = randomData(32 * mib);
    const inOrderId = await open(inOrder, sha256(inOrder), mib);
    let next = 0;
    await Promise.all(
      [0, 1, 2, 3].map(async () => {
        while (next < 32) {
          const index = next++;
          assert.equal((await putChunk(stack, alice.token, inOrderId, index, inOrder.subarray(index * mib, (index + 1) * mib))).status, 200);
          const held = await heldBytes();
          assert.ok(held <= cap, `${held} bytes held after chunk ${index}`);
        }
      }),
    );
    await hashedThrough(inOrderId, 32);
    for (const [uploadId, data] of [[reverseId, inReverse], [inOrderId, inOrder]] as const) {
      const done = await finalize(uploadId);
      assert.equal(done.status, 200, done.text);
      assert.equal(done.body.version.checksum_sha256, sha256(data));
    }
    assert.equal(await heldBytes(), 0, 'every held byte let go once hashed');
  });

  test('in order: the saved hash follows the chunks, and finalize continues from it', async () => {
    const data = randomData(chunkSize * 6 + 123);
    const uploadId = await open(data);
    for (let index = 0; index < 7; index++) assert.equal((await putChunk(stack, alice.token, uploadId, index, chunkOf(data, index))).status, 200);
    await hashedThrough(uploadId, 7);
    const done = await finalize(uploadId);
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.version.checksum_sha256, sha256(data));
    assert.equal(await resumedAtChunk(uploadId), 7, 'finalize hashed nothing again');
  });

  test('finalize right after the last chunk waits (bounded) for the owner to hash what it holds, and uses its SHA-256', async () => {
    // Large chunks sent all at once: when the last answer arrives the follower still has most of them to hash.
    const big = 4 * 1024 * 1024;
    const data = randomData(big * 8);
    const uploadId = await open(data, sha256(data), big);
    const statuses = await Promise.all(Array.from({ length: 8 }, (_, index) => putChunk(stack, alice.token, uploadId, index, data.subarray(index * big, (index + 1) * big)).then((r) => r.status)));
    assert.deepEqual(statuses, Array(8).fill(200));
    const done = await finalize(uploadId);
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.version.checksum_sha256, sha256(data));
    assert.equal(await resumedAtChunk(uploadId), 8, 'the worker read nothing back');
  });

  test('a chunk hashed as it arrived but gone from storage fails the finalize (a version never points at a missing object)', async () => {
    const data = randomData(chunkSize * 3);
    const uploadId = await open(data);
    for (let index = 0; index < 3; index++) assert.equal((await putChunk(stack, alice.token, uploadId, index, chunkOf(data, index))).status, 200);
    await hashedThrough(uploadId, 3);
    const { tenant_id: tenantId } = await stack.services.db.selectFrom('upload_sessions').select('tenant_id').where('id', '=', uploadId).executeTakeFirstOrThrow();
    await stack.services.storage.delete(chunkKey(tenantId, sha256(chunkOf(data, 1))));
    const done = await finalize(uploadId);
    assert.equal(done.status, 409, done.text);
    assert.equal(done.body.code, 'UPLOAD_FAILED');
    assert.equal(done.body.details.reason, 'CHUNK_MISSING');
  });

  /** PUTs the chunks in `order`, 4 lanes in parallel, even indexes through this API process and odd ones through the replica. */
  async function putAcrossReplicas(uploadId: string, data: Buffer, order: number[]): Promise<void> {
    await Promise.all(
      [0, 1, 2, 3].map(async (lane) => {
        for (const index of order.filter((_, i) => i % 4 === lane)) {
          const baseUrl = index % 2 === 0 ? stack.baseUrl : replica.baseUrl;
          const response = await fetch(`${baseUrl}/api/v1/uploads/${uploadId}/chunks/${index}`, { method: 'PUT', headers: { authorization: `Bearer ${alice.token}` }, body: chunkOf(data, index) });
          assert.equal(response.status, 200, await response.text());
        }
      }),
    );
  }

  test('in order, parallel, alternating between two API processes: the owner reads back the chunks the other received, finalize uses its SHA-256', async () => {
    const data = randomData(chunkSize * 12);
    const uploadId = await open(data);
    await putAcrossReplicas(uploadId, data, Array.from({ length: 12 }, (_, i) => i));
    await hashedThrough(uploadId, 12);
    const done = await finalize(uploadId);
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.version.checksum_sha256, sha256(data));
    assert.equal(await resumedAtChunk(uploadId), 12);
  });

  test('reverse order, parallel, across two API processes: the owner hashes what it holds once chunk 0 is there (the rest read back), and the checksum is the bytes\' SHA-256', async () => {
    const data = randomData(chunkSize * 12);
    const uploadId = await open(data);
    await putAcrossReplicas(uploadId, data, Array.from({ length: 12 }, (_, i) => 11 - i));
    await hashedThrough(uploadId, 12);
    const done = await finalize(uploadId);
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.version.checksum_sha256, sha256(data));
    assert.equal(await resumedAtChunk(uploadId), 12);
  });

  test('reverse order past what the owner may hold in memory: the rest waits in its local spool, and storage is not read back', async () => {
    // 4 MiB chunks: the API's default buffer budget (128 MiB) lets the followers hold 16 MiB, so of 12 chunks sent in
    // reverse the owner holds 0–3 and spools 4–11 (each displaced by one nearer its frontier).
    const big = 4 * 1024 * 1024;
    const bigChunk = (bytes: Buffer, index: number) => bytes.subarray(index * big, (index + 1) * big);
    const send = async (uploadId: string, bytes: Buffer, index: number) => {
      const response = await fetch(`${stack.baseUrl}/api/v1/uploads/${uploadId}/chunks/${index}`, { method: 'PUT', headers: { authorization: `Bearer ${alice.token}` }, body: bigChunk(bytes, index) });
      assert.equal(response.status, 200, await response.text());
    };

    const data = randomData(big * 12);
    const uploadId = await open(data, sha256(data), big);
    for (let index = 11; index >= 0; index--) await send(uploadId, data, index);
    await hashedThrough(uploadId, 12);
    const done = await finalize(uploadId);
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.version.checksum_sha256, sha256(data));
    assert.equal(await resumedAtChunk(uploadId), 12, 'finalize hashed nothing again');

    // Proof that the spooled chunks were not read back from storage: two of them are deleted from the store before
    // chunk 0 arrives, and the owner still hashes every chunk (a read-back would fail and let the session go).
    // Finalize then refuses the upload: a version never points at a missing object.
    const other = randomData(big * 12);
    const otherId = await open(other, sha256(other), big);
    for (let index = 11; index >= 1; index--) await send(otherId, other, index);
    const { tenant_id: tenantId } = await stack.services.db.selectFrom('upload_sessions').select('tenant_id').where('id', '=', otherId).executeTakeFirstOrThrow();
    for (const index of [9, 10]) await stack.services.storage.delete(chunkKey(tenantId, sha256(bigChunk(other, index))));
    await send(otherId, other, 0);
    await hashedThrough(otherId, 12);
    const row = await stack.services.db.selectFrom('upload_sessions').select('hashed_sha256').where('id', '=', otherId).executeTakeFirstOrThrow();
    assert.equal(row.hashed_sha256, sha256(other), 'hashed from memory and the spool');
    const refused = await finalize(otherId);
    assert.equal(refused.status, 409, refused.text);
    assert.equal(refused.body.details.reason, 'CHUNK_MISSING');
  });

  test('a chunk the owner must read back is gone from storage: the owner lets the session go, finalize fails with CHUNK_MISSING, the next upload hashes right', async () => {
    // Chunks of 1 MiB: buffers the size of the pool's (smaller ones are not pooled).
    const big = 1024 * 1024;
    const bigChunk = (bytes: Buffer, index: number) => bytes.subarray(index * big, (index + 1) * big);
    const data = randomData(big * 6);
    const uploadId = await open(data, sha256(data), big);
    const put = async (baseUrl: string, index: number, bytes = data, id = uploadId) => {
      const response = await fetch(`${baseUrl}/api/v1/uploads/${id}/chunks/${index}`, { method: 'PUT', headers: { authorization: `Bearer ${alice.token}` }, body: bigChunk(bytes, index) });
      assert.equal(response.status, 200, await response.text());
    };
    // This process claims the session with chunk 1 (holding it); the replica receives 2–5, which the owner must read back.
    await put(stack.baseUrl, 1);
    for (let index = 2; index < 6; index++) await put(replica.baseUrl, index);
    const { tenant_id: tenantId } = await stack.services.db.selectFrom('upload_sessions').select('tenant_id').where('id', '=', uploadId).executeTakeFirstOrThrow();
    await stack.services.storage.delete(chunkKey(tenantId, sha256(bigChunk(data, 3))));
    await put(stack.baseUrl, 0);
    // Chunks 0–1 from memory, 2 read back, 3 missing: the read fails and the owner lets the session go.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const row = await stack.services.db.selectFrom('upload_sessions').select(['hash_owner', 'hashed_chunks', 'hashed_sha256']).where('id', '=', uploadId).executeTakeFirstOrThrow();
      if (row.hash_owner === null) {
        assert.deepEqual(row, { hash_owner: null, hashed_chunks: 0, hashed_sha256: null });
        break;
      }
      assert.ok(Date.now() < deadline, `the owner still holds the session (${row.hashed_chunks} chunks hashed)`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const failed = await finalize(uploadId);
    assert.equal(failed.status, 409, failed.text);
    assert.equal(failed.body.details.reason, 'CHUNK_MISSING');

    // The buffers of that failed step went back to the pool once each: the next uploads through both processes hash right.
    for (let round = 0; round < 3; round++) {
      const next = randomData(big * 10);
      const nextId = await open(next, sha256(next), big);
      await Promise.all([0, 1, 2, 3].map(async (lane) => {
        for (let index = 9 - lane; index >= 0; index -= 4) await put(index % 2 ? replica.baseUrl : stack.baseUrl, index, next, nextId);
      }));
      const done = await finalize(nextId);
      assert.equal(done.status, 200, done.text);
      assert.equal(done.body.version.checksum_sha256, sha256(next));
    }
  });

  test('one hash owner per session: the process that claimed it hashes every chunk, also those another replica received, and saves the file\'s SHA-256', async () => {
    const data = randomData(chunkSize * 8);
    const uploadId = await open(data);
    // 20 parallel PUTs of chunk 0, half through each process: exactly one of them becomes the owner.
    const firsts = await Promise.all(Array.from({ length: 20 }, (_, i) => fetch(`${i % 2 ? replica.baseUrl : stack.baseUrl}/api/v1/uploads/${uploadId}/chunks/0`, { method: 'PUT', headers: { authorization: `Bearer ${alice.token}` }, body: chunkOf(data, 0) }).then((r) => r.status)));
    assert.ok(firsts.every((status) => status === 200 || status === 429) && firsts.includes(200), JSON.stringify(firsts));
    const { hash_owner: owner } = await stack.services.db.selectFrom('upload_sessions').select('hash_owner').where('id', '=', uploadId).executeTakeFirstOrThrow();
    assert.ok(owner, 'an owner claimed the session');
    await putAcrossReplicas(uploadId, data, Array.from({ length: 7 }, (_, i) => i + 1));
    await hashedThrough(uploadId, 8);
    const row = await stack.services.db.selectFrom('upload_sessions').select(['hash_owner', 'hashed_sha256']).where('id', '=', uploadId).executeTakeFirstOrThrow();
    assert.deepEqual(row, { hash_owner: null, hashed_sha256: sha256(data) });
    const done = await finalize(uploadId);
    assert.equal(done.status, 200, done.text);
    assert.equal(await resumedAtChunk(uploadId), 8);
  });

  test('an owner gone mid-upload (its process stopped): no other process continues its partial hash, finalize hashes the file from the start', async () => {
    const doomed = await startApiProcess(stack);
    const data = randomData(chunkSize * 4);
    const uploadId = await open(data);
    try {
      for (let index = 0; index < 2; index++) {
        const response = await fetch(`${doomed.baseUrl}/api/v1/uploads/${uploadId}/chunks/${index}`, { method: 'PUT', headers: { authorization: `Bearer ${alice.token}` }, body: chunkOf(data, index) });
        assert.equal(response.status, 200, await response.text());
      }
      await hashedThrough(uploadId, 2);
    } finally {
      await doomed.stop();
    }
    for (let index = 2; index < 4; index++) assert.equal((await putChunk(stack, alice.token, uploadId, index, chunkOf(data, index))).status, 200);
    const row = await saved(uploadId);
    assert.equal(row.hashed_chunks, 2, 'the live owner\'s lease keeps others from claiming it');
    const done = await finalize(uploadId);
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.version.checksum_sha256, sha256(data));
    assert.equal(await resumedAtChunk(uploadId), 0, 'hashed from the start');
  });

  test('a chunk re-sent with other bytes after it was hashed: the state no longer covers the manifest, the checksum is of the final bytes (declared or not)', async () => {
    for (const declared of [true, false]) {
      const original = randomData(chunkSize * 3);
      const changed = Buffer.concat([chunkOf(original, 0), randomData(chunkSize), chunkOf(original, 2)]);
      const uploadId = await open(changed, declared ? sha256(changed) : null);
      for (let index = 0; index < 3; index++) assert.equal((await putChunk(stack, alice.token, uploadId, index, chunkOf(original, index))).status, 200);
      await hashedThrough(uploadId, 3);
      assert.equal((await putChunk(stack, alice.token, uploadId, 1, chunkOf(changed, 1))).status, 200);
      const done = await finalize(uploadId);
      assert.equal(done.status, 200, done.text);
      assert.equal(done.body.version.checksum_sha256, sha256(changed), declared ? 'declared' : 'not declared');
    }
  });

  test('a declared checksum of other bytes is CHECKSUM_MISMATCH even when the saved state covers every chunk', async () => {
    const data = randomData(chunkSize * 2);
    const uploadId = await open(data, sha256(randomData(10)));
    for (let index = 0; index < 2; index++) assert.equal((await putChunk(stack, alice.token, uploadId, index, chunkOf(data, index))).status, 200);
    await hashedThrough(uploadId, 2);
    const done = await finalize(uploadId);
    assert.equal(done.status, 400, done.text);
    assert.equal(done.body.code, 'CHECKSUM_MISMATCH');
  });

  test('20 parallel PUTs of each chunk over keep-alive connections: one consistent state, the right checksum', async () => {
    const data = randomData(chunkSize * 3);
    const uploadId = await open(data);
    const pool = await openPool(stack.baseUrl, 20);
    try {
      for (let index = 0; index < 3; index++) {
        const results = await Promise.all(
          Array.from({ length: 20 }, () =>
            fetch(`${stack.baseUrl}/api/v1/uploads/${uploadId}/chunks/${index}`, { method: 'PUT', headers: { authorization: `Bearer ${alice.token}` }, body: chunkOf(data, index), dispatcher: pool } as RequestInit).then(async (r) => {
              await r.arrayBuffer();
              return r.status;
            }),
          ),
        );
        assert.ok(results.every((status) => status === 200 || status === 429), JSON.stringify(results));
        if (!results.includes(200)) assert.equal((await putChunk(stack, alice.token, uploadId, index, chunkOf(data, index))).status, 200);
      }
    } finally {
      await pool.close();
    }
    await hashedThrough(uploadId, 3);
    const done = await finalize(uploadId);
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.version.checksum_sha256, sha256(data));
  });
});
