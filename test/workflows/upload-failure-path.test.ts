// Every workflow has a failure path (issue #8 §2): a chunk object deleted from storage behind the API's back
// makes finalization fail permanently — no endless retries — and the session ends `failed` with the reason,
// its reservation released, the client told clearly, the run visible to operators, and its chunks swept.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { createSession, newUser, putChunk, randomData, sha256, type TestUser } from '../helpers/files';
import { assertError } from '../helpers/assertions';
import { chunkKey } from '../../src/services/chunk-store';
import { trashCleanupWorkflow } from '../../src/workflows/trash-cleanup.workflow';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { pino } from 'pino';
import { createWorkers, type WorkerSet } from '../../src/workers/worker-runtime';
import { taskQueueKinds } from '../../src/temporal/task-queues';

const V1 = '/api/v1';
const chunkSize = 1024 * 1024;

describe('upload finalization failure path', () => {
  let stack: TestStack;
  let tenantId: string;
  let alice: TestUser;
  let admin: TestUser;

  const logLines: any[] = [];
  let workers: WorkerSet;
  let running: Promise<void>;

  before(async () => {
    stack = await startTestStack();
    // Workers whose logs the test reads: activity log lines must name the workflow and the tenant.
    const logger = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(JSON.parse(line)) });
    // Not the search queues: their dispatcher would serve every tenant of the shared test database.
    workers = await createWorkers(stack.config, { ...stack.services, logger }, taskQueueKinds.filter((kind) => !kind.startsWith('search-')));
    running = workers.run();
    tenantId = (await createTestTenant(stack)).id;
    alice = await newUser(stack, tenantId, 'alice');
    admin = await newUser(stack, tenantId, 'admin', { admin: true });
  });
  after(async () => {
    await workers.shutdown();
    await running;
    await stack.close();
  });

  test('a chunk missing from storage fails the session once, with the reason, and frees what it held', async () => {
    const data = randomData(3 * chunkSize);
    const chunks = [0, 1, 2].map((i) => data.subarray(i * chunkSize, (i + 1) * chunkSize));
    const session = await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: 'doomed.bin', size: data.length, chunk_size: chunkSize, checksum_sha256: sha256(data) });
    assert.equal(session.status, 201, session.text);
    for (const [index, chunk] of chunks.entries()) assert.equal((await putChunk(stack, alice.token, session.body.id, index, chunk)).status, 200);
    const reserved = await stack.services.db.selectFrom('quotas').select('reserved_bytes').where('level', '=', 'user').where('subject_id', '=', alice.userId).executeTakeFirstOrThrow();
    assert.equal(Number(reserved.reserved_bytes), data.length, 'the open session holds its reservation');

    // Behind the API's back: the middle chunk's object disappears from the store.
    await stack.services.storage.delete(chunkKey(tenantId, sha256(chunks[1]!)));

    const started = Date.now();
    const finalize = await api(stack.baseUrl, 'POST', `${V1}/uploads/${session.body.id}/finalize`, { token: alice.token });
    assertError(finalize, 409, 'UPLOAD_FAILED');
    assert.equal(finalize.body.details.reason, 'CHUNK_MISSING');
    assert.match(finalize.body.detail, /missing from storage/);
    assert.ok(Date.now() - started < 15_000, 'a permanent failure is not retried for minutes');

    const status = await api(stack.baseUrl, 'GET', `${V1}/uploads/${session.body.id}`, { token: alice.token });
    assert.equal(status.body.status, 'failed');
    assert.equal(status.body.error.code, 'CHUNK_MISSING');
    const after = await stack.services.db.selectFrom('quotas').select(['reserved_bytes', 'used_bytes']).where('level', '=', 'user').where('subject_id', '=', alice.userId).executeTakeFirstOrThrow();
    assert.deepEqual([Number(after.reserved_bytes), Number(after.used_bytes)], [0, 0], 'reservation released, nothing charged');
    const rows = await stack.services.db.selectFrom('upload_chunks').select('index').where('upload_id', '=', session.body.id).execute();
    assert.equal(rows.length, 0, 'the failed session references no chunks any more');

    // Finalizing again is a clear refusal, not a new attempt.
    assertError(await api(stack.baseUrl, 'POST', `${V1}/uploads/${session.body.id}/finalize`, { token: alice.token }), 409, 'UPLOAD_FAILED');

    // Operators see the failed run with its reason.
    const description = await stack.services.temporal.workflow.getHandle(`upload-finalize/${session.body.id}`).describe();
    assert.equal(description.status.name, 'FAILED');
    const listed = await api(stack.baseUrl, 'GET', `${V1}/admin/workflows?status=failed&kind=upload-finalize`, { token: admin.token });
    const item = listed.body.items.find((w: any) => w.workflow_id === `upload-finalize/${session.body.id}`);
    assert.ok(item, listed.text);
    assert.match(item.failure_message, /missing from storage/);

    // The activity's failure was logged with the workflow and the tenant it worked for.
    // (The chunks were hashed as they arrived: the local activity checking them found the gap, not a read of the bytes.)
    const failedLine = logLines.find((l) => l.msg === 'activity failed' && ['checksumWithoutReading', 'hashUploadedContent'].includes(l.activity));
    assert.ok(failedLine, 'an activity failure line was logged');
    assert.equal(failedLine.workflow_id, `upload-finalize/${session.body.id}`);
    assert.equal(failedLine.tenant_id, tenantId);

    // The next sweep reclaims the chunk objects nothing references any more. Other test files share the
    // database (each with storage of its own) and sweep with a 600 s grace: this tenant's chunks are aged 300 s,
    // past this sweep's 120 s grace but not theirs, and this sweep is limited to this tenant.
    await stack.services.db.updateTable('chunks').set({ last_seen_at: sql`now() - interval '300 seconds'` }).where('tenant_id', '=', tenantId).execute();
    await stack.services.temporal.workflow.execute(trashCleanupWorkflow, {
      taskQueue: stack.services.taskQueues.maintenance,
      workflowId: `test-cleanup-${randomUUID()}`,
      args: [{ chunkGraceSeconds: 120, tenantId }],
    });
    for (const chunk of [chunks[0]!, chunks[2]!]) assert.equal(await stack.services.storage.head(chunkKey(tenantId, sha256(chunk))), null, 'swept');
  });
});
