// The sync change feed (issue #12): devices and stored cursors, exact commit order under concurrent writers (a
// transaction that commits late is never skipped), cursor=0 resync while writes go on reconstructs the final tree
// exactly, space_removed after a lost grant (and a listing when a space is granted), a folder moved into a share,
// retention (410), tamper-evident cursors bound to tenant and user, and the long poll across two API servers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { api, createTestTenant, startTestStack, tokenFor, type TestStack } from '../helpers/stack';
import { newUser, uploadDirect, type TestUser } from '../helpers/files';
import { mkdir, put } from '../helpers/tree';
import { burst } from '../helpers/race';
import { assertError } from '../helpers/assertions';
import { Mirror, pullAll, pullPage, type FeedChange } from '../helpers/sync';
import { appendChange, pruneChangeLog } from '../../src/services/changelog.service';

const V1 = '/api/v1';

describe('sync change feed', () => {
  let stack: TestStack;
  let second: TestStack;
  let tenantId: string;
  let alice: TestUser;
  let bob: TestUser;

  before(async () => {
    // Two API servers of one deployment share the server secret (it signs the cursors).
    const env = { SCAIDRIVE_SECRET_KEY: 'sync-feed-test-secret-key-0123456789abcdef' };
    stack = await startTestStack({ env });
    second = await startTestStack({ env });
    tenantId = (await createTestTenant(stack)).id;
    alice = await newUser(stack, tenantId, 'alice');
    bob = await newUser(stack, tenantId, 'bob');
  });
  after(async () => {
    await second?.close();
    await stack?.close();
  });

  /** The live tree of `spaceIds` as the server has it, in the mirror's comparable form. */
  async function serverTree(spaceIds: string[]): Promise<Map<string, string>> {
    const rows = await sql<{ id: string; space_id: string; parent_id: string | null; name: string; kind: string; current_version_id: string | null }>`
      select id, space_id, parent_id, name, kind, current_version_id from nodes where space_id = any(${spaceIds}::text[]) and deleted_at is null`.execute(stack.services.db);
    return new Map(rows.rows.map((n) => [n.id, `${n.space_id}|${n.parent_id}|${n.name}|${n.kind}|${n.current_version_id}`]));
  }

  test('devices: register, list, store a cursor (only one this feed handed out), revoke; another user cannot touch them', async () => {
    const created = await api(stack.baseUrl, 'POST', `${V1}/sync/devices`, { token: alice.token, body: { name: 'laptop', platform: 'linux' } });
    assert.equal(created.status, 201, created.text);
    assert.match(created.body.id, /^dev_/);
    assert.equal(created.body.cursor, null);
    const { cursor } = await pullAll(stack, alice.token, '0');
    const stored = await api(stack.baseUrl, 'POST', `${V1}/sync/cursor`, { token: alice.token, body: { device_id: created.body.id, cursor } });
    assert.equal(stored.status, 200, stored.text);
    assert.equal(stored.body.cursor, cursor);
    // The server never moves it: more changes, the stored cursor stays where the client put it.
    await mkdir(stack, alice, alice.rootFolderId, 'after-store');
    const listed = await api(stack.baseUrl, 'GET', `${V1}/sync/devices`, { token: alice.token });
    assert.deepEqual(listed.body.items.map((d: any) => [d.id, d.cursor]), [[created.body.id, cursor]]);
    // A forged cursor, bob's device, an unknown device.
    assertError(await api(stack.baseUrl, 'POST', `${V1}/sync/cursor`, { token: alice.token, body: { device_id: created.body.id, cursor: `${cursor.slice(0, -2)}xx` } }), 400, 'INVALID_CURSOR');
    assertError(await api(stack.baseUrl, 'POST', `${V1}/sync/cursor`, { token: bob.token, body: { device_id: created.body.id, cursor: '0' } }), 404);
    assertError(await api(stack.baseUrl, 'DELETE', `${V1}/sync/devices/${created.body.id}`, { token: bob.token }), 404);
    assertError(await api(stack.baseUrl, 'POST', `${V1}/sync/devices`, { token: alice.token, body: { name: '', platform: 'linux' } }), 422);
    assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/sync/devices/${created.body.id}`, { token: alice.token })).status, 204);
    assert.deepEqual((await api(stack.baseUrl, 'GET', `${V1}/sync/devices`, { token: alice.token })).body.items, []);
  });

  test('a transaction that took its change entry first but commits last is not skipped (positions are assigned at commit)', async () => {
    const user = await newUser(stack, tenantId, 'late');
    const { cursor: start } = await pullAll(stack, user.token, '0');
    const folder = await mkdir(stack, user, user.rootFolderId, 'held');
    const start2 = (await pullAll(stack, user.token, start)).cursor;
    // A writer appends its entry and then holds its transaction open…
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let appended!: () => void;
    const entryWritten = new Promise<void>((resolve) => (appended = resolve));
    const held = stack.services.db.transaction().execute(async (trx) => {
      const node = await trx.selectFrom('nodes').selectAll().where('id', '=', folder.id).executeTakeFirstOrThrow();
      await appendChange(trx, 'renamed', node);
      appended();
      await released;
    });
    await entryWritten;
    // …while another change commits and is pulled.
    const other = await mkdir(stack, user, user.rootFolderId, 'quick');
    const first = await pullAll(stack, user.token, start2);
    assert.deepEqual(first.changes.map((c) => [c.type, c.node_id]), [['created', other.id]]);
    release();
    await held;
    const second = await pullAll(stack, user.token, first.cursor);
    assert.deepEqual(second.changes.map((c) => [c.type, c.node_id]), [['renamed', folder.id]]);
    assert.ok(second.changes[0]!.seq > first.changes[0]!.seq, 'later commit, later position');
  });

  test('paging while 4 writers commit: the pages hold every committed change exactly once, in commit order', async () => {
    const user = await newUser(stack, tenantId, 'pager');
    let cursor = (await pullAll(stack, user.token, '0')).cursor;
    const perWriter = 300;
    const seen: FeedChange[] = [];
    let writing = true;
    const reader = (async () => {
      while (writing) {
        const page = await pullPage(stack, user.token, cursor, { limit: 37 });
        seen.push(...page.changes);
        cursor = page.next_cursor;
        if (!page.has_more) await sleep(5);
      }
    })();
    const created = (
      await burst(stack.baseUrl, 4, async (writer, dispatcher) => {
        const ids: string[] = [];
        for (let i = 0; i < perWriter; i++) {
          const res = await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: user.token, body: { parent_id: user.rootFolderId, name: `w${writer}-${i}` }, dispatcher });
          assert.equal(res.status, 201, res.text);
          ids.push(res.body.id);
        }
        return ids;
      })
    ).flat();
    writing = false;
    await reader;
    seen.push(...(await pullAll(stack, user.token, cursor, { limit: 37 })).changes);
    const ids = seen.map((c) => c.node_id);
    assert.equal(new Set(ids).size, ids.length, 'no change twice');
    assert.deepEqual([...ids].sort(), [...created].sort(), 'every committed change, nothing else');
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.seq > seen[i - 1]!.seq, 'in commit order');
  });

  test('10k changes from 4 writers whose transactions commit out of order: the pages hold each exactly once, in commit order', async () => {
    const user = await newUser(stack, tenantId, 'outoforder');
    let cursor = (await pullAll(stack, user.token, '0')).cursor;
    const perWriter = 2_500;
    const seen: FeedChange[] = [];
    let writing = true;
    const reader = (async () => {
      while (writing) {
        const page = await pullPage(stack, user.token, cursor, { limit: 100 });
        seen.push(...page.changes);
        cursor = page.next_cursor;
        if (!page.has_more) await sleep(2);
      }
    })();
    // Each transaction writes its entry, then lingers 0–3 ms before committing: entries are inserted in one order
    // and committed in another, the case a sequence handed out at insert time gets wrong.
    const written: string[] = [];
    await Promise.all(
      Array.from({ length: 4 }, async (_, writer) => {
        for (let i = 0; i < perWriter; i++) {
          const id = `fil_w${writer}_${String(i).padStart(5, '0')}`;
          await stack.services.db.transaction().execute(async (trx) => {
            await appendChange(trx, 'created', { id, tenant_id: tenantId, space_id: user.spaceId, parent_id: user.rootFolderId, name: `${id}.txt`, kind: 'file' });
            await sleep(Math.floor(Math.random() * 4));
          });
          written.push(id);
        }
      }),
    );
    writing = false;
    await reader;
    seen.push(...(await pullAll(stack, user.token, cursor, { limit: 100 })).changes);
    const ids = seen.map((c) => c.node_id!);
    assert.equal(new Set(ids).size, ids.length, 'no change twice');
    assert.equal(ids.length, written.length);
    assert.deepEqual([...ids].sort(), [...written].sort(), 'every committed change');
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.seq > seen[i - 1]!.seq, 'in commit order');
  });

  test('cursor=0 while writers go on: the listing plus the changes after it rebuild exactly the final tree', async () => {
    const user = await newUser(stack, tenantId, 'resyncer');
    const folders = [user.rootFolderId];
    for (let i = 0; i < 5; i++) folders.push((await mkdir(stack, user, user.rootFolderId, `seed-${i}`)).id);
    for (let i = 0; i < 40; i++) await put(stack, user, folders[i % folders.length]!, `seed-${i}.txt`, Buffer.from(`seed ${i}`));

    // Writers create, upload, rename/move and delete folders; a parent deleted meanwhile answers 404/410.
    const ok = (status: number, allowed: number[]) => assert.ok(allowed.includes(status), `unexpected ${status}`);
    const writers = Array.from({ length: 4 }, async (_, writer) => {
      const mine: string[] = [];
      for (let i = 0; i < 120; i++) {
        const op = i % 5;
        const parent = folders[(i * 7 + writer) % folders.length]!;
        if (op === 0) {
          const res = await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: user.token, body: { parent_id: parent, name: `w${writer}-f${i}` } });
          ok(res.status, [201, 404, 410]);
          if (res.status === 201) folders.push(res.body.id);
        } else if (op === 1 || op === 2) {
          const res = await uploadDirect(stack, user.token, parent, `w${writer}-${i}.txt`, Buffer.from(`${writer} ${i}`));
          ok(res.status, [201, 404, 410]);
          if (res.status === 201) mine.push(res.body.file.id);
        } else if (op === 3 && mine.length > 0) {
          const res = await api(stack.baseUrl, 'PATCH', `${V1}/files/${mine[i % mine.length]}`, { token: user.token, body: { name: `w${writer}-moved-${i}.txt`, parent_id: parent } });
          ok(res.status, [200, 404, 409, 410]);
        } else if (op === 4 && folders.length > 8) {
          const victim = folders.splice(6 + (i % (folders.length - 6)), 1)[0]!;
          ok((await api(stack.baseUrl, 'DELETE', `${V1}/folders/${victim}`, { token: user.token })).status, [204, 404, 410]);
        }
      }
    });
    let writing = true;
    const written = Promise.all(writers).finally(() => (writing = false));
    // Resync with small pages while the writers run, then follow the feed until they are done.
    const mirror = new Mirror();
    let page = await pullPage(stack, user.token, '0', { limit: 9 });
    mirror.apply(page.changes);
    while (page.has_more || writing) {
      if (!page.has_more) await sleep(10);
      page = await pullPage(stack, user.token, page.next_cursor, { limit: 9 });
      mirror.apply(page.changes);
    }
    await written;
    mirror.apply((await pullAll(stack, user.token, page.next_cursor, { limit: 9 })).changes);
    assert.deepEqual(mirror.snapshot(), await serverTree([user.spaceId]));
  });

  test('a lost grant yields space_removed and nothing more from that space; a new grant lists the space', async () => {
    const share = await api(stack.baseUrl, 'POST', `${V1}/shares`, { token: alice.token, body: { name: 'Team' } });
    assert.equal(share.status, 201, share.text);
    const shareId: string = share.body.id;
    const before = await put(stack, alice, share.body.root_folder_id, 'before.txt', Buffer.from('before'));
    const member = await api(stack.baseUrl, 'POST', `${V1}/shares/${shareId}/members`, { token: alice.token, body: { principal_type: 'user', principal_id: bob.userId, role: 'reader' } });
    assert.equal(member.status, 201, member.text);

    const mirror = new Mirror();
    const resync = await pullAll(stack, bob.token, '0', { limit: 3 });
    mirror.apply(resync.changes);
    assert.ok(mirror.nodes.has(before.file.id), 'the listing holds the share');
    const during = await put(stack, alice, share.body.root_folder_id, 'during.txt', Buffer.from('during'));
    const pulled = await pullAll(stack, bob.token, resync.cursor);
    assert.deepEqual(pulled.changes.map((c) => [c.type, c.node_id]), [['created', during.file.id]]);

    assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/shares/${shareId}/members/${member.body.id}`, { token: alice.token })).status, 204);
    await put(stack, alice, share.body.root_folder_id, 'after.txt', Buffer.from('after'));
    const removed = await pullAll(stack, bob.token, pulled.cursor);
    assert.deepEqual(removed.changes.map((c) => [c.type, c.space_id]), [['space_removed', shareId]]);
    mirror.apply([...pulled.changes, ...removed.changes]);
    assert.ok([...mirror.nodes.values()].every((n) => n.space_id !== shareId));
    await put(stack, alice, share.body.root_folder_id, 'later.txt', Buffer.from('later'));
    assert.deepEqual((await pullAll(stack, bob.token, removed.cursor)).changes, [], 'nothing more from the space');

    // Granted again: the space arrives as a listing of what it holds now, then its changes follow.
    const again = await api(stack.baseUrl, 'POST', `${V1}/shares/${shareId}/members`, { token: alice.token, body: { principal_type: 'user', principal_id: bob.userId, role: 'reader' } });
    assert.equal(again.status, 201);
    const regained = await pullAll(stack, bob.token, removed.cursor, { limit: 2 });
    mirror.apply(regained.changes);
    assert.deepEqual(mirror.snapshot(), await serverTree([bob.spaceId, shareId]));
  });

  test("a folder moved into a share reaches the share's readers with its whole subtree; the mover's other devices see it leave", async () => {
    const share = await api(stack.baseUrl, 'POST', `${V1}/shares`, { token: alice.token, body: { name: 'Inbox' } });
    const shareId: string = share.body.id;
    const carol = await newUser(stack, tenantId, 'carol');
    assert.equal((await api(stack.baseUrl, 'POST', `${V1}/shares/${shareId}/members`, { token: alice.token, body: { principal_type: 'user', principal_id: carol.userId, role: 'reader' } })).status, 201);
    const folder = await mkdir(stack, alice, alice.rootFolderId, 'project');
    const inner = await mkdir(stack, alice, folder.id, 'docs');
    const file = await put(stack, alice, inner.id, 'plan.txt', Buffer.from('plan'));

    const carolMirror = new Mirror();
    const carolStart = await pullAll(stack, carol.token, '0');
    carolMirror.apply(carolStart.changes);
    const alicePersonal = await pullAll(stack, alice.token, '0', { spaceId: alice.spaceId });
    const aliceMirror = new Mirror();
    aliceMirror.apply(alicePersonal.changes);
    assert.ok(aliceMirror.nodes.has(file.file.id));

    const moved = await api(stack.baseUrl, 'PATCH', `${V1}/folders/${folder.id}`, { token: alice.token, body: { parent_id: share.body.root_folder_id } });
    assert.equal(moved.status, 200, moved.text);
    carolMirror.apply((await pullAll(stack, carol.token, carolStart.cursor)).changes);
    assert.deepEqual(carolMirror.snapshot(), await serverTree([carol.spaceId, shareId]));
    // A feed filtered to alice's personal space sees the folder leave it.
    const left = await pullAll(stack, alice.token, alicePersonal.cursor, { spaceId: alice.spaceId });
    assert.deepEqual(left.changes.filter((c) => c.node_id === folder.id).map((c) => [c.type, c.space_id]), [['deleted', alice.spaceId]]);
    aliceMirror.apply(left.changes);
    assert.deepEqual(aliceMirror.snapshot(), await serverTree([alice.spaceId]));
  });

  test('cursors are tamper-evident and bound to their tenant, user and filter; pruned history is 410 SYNC_CURSOR_INVALID', async () => {
    const { cursor } = await pullAll(stack, alice.token, '0');
    const otherTenant = (await createTestTenant(stack)).id;
    const mallory = await newUser(stack, otherTenant, 'mallory');
    assertError(await api(stack.baseUrl, 'GET', `${V1}/sync/changes?cursor=${encodeURIComponent(cursor)}`, { token: mallory.token }), 400, 'INVALID_CURSOR');
    assertError(await api(stack.baseUrl, 'GET', `${V1}/sync/changes?cursor=${encodeURIComponent(cursor)}`, { token: bob.token }), 400, 'INVALID_CURSOR');
    assertError(await api(stack.baseUrl, 'GET', `${V1}/sync/changes?cursor=${encodeURIComponent(cursor)}&space_id=${alice.spaceId}`, { token: alice.token }), 400, 'INVALID_CURSOR');
    // Already URL-encoded: forged, truncated, NUL, a lone surrogate, an unsigned payload.
    for (const bad of ['1', 'abc.def', `${encodeURIComponent(cursor)}x`, '%00', '%ED%A0%80', 'e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', '']) {
      const res = await api(stack.baseUrl, 'GET', `${V1}/sync/changes?cursor=${bad}`, { token: alice.token });
      assert.ok(res.status === 400 || res.status === 422, `${JSON.stringify(bad)} → ${res.status} ${res.text}`);
    }
    assertError(await api(stack.baseUrl, 'GET', `${V1}/sync/changes?cursor=0&space_id=spc_nope`, { token: alice.token }), 404);
    assertError(await api(stack.baseUrl, 'GET', `${V1}/sync/changes?cursor=0&space_id=${alice.spaceId}`, { token: bob.token }), 404);

    // Retention: entries past changelog_retention_days are pruned; a cursor from before them is 410, cursor=0 works.
    await mkdir(stack, alice, alice.rootFolderId, 'to-be-pruned');
    await sql`update change_log set at = now() - interval '400 days' where tenant_id = ${tenantId}`.execute(stack.services.db);
    assert.ok((await pruneChangeLog(stack.services.db, tenantId)) > 0);
    assertError(await api(stack.baseUrl, 'GET', `${V1}/sync/changes?cursor=${encodeURIComponent(cursor)}`, { token: alice.token }), 410, 'SYNC_CURSOR_INVALID');
    const fresh = await pullAll(stack, alice.token, '0');
    const mirror = new Mirror();
    mirror.apply(fresh.changes);
    const spaces = (await api(stack.baseUrl, 'GET', `${V1}/spaces`, { token: alice.token })).body.items.map((s: any) => s.id);
    assert.deepEqual(mirror.snapshot(), await serverTree(spaces));
  });

  test('long poll: answers false at its timeout, and true soon after a commit made through another API server', async () => {
    const user = await newUser(stack, tenantId, 'poller');
    const { cursor } = await pullAll(stack, user.token, '0');
    const started = Date.now();
    const idle = await api(stack.baseUrl, 'GET', `${V1}/sync/changes/wait?cursor=${encodeURIComponent(cursor)}&timeout=1`, { token: user.token });
    assert.equal(idle.status, 200, idle.text);
    assert.deepEqual(idle.body, { changes: false });
    assert.ok(Date.now() - started >= 900);

    // The poll waits on the second server; the commit goes through the first.
    const secondToken = await tokenFor(second, tenantId, 'poller');
    const waiting = api(second.baseUrl, 'GET', `${V1}/sync/changes/wait?cursor=${encodeURIComponent(cursor)}&timeout=30`, { token: secondToken });
    await sleep(300);
    const committedAt = Date.now();
    await mkdir(stack, user, user.rootFolderId, 'wake-up');
    const woke = await waiting;
    assert.deepEqual(woke.body, { changes: true });
    assert.ok(Date.now() - committedAt < 3_000, `woke ${Date.now() - committedAt} ms after the commit`);
    // A change in a space the user cannot see does not count.
    const { cursor: after } = await pullAll(stack, user.token, cursor);
    const quiet = api(stack.baseUrl, 'GET', `${V1}/sync/changes/wait?cursor=${encodeURIComponent(after)}&timeout=2`, { token: user.token });
    await mkdir(stack, alice, alice.rootFolderId, 'not-yours');
    assert.deepEqual((await quiet).body, { changes: false });
  });
});
