// A worker killed mid-vectorization (issue #11): a real `scaidrive worker --queue search-high --queue search-low`
// process is SIGKILLed while it embeds a large document (the embedding server is slow on purpose); another worker
// takes over after the heartbeat timeout. The version ends indexed once: one workflow run, every passage exactly
// once in Weaviate, none left over.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { api, createTestTenant, harness, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, uploadDirect, type TestUser } from '../helpers/files';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';
import { EmbeddingFake } from '../fixtures/embedding-fake';
import { PassageStore } from '../../src/search/passage-store';
import type { ConfigVariable } from '../../src/config';
import { SearchDispatcher } from '../../src/services/search-dispatcher';

const V1 = '/api/v1';

describe('vectorization survives a worker crash', () => {
  let stack: TestStack;
  let fake: EmbeddingFake;
  let store: PassageStore;
  let alice: TestUser;
  let tenantId: string;
  let env: Partial<Record<ConfigVariable, string>>;
  let workerEnv: Partial<Record<ConfigVariable, string>>;
  const workers: WorkerProcess[] = [];
  let dispatcher: SearchDispatcher;

  before(async () => {
    fake = await EmbeddingFake.start('crash-model', 8);
    env = {
      SCAIDRIVE_WEAVIATE_URL: harness.weaviateUrl,
      SCAIDRIVE_WEAVIATE_GRPC_PORT: String(harness.weaviateGrpcPort),
      SCAIDRIVE_EMBEDDING_PROVIDER: 'openai',
      SCAIDRIVE_EMBEDDING_URL: fake.url,
      SCAIDRIVE_EMBEDDING_MODEL: 'crash-model',
      SCAIDRIVE_EMBEDDING_DIMENSIONS: '8',
    };
    workerEnv = { ...env, SCAIDRIVE_SEARCH_DISPATCHER: 'false' };
    stack = await startTestStack({ env });
    tenantId = (await createTestTenant(stack)).id;
    // The worker processes only work the queues; this file's own dispatcher starts the workflows, for its tenant
    // alone (other test files share the database).
    dispatcher = new SearchDispatcher({ db: stack.services.db, databaseUrl: stack.config.database.url, temporal: stack.services.temporal, taskQueues: stack.services.taskQueues, search: stack.services.search, logger: stack.services.logger, onlyTenants: () => [tenantId] });
    await dispatcher.start();
    alice = await newUser(stack, tenantId, 'alice');
    store = await PassageStore.connect({ url: harness.weaviateUrl, grpcPort: harness.weaviateGrpcPort });
  });
  after(async () => {
    await dispatcher?.stop();
    for (const worker of workers) await worker.kill('SIGKILL');
    await store?.close();
    await stack?.close();
    await fake?.close();
  });

  test('kill -9 while embedding, start another worker: indexed once, every passage exactly once', async () => {
    // ~640 passages of ~1,000 characters: ten embedding batches of 64, each answered after 500 ms.
    const paragraphs = Array.from({ length: 640 }, (_, i) => `Paragraph ${i} about lighthouse keeper ${i % 17} and the ${'tide '.repeat(150)}`);
    fake.delayMs = 500;
    const uploaded = await uploadDirect(stack, alice.token, alice.rootFolderId, 'logbook.txt', Buffer.from(paragraphs.join('\n\n')));
    assert.equal(uploaded.status, 201);
    const fileId: string = uploaded.body.file.id;
    const versionId: string = uploaded.body.version.id;

    const logs: Buffer[] = [];
    workers.push(await startWorkerProcess(stack, logs, ['search-high', 'search-low'], workerEnv));
    // Wait until some batches are in Weaviate and more are to come.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const stored = (await store.passagesOf(tenantId, fileId)).length;
      const status = await api(stack.baseUrl, 'GET', `${V1}/search/index-status/${fileId}`, { token: alice.token });
      if (stored >= 64 && status.body.status === 'embedding') break;
      assert.ok(Date.now() < deadline, `never got mid-embedding: ${stored} stored, ${status.text}`);
      await sleep(100);
    }
    await workers[0]!.kill('SIGKILL');
    const requestsAtKill = fake.requests.length;

    workers.push(await startWorkerProcess(stack, [], ['search-high', 'search-low'], workerEnv));
    const handle = stack.services.temporal.workflow.getHandle(`vectorize/${fileId}/${versionId}`);
    const result = await handle.result();
    assert.equal(result.status, 'indexed');
    assert.ok(fake.requests.length > requestsAtKill, 'the second worker embedded the rest');

    const status = await api(stack.baseUrl, 'GET', `${V1}/search/index-status/${fileId}`, { token: alice.token });
    assert.equal(status.body.status, 'indexed');
    const passages = await store.passagesOf(tenantId, fileId);
    assert.equal(passages.length, status.body.passages, 'as many passages in Weaviate as indexed');
    const indexes = passages.map((p) => p.properties.passage_index);
    assert.equal(new Set(indexes).size, indexes.length, 'no passage twice');
    assert.deepEqual([...indexes].sort((a, b) => a - b), Array.from({ length: indexes.length }, (_, i) => i));
    assert.ok(passages.every((p) => p.properties.version_id === versionId));

    // One run of the workflow; its activity needed a second attempt.
    const runs = [];
    for await (const run of stack.services.temporal.workflow.list({ query: `WorkflowId = 'vectorize/${fileId}/${versionId}'` })) runs.push(run);
    assert.equal(runs.length, 1);
    const history = await handle.fetchHistory();
    const attempts = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt);
    assert.ok(attempts.some((attempt) => (attempt ?? 0) >= 2), `attempts: ${JSON.stringify(attempts)}`);
  });
});
