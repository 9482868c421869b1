// The vectorize workflow's failure path (issue #11): an embedding provider that refuses for good (an unknown model)
// fails the workflow at once (non-retryable), and the version is marked `failed` with the provider's reason — never
// left in `embedding`. Keyword search still finds the file (its text was extracted before embedding failed).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError } from '@temporalio/client';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, uploadDirect, type TestUser } from '../helpers/files';
import { EmbeddingFake } from '../fixtures/embedding-fake';

const V1 = '/api/v1';

describe('vectorization failure path', () => {
  let stack: TestStack;
  let fake: EmbeddingFake;
  let alice: TestUser;

  before(async () => {
    // The fake serves another model than the one configured: every embedding request is a 404 "model not found".
    fake = await EmbeddingFake.start('the-real-model', 8);
    stack = await startTestStack({
      search: true,
      env: { SCAIDRIVE_EMBEDDING_PROVIDER: 'openai', SCAIDRIVE_EMBEDDING_URL: fake.url, SCAIDRIVE_EMBEDDING_MODEL: 'a-missing-model', SCAIDRIVE_EMBEDDING_DIMENSIONS: '8' },
    });
    alice = await newUser(stack, (await createTestTenant(stack)).id, 'alice');
  });
  after(async () => {
    await stack?.close();
    await fake?.close();
  });

  test('a refused embedding fails the workflow once and marks the version failed with the reason', async () => {
    const uploaded = await uploadDirect(stack, alice.token, alice.rootFolderId, 'memo.txt', Buffer.from('A memo about the annual picnic.'));
    assert.equal(uploaded.status, 201);
    const fileId: string = uploaded.body.file.id;
    const handle = stack.services.temporal.workflow.getHandle(`vectorize/${fileId}/${uploaded.body.version.id}`);
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await handle.result();
        assert.fail('the workflow should have failed');
      } catch (error) {
        if (error instanceof WorkflowFailedError) break;
        // Not started yet (the dispatcher runs in the background).
        assert.ok(Date.now() < deadline, `workflow never failed: ${String(error)}`);
        await sleep(200);
      }
    }
    const status = await api(stack.baseUrl, 'GET', `${V1}/search/index-status/${fileId}`, { token: alice.token });
    assert.equal(status.status, 200);
    assert.equal(status.body.status, 'failed');
    assert.match(status.body.reason, /a-missing-model/);
    // Refused for good: one request, no retries.
    assert.equal(fake.requests.filter((r) => r.input.some((text) => text.includes('annual picnic'))).length, 1);
    const keyword = await api(stack.baseUrl, 'GET', `${V1}/search?q=picnic&mode=keyword`, { token: alice.token });
    assert.deepEqual(keyword.body.items.map((hit: any) => hit.file.id), [fileId]);
  });
});
