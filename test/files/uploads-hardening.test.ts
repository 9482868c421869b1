// Upload hardening (issue #7, low findings): `deduplicated` reveals only the caller's own chunks, a bounded
// and set-based `chunks/check`, and client aborts logged as "client closed" rather than as a 500.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { createSession, newUser, putChunk, randomData, sha256, uploadResumable, type TestUser } from '../helpers/files';
import { assertError } from '../helpers/assertions';

const KiB = 1024;
const chunk = 64 * KiB;

describe('uploads: hardening', () => {
  let stack: TestStack;
  let alice: TestUser;
  let bob: TestUser;
  before(async () => {
    stack = await startTestStack({ workers: true, env: { SCAIDRIVE_WORKFLOW_WAIT_SECONDS: '60' } });
    const tenantId = (await createTestTenant(stack)).id;
    alice = await newUser(stack, tenantId, 'alice');
    bob = await newUser(stack, tenantId, 'bob');
  });
  after(() => stack.close());

  test("deduplicated: true only for chunks the caller's own uploads hold", async () => {
    const data = randomData(chunk);
    const up = await uploadResumable(stack, alice.token, alice.rootFolderId, 'mine.bin', data, { chunkSize: chunk });
    assert.equal(up.finalize.status, 200, up.finalize.text);

    // Bob sends the same bytes: they are written (as if new) and he learns nothing.
    const bobSession = (await createSession(stack, bob.token, { parent_id: bob.rootFolderId, name: 'same.bin', size: chunk, chunk_size: chunk })).body;
    const bobPut = await putChunk(stack, bob.token, bobSession.id, 0, data);
    assert.equal(bobPut.status, 200);
    assert.equal(bobPut.body.deduplicated, false);
    // Now that Bob's own session holds it, his repeat is deduplicated.
    assert.equal((await putChunk(stack, bob.token, bobSession.id, 0, data)).body.deduplicated, true);

    // Alice, who stores the chunk, is told so.
    const aliceSession = (await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: 'again.bin', size: chunk, chunk_size: chunk })).body;
    assert.equal((await putChunk(stack, alice.token, aliceSession.id, 0, data)).body.deduplicated, true);
    // Bob's upload still finalizes byte-exact.
    const fin = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${bobSession.id}/finalize`, { token: bob.token });
    assert.equal(fin.status, 200, fin.text);
    assert.equal(fin.body.version.checksum_sha256, sha256(data));
  });

  test('chunks/check: more than 1,000 entries → 422; 1,000 attach entries answer fast', async () => {
    const session = (await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: 'many.bin', size: 1000 * chunk, chunk_size: chunk })).body;
    const tooMany = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${session.id}/chunks/check`, {
      token: alice.token,
      body: { sha256: Array.from({ length: 1001 }, (_, i) => sha256(Buffer.from(String(i)))) },
    });
    assertError(tooMany, 422, 'VALIDATION_ERROR');
    const tooManyAttach = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${session.id}/chunks/check`, {
      token: alice.token,
      body: { sha256: [sha256(Buffer.from('x'))], attach: Array.from({ length: 1001 }, (_, index) => ({ index, sha256: sha256(Buffer.from('x')) })) },
    });
    assertError(tooManyAttach, 422, 'VALIDATION_ERROR');

    // Alice holds one chunk; attaching it at 1,000 indexes is a few statements, not 1,000 round trips each.
    const data = randomData(chunk);
    const seed = (await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: 'seed.bin', size: chunk, chunk_size: chunk })).body;
    assert.equal((await putChunk(stack, alice.token, seed.id, 0, data)).status, 200);
    const started = Date.now();
    const attach = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${session.id}/chunks/check`, {
      token: alice.token,
      body: { sha256: [sha256(data)], attach: Array.from({ length: 1000 }, (_, index) => ({ index, sha256: sha256(data) })) },
    });
    const elapsed = Date.now() - started;
    assert.equal(attach.status, 200, attach.text);
    assert.deepEqual(attach.body.known, [sha256(data)]);
    assert.equal(attach.body.attached.length, 1000);
    assert.ok(elapsed < 3000, `took ${elapsed} ms`);
    const status = await api(stack.baseUrl, 'GET', `/api/v1/uploads/${session.id}`, { token: alice.token });
    assert.equal(status.body.received_chunks.length, 1000);
    // Bob cannot attach what he does not hold.
    const bobSession = (await createSession(stack, bob.token, { parent_id: bob.rootFolderId, name: 'steal.bin', size: chunk, chunk_size: chunk })).body;
    const steal = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${bobSession.id}/chunks/check`, { token: bob.token, body: { sha256: [sha256(data)], attach: [{ index: 0, sha256: sha256(data) }] } });
    assert.deepEqual(steal.body, { known: [], attached: [] });
  });

  test('a client that aborts mid-chunk is logged at info as "client closed", not as an unhandled 500', async () => {
    const lines: { level: string; msg: string; status?: number }[] = [];
    const logger = stack.services.logger;
    const originalChild = logger.child.bind(logger);
    // Observe what the request pipeline logs for requests made from here on.
    (logger as any).child = (bindings: object) => {
      const child = originalChild(bindings);
      for (const level of ['info', 'warn', 'error'] as const) {
        const original = child[level].bind(child);
        (child as any)[level] = (obj: any, msg?: string) => {
          lines.push({ level, msg: typeof obj === 'string' ? obj : (msg ?? ''), status: obj?.status });
          return original(obj, msg);
        };
      }
      return child;
    };
    try {
      const session = (await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: 'aborted.bin', size: chunk, chunk_size: chunk })).body;
      await new Promise<void>((resolve) => {
        const url = new URL(`${stack.baseUrl}/api/v1/uploads/${session.id}/chunks/0`);
        const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'PUT', headers: { authorization: `Bearer ${alice.token}`, 'content-length': chunk } });
        req.on('error', () => resolve());
        req.write(randomData(KiB));
        setTimeout(() => req.destroy(), 200);
      });
      for (let i = 0; i < 50 && !lines.some((l) => l.msg === 'request'); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(lines.some((l) => l.level === 'info' && l.msg === 'client closed'), JSON.stringify(lines));
      assert.ok(!lines.some((l) => l.level === 'error'), JSON.stringify(lines));
      assert.ok(!lines.some((l) => l.msg === 'request' && l.status === 500), JSON.stringify(lines));
    } finally {
      (logger as any).child = originalChild;
    }
  });
});
