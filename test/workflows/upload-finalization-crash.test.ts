// The worker process is killed (SIGKILL) in the middle of an upload finalization and started again: the
// workflow resumes on the new worker and the upload ends with exactly one version, one quota charge and one
// change-log entry.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { createSession, download, newUser, putChunk, randomData, sha256, type TestUser } from '../helpers/files';
import { createUploadActivities } from '../../src/activities/upload.activities';

const MiB = 1024 * 1024;

describe('upload finalization survives a worker crash', () => {
  let stack: TestStack;
  let alice: TestUser;
  const workers: ChildProcess[] = [];

  before(async () => {
    // The API answers finalize at once (202); the test watches the workflow itself.
    stack = await startTestStack({ env: { SCAIDRIVE_WORKFLOW_WAIT_SECONDS: '0' } });
    alice = await newUser(stack, (await createTestTenant(stack)).id, 'alice');
  });
  after(async () => {
    for (const worker of workers) if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
    await stack.close();
  });

  /** A real worker process (`scaidrive worker --queue uploads`) sharing the stack's database, storage and queues. */
  async function startWorkerProcess(): Promise<ChildProcess> {
    const config = stack.config;
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('SCAIDRIVE_')));
    const worker = spawn(process.execPath, [path.resolve('bin/scaidrive.mjs'), 'worker', '--queue', 'uploads'], {
      env: {
        ...env,
        SCAIDRIVE_ENV: 'test',
        SCAIDRIVE_LOG_LEVEL: 'silent',
        SCAIDRIVE_PORT: '0',
        SCAIDRIVE_DATABASE_URL: config.database.url,
        SCAIDRIVE_TEMPORAL_ADDRESS: config.temporal.address,
        SCAIDRIVE_TEMPORAL_TASK_QUEUE_PREFIX: config.temporal.taskQueuePrefix,
        SCAIDRIVE_DATA_DIR: config.dataDir,
      },
      stdio: 'ignore',
    });
    workers.push(worker);
    // Ready once Temporal sees it polling the uploads queue.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const queue = await stack.services.temporal.workflowService.describeTaskQueue({
        namespace: config.temporal.namespace,
        taskQueue: { name: stack.services.taskQueues.uploads },
        taskQueueType: 1,
      });
      if ((queue.pollers ?? []).some((p) => p.lastAccessTime && Number(p.lastAccessTime.seconds) * 1000 > Date.now() - 2000) && worker.exitCode === null) return worker;
      if (worker.exitCode !== null) throw new Error(`worker exited with ${worker.exitCode}`);
      if (Date.now() > deadline) throw new Error('worker did not start polling');
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  test('kill -9 during the hash, restart: exactly one version, one charge, one change entry', async () => {
    let worker = await startWorkerProcess();
    const data = randomData(256 * MiB);
    const chunk = 8 * MiB;
    const session = await createSession(stack, alice.token, { parent_id: alice.rootFolderId, name: 'crash.bin', size: data.length, chunk_size: chunk, checksum_sha256: sha256(data) });
    assert.equal(session.status, 201, session.text);
    for (let index = 0; index < session.body.chunk_count; index++) {
      assert.equal((await putChunk(stack, alice.token, session.body.id, index, data.subarray(index * chunk, (index + 1) * chunk))).status, 200);
    }

    // The API hashed the chunks as they arrived; for the worker to hash them (and be killed meanwhile), the session
    // looks as if its hash owner was lost (the API process that received them stopped): no saved SHA-256.
    await stack.services.db.updateTable('upload_sessions').set({ hash_owner: null, hashed_chunks: 0, hashed_chain: '', hashed_sha256: null }).where('id', '=', session.body.id).execute();
    const started = await api(stack.baseUrl, 'POST', `/api/v1/uploads/${session.body.id}/finalize`, { token: alice.token });
    assert.equal(started.status, 202, started.text);
    assert.equal(started.body.workflow_id, `upload-finalize/${session.body.id}`);
    const handle = stack.services.temporal.workflow.getHandle(started.body.workflow_id);

    // Kill the worker as soon as the hashing activity is running (mid-finalization).
    let killedDuring = '';
    const deadline = Date.now() + 60_000;
    while (!killedDuring) {
      const description = await handle.describe();
      const pending = description.raw.pendingActivities ?? [];
      const hashing = pending.find((a) => a.activityType?.name === 'hashUploadedContent');
      if (hashing) {
        worker.kill('SIGKILL');
        killedDuring = `hashUploadedContent (attempt ${hashing.attempt})`;
      } else if (description.status.name !== 'RUNNING') {
        assert.fail(`finalization finished (${description.status.name}) before the worker could be killed`);
      } else if (Date.now() > deadline) {
        assert.fail('the hashing activity never started');
      } else {
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    await new Promise((resolve) => worker.once('exit', resolve));
    assert.equal((await handle.describe()).status.name, 'RUNNING', `killed during ${killedDuring}`);
    assert.equal((await api(stack.baseUrl, 'GET', `/api/v1/uploads/${session.body.id}`, { token: alice.token })).body.status, 'finalizing');

    // A new worker picks the workflow up (the hash is retried once its heartbeat times out).
    worker = await startWorkerProcess();
    const result = (await handle.result()) as { outcome: string; fileId: string; versionId: string };
    assert.equal(result.outcome, 'completed');

    const status = await api(stack.baseUrl, 'GET', `/api/v1/uploads/${session.body.id}`, { token: alice.token });
    assert.equal(status.body.status, 'completed');
    const { db } = stack.services;
    const versions = await db.selectFrom('versions').selectAll().where('file_id', '=', result.fileId).execute();
    assert.equal(versions.length, 1);
    assert.equal(versions[0]!.id, result.versionId);
    const usage = await db.selectFrom('quotas').select('used_bytes').where('level', '=', 'user').where('subject_id', '=', alice.userId).executeTakeFirstOrThrow();
    assert.equal(usage.used_bytes, data.length);
    const changes = await db.selectFrom('change_log').select('type').where('node_id', '=', result.fileId).execute();
    assert.deepEqual(changes.map((c) => c.type), ['created']);
    const got = await download(stack, `/api/v1/files/${result.fileId}/content`, { token: alice.token });
    assert.equal(sha256(got.body), sha256(data));

    // The commit activity itself is idempotent: running it again (a retry after a crash between the commit
    // and its completion being recorded) changes nothing.
    const activities = createUploadActivities(stack.services);
    const again = await activities.commitUpload(session.body.id, sha256(data));
    assert.deepEqual(again, { kind: 'completed', fileId: result.fileId, versionId: result.versionId });
    assert.equal((await db.selectFrom('versions').select('id').where('file_id', '=', result.fileId).execute()).length, 1);
    const usageAfter = await db.selectFrom('quotas').select('used_bytes').where('level', '=', 'user').where('subject_id', '=', alice.userId).executeTakeFirstOrThrow();
    assert.equal(usageAfter.used_bytes, data.length);
    assert.equal((await db.selectFrom('change_log').select('seq').where('node_id', '=', result.fileId).execute()).length, 1);
    worker.kill('SIGTERM');
  });
});
