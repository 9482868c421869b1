// Direct-to-storage chunk uploads (spec §6 "transfer": "direct"; issue #13 item 2) against the harness's MinIO:
// the client PUTs each chunk to a presigned URL and the store itself rejects bytes that do not match the signed
// x-amz-checksum-sha256; `complete` accepts only an object this session wrote; a URL for one key cannot write
// another (another tenant's); the caller's own chunks are deduplicated without a URL; expired URLs are refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { createSession, download, newUser, randomData, sha256, uploadResumable, type TestUser } from '../helpers/files';
import { openPool } from '../helpers/race';
import { s3TestEnv } from '../helpers/s3';

const chunkSize = 256 * 1024;

interface Ticket {
  index: number;
  sha256: string;
  deduplicated: boolean;
  url: string | null;
  headers: Record<string, string>;
}

async function ticket(stack: TestStack, token: string, uploadId: string, index: number, chunk: Buffer) {
  return api(stack.baseUrl, 'POST', `/api/v1/uploads/${uploadId}/chunks/${index}/url`, { token, body: { sha256: sha256(chunk), size: chunk.length } });
}

async function putToStore(t: Ticket, body: Buffer, url = t.url!): Promise<{ status: number; text: string }> {
  const response = await fetch(url, { method: 'PUT', headers: t.headers, body });
  return { status: response.status, text: await response.text() };
}

async function complete(stack: TestStack, token: string, uploadId: string, index: number, chunk: Buffer) {
  return api(stack.baseUrl, 'PUT', `/api/v1/uploads/${uploadId}/chunks/${index}/complete`, { token, body: { sha256: sha256(chunk) } });
}

/** Sends every chunk of `data` the direct way (ticket → PUT to the store → complete); the tickets, in order. */
async function sendDirect(stack: TestStack, token: string, uploadId: string, data: Buffer): Promise<Ticket[]> {
  const tickets: Ticket[] = [];
  for (let index = 0; index * chunkSize < data.length; index++) {
    const chunk = data.subarray(index * chunkSize, (index + 1) * chunkSize);
    const issued = await ticket(stack, token, uploadId, index, chunk);
    assert.equal(issued.status, 200, issued.text);
    tickets.push(issued.body);
    if (issued.body.deduplicated) continue;
    const stored = await putToStore(issued.body, chunk);
    assert.equal(stored.status, 200, stored.text);
    const done = await complete(stack, token, uploadId, index, chunk);
    assert.equal(done.status, 200, done.text);
  }
  return tickets;
}

async function directSession(stack: TestStack, user: TestUser, name: string, data: Buffer) {
  const session = await createSession(stack, user.token, { parent_id: user.rootFolderId, name, size: data.length, chunk_size: chunkSize, checksum_sha256: sha256(data), transfer: 'direct' });
  assert.equal(session.status, 201, session.text);
  assert.equal(session.body.transfer, 'direct');
  return session.body.id as string;
}

