// Races between chunk writes and finalize (issue #7, finding 4): once a session is finalizing, chunk writes
// are refused (409) atomically, and the committed version's bytes always hash to its checksum.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { Dispatcher } from 'undici';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { createSession, download, newUser, putChunk, randomData, sha256, type TestUser } from '../helpers/files';
import { burst, statusCounts } from '../helpers/race';
import { assertError } from '../helpers/assertions';

const KiB = 1024;
const chunk = 256 * KiB;

/** A chunk PUT whose last byte is held back until `release` resolves (a slow client). */
function slowChunkPut(stack: TestStack, token: string, uploadId: string, index: number, data: Buffer, release: Promise<void>) {
  return new Promise<{ status: number; body: any }>((resolve, reject) => {
    const url = new URL(`${stack.baseUrl}/api/v1/uploads/${uploadId}/chunks/${index}`);
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': data.length } },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on('error', reject);
    req.write(data.subarray(0, data.length - 1));
    void release.then(() => req.end(data.subarray(data.length - 1)));
  });
}

function putWith(stack: TestStack, token: string, uploadId: string, index: number, data: Buffer, dispatcher: Dispatcher) {
  return fetch(`${stack.baseUrl}/api/v1/uploads/${uploadId}/chunks/${index}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    body: data,
    dispatcher,
  } as RequestInit).then(async (r) => ({ status: r.status, body: JSON.parse((await r.text()) || 'null') }));
}

describe('uploads: chunk writes racing finalize', () => {
  let stack: TestStack;
  let alice: TestUser;
  before(async () => {
    // The per-user chunk concurrency cap is raised so all 20 re-PUTs race (the cap has its own test).
    stack = await startTestStack({ workers: true, env: { SCAIDRIVE_WORKFLOW_WAIT_SECONDS: '60', SCAIDRIVE_UPLOAD_MAX_CONCURRENT_CHUNKS_PER_USER: '50' } });
    alice = await newUser(stack, (await createTestTenant(stack)).id, 'alice');
  });
  after(() => stack.close());

  const slice = (data: Buffer, index: number) => data.subarray(index * chunk, (index + 1) * chunk);

  async function assertCommittedBytesMatch(fileId: string, versionChecksum: string) {
    const got = await download(stack, `/api/v1/files/${fileId}/content`, { token: alice.token });
    assert.equal(got.status, 200);
    assert.equal(sha256(got.body), versionChecksum, 'the served bytes hash to the version checksum');
    const node = await stack.services.db.selectFrom('nodes').select('checksum_sha256').where('id', '=', fileId).executeTakeFirstOrThrow();
    assert.equal(node.checksum_sha256, versionChecksum);
    return got.body;
  }

  test('a re-PUT of chunk 0 whose last byte arrives 300 ms after finalize started is refused, or finalize sees it', async () => {
    const data = randomData(24 * chunk);
    const session = (await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: 'slow.bin', size: data.length, chunk_size: chunk, checksum_sha256: sha256(data) })).body;
    for (let i = 0; i < 24; i++) assert.equal((await putChunk(stack, alice.token, session.id, i, slice(data, i))).status, 200);

    let releaseLastByte!: () => void;
    const released = new Promise<void>((resolve) => (releaseLastByte = resolve));
    const other = randomData(chunk);
    const slowPut = slowChunkPut(stack, alice.token, session.id, 0, other, released);
    await new Promise((r) => setTimeout(r, 200)); // the PUT is past its early checks, reading the body
    const finalizing = api(stack.baseUrl, 'POST', `/api/v1/uploads/${session.id}/finalize`, { token: alice.token });
    setTimeout(releaseLastByte, 300);
    const [put, fin] = await Promise.all([slowPut, finalizing]);

    if (fin.status === 200) {
      // The session was frozen before the late chunk: it must be refused and the original bytes committed.
      assertError(put, 409, put.body?.code, 'late chunk');
      assert.ok(['UPLOAD_FINALIZING', 'UPLOAD_COMPLETED'].includes(put.body.code), JSON.stringify(put.body));
      assert.equal(fin.body.version.checksum_sha256, sha256(data));
      const body = await assertCommittedBytesMatch(fin.body.file.id, fin.body.version.checksum_sha256);
      assert.ok(body.equals(data));
    } else {
      // The chunk landed before the freeze: finalize hashed the new bytes and refused them.
      assert.equal(put.status, 200, JSON.stringify(put.body));
      assertError(fin, 400, 'CHECKSUM_MISMATCH');
      assert.equal((await stack.services.db.selectFrom('versions').select('id').where('upload_id', '=', session.id).execute()).length, 0);
    }
  });

  test('20 parallel chunk re-PUTs racing finalize: the committed bytes hash to the version checksum', async () => {
    const count = 20;
    const data = randomData(count * chunk);
    const replacement = randomData(count * chunk);
    // No declared checksum: whatever is committed must still be internally consistent.
    const session = (await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: 'racy.bin', size: data.length, chunk_size: chunk })).body;
    for (let i = 0; i < count; i++) assert.equal((await putChunk(stack, alice.token, session.id, i, slice(data, i))).status, 200);

    const results = await burst(stack.baseUrl, count + 1, (i, dispatcher) => {
      // Finalize a moment later, so some re-PUTs land before the freeze and some after.
      if (i === count / 2) return new Promise((r) => setTimeout(r, 15)).then(() => api(stack.baseUrl, 'POST', `/api/v1/uploads/${session.id}/finalize`, { token: alice.token, dispatcher }));
      const index = i < count / 2 ? i : i - 1;
      return putWith(stack, alice.token, session.id, index, slice(replacement, index), dispatcher);
    });
    const fin = results[count / 2]!;
    assert.equal(fin.status, 200, JSON.stringify(fin.body));
    const puts = results.filter((_, i) => i !== count / 2);
    const counts = statusCounts(puts);
    assert.equal((counts[200] ?? 0) + (counts[409] ?? 0), count, JSON.stringify(counts));
    for (const refused of puts.filter((p) => p.status === 409)) assertError(refused, 409, refused.body.code);

    const body = await assertCommittedBytesMatch(fin.body.file.id, fin.body.version.checksum_sha256);
    // Every chunk of the committed file is one of the two versions sent for that index.
    for (let i = 0; i < count; i++) {
      const got = body.subarray(i * chunk, (i + 1) * chunk);
      assert.ok(got.equals(slice(data, i)) || got.equals(slice(replacement, i)), `chunk ${i} is neither original nor replacement`);
    }
    // Nothing can be written into the completed session any more.
    assertError(await putChunk(stack, alice.token, session.id, 0, slice(replacement, 0)), 409, 'UPLOAD_COMPLETED');
  });
});
