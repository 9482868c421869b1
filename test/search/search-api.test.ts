// Search through the HTTP API with the real Weaviate and workers (issue #11): commits are vectorized by the
// `vectorize/...` workflow the dispatcher starts; keyword, semantic and hybrid search return only what the
// caller can read now; a new version replaces old passages; a purge removes them; tenants stay apart inside
// Weaviate; index status, queue, health and re-index answer; hostile input is a 4xx.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { api, createTestTenant, harness, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, uploadDirect, type TestUser } from '../helpers/files';
import { assertError } from '../helpers/assertions';
import { burst } from '../helpers/race';
import { addMember, createShare } from '../shares/share-helpers';
import { PassageStore } from '../../src/search/passage-store';
import { LocalNgramProvider } from '../../src/search/embeddings';

const V1 = '/api/v1';

describe('search API', () => {
  let stack: TestStack;
  let tenantId: string;
  let alice: TestUser;
  let bob: TestUser;
  let admin: TestUser;
  let store: PassageStore;

  before(async () => {
    stack = await startTestStack({ search: true });
    tenantId = (await createTestTenant(stack)).id;
    alice = await newUser(stack, tenantId, 'alice');
    bob = await newUser(stack, tenantId, 'bob');
    admin = await newUser(stack, tenantId, 'admin', { admin: true });
    store = await PassageStore.connect({ url: harness.weaviateUrl, grpcPort: harness.weaviateGrpcPort });
  });
  after(async () => {
    await store?.close();
    await stack?.close();
  });

  const get = (path: string, user: TestUser) => api(stack.baseUrl, 'GET', `${V1}${path}`, { token: user.token });
  const searchFor = (user: TestUser, q: string, mode: string, extra = '') => get(`/search?q=${encodeURIComponent(q)}&mode=${mode}${extra}`, user);

  async function upload(user: TestUser, parentId: string, name: string, text: string) {
    const res = await uploadDirect(stack, user.token, parentId, name, Buffer.from(text));
    assert.ok([200, 201].includes(res.status), JSON.stringify(res.body));
    return { fileId: res.body.file.id as string, versionId: res.body.version.id as string };
  }

  /** Waits until the file's current version reaches `status` (the workflow runs in the background). */
  async function waitForStatus(user: TestUser, fileId: string, status: string, versionId?: string) {
    const deadline = Date.now() + 60_000;
    let last: any;
    while (Date.now() < deadline) {
      last = await get(`/search/index-status/${fileId}`, user);
      assert.equal(last.status, 200, last.text);
      if (last.body.status === status && (!versionId || last.body.version_id === versionId)) return last.body;
      if (last.body.status === 'failed') assert.fail(`indexing failed: ${last.body.reason}`);
      await sleep(200);
    }
    assert.fail(`index status stayed ${JSON.stringify(last?.body)}`);
  }

  const names = (res: any) => res.body.items.map((hit: any) => hit.file.name);

  test('an upload is indexed by its vectorize workflow and found by keyword, semantic and hybrid search with snippets', async () => {
    const file = await upload(alice, alice.rootFolderId, 'quarterly_revenue-report.txt', 'The northern region grew revenue by twelve percent while costs in logistics fell sharply.');
    await upload(alice, alice.rootFolderId, 'recipes.md', '# Soup\nSimmer the lentils with onions and cumin for forty minutes.');
    const status = await waitForStatus(alice, file.fileId, 'indexed');
    assert.equal(status.version_id, file.versionId);
    assert.ok(status.passages >= 1);
    const handle = stack.services.temporal.workflow.getHandle(`vectorize/${file.fileId}/${file.versionId}`);
    assert.equal((await handle.result()).status, 'indexed');
    const workflow = await handle.describe();
    assert.equal(workflow.status.name, 'COMPLETED');
    assert.equal(workflow.taskQueue, stack.services.taskQueues['search-high']);
    const attributes = Object.fromEntries(workflow.typedSearchAttributes.getAll().filter((p) => p.key.name.startsWith('Scai')).map((p) => [p.key.name, p.value]));
    assert.deepEqual(attributes, { ScaiTenantId: tenantId, ScaiFileId: file.fileId });

    const keyword = await searchFor(alice, 'revenue logistics', 'keyword');
    assert.equal(keyword.status, 200, keyword.text);
    assert.deepEqual(names(keyword), ['quarterly_revenue-report.txt']);
    const hit = keyword.body.items[0];
    assert.deepEqual(hit.matched_by, ['keyword']);
    assert.ok(hit.highlights.length >= 1, JSON.stringify(hit));
    const highlighted = hit.highlights.map(([start, end]: [number, number]) => hit.snippet.slice(start, end).toLowerCase());
    assert.ok(highlighted.includes('revenue') && highlighted.includes('logistics'), JSON.stringify(highlighted));
    // A word of the name alone finds the file (separators split the name into words).
    assert.deepEqual(names(await searchFor(alice, 'quarterly', 'keyword')), ['quarterly_revenue-report.txt']);

    const semantic = await searchFor(alice, 'lentil soup with cumin', 'semantic');
    assert.equal(semantic.status, 200, semantic.text);
    await waitForStatus(alice, semantic.body.items[0]?.file.id ?? (await searchFor(alice, 'recipes', 'keyword')).body.items[0].file.id, 'indexed');
    const semanticAgain = await searchFor(alice, 'lentil soup with cumin', 'semantic');
    assert.equal(names(semanticAgain)[0], 'recipes.md');
    assert.match(semanticAgain.body.items[0].passage.text, /lentils/);
    assert.deepEqual(semanticAgain.body.items[0].matched_by, ['semantic']);

    const hybrid = await searchFor(alice, 'revenue', 'hybrid');
    assert.equal(hybrid.status, 200);
    assert.equal(hybrid.body.degraded, false);
    assert.equal(names(hybrid)[0], 'quarterly_revenue-report.txt');
    assert.deepEqual(hybrid.body.items[0].matched_by, ['keyword', 'semantic']);
  });

  test('only what the caller can read now: another user never sees it; a share grant shows it, its removal hides it on the next request', async () => {
    const share = await createShare(stack, alice);
    const file = await upload(alice, share.root_folder_id, 'zeppelin-manifest.txt', 'Zeppelin cargo manifest: helium cylinders and mooring ropes.');
    await waitForStatus(alice, file.fileId, 'indexed');
    for (const mode of ['keyword', 'semantic', 'hybrid']) {
      const res = await searchFor(bob, 'zeppelin helium cargo', mode);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(names(res), [], `${mode} before the grant`);
    }
    const grant = await addMember(stack, alice, share.id, 'user', bob.userId, 'reader');
    for (const mode of ['keyword', 'semantic', 'hybrid']) assert.deepEqual(names(await searchFor(bob, 'zeppelin helium cargo', mode)), ['zeppelin-manifest.txt'], `${mode} with the grant`);
    assert.deepEqual(names(await searchFor(bob, 'zeppelin', 'keyword', `&space_id=${share.id}`)), ['zeppelin-manifest.txt']);
    const removed = await api(stack.baseUrl, 'DELETE', `${V1}/shares/${share.id}/members/${grant.id}`, { token: alice.token });
    assert.equal(removed.status, 204, removed.text);
    for (const mode of ['keyword', 'semantic', 'hybrid']) assert.deepEqual(names(await searchFor(bob, 'zeppelin helium cargo', mode)), [], `${mode} after the removal`);
    assertError(await searchFor(bob, 'zeppelin', 'keyword', `&space_id=${share.id}`), 404);
  });

  test("a file moved into a share is re-indexed with the share's space: its reader finds it by meaning too", async () => {
    const share = await createShare(stack, alice);
    await addMember(stack, alice, share.id, 'user', bob.userId, 'reader');
    const file = await upload(alice, alice.rootFolderId, 'orchard-survey.txt', 'Orchard survey: pear trees blossom early, apple trees late.');
    await waitForStatus(alice, file.fileId, 'indexed');
    assert.deepEqual(names(await searchFor(bob, 'orchard pear blossom', 'semantic')), []);
    const moved = await api(stack.baseUrl, 'PATCH', `${V1}/files/${file.fileId}`, { token: alice.token, body: { parent_id: share.root_folder_id } });
    assert.equal(moved.status, 200, moved.text);
    // The move queued a re-index on the low queue; once done, the passages carry the share's space.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const passages = await store.passagesOf(tenantId, file.fileId);
      if (passages.length > 0 && passages.every((p) => p.properties.space_id === share.id)) break;
      assert.ok(Date.now() < deadline, `passages still in ${JSON.stringify(passages.map((p) => p.properties.space_id))}`);
      await sleep(200);
    }
    await waitForStatus(alice, file.fileId, 'indexed');
    for (const mode of ['keyword', 'semantic', 'hybrid']) assert.deepEqual(names(await searchFor(bob, 'orchard pear blossom', mode)), ['orchard-survey.txt'], mode);
  });

  test("tenants stay apart inside Weaviate: tenant B's search and B's shard never hold A's passages", async () => {
    const file = await upload(alice, alice.rootFolderId, 'xylophone-tuning.txt', 'Tuning a xylophone: each bar is trimmed until the pitch is true.');
    await waitForStatus(alice, file.fileId, 'indexed');
    const otherTenant = (await createTestTenant(stack)).id;
    const carol = await newUser(stack, otherTenant, 'carol');
    await upload(carol, carol.rootFolderId, 'carol-notes.txt', 'Nothing about instruments here.');
    for (const mode of ['keyword', 'semantic', 'hybrid']) assert.deepEqual(names(await searchFor(carol, 'xylophone tuning pitch', mode)), [], mode);
    // Directly against Weaviate: the query vector of A's text, in B's shard, finds none of A's passages.
    const [vector] = await new LocalNgramProvider(stack.services.search.embeddings.dimensions).embed(['Tuning a xylophone: each bar is trimmed until the pitch is true.']);
    const spaces = (await stack.services.db.selectFrom('spaces').select('id').execute()).map((s) => s.id);
    const inB = await store.nearVector(otherTenant, vector!, spaces, 100);
    assert.ok(inB.every((hit) => hit.properties.file_id !== file.fileId));
    assert.ok((await store.passagesOf(tenantId, file.fileId)).length >= 1);
    assert.equal((await store.passagesOf(otherTenant, file.fileId)).length, 0);
  });

  test('a new version replaces the old passages; purging the file removes them from Weaviate', async () => {
    const first = await upload(alice, alice.rootFolderId, 'evolving.txt', 'Version one talks about marmalade and toast.');
    await waitForStatus(alice, first.fileId, 'indexed', first.versionId);
    const second = await upload(alice, alice.rootFolderId, 'evolving.txt', 'Version two is about telescopes and comets.');
    await waitForStatus(alice, second.fileId, 'indexed', second.versionId);
    const passages = await store.passagesOf(tenantId, second.fileId);
    assert.ok(passages.length >= 1);
    assert.ok(passages.every((p) => p.properties.version_id === second.versionId), 'only the new version');
    assert.deepEqual(names(await searchFor(alice, 'marmalade', 'keyword')), []);
    assert.deepEqual(names(await searchFor(alice, 'telescopes comets', 'keyword')), ['evolving.txt']);

    assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/files/${second.fileId}`, { token: alice.token })).status, 204);
    for (const mode of ['keyword', 'semantic', 'hybrid']) assert.ok(!names(await searchFor(alice, 'telescopes comets', mode)).includes('evolving.txt'), `${mode}: the trash is not searched`);
    assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/trash/${second.fileId}`, { token: alice.token })).status, 204);
    const deadline = Date.now() + 30_000;
    while ((await store.passagesOf(tenantId, second.fileId)).length > 0) {
      assert.ok(Date.now() < deadline, 'passages still in Weaviate after the purge');
      await sleep(200);
    }
  });

  test('unsupported files say why; the queue, health and metric answer; an admin re-index queues the tenant again', async () => {
    const binary = await upload(alice, alice.rootFolderId, 'photo.raw', '\u0000\u0001binary');
    const status = await waitForStatus(alice, binary.fileId, 'unsupported');
    assert.match(status.reason, /\S/);

    const health = await get('/search/health', alice);
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { weaviate_connected: true, embedding_service_available: true });

    assertError(await get('/search/queue', alice), 403);
    const queue = await get('/search/queue', admin);
    assert.equal(queue.status, 200, queue.text);
    assert.deepEqual(Object.keys(queue.body.queues).sort(), ['high', 'low']);
    assert.equal(typeof queue.body.queues.high.depth, 'number');

    const metrics = await fetch(`${stack.baseUrl}/metrics`).then((r) => r.text());
    assert.match(metrics, /scaidrive_queue_depth\{queue="high"\} \d+/);
    assert.match(metrics, /scaidrive_queue_depth\{queue="low"\} \d+/);

    assertError(await api(stack.baseUrl, 'POST', `${V1}/admin/search/reindex`, { token: alice.token, body: {} }), 403);
    assertError(await api(stack.baseUrl, 'POST', `${V1}/admin/search/reindex`, { token: admin.token, body: { space_id: 'spc_nope' } }), 404);
    const reindex = await api(stack.baseUrl, 'POST', `${V1}/admin/search/reindex`, { token: admin.token, body: {} });
    assert.equal(reindex.status, 202, reindex.text);
    assert.ok(reindex.body.queued >= 1);
    // Re-indexed on the low queue, and indexed again.
    const again = await waitForStatus(alice, binary.fileId, 'unsupported');
    assert.ok(Date.parse(again.updated_at) >= Date.parse(status.updated_at));
  });

  test('races: 20 parallel new versions and 20 parallel re-index requests — the queue drains, each passage once, only the current version', async () => {
    const first = await upload(alice, alice.rootFolderId, 'contested.txt', 'contested draft zero');
    await waitForStatus(alice, first.fileId, 'indexed');
    const versions = await burst(stack.baseUrl, 20, async (i, dispatcher) => {
      const response = await fetch(`${stack.baseUrl}${V1}/folders/${alice.rootFolderId}/files/contested.txt`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/octet-stream' },
        body: `contested draft ${i + 1} about kestrel number ${i + 1}`,
        dispatcher,
      } as RequestInit);
      return { status: response.status, body: (await response.json()) as any };
    });
    assert.ok(versions.every((v) => [200, 409].includes(v.status)), JSON.stringify(versions.map((v) => v.status)));
    const reindexed = await burst(stack.baseUrl, 20, (_, dispatcher) => api(stack.baseUrl, 'POST', `${V1}/admin/search/reindex`, { token: admin.token, body: {}, dispatcher }));
    assert.ok(reindexed.every((r) => r.status === 202), JSON.stringify(reindexed.map((r) => r.status)));

    const deadline = Date.now() + 90_000;
    for (;;) {
      const queue = await get('/search/queue', admin);
      if (queue.body.queues.high.depth === 0 && queue.body.queues.low.depth === 0) break;
      assert.ok(Date.now() < deadline, `queue never drained: ${queue.text}`);
      await sleep(300);
    }
    const current = await get(`/files/${first.fileId}`, alice);
    const status = await waitForStatus(alice, first.fileId, 'indexed', current.body.current_version_id);
    const passages = await store.passagesOf(tenantId, first.fileId);
    assert.equal(passages.length, status.passages);
    assert.ok(passages.every((p) => p.properties.version_id === current.body.current_version_id), 'only the current version');
    assert.equal(new Set(passages.map((p) => p.id)).size, passages.length);
    // No entry of a superseded version is left behind in the queue's table.
    const left = await stack.services.db.selectFrom('search_documents').select(['version_id', 'status']).where('file_id', '=', first.fileId).execute();
    assert.deepEqual(left.filter((d) => d.status !== 'indexed'), []);
  });

  test('pages: limit and next_cursor walk the results once each', async () => {
    await upload(alice, alice.rootFolderId, 'pager-one.txt', 'first page');
    await upload(alice, alice.rootFolderId, 'pager-two.txt', 'second page');
    const seen: string[] = [];
    let cursor = '';
    for (let page = 0; page < 3; page++) {
      const res = await searchFor(alice, 'pager', 'keyword', `&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(res.status, 200, res.text);
      seen.push(...names(res));
      if (!res.body.next_cursor) break;
      cursor = res.body.next_cursor;
    }
    assert.deepEqual(seen.sort(), ['pager-one.txt', 'pager-two.txt']);
  });

  test('hostile input is a 4xx, never a 500', async () => {
    assertError(await get('/search?q=', alice), 422);
    assertError(await get(`/search?q=${encodeURIComponent('a\u0000b')}`, alice), 422);
    const surrogate = await get('/search?q=a%ED%A0%80b', alice);
    assert.ok(surrogate.status < 500, `invalid UTF-8: ${surrogate.status}`);
    assertError(await get('/search?q=a&mode=telepathic', alice), 422);
    assertError(await get('/search?q=a&cursor=bm90LWEtY3Vyc29y', alice), 400, 'INVALID_CURSOR');
    assertError(await get(`/search?q=a&cursor=${Buffer.from('[5000]').toString('base64url')}`, alice), 400, 'INVALID_CURSOR');
    for (const q of ['!!!', '"unbalanced', 'a & | !', "'; drop table nodes; --", '<->', 'x'.repeat(500)]) {
      for (const mode of ['keyword', 'hybrid']) {
        const res = await searchFor(alice, q, mode);
        assert.equal(res.status, 200, `${mode} ${JSON.stringify(q)}: ${res.text}`);
      }
    }
    assertError(await get('/search/index-status/fil_nope', alice), 404);
  });
});
