// The passage store against the real Weaviate the harness starts (issue #11 item 1): one multi-tenant
// collection with self-provided vectors, one Weaviate tenant per ScaiDrive tenant (created on first use), and
// isolation that holds in ScaiDrive's queries and directly against Weaviate's REST API; space filtering;
// deleting a file's (or one version's) passages; upserts by deterministic id replace instead of duplicating.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { PassageStore, passageCollection, type PassageInput } from '../../src/search/passage-store';

const url = process.env.TEST_WEAVIATE_URL!;
const grpcPort = Number(process.env.TEST_WEAVIATE_GRPC_PORT);

function passage(fileId: string, versionId: string, spaceId: string, index: number, vector: number[], text = `passage ${index}`): PassageInput {
  return { id: randomUUID(), vector, properties: { file_id: fileId, version_id: versionId, space_id: spaceId, passage_index: index, text } };
}

describe('passage store (real Weaviate, multi-tenant)', () => {
  let store: PassageStore;
  const tenantA = `ten_${randomUUID()}`;
  const tenantB = `ten_${randomUUID()}`;

  before(async () => {
    assert.ok(url && grpcPort, 'the harness provides TEST_WEAVIATE_URL and TEST_WEAVIATE_GRPC_PORT');
    store = await PassageStore.connect({ url, grpcPort });
  });
  after(async () => {
    await store?.close();
  });

  test('one Weaviate tenant per ScaiDrive tenant: B never sees A, in queries and directly in Weaviate', async () => {
    assert.equal(await store.isReady(), true);
    const vector = [1, 0, 0, 0];
    await store.upsert(tenantA, [passage('fil_a', 'ver_a1', 'spc_a', 0, vector, 'secret of A')]);
    await store.upsert(tenantB, [passage('fil_b', 'ver_b1', 'spc_b', 0, [0, 1, 0, 0], 'note of B')]);
    const fromB = await store.nearVector(tenantB, vector, ['spc_a', 'spc_b'], 10);
    assert.deepEqual(fromB.map((h) => h.properties.file_id), ['fil_b'], 'even naming A\'s space, B only reaches its own tenant');
    const fromA = await store.nearVector(tenantA, vector, ['spc_a'], 10);
    assert.deepEqual(fromA.map((h) => h.properties.text), ['secret of A']);

    // Directly against Weaviate: each tenant's shard holds only its own objects.
    for (const [tenant, expected] of [[tenantA, 'fil_a'], [tenantB, 'fil_b']] as const) {
      const response = await fetch(`${url}/v1/objects?class=${passageCollection}&tenant=${encodeURIComponent(tenant)}&limit=100`);
      assert.equal(response.status, 200);
      const body = (await response.json()) as { objects: { properties: { file_id: string } }[] };
      assert.deepEqual(body.objects.map((o) => o.properties.file_id), [expected]);
    }
    const tenants = await (await fetch(`${url}/v1/schema/${passageCollection}/tenants`)).json() as { name: string }[];
    assert.ok(tenants.some((t) => t.name === tenantA) && tenants.some((t) => t.name === tenantB));
  });

  test('queries are limited to the given spaces; no spaces, no results', async () => {
    const tenant = `ten_${randomUUID()}`;
    await store.upsert(tenant, [passage('fil_1', 'ver_1', 'spc_1', 0, [1, 1, 0, 0]), passage('fil_2', 'ver_2', 'spc_2', 0, [1, 1, 0, 0])]);
    assert.deepEqual((await store.nearVector(tenant, [1, 1, 0, 0], ['spc_2'], 10)).map((h) => h.properties.file_id), ['fil_2']);
    assert.deepEqual(await store.nearVector(tenant, [1, 1, 0, 0], [], 10), []);
  });

  test('a file\'s passages are removed per version or whole; the same id replaces, never duplicates', async () => {
    const tenant = `ten_${randomUUID()}`;
    const v1 = [passage('fil_x', 'ver_1', 'spc', 0, [0, 0, 1, 0]), passage('fil_x', 'ver_1', 'spc', 1, [0, 0, 1, 1])];
    await store.upsert(tenant, v1);
    await store.upsert(tenant, [{ ...v1[0]!, properties: { ...v1[0]!.properties, text: 'rewritten' } }]);
    let passages = await store.passagesOf(tenant, 'fil_x');
    assert.equal(passages.length, 2, 'upserting the same id replaced it');
    assert.ok(passages.some((p) => p.properties.text === 'rewritten'));
    await store.upsert(tenant, [passage('fil_x', 'ver_2', 'spc', 0, [0, 0, 0, 1])]);
    assert.equal(await store.deleteFile(tenant, 'fil_x', 'ver_1'), 2);
    passages = await store.passagesOf(tenant, 'fil_x');
    assert.deepEqual(passages.map((p) => p.properties.version_id), ['ver_2'], 'the new version\'s passages stay');
    assert.equal(await store.deleteFile(tenant, 'fil_x'), 1);
    assert.deepEqual(await store.passagesOf(tenant, 'fil_x'), []);
  });
});