describe('direct-to-storage chunk uploads (S3 driver)', () => {
  let stack: TestStack;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser; // another tenant

  before(async () => {
    stack = await startTestStack({ workers: true, env: s3TestEnv() });
    const tenant = (await createTestTenant(stack)).id;
    alice = await newUser(stack, tenant, 'alice');
    bob = await newUser(stack, tenant, 'bob');
    carol = await newUser(stack, (await createTestTenant(stack)).id, 'carol');
  });
  after(() => stack.close());

  test('chunks PUT straight to the store, completed, finalized: the file downloads byte-exact with its checksum', async () => {
    const data = randomData(chunkSize * 3 + 1000);
    const uploadId = await directSession(stack, alice, 'direct.bin', data);
    const tickets = await sendDirect(stack, alice.token, uploadId, data);
    assert.equal(tickets.length, 4);
    assert.ok(tickets.every((t) => !t.deduplicated && t.url && t.headers['x-amz-checksum-sha256']));
    const status = await api(stack.baseUrl, 'GET', `/api/v1/uploads/${uploadId}`, { token: alice.token });
    assert.deepEqual(status.body.received_chunks, [0, 1, 2, 3]);
    const finalize = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${uploadId}/finalize`, { token: alice.token });
    assert.equal(finalize.status, 200, finalize.text);
    const got = await download(stack, `/api/v1/files/${finalize.body.file.id}/content`, { token: alice.token });
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(data));
    assert.equal(got.headers.get('x-checksum-sha256'), sha256(data));
  });

  test('the store rejects bytes that do not match the signed checksum; the chunk is not recorded and cannot be completed', async () => {
    const data = randomData(chunkSize);
    const uploadId = await directSession(stack, alice, 'tampered.bin', data);
    const issued = await ticket(stack, alice.token, uploadId, 0, data);
    assert.equal(issued.status, 200, issued.text);
    const wrong = Buffer.from(data);
    wrong[100] = wrong[100]! ^ 0xff;
    const rejected = await putToStore(issued.body, wrong);
    assert.equal(rejected.status, 400, rejected.text);
    assert.match(rejected.text, /Checksum/i);
    const done = await complete(stack, alice.token, uploadId, 0, data);
    assert.equal(done.status, 409, done.text);
    assert.equal(done.body.code, 'CHUNK_NOT_UPLOADED');
    const status = await api(stack.baseUrl, 'GET', `/api/v1/uploads/${uploadId}`, { token: alice.token });
    assert.deepEqual(status.body.received_chunks, []);
    // Without the signed headers, or with another tag, the store refuses too.
    assert.equal((await fetch(issued.body.url, { method: 'PUT', body: data })).status >= 400, true);
    const forged = await fetch(issued.body.url, { method: 'PUT', body: data, headers: { ...issued.body.headers, 'x-amz-meta-scaidrive-upload': 'other/0' } });
    assert.equal(forged.status, 403);
  });

  test("a URL for one tenant's key cannot write another tenant's key; other users cannot use or complete the session", async () => {
    const data = randomData(chunkSize);
    const uploadId = await directSession(stack, alice, 'keys.bin', data);
    const issued = await ticket(stack, alice.token, uploadId, 0, data);
    const url = new URL(issued.body.url);
    const [, bucket, tenant] = url.pathname.split('/');
    const carolTenant = (await api(stack.baseUrl, 'GET', '/api/v1/me', { token: carol.token })).body.tenant_id as string;
    assert.ok(tenant && carolTenant && tenant !== carolTenant);
    url.pathname = url.pathname.replace(`/${bucket}/${tenant}/`, `/${bucket}/${carolTenant}/`);
    const crossTenant = await putToStore(issued.body, data, url.toString());
    assert.equal(crossTenant.status, 403, crossTenant.text);
    for (const other of [bob, carol]) {
      assert.equal((await ticket(stack, other.token, uploadId, 0, data)).status, 404);
      assert.equal((await complete(stack, other.token, uploadId, 0, data)).status, 404);
    }
  });

  test("the caller's own chunks are deduplicated without a URL; someone else's are not, and knowing their hash is not enough to complete", async () => {
    const data = randomData(chunkSize * 2);
    const first = await uploadResumable(stack, alice.token, alice.rootFolderId, 'original.bin', data, { chunkSize });
    assert.equal(first.finalize.status, 200, first.finalize.text);

    const again = await directSession(stack, alice, 'again.bin', data);
    const tickets = await sendDirect(stack, alice.token, again, data);
    assert.ok(tickets.every((t) => t.deduplicated && t.url === null), JSON.stringify(tickets));
    const finalize = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${again}/finalize`, { token: alice.token });
    assert.equal(finalize.status, 200, finalize.text);

    // Bob knows the hashes of Alice's chunks but not the bytes: he gets a URL (the answer reveals nothing) and
    // cannot complete without sending them, although the object is in the store.
    const bobsSession = await directSession(stack, bob, 'guess.bin', data);
    const bobsTicket = await ticket(stack, bob.token, bobsSession, 0, data.subarray(0, chunkSize));
    assert.equal(bobsTicket.body.deduplicated, false);
    assert.ok(bobsTicket.body.url);
    const guessed = await complete(stack, bob.token, bobsSession, 0, data.subarray(0, chunkSize));
    assert.equal(guessed.status, 409, guessed.text);
    assert.equal(guessed.body.code, 'CHUNK_NOT_UPLOADED');
    // Once he sends them, it is his.
    assert.equal((await putToStore(bobsTicket.body, data.subarray(0, chunkSize))).status, 200);
    assert.equal((await complete(stack, bob.token, bobsSession, 0, data.subarray(0, chunkSize))).status, 200);
  });

  test('batches: tickets for many chunks in one request, completes in one request; chunks not PUT are named in a 409, the rest recorded', async () => {
    const data = randomData(chunkSize * 4 + 10);
    const uploadId = await directSession(stack, alice, 'batch.bin', data);
    const chunks = Array.from({ length: 5 }, (_, index) => data.subarray(index * chunkSize, (index + 1) * chunkSize));
    const issued = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${uploadId}/chunks/urls`, {
      token: alice.token,
      body: { chunks: [...chunks.map((chunk, index) => ({ index, sha256: sha256(chunk), size: chunk.length })), { index: 0, sha256: sha256(chunks[0]!), size: chunkSize }] },
    });
    assert.equal(issued.status, 200, issued.text);
    assert.deepEqual(issued.body.items.map((t: Ticket) => t.index), [0, 1, 2, 3, 4], 'one ticket per index');
    // All but chunk 3 go to the store.
    for (const t of issued.body.items as Ticket[]) if (t.index !== 3) assert.equal((await putToStore(t, chunks[t.index]!)).status, 200);
    const all = chunks.map((chunk, index) => ({ index, sha256: sha256(chunk) }));
    const partly = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${uploadId}/chunks/complete`, { token: alice.token, body: { chunks: all } });
    assert.equal(partly.status, 409, partly.text);
    assert.equal(partly.body.code, 'CHUNK_NOT_UPLOADED');
    assert.deepEqual(partly.body.details.indexes, [3]);
    assert.deepEqual((await api(stack.baseUrl, 'GET', `/api/v1/uploads/${uploadId}`, { token: alice.token })).body.received_chunks, [0, 1, 2, 4]);
    assert.equal((await putToStore((issued.body.items as Ticket[])[3]!, chunks[3]!)).status, 200);
    const rest = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${uploadId}/chunks/complete`, { token: alice.token, body: { chunks: all } });
    assert.equal(rest.status, 200, rest.text);
    assert.equal(rest.body.items.length, 5);
    const finalize = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${uploadId}/finalize`, { token: alice.token });
    assert.equal(finalize.status, 200, finalize.text);
    assert.equal(finalize.body.version.checksum_sha256, sha256(data));
    const tooMany = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${uploadId}/chunks/urls`, { token: alice.token, body: { chunks: Array.from({ length: 101 }, (_, index) => ({ index, sha256: sha256(data), size: 1 })) } });
    assert.equal(tooMany.status, 422, tooMany.text);
  });

  test('20 parallel completes of one chunk over keep-alive connections record it once; a proxied session has no URLs', async () => {
    const data = randomData(chunkSize);
    const uploadId = await directSession(stack, alice, 'parallel.bin', data);
    const issued = await ticket(stack, alice.token, uploadId, 0, data);
    assert.equal((await putToStore(issued.body, data)).status, 200);
    const pool = await openPool(stack.baseUrl, 20);
    try {
      const results = await Promise.all(
        Array.from({ length: 20 }, () => api(stack.baseUrl, 'PUT', `/api/v1/uploads/${uploadId}/chunks/0/complete`, { token: alice.token, body: { sha256: sha256(data) }, dispatcher: pool })),
      );
      assert.deepEqual(results.map((r) => r.status), Array(20).fill(200));
    } finally {
      await pool.close();
    }
    const wrongSize = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${uploadId}/chunks/0/url`, { token: alice.token, body: { sha256: sha256(data), size: 5 } });
    assert.equal(wrongSize.status, 400, wrongSize.text);
    assert.equal(wrongSize.body.code, 'CHUNK_SIZE_MISMATCH');
    const chunks = await stack.services.db.selectFrom('upload_chunks').select(['index', 'sha256']).where('upload_id', '=', uploadId).execute();
    assert.deepEqual(chunks, [{ index: 0, sha256: sha256(data) }]);
    const finalize = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${uploadId}/finalize`, { token: alice.token });
    assert.equal(finalize.status, 200, finalize.text);

    const proxied = await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: 'proxied.bin', size: data.length, chunk_size: chunkSize });
    const refused = await ticket(stack, alice.token, proxied.body.id, 0, data);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.code, 'UPLOAD_NOT_DIRECT');
  });
});

describe('direct-to-storage chunk uploads: URL expiry and the filesystem driver', () => {
  let s3Stack: TestStack;
  let fsStack: TestStack;

  before(async () => {
    s3Stack = await startTestStack({ env: { ...s3TestEnv(), SCAIDRIVE_UPLOAD_DIRECT_URL_TTL_SECONDS: '1' } });
    fsStack = await startTestStack();
  });
  after(async () => {
    await s3Stack.close();
    await fsStack.close();
  });

  test('a URL past its expiry is refused by the store', async () => {
    const user = await newUser(s3Stack, (await createTestTenant(s3Stack)).id, 'dora');
    const data = randomData(chunkSize);
    const uploadId = await directSession(s3Stack, user, 'late.bin', data);
    const issued = await ticket(s3Stack, user.token, uploadId, 0, data);
    assert.equal(issued.status, 200, issued.text);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const late = await putToStore(issued.body, data);
    assert.equal(late.status, 403, late.text);
    assert.equal((await complete(s3Stack, user.token, uploadId, 0, data)).status, 409);
  });

  test('the filesystem driver refuses "transfer": "direct" with a clear 400', async () => {
    assert.equal(fsStack.services.storage.driver, 'filesystem');
    const user = await newUser(fsStack, (await createTestTenant(fsStack)).id, 'erin');
    const session = await createSession(fsStack, user.token, { parent_id: user.rootFolderId, name: 'x.bin', size: 10, transfer: 'direct' });
    assert.equal(session.status, 400, session.text);
    assert.equal(session.body.code, 'DIRECT_TRANSFER_UNSUPPORTED');
  });
});
