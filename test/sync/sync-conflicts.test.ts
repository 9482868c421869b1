// Sync conflicts (issue #12 item 4) through the HTTP API with real workers: writes against a stale base get 409
// VERSION_CONFLICT and a conflict for the device; an upload is kept open for the client's content; keep_client,
// keep_both and keep_server each do what they say; 20 devices racing on one base → one wins, 19 conflicts; 20
// parallel resolutions → one applies; If-Match on rename/delete; a keep_both space saves the copy at once; a
// conflict blocks only its file; revoking a device takes its conflicts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, putChunk, uploadDirect, type TestUser } from '../helpers/files';
import { put, childrenOf } from '../helpers/tree';
import { burst } from '../helpers/race';
import { assertError } from '../helpers/assertions';
import { pullAll } from '../helpers/sync';

const V1 = '/api/v1';

describe('sync conflicts', () => {
  let stack: TestStack;
  let alice: TestUser;

  before(async () => {
    stack = await startTestStack({ workers: true });
    alice = await newUser(stack, (await createTestTenant(stack)).id, 'alice');
  });
  after(async () => {
    await stack?.close();
  });

  const device = async (name: string): Promise<string> => {
    const res = await api(stack.baseUrl, 'POST', `${V1}/sync/devices`, { token: alice.token, body: { name, platform: 'test' } });
    assert.equal(res.status, 201, res.text);
    return res.body.id;
  };
  const content = async (fileId: string) => Buffer.from(await (await fetch(`${stack.baseUrl}${V1}/files/${fileId}/content`, { headers: { authorization: `Bearer ${alice.token}` } })).arrayBuffer()).toString();
  const fileOf = async (fileId: string) => (await api(stack.baseUrl, 'GET', `${V1}/files/${fileId}`, { token: alice.token })).body;
  const versionsOf = async (fileId: string) => (await api(stack.baseUrl, 'GET', `${V1}/files/${fileId}/versions`, { token: alice.token })).body.items;
  const conflictsOf = async (deviceId: string, includeResolved = false) =>
    (await api(stack.baseUrl, 'GET', `${V1}/sync/conflicts?device_id=${deviceId}&include_resolved=${includeResolved}`, { token: alice.token })).body.items;

  /** Device `deviceId` uploads `text` over `base` with a resumable session; returns the 409 body (the kept upload). */
  async function conflictingUpload(deviceId: string, fileName: string, base: string, text: string) {
    const data = Buffer.from(text);
    const res = await api(stack.baseUrl, 'POST', `${V1}/uploads`, { token: alice.token, headers: { 'x-device-id': deviceId }, body: { parent_id: alice.rootFolderId, name: fileName, size: data.length, base_version_id: base } });
    assertError(res, 409, 'VERSION_CONFLICT');
    assert.match(res.body.details.conflict_id, /^cfl_/);
    assert.match(res.body.details.upload_id, /^upl_/);
    return { conflictId: res.body.details.conflict_id as string, uploadId: res.body.details.upload_id as string, data };
  }

  test('a stale resumable upload keeps its session open; finalize waits for the resolution; keep_client commits the client\'s content', async () => {
    const laptop = await device('Laptop');
    const phone = await device('Phone');
    const v1 = await put(stack, alice, alice.rootFolderId, 'notes.txt', Buffer.from('v1'));
    const fileId: string = v1.file.id;
    // The phone commits on top of v1 first.
    const phoneWrite = await uploadDirect(stack, alice.token, alice.rootFolderId, 'notes.txt', Buffer.from('phone edit'), { 'x-base-version-id': v1.version.id, 'x-device-id': phone });
    assert.equal(phoneWrite.status, 200, JSON.stringify(phoneWrite.body));
    // The laptop's edit of v1 is a conflict; its session is kept for the content.
    const laptopWrite = await conflictingUpload(laptop, 'notes.txt', v1.version.id, 'laptop edit');
    const [open] = await conflictsOf(laptop);
    assert.equal(open.id, laptopWrite.conflictId);
    assert.deepEqual([open.operation, open.status, open.base_version_id, open.server_version_id, open.node_id], ['upload', 'open', v1.version.id, phoneWrite.body.version.id, fileId]);
    assert.deepEqual(await conflictsOf(phone), [], 'the winner has none');
    // Resolving before the content is there, or finalizing before resolving, is refused.
    assertError(await api(stack.baseUrl, 'POST', `${V1}/sync/conflicts/${open.id}/resolve`, { token: alice.token, body: { resolution: 'keep_client' } }), 409, 'UPLOAD_INCOMPLETE');
    assert.equal((await putChunk(stack, alice.token, laptopWrite.uploadId, 0, laptopWrite.data)).status, 200);
    assertError(await api(stack.baseUrl, 'POST', `${V1}/uploads/${laptopWrite.uploadId}/finalize`, { token: alice.token }), 409, 'VERSION_CONFLICT');

    const resolved = await api(stack.baseUrl, 'POST', `${V1}/sync/conflicts/${open.id}/resolve`, { token: alice.token, body: { resolution: 'keep_client' } });
    assert.equal(resolved.status, 200, resolved.text);
    assert.equal(resolved.body.conflict.resolution, 'keep_client');
    assert.equal(resolved.body.commit.file.id, fileId);
    assert.equal(await content(fileId), 'laptop edit');
    assert.equal((await versionsOf(fileId)).length, 3);
    assert.deepEqual(await conflictsOf(laptop), []);
    assert.equal((await conflictsOf(laptop, true)).length, 1);
    assertError(await api(stack.baseUrl, 'POST', `${V1}/sync/conflicts/${open.id}/resolve`, { token: alice.token, body: { resolution: 'keep_server' } }), 409, 'CONFLICT_RESOLVED');
  });

  test("keep_both saves the client's content beside the server's; keep_server drops it and aborts the kept upload", async () => {
    const laptop = await device('Work/Laptop');
    const v1 = await put(stack, alice, alice.rootFolderId, 'plan.md', Buffer.from('v1'));
    await put(stack, alice, alice.rootFolderId, 'plan.md', Buffer.from('server edit'));
    const both = await conflictingUpload(laptop, 'plan.md', v1.version.id, 'laptop copy');
    assert.equal((await putChunk(stack, alice.token, both.uploadId, 0, both.data)).status, 200);
    const kept = await api(stack.baseUrl, 'POST', `${V1}/sync/conflicts/${both.conflictId}/resolve`, { token: alice.token, body: { resolution: 'keep_both' } });
    assert.equal(kept.status, 200, kept.text);
    const today = new Date().toISOString().slice(0, 10);
    assert.equal(kept.body.commit.file.name, `plan (conflict from Work_Laptop ${today}).md`);
    assert.equal(await content(kept.body.commit.file.id), 'laptop copy');
    assert.equal(await content(v1.file.id), 'server edit');

    const dropped = await conflictingUpload(laptop, 'plan.md', v1.version.id, 'never mind');
    const resolved = await api(stack.baseUrl, 'POST', `${V1}/sync/conflicts/${dropped.conflictId}/resolve`, { token: alice.token, body: { resolution: 'keep_server' } });
    assert.equal(resolved.status, 200, resolved.text);
    assert.equal(resolved.body.commit, null);
    assertError(await api(stack.baseUrl, 'GET', `${V1}/uploads/${dropped.uploadId}`, { token: alice.token }), 404);
    assert.equal(await content(v1.file.id), 'server edit');
  });

  test('20 devices write over the same base at once: one wins, 19 get 409 and a conflict each; 20 parallel resolutions apply once', async () => {
    const devices = await Promise.all(Array.from({ length: 20 }, (_, i) => device(`racer-${i}`)));
    const v1 = await put(stack, alice, alice.rootFolderId, 'race.txt', Buffer.from('base'));
    const results = await burst(stack.baseUrl, 20, (i) =>
      uploadDirect(stack, alice.token, alice.rootFolderId, 'race.txt', Buffer.from(`edit from ${i}`), { 'x-base-version-id': v1.version.id, 'x-device-id': devices[i]! }),
    );
    const winners = results.filter((r) => r.status === 200);
    assert.equal(winners.length, 1, JSON.stringify(results.map((r) => r.status)));
    const losers = results.filter((r) => r.status === 409);
    assert.equal(losers.length, 19);
    assert.ok(losers.every((r) => r.body.code === 'VERSION_CONFLICT' && /^cfl_/.test(r.body.details.conflict_id)));
    assert.equal((await versionsOf(v1.file.id)).length, 2, 'exactly one new version');
    const recorded = (await Promise.all(devices.map((d) => conflictsOf(d)))).flat();
    assert.equal(recorded.length, 19);

    // A loser resolves keep_server 20 times at once: one 200, the rest 409 CONFLICT_RESOLVED.
    const target = recorded[0]!;
    const resolutions = await burst(stack.baseUrl, 20, (_, dispatcher) => api(stack.baseUrl, 'POST', `${V1}/sync/conflicts/${target.id}/resolve`, { token: alice.token, body: { resolution: 'keep_server' }, dispatcher }));
    assert.equal(resolutions.filter((r) => r.status === 200).length, 1, JSON.stringify(resolutions.map((r) => r.status)));
    assert.ok(resolutions.every((r) => r.status === 200 || r.body.code === 'CONFLICT_RESOLVED'));
    // A direct upload's body is not kept: keep_client asks for the content again.
    assertError(await api(stack.baseUrl, 'POST', `${V1}/sync/conflicts/${recorded[1]!.id}/resolve`, { token: alice.token, body: { resolution: 'keep_client' } }), 409, 'UPLOAD_REQUIRED');
  });

  test('If-Match on rename and delete: a stale base is a conflict; keep_client applies the rename, keep_server keeps the file', async () => {
    const laptop = await device('Desk');
    const v1 = await put(stack, alice, alice.rootFolderId, 'draft.txt', Buffer.from('v1'));
    const v2 = await put(stack, alice, alice.rootFolderId, 'draft.txt', Buffer.from('v2'));
    const headers = { 'if-match': `"${v1.version.id}"`, 'x-device-id': laptop };
    const rename = await api(stack.baseUrl, 'PATCH', `${V1}/files/${v1.file.id}`, { token: alice.token, headers, body: { name: 'final.txt' } });
    assertError(rename, 409, 'VERSION_CONFLICT');
    const deletion = await api(stack.baseUrl, 'DELETE', `${V1}/files/${v1.file.id}`, { token: alice.token, headers });
    assertError(deletion, 409, 'VERSION_CONFLICT');
    // The current version as base goes through.
    const ok = await api(stack.baseUrl, 'PATCH', `${V1}/files/${v1.file.id}`, { token: alice.token, body: { name: 'draft-2.txt', base_version_id: v2.version.id } });
    assert.equal(ok.status, 200, ok.text);
    assertError(await api(stack.baseUrl, 'PATCH', `${V1}/folders/${alice.rootFolderId}`, { token: alice.token, headers: { 'if-match': '"x"' }, body: { name: 'x' } }), 400);

    const [renameConflict, deleteConflict] = await conflictsOf(laptop);
    assert.deepEqual([renameConflict.operation, renameConflict.request], ['rename', { name: 'final.txt', parent_id: null }]);
    assert.equal(deleteConflict.operation, 'delete');
    assertError(await api(stack.baseUrl, 'POST', `${V1}/sync/conflicts/${renameConflict.id}/resolve`, { token: alice.token, body: { resolution: 'keep_both' } }), 409, 'RESOLUTION_NOT_APPLICABLE');
    assert.equal((await api(stack.baseUrl, 'POST', `${V1}/sync/conflicts/${renameConflict.id}/resolve`, { token: alice.token, body: { resolution: 'keep_client' } })).status, 200);
    assert.equal((await fileOf(v1.file.id)).name, 'final.txt');
    assert.equal((await api(stack.baseUrl, 'POST', `${V1}/sync/conflicts/${deleteConflict.id}/resolve`, { token: alice.token, body: { resolution: 'keep_server' } })).status, 200);
    assert.equal((await api(stack.baseUrl, 'GET', `${V1}/files/${v1.file.id}`, { token: alice.token })).status, 200, 'not deleted');
  });

  test('a keep_both space saves the copy at once; a conflict blocks only its file; revoking the device takes its conflicts', async () => {
    const laptop = await device('Tablet');
    const policy = await api(stack.baseUrl, 'PATCH', `${V1}/sync/spaces/${alice.spaceId}`, { token: alice.token, body: { conflict_policy: 'keep_both' } });
    assert.equal(policy.status, 200, policy.text);
    const { cursor } = await pullAll(stack, alice.token, '0');
    const v1 = await put(stack, alice, alice.rootFolderId, 'budget.csv', Buffer.from('a,b'));
    await put(stack, alice, alice.rootFolderId, 'budget.csv', Buffer.from('a,b,c'));
    const copy = await uploadDirect(stack, alice.token, alice.rootFolderId, 'budget.csv', Buffer.from('tablet'), { 'x-base-version-id': v1.version.id, 'x-device-id': laptop });
    assert.equal(copy.status, 201, JSON.stringify(copy.body));
    assert.match(copy.body.file.name, /^budget \(conflict from Tablet \d{4}-\d{2}-\d{2}\)\.csv$/);
    const [auto] = await conflictsOf(laptop, true);
    assert.deepEqual([auto.status, auto.resolution, auto.auto_resolved], ['resolved', 'keep_both', true]);
    assert.deepEqual(await conflictsOf(laptop), []);
    const names = (await childrenOf(stack, alice, alice.rootFolderId)).map((n: any) => n.name);
    assert.ok(names.includes('budget.csv') && names.includes(copy.body.file.name));

    // A manual conflict elsewhere does not stop the feed: the next pull has the other changes.
    await api(stack.baseUrl, 'PATCH', `${V1}/sync/spaces/${alice.spaceId}`, { token: alice.token, body: { conflict_policy: 'manual' } });
    const stale = await uploadDirect(stack, alice.token, alice.rootFolderId, 'budget.csv', Buffer.from('again'), { 'x-base-version-id': v1.version.id, 'x-device-id': laptop });
    assertError(stale, 409, 'VERSION_CONFLICT');
    const other = await put(stack, alice, alice.rootFolderId, 'unrelated.txt', Buffer.from('x'));
    const pulled = await pullAll(stack, alice.token, cursor);
    assert.ok(pulled.changes.some((c) => c.node_id === other.file.id));
    assert.equal((await conflictsOf(laptop)).length, 1);
    assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/sync/devices/${laptop}`, { token: alice.token })).status, 204);
    assert.deepEqual(await conflictsOf(laptop, true), []);
    // A device that is not yours is 404 on writes too.
    assertError(await uploadDirect(stack, alice.token, alice.rootFolderId, 'budget.csv', Buffer.from('x'), { 'x-base-version-id': v1.version.id, 'x-device-id': laptop }), 404);
  });
});
