// The two vectorization priorities (issue #11 item 3): a backlog on the low queue (a re-index, a connector import)
// never starves a user's fresh upload on the high queue. The embedding provider is slow for the backlog's texts
// only, and the low queue runs two at a time; a fresh upload made while the backlog is queued is indexed long
// before the backlog drains, and the backlog still finishes, every file once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, uploadDirect, type TestUser } from '../helpers/files';
import { EmbeddingFake } from '../fixtures/embedding-fake';

const V1 = '/api/v1';
const backlogSize = 16;

describe('vectorization priorities', () => {
  let stack: TestStack;
  let fake: EmbeddingFake;
  let alice: TestUser;
  let admin: TestUser;

  before(async () => {
    fake = await EmbeddingFake.start('prio-model', 8);
    stack = await startTestStack({
      search: true,
      env: {
        SCAIDRIVE_EMBEDDING_PROVIDER: 'openai',
        SCAIDRIVE_EMBEDDING_URL: fake.url,
        SCAIDRIVE_EMBEDDING_MODEL: 'prio-model',
        SCAIDRIVE_EMBEDDING_DIMENSIONS: '8',
        SCAIDRIVE_SEARCH_LOW_CONCURRENCY: '2',
      },
    });
    const tenantId = (await createTestTenant(stack)).id;
    alice = await newUser(stack, tenantId, 'alice');
    admin = await newUser(stack, tenantId, 'admin', { admin: true });
  });
  after(async () => {
    await stack?.close();
    await fake?.close();
  });

  const statusOf = async (fileId: string) => (await api(stack.baseUrl, 'GET', `${V1}/search/index-status/${fileId}`, { token: alice.token })).body;
  async function waitUntil<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
      await sleep(100);
    }
  }

  test('a fresh upload is indexed while a slow low-priority backlog is still queued; the backlog then finishes once each', async () => {
    const backlog: string[] = [];
    for (let i = 0; i < backlogSize; i++) {
      const res = await uploadDirect(stack, alice.token, alice.rootFolderId, `archive-${i}.txt`, Buffer.from(`Archived backlog record number ${i}.`));
      assert.equal(res.status, 201, JSON.stringify(res.body));
      backlog.push(res.body.file.id);
    }
    for (const id of backlog) await waitUntil(`${id} indexed`, async () => ((await statusOf(id)).status === 'indexed' ? true : undefined));

    // From now on every backlog embedding takes 1.5 s; a re-index queues the whole backlog on the low queue.
    fake.slowFor = { contains: 'backlog record', ms: 1_500 };
    const requestsBefore = fake.requests.length;
    const reindex = await api(stack.baseUrl, 'POST', `${V1}/admin/search/reindex`, { token: admin.token, body: {} });
    assert.equal(reindex.status, 202, reindex.text);
    assert.equal(reindex.body.queued, backlogSize);
    const queue = (await api(stack.baseUrl, 'GET', `${V1}/search/queue`, { token: admin.token })).body;
    assert.ok(queue.queues.low.depth >= backlogSize - 2, JSON.stringify(queue));

    const fresh = await uploadDirect(stack, alice.token, alice.rootFolderId, 'fresh.txt', Buffer.from('Minutes of this morning meeting.'));
    assert.equal(fresh.status, 201, JSON.stringify(fresh.body));
    const uploadedAt = Date.now();
    await waitUntil('the fresh upload indexed', async () => ((await statusOf(fresh.body.file.id)).status === 'indexed' ? true : undefined));
    const freshSeconds = (Date.now() - uploadedAt) / 1000;
    // The backlog needs ≥ 16 × 1.5 s / 2 = 12 s; the fresh upload did not wait for it.
    const backlogPending = (await Promise.all(backlog.map(statusOf))).filter((s) => s.status !== 'indexed').length;
    assert.ok(backlogPending >= backlogSize / 2, `only ${backlogPending} of the backlog still pending when the fresh upload was indexed after ${freshSeconds} s`);

    // The backlog drains, each file embedded once more (no duplicates from the priority split).
    for (const id of backlog) await waitUntil(`${id} re-indexed`, async () => ((await statusOf(id)).status === 'indexed' ? true : undefined));
    const backlogRequests = fake.requests.slice(requestsBefore).filter((r) => r.input.some((text) => text.includes('backlog record')));
    assert.equal(backlogRequests.length, backlogSize);
  });
});
