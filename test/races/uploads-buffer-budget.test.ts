// Per-process limits on upload bodies (issue #7, finding 14): chunk bytes in flight stay within
// SCAIDRIVE_UPLOAD_BUFFER_BUDGET_BYTES (503 + Retry-After beyond, nothing lost on retry), a per-user cap
// on concurrent chunk PUTs (429 + Retry-After), and a stalled body is answered 408 quickly.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { Dispatcher } from 'undici';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { createSession, download, newUser, putChunk, randomData, sha256, type TestUser } from '../helpers/files';
import { burst, statusCounts } from '../helpers/race';
import { assertError } from '../helpers/assertions';
import { uploadLimits } from '../../src/api/upload-deps';

const KiB = 1024;
const MiB = 1024 * KiB;
const budget = 4 * MiB;
const perUser = 6;

/** A chunk PUT over `dispatcher` whose body sends all but its last KiB, then the rest after `holdMs`. */
async function heldPut(stack: TestStack, token: string, uploadId: string, index: number, data: Buffer, holdMs: number, dispatcher: Dispatcher) {
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      controller.enqueue(data.subarray(0, data.length - KiB));
      await new Promise((r) => setTimeout(r, holdMs));
      controller.enqueue(data.subarray(data.length - KiB));
      controller.close();
    },
  });
  try {
    const response = await fetch(`${stack.baseUrl}/api/v1/uploads/${uploadId}/chunks/${index}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': String(data.length) },
      body,
      duplex: 'half',
      dispatcher,
    } as RequestInit);
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
  } catch (error) {
    // A refused request's connection is closed by the server while we may still be sending: report it as such.
    return { status: 0, headers: new Headers(), body: { error: String((error as Error).cause ?? error) } };
  }
}

/** Waits (up to 5 s) for a condition on in-process state that settles in the background. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    assert.ok(Date.now() < deadline, what);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('uploads: buffer budget, per-user chunk concurrency, stalled bodies', () => {
  let stack: TestStack;
  let alice: TestUser;
  before(async () => {
    stack = await startTestStack({
      workers: true,
      env: {
        SCAIDRIVE_WORKFLOW_WAIT_SECONDS: '60',
        SCAIDRIVE_UPLOAD_BUFFER_BUDGET_BYTES: String(budget),
        SCAIDRIVE_UPLOAD_MAX_CONCURRENT_CHUNKS_PER_USER: String(perUser),
        SCAIDRIVE_UPLOAD_BODY_TIMEOUT_SECONDS: '2',
      },
    });
    alice = await newUser(stack, (await createTestTenant(stack)).id, 'alice');
  });
  after(() => stack.close());

  const limits = () => uploadLimits(stack.services);
  /** Budget held beyond the spare buffers kept for reuse (which count against it too). */
  const inUseBeyondSpare = () => limits().buffer.inUse - (limits().chunkBuffers?.pooledBytes ?? 0);

  test('12 parallel 1 MiB chunk PUTs against a 4 MiB budget: the excess gets 503 + Retry-After; retries finish the upload byte-exact', async () => {
    const bob = await newUser(stack, (await createTestTenant(stack)).id, 'bob');
    const users = [alice, bob];
    const data = randomData(12 * MiB);
    const slice = (i: number) => data.subarray(i * MiB, (i + 1) * MiB);
    // Two users, 6 chunks each: the per-user cap (6) is not what binds here, the budget is.
    const sessions = await Promise.all(
      users.map(async (user) => (await createSession(stack, user.token, { parent_id: user.rootFolderId, name: 'budget.bin', size: data.length / 2, chunk_size: MiB })).body),
    );
    const results = await burst(stack.baseUrl, 12, (i, dispatcher) => heldPut(stack, users[i % 2]!.token, sessions[i % 2]!.id, Math.floor(i / 2), slice(i), 800, dispatcher));
    const counts = statusCounts(results);
    assert.ok((counts[200] ?? 0) >= 1 && (counts[200] ?? 0) <= budget / MiB, JSON.stringify(counts));
    assert.ok((counts[503] ?? 0) >= 1, JSON.stringify(counts));
    for (const refused of results.filter((r) => r.status === 503)) {
      assertError(refused, 503, 'SERVICE_UNAVAILABLE');
      assert.ok(Number(refused.headers.get('retry-after')) > 0);
    }
    assert.ok(limits().buffer.peak <= budget, `peak ${limits().buffer.peak} within the budget`);
    // Chunks the hash owner holds (received ahead of a refused one) keep their share until hashed.
    assert.ok(inUseBeyondSpare() <= budget / 4, `only chunks held for hashing (and spare buffers) keep budget: ${inUseBeyondSpare()}`);

    // Nothing is lost: the refused chunks are retried, and both uploads finalize byte-exact.
    for (const [i, result] of results.entries()) {
      if (result.status === 200) continue;
      assert.equal((await putChunk(stack, users[i % 2]!.token, sessions[i % 2]!.id, Math.floor(i / 2), slice(i))).status, 200);
    }
    for (const [u, user] of users.entries()) {
      const fin = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${sessions[u]!.id}/finalize`, { token: user.token });
      assert.equal(fin.status, 200, fin.text);
      const expected = Buffer.concat(Array.from({ length: 6 }, (_, k) => slice(2 * k + u)));
      const got = await download(stack, `/api/v1/files/${fin.body.file.id}/content`, { token: user.token });
      assert.equal(sha256(got.body), sha256(expected));
    }
    await until(() => inUseBeyondSpare() === 0, 'every reservation was released once the chunks were hashed');
  });

  test(`at most ${perUser} concurrent chunk PUTs per user: 10 held at once → ${perUser} stored, 4 × 429 + Retry-After`, async () => {
    const chunk = 64 * KiB;
    const data = randomData(10 * chunk);
    const session = (await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: 'per-user.bin', size: data.length, chunk_size: chunk })).body;
    const results = await burst(stack.baseUrl, 10, (i, dispatcher) => heldPut(stack, alice.token, session.id, i, data.subarray(i * chunk, (i + 1) * chunk), 800, dispatcher));
    assert.deepEqual(statusCounts(results), { 200: perUser, 429: 10 - perUser });
    for (const refused of results.filter((r) => r.status === 429)) {
      assertError(refused, 429, 'TOO_MANY_CONCURRENT_UPLOADS');
      assert.ok(Number(refused.headers.get('retry-after')) > 0);
    }
    const stored = await api(stack.baseUrl, 'GET', `/api/v1/uploads/${session.id}`, { token: alice.token });
    assert.equal(stored.body.received_chunks.length, perUser);
    assert.equal(limits().chunksPerUser.inFlight(alice.userId), 0);
    // Aborted: the chunks its hash owner held (behind a gap) are let go, with their budget.
    assert.equal((await api(stack.baseUrl, 'DELETE', `/api/v1/uploads/${session.id}`, { token: alice.token })).status, 204);
    await until(() => inUseBeyondSpare() === 0, 'an aborted session holds no budget');
  });

  test('a body that stalls gets 408 REQUEST_TIMEOUT within the timeout, and frees its budget', async () => {
    const session = (await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: 'stall.bin', size: MiB, chunk_size: MiB })).body;
    const started = Date.now();
    const response = await new Promise<{ status: number; body: any }>((resolve, reject) => {
      const url = new URL(`${stack.baseUrl}/api/v1/uploads/${session.id}/chunks/0`);
      const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'PUT', headers: { authorization: `Bearer ${alice.token}`, 'content-length': MiB } }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.write(randomData(100 * KiB)); // …and nothing more
    });
    const elapsed = Date.now() - started;
    assertError(response, 408, 'REQUEST_TIMEOUT');
    assert.ok(elapsed >= 1900 && elapsed < 6000, `answered after ${elapsed} ms`);
    assert.equal(inUseBeyondSpare(), 0);
    assert.equal(limits().chunksPerUser.inFlight(alice.userId), 0);
    // The direct upload path has the same timeout.
    const direct = await new Promise<{ status: number; body: any }>((resolve, reject) => {
      const url = new URL(`${stack.baseUrl}/api/v1/folders/${alice.rootFolderId}/files/stalled.bin`);
      const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'PUT', headers: { authorization: `Bearer ${alice.token}`, 'content-length': MiB } }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.write(randomData(10 * KiB));
    });
    assertError(direct, 408, 'REQUEST_TIMEOUT');
    assert.equal(inUseBeyondSpare(), 0);
    const leftover = await stack.services.db.selectFrom('upload_sessions').select('id').where('name', '=', 'stalled.bin').execute();
    assert.equal(leftover.length, 0, 'the failed direct upload left no session (nor a reservation)');
  });
});
