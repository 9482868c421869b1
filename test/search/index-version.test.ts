// Indexing a file version (issue #11 item 3's activity body) with real storage, the real Weaviate and the
// local provider: extracted text stored for the keyword index, passages in the tenant's Weaviate shard with the
// file's space, idempotent re-runs, a new version replacing the old one's passages, unsupported files marked with
// a reason, and a version that is no longer current left alone.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { api, createTestTenant, harness, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, uploadDirect, type TestUser } from '../helpers/files';
import { LocalNgramProvider } from '../../src/search/embeddings';
import { PassageStore } from '../../src/search/passage-store';
import { indexVersion, passageId, type SearchIndexDeps } from '../../src/services/search-index.service';

describe('indexing a version (storage → extraction → passages → embeddings → Weaviate)', () => {
  let stack: TestStack;
  let alice: TestUser;
  let tenantId: string;
  let passages: PassageStore;
  let deps: SearchIndexDeps;

  before(async () => {
    stack = await startTestStack();
    tenantId = (await createTestTenant(stack)).id;
    alice = await newUser(stack, tenantId, 'alice');
    passages = await PassageStore.connect({ url: harness.weaviateUrl, grpcPort: harness.weaviateGrpcPort });
    deps = { db: stack.services.db, storage: stack.services.storage, passages, embeddings: new LocalNgramProvider(64), limits: { passages: { targetChars: 200, overlapChars: 40, maxPassages: 100 } } };
  });
  after(async () => {
    await passages?.close();
    await stack?.close();
  });

  const upload = async (name: string, data: string | Buffer) => {
    const res = await uploadDirect(stack, alice.token, alice.rootFolderId, name, Buffer.from(data));
    assert.ok([200, 201].includes(res.status), JSON.stringify(res.body));
    return { fileId: res.body.file.id as string, versionId: res.body.version.id as string };
  };
  const documentOf = (versionId: string) => stack.services.db.selectFrom('search_documents').selectAll().where('version_id', '=', versionId).executeTakeFirst();

  test('a text file: indexed, text stored for keyword search, passages in the tenant\'s shard with its space; a re-run changes nothing', async () => {
    const body = Array.from({ length: 12 }, (_, i) => `Paragraph ${i}: the quarterly revenue forecast for region ${i} looks solid.`).join('\n\n');
    const file = await upload('forecast.txt', body);
    const steps: string[] = [];
    const outcome = await indexVersion(deps, file.versionId, (step) => steps.push(step.status));
    assert.equal(outcome.status, 'indexed');
    assert.ok('passages' in outcome && outcome.passages > 2);
    assert.deepEqual([...new Set(steps)], ['extracting', 'embedding']);
    const document = await documentOf(file.versionId);
    assert.equal(document?.status, 'indexed');
    assert.equal(document?.format, 'text');
    assert.equal(document?.vector_space, 'scaidrive-local-trigram-v2@64');
    const keyword = await sql<{ n: number }>`select count(*)::int as n from search_documents where version_id = ${file.versionId} and tsv @@ plainto_tsquery('simple', 'quarterly forecast')`.execute(stack.services.db);
    assert.equal(keyword.rows[0]!.n, 1, 'the keyword index finds it');
    const stored = await passages.passagesOf(tenantId, file.fileId);
    assert.equal(stored.length, 'passages' in outcome ? outcome.passages : -1);
    const space = await stack.services.db.selectFrom('nodes').select('space_id').where('id', '=', file.fileId).executeTakeFirstOrThrow();
    assert.ok(stored.every((p) => p.properties.space_id === space.space_id && p.properties.version_id === file.versionId));
    assert.ok(stored.some((p) => p.id === passageId(file.versionId, 0)));
    // Similar wording finds it through the vectors (the local provider is lexical).
    const [query] = await deps.embeddings.embed(['revenue forecast quarterly']);
    const hits = await passages.nearVector(tenantId, query!, [space.space_id], 3);
    assert.equal(hits[0]?.properties.file_id, file.fileId);

    assert.deepEqual(await indexVersion(deps, file.versionId), { status: 'indexed', passages: stored.length });
    assert.equal((await passages.passagesOf(tenantId, file.fileId)).length, stored.length, 'no duplicates');
  });

  test('a new version replaces the old one\'s passages; the old version is no longer indexed', async () => {
    const first = await upload('notes.md', '# Alpha\n\nalpha beta gamma');
    await indexVersion(deps, first.versionId);
    const second = await upload('notes.md', '# Delta\n\ndelta epsilon zeta');
    assert.deepEqual(await indexVersion(deps, first.versionId), { status: 'superseded' });
    assert.equal((await indexVersion(deps, second.versionId)).status, 'indexed');
    const stored = await passages.passagesOf(tenantId, second.fileId);
    assert.ok(stored.length > 0);
    assert.ok(stored.every((p) => p.properties.version_id === second.versionId), 'only the new version\'s passages are left');
  });

  test('an unsupported file is marked with its reason and has no passages', async () => {
    const png = await upload('photo.png', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]));
    const outcome = await indexVersion(deps, png.versionId);
    assert.equal(outcome.status, 'unsupported');
    const document = await documentOf(png.versionId);
    assert.equal(document?.status, 'unsupported');
    assert.match(document?.reason ?? '', /OCR is off/);
    assert.deepEqual(await passages.passagesOf(tenantId, png.fileId), []);
  });

  /** The local provider, holding every embed call until `release()` (to interleave two runs). */
  function gatedProvider() {
    const inner = new LocalNgramProvider(64);
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let entered!: () => void;
    const waiting = new Promise<void>((resolve) => (entered = resolve));
    return {
      provider: { space: inner.space, dimensions: inner.dimensions, check: () => inner.check(), embed: async (texts: string[]) => (entered(), await gate, inner.embed(texts)) },
      waiting,
      release: () => open(),
    };
  }

  test("a run of an older version finishing after a newer one's never removes the newer passages", async () => {
    const first = await upload('race.txt', 'first words about owls');
    const gated = gatedProvider();
    const slow = indexVersion({ ...deps, embeddings: gated.provider }, first.versionId);
    await gated.waiting; // the old run is embedding
    const second = await upload('race.txt', 'second words about herons');
    assert.equal((await indexVersion(deps, second.versionId)).status, 'indexed');
    gated.release();
    assert.deepEqual(await slow, { status: 'superseded' });
    const stored = await passages.passagesOf(tenantId, second.fileId);
    assert.ok(stored.length > 0, 'the newer passages are still there');
    assert.ok(stored.every((p) => p.properties.version_id === second.versionId), 'and only those');
    assert.equal(await documentOf(first.versionId), undefined, 'the old entry left the queue');
  });

  test('a move to another space while a run embeds: the run starts over and the passages carry the new space', async () => {
    const file = await upload('moving.txt', 'words about moving boxes');
    const share = await stack.services.db.selectFrom('spaces').select(['id', 'root_folder_id']).where('owner_user_id', '=', alice.userId).where('kind', '=', 'personal').executeTakeFirstOrThrow();
    const target = await createShareSpace();
    const gated = gatedProvider();
    const running = indexVersion({ ...deps, embeddings: gated.provider }, file.versionId);
    await gated.waiting;
    const moved = await api(stack.baseUrl, 'PATCH', `/api/v1/files/${file.fileId}`, { token: alice.token, body: { parent_id: target.root_folder_id } });
    assert.equal(moved.status, 200, moved.text);
    gated.release();
    assert.equal((await running).status, 'indexed');
    const stored = await passages.passagesOf(tenantId, file.fileId);
    assert.ok(stored.length > 0);
    assert.ok(stored.every((p) => p.properties.space_id === target.id), `spaces: ${JSON.stringify(stored.map((p) => p.properties.space_id))} (was ${share.id})`);
    assert.equal((await documentOf(file.versionId))?.status, 'indexed');
  });

  async function createShareSpace(): Promise<{ id: string; root_folder_id: string }> {
    const res = await api(stack.baseUrl, 'POST', '/api/v1/shares', { token: alice.token, body: { name: `target-${Date.now()}` } });
    assert.equal(res.status, 201, res.text);
    return res.body;
  }
});
