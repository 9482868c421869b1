// Races on the trash: parallel purges refund once, restore vs purge has exactly one winner and an
// acknowledged restore stays, parallel restores restore once, and nothing created during a folder delete
// escapes the trash (spec §13).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, randomData, type TestUser } from '../helpers/files';
import { burst, statusCounts } from '../helpers/race';
import { assertError } from '../helpers/assertions';
import { liveUnderTrash, mkdir, putFile, quotaMismatches, V1 } from './tree-helpers';

describe('tree races: trash', () => {
  let stack: TestStack;
  let tenantId: string;
  let alice: TestUser;

  before(async () => {
    stack = await startTestStack();
    tenantId = (await createTestTenant(stack)).id;
    alice = await newUser(stack, tenantId, 'alice');
  });
  after(async () => {
    await stack?.close();
  });

  async function uploadAndTrash(folderId: string, name: string, size: number): Promise<string> {
    const up = await putFile(stack, alice.token, folderId, name, randomData(size));
    assert.equal(up.status, 201, up.text);
    const del = await api(stack.baseUrl, 'DELETE', `${V1}/files/${up.body.file.id}`, { token: alice.token });
    assert.equal(del.status, 204, del.text);
    return up.body.file.id;
  }

  test('30 parallel purges of one trashed 1 MB file: one 204, the rest 404; refunded once', async () => {
    const folder = await mkdir(stack, alice, alice.rootFolderId, 'purges');
    const keep = await putFile(stack, alice.token, folder.id, 'keep.bin', randomData(1000));
    assert.equal(keep.status, 201, keep.text);
    const fileId = await uploadAndTrash(folder.id, 'big.bin', 1024 * 1024);
    const responses = await burst(stack.baseUrl, 30, (_, dispatcher) => api(stack.baseUrl, 'DELETE', `${V1}/trash/${fileId}`, { token: alice.token, dispatcher }));
    assert.deepEqual(statusCounts(responses), { 204: 1, 404: 29 });
    for (const res of responses) if (res.status === 404) assertError(res, 404, 'NOT_FOUND');
    // The invariant: every quota level holds exactly the sizes of the versions still charged to it.
    assert.deepEqual(await quotaMismatches(stack, tenantId), []);
    assert.equal((await stack.services.db.selectFrom('nodes').select('id').where('id', '=', fileId).execute()).length, 0);
    const usage = await api(stack.baseUrl, 'GET', `${V1}/quotas/usage/users/${alice.userId}`, { token: alice.token });
    assert.equal(usage.status, 200, usage.text);
  });

  test('one restore racing four purges, ten times over: exactly one wins per item, a 200 restore is never undone, no 5xx', async () => {
    const folder = await mkdir(stack, alice, alice.rootFolderId, 'restore-vs-purge');
    const items: string[] = [];
    for (let i = 0; i < 10; i++) items.push(await uploadAndTrash(folder.id, `f${i}.bin`, 10_000));
    const responses = await burst(stack.baseUrl, 50, (index, dispatcher) => {
      const id = items[Math.floor(index / 5)]!;
      return index % 5 === 0
        ? api(stack.baseUrl, 'POST', `${V1}/trash/${id}/restore`, { token: alice.token, dispatcher })
        : api(stack.baseUrl, 'DELETE', `${V1}/trash/${id}`, { token: alice.token, dispatcher });
    });
    assert.equal(responses.filter((r) => r.status >= 500).length, 0, JSON.stringify(statusCounts(responses)));
    for (let i = 0; i < items.length; i++) {
      const group = responses.slice(i * 5, i * 5 + 5);
      const [restore, ...purges] = group;
      const wins = group.filter((r) => r.status === 200 || r.status === 204).length;
      assert.equal(wins, 1, `item ${i}: ${group.map((r) => r.status)}`);
      for (const res of group) if (res.status !== 200 && res.status !== 204) assertError(res, 404, 'NOT_FOUND', `item ${i}`);
      const row = await stack.services.db.selectFrom('nodes').select(['id', 'deleted_at']).where('id', '=', items[i]!).executeTakeFirst();
      if (restore!.status === 200) {
        assert.ok(row && row.deleted_at === null, `item ${i}: restore answered 200 but the file is ${row ? 'in the trash' : 'gone'}`);
        assert.equal((await api(stack.baseUrl, 'GET', `${V1}/files/${items[i]}`, { token: alice.token })).status, 200);
      } else {
        assert.equal(purges.filter((r) => r.status === 204).length, 1);
        assert.equal(row, undefined, `item ${i}: purged but still there`);
      }
    }
    assert.deepEqual(await quotaMismatches(stack, tenantId), []);
  });

  test('30 parallel restores with on_conflict=rename: one 200, the rest 404; one "restored" change, one copy back', async () => {
    const folder = await mkdir(stack, alice, alice.rootFolderId, 'restores');
    const fileId = await uploadAndTrash(folder.id, 'doc.txt', 100);
    // The name is taken again, so the restore takes the rename path.
    assert.equal((await putFile(stack, alice.token, folder.id, 'doc.txt', randomData(50))).status, 201);
    const responses = await burst(stack.baseUrl, 30, (_, dispatcher) =>
      api(stack.baseUrl, 'POST', `${V1}/trash/${fileId}/restore?on_conflict=rename`, { token: alice.token, dispatcher }),
    );
    assert.deepEqual(statusCounts(responses), { 200: 1, 404: 29 });
    for (const res of responses) if (res.status === 404) assertError(res, 404, 'NOT_FOUND');
    const winner = responses.find((r) => r.status === 200)!;
    assert.equal(winner.body.name, 'doc (restored 1).txt');
    const restoredChanges = await stack.services.db.selectFrom('change_log').select('seq').where('node_id', '=', fileId).where('type', '=', 'restored').execute();
    assert.equal(restoredChanges.length, 1);
    const live = await stack.services.db.selectFrom('nodes').select('name').where('parent_id', '=', folder.id).where('deleted_at', 'is', null).orderBy('name').execute();
    assert.deepEqual(
      live.map((n) => n.name),
      ['doc (restored 1).txt', 'doc.txt'],
    );
  });

  test('a folder delete racing 30 creations inside it and its subfolders: nothing live is left under the trash', async () => {
    for (let round = 0; round < 3; round++) {
      const folder = await mkdir(stack, alice, alice.rootFolderId, `doomed-${round}`);
      const subfolders = [folder];
      for (let i = 0; i < 3; i++) subfolders.push(await mkdir(stack, alice, subfolders[i]!.id, `sub${i}`));
      const source = await putFile(stack, alice.token, alice.rootFolderId, `copy-source-${round}.txt`, randomData(10));
      const mover = await mkdir(stack, alice, alice.rootFolderId, `mover-${round}`);
      const responses = await burst(stack.baseUrl, 31, (index, dispatcher) => {
        const parent = subfolders[index % subfolders.length]!;
        if (index === 15) return api(stack.baseUrl, 'DELETE', `${V1}/folders/${folder.id}`, { token: alice.token, dispatcher });
        if (index === 30) return api(stack.baseUrl, 'PATCH', `${V1}/folders/${mover.id}`, { token: alice.token, body: { parent_id: subfolders[3]!.id }, dispatcher });
        switch (index % 3) {
          case 0:
            return api(stack.baseUrl, 'POST', `${V1}/folders`, { token: alice.token, body: { parent_id: parent.id, name: `new-${index}` }, dispatcher });
          case 1:
            return putFile(stack, alice.token, parent.id, `up-${index}.bin`, randomData(2000), dispatcher);
          default:
            return api(stack.baseUrl, 'POST', `${V1}/files/${source.body.file.id}/copy`, { token: alice.token, body: { parent_id: parent.id, name: `copy-${index}.txt` }, dispatcher });
        }
      });
      assert.equal(responses[15]!.status, 204, JSON.stringify(responses[15]!.body));
      for (const [index, res] of responses.entries()) {
        if (index === 15) continue;
        if (res.status === 410) assertError(res, 410, 'IN_TRASH', `request ${index}`);
        else assert.ok(res.status === 200 || res.status === 201, `request ${index}: ${res.status} ${JSON.stringify(res.body)}`);
      }
      // The invariant: no live node has an ancestor in the trash.
      assert.deepEqual(await liveUnderTrash(stack, tenantId), [], `round ${round}`);
      // And a restore brings back everything that was created before the delete.
      const restored = await api(stack.baseUrl, 'POST', `${V1}/trash/${folder.id}/restore`, { token: alice.token });
      assert.equal(restored.status, 200, restored.text);
      assert.deepEqual(await liveUnderTrash(stack, tenantId), []);
    }
    assert.deepEqual(await quotaMismatches(stack, tenantId), []);
  });
});
