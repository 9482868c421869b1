// The compiled CLI (`npm run build` → dist/scaidrive.mjs, what production and the benchmarks run): an API
// process and an uploads worker from the bundle serve a resumable upload end to end — the chunks hashed as they
// arrive, the finalization workflow bundled from src/workflows by the compiled worker —
// and the download gives the bytes back.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, randomData, sha256, type TestUser } from '../helpers/files';
import { startApiProcess, type ApiProcess } from '../helpers/api-process';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';

const compiled = 'dist/scaidrive.mjs';

describe('the compiled CLI (dist/scaidrive.mjs)', () => {
  let stack: TestStack;
  let alice: TestUser;
  let apiProcess: ApiProcess;
  let worker: WorkerProcess;

  before(async () => {
    await promisify(execFile)(process.execPath, ['scripts/build.mjs']);
    // No in-process workers: the finalization can only run on the compiled worker.
    stack = await startTestStack();
    alice = await newUser(stack, (await createTestTenant(stack)).id, 'alice');
    apiProcess = await startApiProcess(stack, compiled);
    worker = await startWorkerProcess(stack, [], ['uploads'], {}, compiled);
  });
  after(async () => {
    await apiProcess?.stop();
    await worker?.kill('SIGTERM');
    await stack?.close();
  });

  test('serves a resumable upload hashed as it arrives, finalized by the compiled worker, and its download', async () => {
    const chunkSize = 256 * 1024;
    const data = randomData(chunkSize * 4 + 17);
    const session = await api(apiProcess.baseUrl, 'POST', '/api/v1/uploads', {
      token: alice.token,
      body: { parent_id: alice.rootFolderId, name: 'compiled.bin', size: data.length, chunk_size: chunkSize, checksum_sha256: sha256(data) },
    });
    assert.equal(session.status, 201, session.text);
    for (let index = 0; index * chunkSize < data.length; index++) {
      const response = await fetch(`${apiProcess.baseUrl}/api/v1/uploads/${session.body.id}/chunks/${index}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/octet-stream' },
        body: data.subarray(index * chunkSize, (index + 1) * chunkSize),
      });
      assert.equal(response.status, 200, await response.text());
    }
    const deadline = Date.now() + 20_000;
    const hashed = async () => (await stack.services.db.selectFrom('upload_sessions').select('hashed_chunks').where('id', '=', session.body.id).executeTakeFirstOrThrow()).hashed_chunks;
    while ((await hashed()) < 5) {
      assert.ok(Date.now() < deadline, `the compiled API hashed ${await hashed()} of 5 chunks`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const done = await api(apiProcess.baseUrl, 'POST', `/api/v1/uploads/${session.body.id}/finalize`, { token: alice.token });
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.version.checksum_sha256, sha256(data));
    const content = await fetch(`${apiProcess.baseUrl}/api/v1/files/${done.body.file.id}/content`, { headers: { authorization: `Bearer ${alice.token}` } });
    assert.equal(content.status, 200);
    assert.ok(Buffer.from(await content.arrayBuffer()).equals(data));
  });

  test('an API process does not load what only workers need (the Temporal worker SDK and its native core)', async () => {
    // Shared libraries a process loaded are mapped: the worker SDK's native bridge is one (Node addon, ~11 MiB of RSS
    // with the SDK's JavaScript); one bundle used to load it into every API process.
    const nativeBridge = /@temporalio\/core-bridge\/.*\.node$/m;
    assert.match(await readFile(`/proc/${worker.child.pid}/maps`, 'utf8'), nativeBridge, 'the worker maps the native bridge');
    assert.doesNotMatch(await readFile(`/proc/${apiProcess.pid}/maps`, 'utf8'), nativeBridge);
  });
});
