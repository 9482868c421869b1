// Trash, versions and locks through HTTP (spec §3, §5, §7): delete → 410, list/restore/purge with quota
// refunds, version history/download/restore, exclusive locks with 423 for others and admin force-unlock.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createTestTenant, startTestStack, tokenFor, type ApiResponse, type TestStack } from '../helpers/stack';
import { download, newUser, randomData, sha256, uploadDirect, type TestUser } from '../helpers/files';
import { assertError } from '../helpers/assertions';
import { childrenOf, mkdir, put } from '../helpers/tree';

const V1 = '/api/v1';

async function trashItems(stack: TestStack, user: TestUser): Promise<any[]> {
  const all: any[] = [];
  let cursor: string | null = null;
  do {
    const res: ApiResponse = await api(stack.baseUrl, 'GET', `${V1}/trash?limit=1000${cursor ? `&cursor=${cursor}` : ''}`, { token: user.token });
    assert.equal(res.status, 200, res.text);
    all.push(...res.body.items);
    cursor = res.body.next_cursor;
  } while (cursor);
  return all;
}

async function usedBytes(stack: TestStack, user: TestUser): Promise<number> {
  const res = await api(stack.baseUrl, 'GET', `${V1}/quotas/usage/users/${user.userId}`, { token: user.token });
  assert.equal(res.status, 200, res.text);
  return Number(res.body.used_bytes);
}

describe('trash, versions and locks', () => {
  let stack: TestStack;
  let tenantId: string;
  let alice: TestUser;
  let bob: TestUser;
  let admin: TestUser;

  before(async () => {
    stack = await startTestStack();
    tenantId = (await createTestTenant(stack)).id;
    alice = await newUser(stack, tenantId, 'alice');
    bob = await newUser(stack, tenantId, 'bob');
    admin = await newUser(stack, tenantId, 'admin', { admin: true });
  });
  after(() => stack.close());

  describe('trash', () => {
    test('DELETE /files/{id} → 204, then direct access is 410 IN_TRASH and GET /trash lists it', async () => {
      const top = await mkdir(stack, alice, alice.rootFolderId, 'TrashFile');
      const { file, version } = await put(stack, alice, top.id, 'gone.txt', Buffer.from('soon gone'));
      const del = await api(stack.baseUrl, 'DELETE', `${V1}/files/${file.id}`, { token: alice.token });
      assert.equal(del.status, 204, del.text);

      for (const [method, path, body] of [
        ['GET', `/files/${file.id}`],
        ['GET', `/files/${file.id}/content`],
        ['GET', `/files/${file.id}/versions`],
        ['GET', `/files/${file.id}/versions/${version.id}/content`],
        ['GET', `/files/${file.id}/download-url`],
        ['PATCH', `/files/${file.id}`, { name: 'x.txt' }],
        ['DELETE', `/files/${file.id}`],
        ['POST', `/files/${file.id}/lock`],
        ['POST', `/files/${file.id}/copy`, { parent_id: top.id, name: 'copy.txt' }],
      ] as [string, string, unknown?][]) {
        assertError(await api(stack.baseUrl, method, `${V1}${path}`, { token: alice.token, body }), 410, 'IN_TRASH', `${method} ${path}`);
      }
      assert.deepEqual(await childrenOf(stack, alice, top.id), []);

      const items = await trashItems(stack, alice);
      const item = items.find((i) => i.id === file.id);
      assert.ok(item, 'the file is in the trash');
      assert.equal(item.name, 'gone.txt');
      assert.equal(item.parent_id, top.id);
      assert.equal(typeof item.deleted_at, 'string');
      // Another user of the tenant does not see it.
      assert.ok(!(await trashItems(stack, bob)).some((i) => i.id === file.id));
      // The name is free again while the old file is in the trash.
      const reused = await uploadDirect(stack, alice.token, top.id, 'gone.txt', Buffer.from('new'));
      assert.equal(reused.status, 201, JSON.stringify(reused.body));
      assert.notEqual(reused.body.file.id, file.id);
    });

    test('POST /trash/{id}/restore → 200 back in its folder; a live item is not restorable', async () => {
      const top = await mkdir(stack, alice, alice.rootFolderId, 'TrashRestore');
      const data = randomData(5000);
      const { file } = await put(stack, alice, top.id, 'back.bin', data);
      assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/files/${file.id}`, { token: alice.token })).status, 204);
      const restored = await api(stack.baseUrl, 'POST', `${V1}/trash/${file.id}/restore`, { token: alice.token });
      assert.equal(restored.status, 200, restored.text);
      assert.equal(restored.body.id, file.id);
      assert.equal(restored.body.parent_id, top.id);
      assert.equal(restored.body.name, 'back.bin');
      assert.equal(restored.body.deleted_at, null);
      assert.deepEqual(
        (await childrenOf(stack, alice, top.id)).map((n) => n.id),
        [file.id],
      );
      const got = await download(stack, `${V1}/files/${file.id}/content`, { token: alice.token });
      assert.equal(got.status, 200);
      assert.equal(sha256(got.body), sha256(data));
      assert.ok(!(await trashItems(stack, alice)).some((i) => i.id === file.id));
      // Restoring or purging something that is not in the trash → 404.
      assertError(await api(stack.baseUrl, 'POST', `${V1}/trash/${file.id}/restore`, { token: alice.token }), 404, 'NOT_FOUND', 'restore live');
      assertError(await api(stack.baseUrl, 'DELETE', `${V1}/trash/${file.id}`, { token: alice.token }), 404, 'NOT_FOUND', 'purge live');
      assert.equal((await api(stack.baseUrl, 'GET', `${V1}/files/${file.id}`, { token: alice.token })).status, 200);
      // Another user of the tenant cannot restore alice's trash.
      assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/files/${file.id}`, { token: alice.token })).status, 204);
      assertError(await api(stack.baseUrl, 'POST', `${V1}/trash/${file.id}/restore`, { token: bob.token }), 404, 'NOT_FOUND', 'bob restores');
      assertError(await api(stack.baseUrl, 'DELETE', `${V1}/trash/${file.id}`, { token: bob.token }), 404, 'NOT_FOUND', 'bob purges');
      assertError(await api(stack.baseUrl, 'GET', `${V1}/files/${file.id}`, { token: alice.token }), 410, 'IN_TRASH');
    });

    test('restore onto a taken name → 409 NAME_CONFLICT and the item stays in the trash', async () => {
      const top = await mkdir(stack, alice, alice.rootFolderId, 'TrashConflict');
      const old = await put(stack, alice, top.id, 'x.txt', Buffer.from('old'));
      assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/files/${old.file.id}`, { token: alice.token })).status, 204);
      const replacement = await put(stack, alice, top.id, 'X.TXT', Buffer.from('new'));

      const clash = await api(stack.baseUrl, 'POST', `${V1}/trash/${old.file.id}/restore`, { token: alice.token });
      assertError(clash, 409, 'NAME_CONFLICT');
      assertError(await api(stack.baseUrl, 'GET', `${V1}/files/${old.file.id}`, { token: alice.token }), 410, 'IN_TRASH', 'still trashed');
      const explicitFail = await api(stack.baseUrl, 'POST', `${V1}/trash/${old.file.id}/restore?on_conflict=fail`, { token: alice.token });
      assertError(explicitFail, 409, 'NAME_CONFLICT');
      const badMode = await api(stack.baseUrl, 'POST', `${V1}/trash/${old.file.id}/restore?on_conflict=overwrite`, { token: alice.token });
      assertError(badMode, 422, 'VALIDATION_ERROR');
      assert.deepEqual(badMode.body.detail[0].loc, ['query', 'on_conflict']);
      assert.deepEqual(
        (await childrenOf(stack, alice, top.id)).map((n) => n.id),
        [replacement.file.id],
      );
      assert.ok((await trashItems(stack, alice)).some((i) => i.id === old.file.id), 'still listed in the trash');
    });

    test('restore with ?on_conflict=rename → 200 as "x (restored 1).txt" (then the next free number)', async () => {
      const top = await mkdir(stack, alice, alice.rootFolderId, 'TrashRename');
      const old = await put(stack, alice, top.id, 'x.txt', Buffer.from('old'));
      assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/files/${old.file.id}`, { token: alice.token })).status, 204);
      const replacement = await put(stack, alice, top.id, 'X.TXT', Buffer.from('new'));

      const renamed = await api(stack.baseUrl, 'POST', `${V1}/trash/${old.file.id}/restore?on_conflict=rename`, { token: alice.token });
      assert.equal(renamed.status, 200, renamed.text);
      assert.equal(renamed.body.id, old.file.id);
      assert.equal(renamed.body.name, 'x (restored 1).txt');
      assert.equal(renamed.body.parent_id, top.id);
      const names = (await childrenOf(stack, alice, top.id)).map((n) => n.name).sort();
      assert.deepEqual(names, ['X.TXT', 'x (restored 1).txt']);
      assert.equal((await download(stack, `${V1}/files/${old.file.id}/content`, { token: alice.token })).body.toString(), 'old');
      assert.equal((await download(stack, `${V1}/files/${replacement.file.id}/content`, { token: alice.token })).body.toString(), 'new');

      // The next clash takes the next free number.
      const third = await put(stack, alice, top.id, 'x.txt.tmp', Buffer.from('t'));
      assert.equal((await api(stack.baseUrl, 'PATCH', `${V1}/files/${third.file.id}`, { token: alice.token, body: { name: 'x.txt' } })).status, 409);
      assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/files/${replacement.file.id}`, { token: alice.token })).status, 204);
      assert.equal((await api(stack.baseUrl, 'PATCH', `${V1}/files/${third.file.id}`, { token: alice.token, body: { name: 'x.txt' } })).status, 200);
      const again = await api(stack.baseUrl, 'POST', `${V1}/trash/${replacement.file.id}/restore?on_conflict=rename`, { token: alice.token });
      assert.equal(again.status, 200, again.text);
      assert.equal(again.body.name, 'X (restored 2).TXT');

      // Folders get the suffix at the end of the name.
      const folder = await mkdir(stack, alice, top.id, 'docs');
      assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/folders/${folder.id}`, { token: alice.token })).status, 204);
      await mkdir(stack, alice, top.id, 'Docs');
      const folderBack = await api(stack.baseUrl, 'POST', `${V1}/trash/${folder.id}/restore?on_conflict=rename`, { token: alice.token });
      assert.equal(folderBack.status, 200, folderBack.text);
      assert.equal(folderBack.body.name, 'docs (restored 1)');
    });

    test("restoring an item whose folder is itself in the trash brings it back at the space root", async () => {
      const top = await mkdir(stack, alice, alice.rootFolderId, 'TrashOrphan');
      const { file } = await put(stack, alice, top.id, 'orphan-7c1e.txt', Buffer.from('o'));
      assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/files/${file.id}`, { token: alice.token })).status, 204);
      assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/folders/${top.id}`, { token: alice.token })).status, 204);
      const restored = await api(stack.baseUrl, 'POST', `${V1}/trash/${file.id}/restore`, { token: alice.token });
      assert.equal(restored.status, 200, restored.text);
      assert.equal(restored.body.parent_id, alice.rootFolderId);
      assert.ok((await childrenOf(stack, alice, alice.rootFolderId)).some((n) => n.id === file.id));
      assertError(await api(stack.baseUrl, 'GET', `${V1}/folders/${top.id}`, { token: alice.token }), 410, 'IN_TRASH');
    });

    test('deleting a folder trashes its subtree (one trash entry); restoring it brings the children back', async () => {
      const top = await mkdir(stack, alice, alice.rootFolderId, 'TrashTree');
      const folder = await mkdir(stack, alice, top.id, 'project');
      const sub = await mkdir(stack, alice, folder.id, 'sub');
      const f1 = await put(stack, alice, folder.id, 'a.txt', Buffer.from('a'));
      const f2 = await put(stack, alice, sub.id, 'b.txt', Buffer.from('bb'));
      // Deleted before the folder: stays in the trash on its own when the folder is restored.
      const early = await put(stack, alice, folder.id, 'early.txt', Buffer.from('e'));
      assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/files/${early.file.id}`, { token: alice.token })).status, 204);

      const del = await api(stack.baseUrl, 'DELETE', `${V1}/folders/${folder.id}`, { token: alice.token });
      assert.equal(del.status, 204, del.text);
      assertError(await api(stack.baseUrl, 'GET', `${V1}/folders/${folder.id}`, { token: alice.token }), 410, 'IN_TRASH', 'folder');
      assertError(await api(stack.baseUrl, 'GET', `${V1}/folders/${folder.id}/children`, { token: alice.token }), 410, 'IN_TRASH', 'folder children');
      assertError(await api(stack.baseUrl, 'GET', `${V1}/folders/${sub.id}`, { token: alice.token }), 410, 'IN_TRASH', 'subfolder');
      assertError(await api(stack.baseUrl, 'GET', `${V1}/files/${f1.file.id}`, { token: alice.token }), 410, 'IN_TRASH', 'child');
      assertError(await api(stack.baseUrl, 'GET', `${V1}/files/${f2.file.id}/content`, { token: alice.token }), 410, 'IN_TRASH', 'grandchild content');
      // Writing into a trashed folder → 410.
      const into = await uploadDirect(stack, alice.token, sub.id, 'new.txt', Buffer.from('n'));
      assert.equal(into.status, 410, JSON.stringify(into.body));
      assertError(await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: alice.token, body: { parent_id: folder.id, name: 'n' } }), 410, 'IN_TRASH', 'mkdir in trash');
      assert.deepEqual(await childrenOf(stack, alice, top.id), []);

      const trash = await trashItems(stack, alice);
      const ids = trash.map((i) => i.id);
      assert.equal(ids.filter((id) => id === folder.id).length, 1, 'the folder is listed once');
      for (const child of [sub.id, f1.file.id, f2.file.id]) assert.ok(!ids.includes(child), `child ${child} is not listed separately`);
      assert.ok(ids.includes(early.file.id));
      // Newest first.
      assert.ok(ids.indexOf(folder.id) < ids.indexOf(early.file.id));
      // A child of a trashed folder cannot be restored or purged on its own.
      assertError(await api(stack.baseUrl, 'POST', `${V1}/trash/${f1.file.id}/restore`, { token: alice.token }), 404, 'NOT_FOUND', 'restore child');
      assertError(await api(stack.baseUrl, 'DELETE', `${V1}/trash/${f1.file.id}`, { token: alice.token }), 404, 'NOT_FOUND', 'purge child');

      const restored = await api(stack.baseUrl, 'POST', `${V1}/trash/${folder.id}/restore`, { token: alice.token });
      assert.equal(restored.status, 200, restored.text);
      assert.equal(restored.body.parent_id, top.id);
      assert.deepEqual(
        (await childrenOf(stack, alice, folder.id)).map((n) => n.name),
        ['a.txt', 'sub'],
      );
      assert.deepEqual(
        (await childrenOf(stack, alice, sub.id)).map((n) => n.name),
        ['b.txt'],
      );
      assert.equal((await download(stack, `${V1}/files/${f2.file.id}/content`, { token: alice.token })).body.toString(), 'bb');
      assertError(await api(stack.baseUrl, 'GET', `${V1}/files/${early.file.id}`, { token: alice.token }), 410, 'IN_TRASH', 'earlier deletion stays');
      const after = (await trashItems(stack, alice)).map((i) => i.id);
      assert.ok(!after.includes(folder.id));
      assert.ok(after.includes(early.file.id));
    });

    test('GET /trash pages with limit and cursor', async () => {
      const top = await mkdir(stack, alice, alice.rootFolderId, 'TrashPages');
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const { file } = await put(stack, alice, top.id, `p${i}.txt`, Buffer.from(`p${i}`));
        assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/files/${file.id}`, { token: alice.token })).status, 204);
        ids.push(file.id);
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: ApiResponse = await api(stack.baseUrl, 'GET', `${V1}/trash?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: alice.token });
        assert.equal(res.status, 200, res.text);
        assert.ok(res.body.items.length <= 2);
        seen.push(...res.body.items.map((i: any) => i.id));
        cursor = res.body.next_cursor;
      } while (cursor);
      assert.equal(new Set(seen).size, seen.length);
      // Newest first: the five just deleted lead, in reverse order of deletion.
      assert.deepEqual(seen.slice(0, 5), [...ids].reverse());
      assertError(await api(stack.baseUrl, 'GET', `${V1}/trash?limit=0`, { token: alice.token }), 422, 'VALIDATION_ERROR');
      assertError(await api(stack.baseUrl, 'GET', `${V1}/trash?cursor=garbage`, { token: alice.token }), 400, 'INVALID_CURSOR');
    });

    test('DELETE /trash/{id} purges (then 404) and refunds the quota; trash still counts until then', async () => {
      const carol = await newUser(stack, tenantId, 'carol');
      const top = await mkdir(stack, carol, carol.rootFolderId, 'Purge');
      const base = await usedBytes(stack, carol);
      const one = randomData(10_000);
      const two = randomData(2_500);
      const { file } = await put(stack, carol, top.id, 'big.bin', one);
      await put(stack, carol, top.id, 'big.bin', two); // a second version: both count
      const keep = await put(stack, carol, top.id, 'keep.bin', randomData(777));
      assert.equal(await usedBytes(stack, carol), base + 10_000 + 2_500 + 777);

      assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/files/${file.id}`, { token: carol.token })).status, 204);
      assert.equal(await usedBytes(stack, carol), base + 10_000 + 2_500 + 777, 'trash still counts');

      const purge = await api(stack.baseUrl, 'DELETE', `${V1}/trash/${file.id}`, { token: carol.token });
      assert.equal(purge.status, 204, purge.text);
      assertError(await api(stack.baseUrl, 'GET', `${V1}/files/${file.id}`, { token: carol.token }), 404, 'NOT_FOUND', 'after purge');
      assertError(await api(stack.baseUrl, 'GET', `${V1}/files/${file.id}/versions`, { token: carol.token }), 404, 'NOT_FOUND', 'versions after purge');
      assertError(await api(stack.baseUrl, 'POST', `${V1}/trash/${file.id}/restore`, { token: carol.token }), 404, 'NOT_FOUND', 'restore after purge');
      assertError(await api(stack.baseUrl, 'DELETE', `${V1}/trash/${file.id}`, { token: carol.token }), 404, 'NOT_FOUND', 'purge twice');
      assert.ok(!(await trashItems(stack, carol)).some((i) => i.id === file.id));
      assert.equal(await usedBytes(stack, carol), base + 777, 'purge refunds every version');
      assert.equal((await download(stack, `${V1}/files/${keep.file.id}/content`, { token: carol.token })).status, 200);

      // A purged folder refunds its whole subtree.
      const folder = await mkdir(stack, carol, top.id, 'tree');
      const sub = await mkdir(stack, carol, folder.id, 'sub');
      await put(stack, carol, folder.id, 'x.bin', randomData(1000));
      await put(stack, carol, sub.id, 'y.bin', randomData(2000));
      assert.equal(await usedBytes(stack, carol), base + 777 + 3000);
      assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/folders/${folder.id}`, { token: carol.token })).status, 204);
      assert.equal(await usedBytes(stack, carol), base + 777 + 3000);
      assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/trash/${folder.id}`, { token: carol.token })).status, 204);
      assert.equal(await usedBytes(stack, carol), base + 777);
      assertError(await api(stack.baseUrl, 'GET', `${V1}/folders/${sub.id}`, { token: carol.token }), 404, 'NOT_FOUND', 'purged subfolder');
      // The tenant counter follows as well.
      const tenantUsage = await api(stack.baseUrl, 'GET', `${V1}/quotas/usage/tenant`, { token: admin.token });
      assert.equal(tenantUsage.status, 200, tenantUsage.text);
      assert.ok(Number(tenantUsage.body.used_bytes) >= base + 777);
    });
  });

  describe('versions', () => {
    test('three versions: newest first with is_current, each downloadable; restore makes version 4 with version 1 content', async () => {
      const top = await mkdir(stack, alice, alice.rootFolderId, 'History');
      const contents = [randomData(1234), randomData(99_999), randomData(7)];
      const commits = [];
      for (const data of contents) commits.push(await put(stack, alice, top.id, 'history.bin', data));
      const fileId = commits[0]!.file.id;
      assert.ok(commits.every((c) => c.file.id === fileId));

      const list = await api(stack.baseUrl, 'GET', `${V1}/files/${fileId}/versions`, { token: alice.token });
      assert.equal(list.status, 200, list.text);
      assert.deepEqual(
        list.body.items.map((v: any) => v.number),
        [3, 2, 1],
      );
      assert.deepEqual(
        list.body.items.map((v: any) => v.is_current),
        [true, false, false],
      );
      assert.deepEqual(
        list.body.items.map((v: any) => v.id),
        [commits[2]!.version.id, commits[1]!.version.id, commits[0]!.version.id],
      );
      for (const [i, v] of [...list.body.items].reverse().entries()) {
        assert.match(v.id, /^ver_/);
        assert.equal(v.file_id, fileId);
        assert.equal(v.size, contents[i]!.length);
        assert.equal(v.checksum_sha256, sha256(contents[i]!));
        assert.equal(v.created_by, alice.userId);
      }

      for (const [i, commit] of commits.entries()) {
        const got = await download(stack, `${V1}/files/${fileId}/versions/${commit.version.id}/content`, { token: alice.token });
        assert.equal(got.status, 200);
        assert.equal(sha256(got.body), sha256(contents[i]!), `version ${i + 1} bytes`);
        assert.equal(got.headers.get('x-checksum-sha256'), sha256(contents[i]!));
        assert.equal(Number(got.headers.get('content-length')), contents[i]!.length);
      }
      const ranged = await download(stack, `${V1}/files/${fileId}/versions/${commits[1]!.version.id}/content`, { token: alice.token, headers: { range: 'bytes=10-19' } });
      assert.equal(ranged.status, 206);
      assert.deepEqual(ranged.body, contents[1]!.subarray(10, 20));

      const restore = await api(stack.baseUrl, 'POST', `${V1}/files/${fileId}/versions/${commits[0]!.version.id}/restore`, { token: alice.token });
      assert.equal(restore.status, 201, restore.text);
      assert.equal(restore.body.file.id, fileId);
      assert.equal(restore.body.version.number, 4);
      assert.equal(restore.body.version.is_current, true);
      assert.equal(restore.body.version.checksum_sha256, sha256(contents[0]!));
      assert.equal(restore.body.file.current_version_id, restore.body.version.id);
      assert.equal(restore.body.file.size, contents[0]!.length);
      const current = await download(stack, `${V1}/files/${fileId}/content`, { token: alice.token });
      assert.equal(sha256(current.body), sha256(contents[0]!));
      const after = await api(stack.baseUrl, 'GET', `${V1}/files/${fileId}/versions`, { token: alice.token });
      assert.deepEqual(
        after.body.items.map((v: any) => [v.number, v.is_current]),
        [
          [4, true],
          [3, false],
          [2, false],
          [1, false],
        ],
      );
      // Version 1 itself is still there and unchanged.
      assert.equal(sha256((await download(stack, `${V1}/files/${fileId}/versions/${commits[0]!.version.id}/content`, { token: alice.token })).body), sha256(contents[0]!));
      const log = await stack.services.db.selectFrom('change_log').select(['type', 'version_id']).where('node_id', '=', fileId).orderBy('seq').execute();
      assert.deepEqual(
        log.map((c) => c.type),
        ['created', 'updated', 'updated', 'updated'],
      );
      assert.equal(log[3]!.version_id, restore.body.version.id);

      // A version of another file, or an unknown version → 404.
      const other = await put(stack, alice, top.id, 'other.bin', Buffer.from('o'));
      assertError(await api(stack.baseUrl, 'GET', `${V1}/files/${fileId}/versions/${other.version.id}/content`, { token: alice.token }), 404, 'NOT_FOUND', 'foreign version');
      assertError(await api(stack.baseUrl, 'POST', `${V1}/files/${fileId}/versions/${other.version.id}/restore`, { token: alice.token }), 404, 'NOT_FOUND', 'foreign restore');
      assertError(await api(stack.baseUrl, 'GET', `${V1}/files/${fileId}/versions/ver_nope/content`, { token: alice.token }), 404, 'NOT_FOUND', 'unknown version');
      // Another user of the tenant sees none of it.
      assertError(await api(stack.baseUrl, 'GET', `${V1}/files/${fileId}/versions`, { token: bob.token }), 404, 'NOT_FOUND', 'bob versions');
    });

    test('a version restore is charged like any other version', async () => {
      const dave = await newUser(stack, tenantId, 'dave');
      const base = await usedBytes(stack, dave);
      const a = await put(stack, dave, dave.rootFolderId, 'q.bin', randomData(4000));
      await put(stack, dave, dave.rootFolderId, 'q.bin', randomData(100));
      assert.equal(await usedBytes(stack, dave), base + 4100);
      const restore = await api(stack.baseUrl, 'POST', `${V1}/files/${a.file.id}/versions/${a.version.id}/restore`, { token: dave.token });
      assert.equal(restore.status, 201, restore.text);
      assert.equal(await usedBytes(stack, dave), base + 8100);
    });
  });

  describe('locks', () => {
    async function setLock(fileId: string, userId: string, expiresInMs: number) {
      await stack.services.db
        .updateTable('nodes')
        .set({ lock_user_id: userId, locked_at: new Date(), lock_expires_at: new Date(Date.now() + expiresInMs) })
        .where('id', '=', fileId)
        .execute();
    }
    async function lockRow(fileId: string) {
      return stack.services.db.selectFrom('nodes').select(['lock_user_id', 'lock_expires_at', 'locked_at']).where('id', '=', fileId).executeTakeFirstOrThrow();
    }

    test('the owner locks a file (200 with lock, ~1 h) and the holder may still write it; unlock → 204', async () => {
      const top = await mkdir(stack, alice, alice.rootFolderId, 'LocksOwn');
      const { file } = await put(stack, alice, top.id, 'mine.txt', Buffer.from('v1'));
      const before = Date.now();
      const locked = await api(stack.baseUrl, 'POST', `${V1}/files/${file.id}/lock`, { token: alice.token });
      assert.equal(locked.status, 200, locked.text);
      assert.equal(locked.body.id, file.id);
      assert.equal(locked.body.lock.locked_by, alice.userId);
      assert.equal(typeof locked.body.lock.locked_at, 'string');
      const expires = Date.parse(locked.body.lock.expires_at);
      assert.ok(Math.abs(expires - before - 3600_000) < 60_000, `expires about an hour from now: ${locked.body.lock.expires_at}`);
      assert.equal((await api(stack.baseUrl, 'GET', `${V1}/files/${file.id}`, { token: alice.token })).body.lock.locked_by, alice.userId);
      // Locking again by the holder is fine (refreshes).
      assert.equal((await api(stack.baseUrl, 'POST', `${V1}/files/${file.id}/lock`, { token: alice.token })).status, 200);

      // The holder's own writes pass.
      const renamed = await api(stack.baseUrl, 'PATCH', `${V1}/files/${file.id}`, { token: alice.token, body: { name: 'mine-renamed.txt' } });
      assert.equal(renamed.status, 200, renamed.text);
      const v2 = await uploadDirect(stack, alice.token, top.id, 'mine-renamed.txt', Buffer.from('v2'));
      assert.equal(v2.status, 200, JSON.stringify(v2.body));
      assert.equal(v2.body.version.number, 2);
      const restore = await api(stack.baseUrl, 'POST', `${V1}/files/${file.id}/versions/${file.current_version_id}/restore`, { token: alice.token });
      assert.equal(restore.status, 201, restore.text);

      const unlock = await api(stack.baseUrl, 'DELETE', `${V1}/files/${file.id}/lock`, { token: alice.token });
      assert.equal(unlock.status, 204, unlock.text);
      assert.equal((await api(stack.baseUrl, 'GET', `${V1}/files/${file.id}`, { token: alice.token })).body.lock, null);
      assert.equal((await lockRow(file.id)).lock_user_id, null);
      // A folder is not lockable through /files → 404.
      assertError(await api(stack.baseUrl, 'POST', `${V1}/files/${top.id}/lock`, { token: alice.token }), 404, 'NOT_FOUND');
      // Holder deletes the file while holding the lock → 204.
      assert.equal((await api(stack.baseUrl, 'POST', `${V1}/files/${file.id}/lock`, { token: alice.token })).status, 200);
      assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/files/${file.id}`, { token: alice.token })).status, 204);
    });

    test("another user's lock: the owner's writes are 423 LOCKED with details.locked_by", async () => {
      const top = await mkdir(stack, alice, alice.rootFolderId, 'LocksOther');
      const { file, version } = await put(stack, alice, top.id, 'held.txt', Buffer.from('original'));
      const target = await mkdir(stack, alice, top.id, 'elsewhere');
      await setLock(file.id, bob.userId, 30 * 60_000);

      const shown = await api(stack.baseUrl, 'GET', `${V1}/files/${file.id}`, { token: alice.token });
      assert.equal(shown.status, 200, 'reads are not blocked');
      assert.equal(shown.body.lock.locked_by, bob.userId);
      assert.equal((await download(stack, `${V1}/files/${file.id}/content`, { token: alice.token })).status, 200);

      const attempts: [string, () => Promise<{ status: number; body: any }>][] = [
        ['rename', () => api(stack.baseUrl, 'PATCH', `${V1}/files/${file.id}`, { token: alice.token, body: { name: 'renamed.txt' } })],
        ['move', () => api(stack.baseUrl, 'PATCH', `${V1}/files/${file.id}`, { token: alice.token, body: { parent_id: target.id } })],
        ['delete', () => api(stack.baseUrl, 'DELETE', `${V1}/files/${file.id}`, { token: alice.token })],
        ['new version', () => uploadDirect(stack, alice.token, top.id, 'held.txt', Buffer.from('overwrite'))],
        ['new version (other case)', () => uploadDirect(stack, alice.token, top.id, 'HELD.TXT', Buffer.from('overwrite'))],
        ['version restore', () => api(stack.baseUrl, 'POST', `${V1}/files/${file.id}/versions/${version.id}/restore`, { token: alice.token })],
        ['lock', () => api(stack.baseUrl, 'POST', `${V1}/files/${file.id}/lock`, { token: alice.token })],
        ['unlock', () => api(stack.baseUrl, 'DELETE', `${V1}/files/${file.id}/lock`, { token: alice.token })],
        ['unlock force=false', () => api(stack.baseUrl, 'DELETE', `${V1}/files/${file.id}/lock?force=false`, { token: alice.token })],
      ];
      for (const [what, attempt] of attempts) {
        const res = await attempt();
        assertError(res, 423, 'LOCKED', what);
        assert.equal(res.body.details?.locked_by, bob.userId, `${what}: details.locked_by`);
        assert.equal(typeof res.body.details?.locked_at, 'string', `${what}: details.locked_at`);
      }
      // Nothing changed.
      const after = await api(stack.baseUrl, 'GET', `${V1}/files/${file.id}`, { token: alice.token });
      assert.equal(after.body.name, 'held.txt');
      assert.equal(after.body.parent_id, top.id);
      assert.equal(after.body.deleted_at, null);
      assert.equal(after.body.current_version_id, version.id);
      assert.equal((await api(stack.baseUrl, 'GET', `${V1}/files/${file.id}/versions`, { token: alice.token })).body.items.length, 1);
      assert.equal((await download(stack, `${V1}/files/${file.id}/content`, { token: alice.token })).body.toString(), 'original');
      assert.equal((await lockRow(file.id)).lock_user_id, bob.userId);
      // Copying (a read of the locked file) is allowed.
      const copy = await api(stack.baseUrl, 'POST', `${V1}/files/${file.id}/copy`, { token: alice.token, body: { parent_id: target.id } });
      assert.equal(copy.status, 201, copy.text);
    });

    test('an expired lock does not block', async () => {
      const top = await mkdir(stack, alice, alice.rootFolderId, 'LocksExpired');
      const { file } = await put(stack, alice, top.id, 'stale.txt', Buffer.from('v1'));
      await setLock(file.id, bob.userId, -60_000);
      assert.equal((await api(stack.baseUrl, 'GET', `${V1}/files/${file.id}`, { token: alice.token })).body.lock, null);
      const renamed = await api(stack.baseUrl, 'PATCH', `${V1}/files/${file.id}`, { token: alice.token, body: { name: 'fresh.txt' } });
      assert.equal(renamed.status, 200, renamed.text);
      const v2 = await uploadDirect(stack, alice.token, top.id, 'fresh.txt', Buffer.from('v2'));
      assert.equal(v2.status, 200, JSON.stringify(v2.body));
      const locked = await api(stack.baseUrl, 'POST', `${V1}/files/${file.id}/lock`, { token: alice.token });
      assert.equal(locked.status, 200, locked.text);
      assert.equal(locked.body.lock.locked_by, alice.userId);
      await setLock(file.id, bob.userId, -1000);
      assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/files/${file.id}`, { token: alice.token })).status, 204);
    });

    test('unlocking: a non-holder non-admin gets 423 (403 with force) and the lock stays; a tenant admin force-unlocks (204)', async () => {
      const top = await mkdir(stack, alice, alice.rootFolderId, 'LocksForce');
      const { file } = await put(stack, alice, top.id, 'forced.txt', Buffer.from('v1'));
      await setLock(file.id, bob.userId, 30 * 60_000);

      const plain = await api(stack.baseUrl, 'DELETE', `${V1}/files/${file.id}/lock`, { token: alice.token });
      assertError(plain, 423, 'LOCKED', 'non-holder unlock');
      assert.equal(plain.body.details.locked_by, bob.userId);
      assert.equal((await lockRow(file.id)).lock_user_id, bob.userId);

      // The code answers 403 FORBIDDEN to a non-admin's ?force=true (visible, not allowed).
      const forced = await api(stack.baseUrl, 'DELETE', `${V1}/files/${file.id}/lock?force=true`, { token: alice.token });
      assertError(forced, 403, 'FORBIDDEN', 'non-admin force');
      assert.equal((await lockRow(file.id)).lock_user_id, bob.userId, 'the lock stays');
      const badForce = await api(stack.baseUrl, 'DELETE', `${V1}/files/${file.id}/lock?force=yes`, { token: alice.token });
      assertError(badForce, 422, 'VALIDATION_ERROR');
      assert.deepEqual(badForce.body.detail[0].loc, ['query', 'force']);
      assert.equal((await lockRow(file.id)).lock_user_id, bob.userId, 'the lock stays');

      // A tenant admin without force has no access to alice's personal space → 404; with force → 204.
      assertError(await api(stack.baseUrl, 'DELETE', `${V1}/files/${file.id}/lock`, { token: admin.token }), 404, 'NOT_FOUND', 'admin without force');
      assert.equal((await lockRow(file.id)).lock_user_id, bob.userId);
      const adminForce = await api(stack.baseUrl, 'DELETE', `${V1}/files/${file.id}/lock?force=true`, { token: admin.token });
      assert.equal(adminForce.status, 204, adminForce.text);
      const row = await lockRow(file.id);
      assert.equal(row.lock_user_id, null);
      assert.equal(row.lock_expires_at, null);
      assert.equal(row.locked_at, null);
      assert.equal((await api(stack.baseUrl, 'GET', `${V1}/files/${file.id}`, { token: alice.token })).body.lock, null);
      // And the owner can write again.
      const renamed = await api(stack.baseUrl, 'PATCH', `${V1}/files/${file.id}`, { token: alice.token, body: { name: 'unlocked.txt' } });
      assert.equal(renamed.status, 200, renamed.text);
      // Force-unlocking an unknown id, or a folder → 404.
      assertError(await api(stack.baseUrl, 'DELETE', `${V1}/files/fil_nope/lock?force=true`, { token: admin.token }), 404, 'NOT_FOUND', 'unknown');
      assertError(await api(stack.baseUrl, 'DELETE', `${V1}/files/${top.id}/lock?force=true`, { token: admin.token }), 404, 'NOT_FOUND', 'folder');
    });

    test('force-unlock is tenant-scoped: an admin of another tenant gets 404', async () => {
      const top = await mkdir(stack, alice, alice.rootFolderId, 'LocksTenant');
      const { file } = await put(stack, alice, top.id, 't.txt', Buffer.from('v1'));
      await setLock(file.id, bob.userId, 30 * 60_000);
      const otherTenant = (await createTestTenant(stack)).id;
      const otherAdmin = await tokenFor(stack, otherTenant, 'root', { admin: true });
      assertError(await api(stack.baseUrl, 'DELETE', `${V1}/files/${file.id}/lock?force=true`, { token: otherAdmin }), 404, 'NOT_FOUND', 'other tenant admin');
      assert.equal((await lockRow(file.id)).lock_user_id, bob.userId);
      // Bob (the "holder" here) still cannot reach alice's personal file.
      assertError(await api(stack.baseUrl, 'GET', `${V1}/files/${file.id}`, { token: bob.token }), 404, 'NOT_FOUND', 'bob reads');
    });
  });
});
