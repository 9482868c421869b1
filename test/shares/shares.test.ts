// Shares through HTTP (spec §3, §7, §8, §9): create and list, spaces, rename, delete (quota refund),
// transfer, members (users and groups), permissions_changed + audit trail, my-permission, effective role
// as the highest grant, and grant changes taking effect on the very next request.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { createSession, download, putChunk, randomData, sha256, uploadDirect } from '../helpers/files';
import {
  V1,
  addMember,
  addToGroup,
  assertError,
  assertValidation,
  createGroup,
  createShare,
  memberWithRole,
  mkdir,
  permissionChanges,
  put,
  uniq,
  user,
  type ShareUser,
} from './share-helpers';

describe('shares', () => {
  let stack: TestStack;
  let tenantId: string;
  let otherTenantId: string;
  let admin: ShareUser;

  before(async () => {
    stack = await startTestStack();
    tenantId = (await createTestTenant(stack)).id;
    otherTenantId = (await createTestTenant(stack)).id;
    admin = await user(stack, tenantId, 'tenant-admin', { admin: true });
  });
  after(() => stack.close());

  const get = (path: string, token: string) => api(stack.baseUrl, 'GET', `${V1}${path}`, { token });
  const myPermission = (shareId: string, who: ShareUser) => get(`/shares/${shareId}/my-permission`, who.token);

  test('POST /shares creates a share (201, my_role owner) whose root folder takes folders and uploads', async () => {
    const owner = await user(stack, tenantId);
    const name = uniq('Projects');
    const res = await api(stack.baseUrl, 'POST', `${V1}/shares`, { token: owner.token, body: { name } });
    assert.equal(res.status, 201, res.text);
    assert.match(res.body.id, /^shr_[0-9A-Z]{26}$/);
    assert.equal(res.body.name, name);
    assert.equal(res.body.owner_user_id, owner.userId);
    assert.equal(res.body.my_role, 'owner');
    assert.equal(typeof res.body.root_folder_id, 'string');
    assert.ok(!Number.isNaN(Date.parse(res.body.created_at)));
    const share = res.body;

    const fetched = await get(`/shares/${share.id}`, owner.token);
    assert.equal(fetched.status, 200);
    assert.deepEqual(fetched.body, share);

    const root = await get(`/folders/${share.root_folder_id}`, owner.token);
    assert.equal(root.status, 200, root.text);
    assert.equal(root.body.kind, 'folder');
    assert.equal(root.body.parent_id, null);
    assert.equal(root.body.space_id, share.id);

    const folder = await mkdir(stack, owner, share.root_folder_id, 'Docs');
    assert.equal(folder.space_id, share.id);
    const data = randomData(3000);
    const uploaded = await put(stack, owner, folder.id, 'plan.bin', data);
    assert.equal(uploaded.file.space_id, share.id);
    const children = await get(`/folders/${share.root_folder_id}/children`, owner.token);
    assert.deepEqual(
      children.body.items.map((n: any) => n.name),
      ['Docs'],
    );
    const content = await download(stack, `${V1}/files/${uploaded.file.id}/content`, { token: owner.token });
    assert.equal(content.status, 200);
    assert.equal(sha256(content.body), sha256(data));

    // A share is charged like any upload: the share level counts its versions.
    const usage = await get(`/quotas/usage/shares/${share.id}`, owner.token);
    assert.equal(usage.status, 200, usage.text);
    assert.equal(usage.body.used_bytes, 3000);

    for (const bad of [{}, { name: '' }, { name: 'x'.repeat(256) }, { name: 42 }]) {
      const refused = await api(stack.baseUrl, 'POST', `${V1}/shares`, { token: owner.token, body: bad });
      assertValidation(refused, ['body', 'name'], undefined, JSON.stringify(bad));
    }
    assert.equal((await api(stack.baseUrl, 'POST', `${V1}/shares`, { body: { name: 'anon' } })).status, 401);
  });

  test('GET /shares lists only the shares the caller belongs to; ?all=true is for tenant admins', async () => {
    const owner = await user(stack, tenantId);
    const member = await user(stack, tenantId);
    const grouped = await user(stack, tenantId);
    const outsider = await user(stack, tenantId);
    const mine = await createShare(stack, owner);
    const other = await createShare(stack, outsider);
    await addMember(stack, owner, mine.id, 'user', member.userId, 'reader');
    const group = await createGroup(stack, admin);
    await addToGroup(stack, admin, group.id, grouped.userId);
    await addMember(stack, owner, mine.id, 'group', group.id, 'contributor');

    const ownerList = await get('/shares', owner.token);
    assert.equal(ownerList.status, 200);
    assert.deepEqual(
      ownerList.body.items.map((s: any) => [s.id, s.my_role]),
      [[mine.id, 'owner']],
    );
    const memberList = await get('/shares', member.token);
    assert.deepEqual(
      memberList.body.items.map((s: any) => [s.id, s.my_role]),
      [[mine.id, 'reader']],
    );
    const groupedList = await get('/shares', grouped.token);
    assert.deepEqual(
      groupedList.body.items.map((s: any) => [s.id, s.my_role]),
      [[mine.id, 'contributor']],
    );
    const outsiderList = await get('/shares', outsider.token);
    assert.deepEqual(
      outsiderList.body.items.map((s: any) => s.id),
      [other.id],
    );
    assert.ok(!outsiderList.text.includes(mine.name));
    // A non-member does not see it, by id either.
    assertError(await get(`/shares/${mine.id}`, outsider.token), 404, 'NOT_FOUND');

    // The tenant admin is no member: ?all=true lists every share of the tenant, with my_role null.
    assert.deepEqual((await get('/shares', admin.token)).body.items, []);
    const all = await get('/shares?all=true', admin.token);
    assert.equal(all.status, 200, all.text);
    const ids = all.body.items.map((s: any) => s.id);
    assert.ok(ids.includes(mine.id) && ids.includes(other.id), JSON.stringify(ids));
    assert.equal(all.body.items.find((s: any) => s.id === mine.id).my_role, null);
    const shareCount = await stack.services.db.selectFrom('spaces').select((eb) => eb.fn.countAll<string>().as('n')).where('tenant_id', '=', tenantId).where('kind', '=', 'share').executeTakeFirstOrThrow();
    assert.equal(ids.length, Number(shareCount.n));
    // ... but not the shares of another tenant.
    const foreignOwner = await user(stack, otherTenantId);
    const foreign = await createShare(stack, foreignOwner);
    assert.ok(!(await get('/shares?all=true', admin.token)).body.items.some((s: any) => s.id === foreign.id));

    assertError(await get('/shares?all=true', member.token), 403);
    assertError(await get('/shares?all=true', owner.token), 403);
    assertValidation(await get('/shares?all=yes', admin.token), ['query', 'all'], 'enum');
  });

  test('GET /spaces includes a share for its members, direct and via a group, and not for others', async () => {
    const owner = await user(stack, tenantId);
    const direct = await user(stack, tenantId);
    const viaGroup = await user(stack, tenantId);
    const outsider = await user(stack, tenantId);
    const share = await createShare(stack, owner);
    await addMember(stack, owner, share.id, 'user', direct.userId, 'reader');
    const group = await createGroup(stack, admin);
    await addToGroup(stack, admin, group.id, viaGroup.userId);
    await addMember(stack, owner, share.id, 'group', group.id, 'reader');

    for (const who of [owner, direct, viaGroup]) {
      const spaces = await get('/spaces', who.token);
      assert.equal(spaces.status, 200);
      const entry = spaces.body.items.find((s: any) => s.id === share.id);
      assert.ok(entry, `${who.subject} sees the share in /spaces: ${spaces.text}`);
      assert.equal(entry.kind, 'share');
      assert.equal(entry.name, share.name);
      assert.equal(entry.root_folder_id, share.root_folder_id);
      assert.ok(spaces.body.items.some((s: any) => s.id === who.spaceId && s.kind === 'personal'));
    }
    const outsiderSpaces = await get('/spaces', outsider.token);
    assert.deepEqual(
      outsiderSpaces.body.items.map((s: any) => s.id),
      [outsider.spaceId],
    );
  });

  test('PATCH /shares/{id} renames for admins and the owner; contributors and readers get 403', async () => {
    const owner = await user(stack, tenantId);
    const share = await createShare(stack, owner);
    const shareAdmin = (await memberWithRole(stack, tenantId, owner, share.id, 'admin')).user;
    const contributor = (await memberWithRole(stack, tenantId, owner, share.id, 'contributor')).user;
    const reader = (await memberWithRole(stack, tenantId, owner, share.id, 'reader')).user;

    const renamed = await api(stack.baseUrl, 'PATCH', `${V1}/shares/${share.id}`, { token: shareAdmin.token, body: { name: 'Renamed by admin' } });
    assert.equal(renamed.status, 200, renamed.text);
    assert.equal(renamed.body.name, 'Renamed by admin');
    assert.equal(renamed.body.my_role, 'admin');
    const byOwner = await api(stack.baseUrl, 'PATCH', `${V1}/shares/${share.id}`, { token: owner.token, body: { name: 'Renamed by owner' } });
    assert.equal(byOwner.status, 200, byOwner.text);
    assert.equal(byOwner.body.my_role, 'owner');
    for (const who of [contributor, reader]) {
      assertError(await api(stack.baseUrl, 'PATCH', `${V1}/shares/${share.id}`, { token: who.token, body: { name: 'Nope' } }), 403, undefined, who.subject);
    }
    assert.equal((await get(`/shares/${share.id}`, reader.token)).body.name, 'Renamed by owner');
    assertValidation(await api(stack.baseUrl, 'PATCH', `${V1}/shares/${share.id}`, { token: owner.token, body: { name: '   ' } }), ['body', 'name']);
  });

  test('DELETE /shares/{id}: an admin gets 403; the owner deletes (204), then 404, and the uploader is refunded', async () => {
    const owner = await user(stack, tenantId);
    const share = await createShare(stack, owner);
    const shareAdmin = (await memberWithRole(stack, tenantId, owner, share.id, 'admin')).user;
    const uploader = (await memberWithRole(stack, tenantId, owner, share.id, 'contributor')).user;

    const tenantBefore = (await get('/quotas/usage/tenant', admin.token)).body.used_bytes;
    const usageOf = async (who: ShareUser) => (await get(`/quotas/usage/users/${who.userId}`, who.token)).body.used_bytes;
    assert.equal(await usageOf(uploader), 0);
    const folder = await mkdir(stack, uploader, share.root_folder_id, 'Folder');
    const first = await put(stack, uploader, folder.id, 'a.bin', randomData(4000));
    await put(stack, uploader, folder.id, 'a.bin', randomData(1000)); // a second version of the same file
    const trashed = await put(stack, uploader, share.root_folder_id, 'trashed.bin', randomData(500));
    assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/files/${trashed.file.id}`, { token: uploader.token })).status, 204);
    assert.equal(await usageOf(uploader), 5500);
    assert.equal((await get('/quotas/usage/tenant', admin.token)).body.used_bytes, tenantBefore + 5500);
    // Something of the uploader's outside the share stays charged, and a copy taken out of the share
    // (charged to its copier) outlives the share.
    await put(stack, uploader, uploader.rootFolderId, 'mine.bin', randomData(700));
    const copied = await api(stack.baseUrl, 'POST', `${V1}/files/${first.file.id}/copy`, { token: shareAdmin.token, body: { parent_id: shareAdmin.rootFolderId } });
    assert.equal(copied.status, 201, copied.text);
    // An open upload session into the share does not block its deletion.
    const open = await api(stack.baseUrl, 'POST', `${V1}/uploads`, { token: uploader.token, body: { parent_id: folder.id, name: 'pending.bin', size: 10 } });
    assert.equal(open.status, 201, open.text);

    assertError(await api(stack.baseUrl, 'DELETE', `${V1}/shares/${share.id}`, { token: shareAdmin.token }), 403);
    assertError(await api(stack.baseUrl, 'DELETE', `${V1}/shares/${share.id}`, { token: uploader.token }), 403);
    assert.equal((await get(`/shares/${share.id}`, owner.token)).status, 200);

    const deleted = await api(stack.baseUrl, 'DELETE', `${V1}/shares/${share.id}`, { token: owner.token });
    assert.equal(deleted.status, 204, deleted.text);
    assertError(await get(`/shares/${share.id}`, owner.token), 404, 'NOT_FOUND');
    assertError(await api(stack.baseUrl, 'DELETE', `${V1}/shares/${share.id}`, { token: owner.token }), 404);
    assertError(await get(`/files/${first.file.id}`, uploader.token), 404);
    assertError(await get(`/folders/${share.root_folder_id}/children`, owner.token), 404);
    assert.ok(!(await get('/shares', uploader.token)).body.items.some((s: any) => s.id === share.id));
    assert.ok(!(await get('/spaces', shareAdmin.token)).body.items.some((s: any) => s.id === share.id));

    assert.equal(await usageOf(uploader), 700);
    assert.equal(await usageOf(shareAdmin), 1000);
    assert.equal((await get('/quotas/usage/tenant', admin.token)).body.used_bytes, tenantBefore + 1700);
    const copy = await download(stack, `${V1}/files/${copied.body.file.id}/content`, { token: shareAdmin.token });
    assert.equal(copy.status, 200);
    assert.equal(copy.body.length, 1000);
    assert.equal(sha256(copy.body), copied.body.version.checksum_sha256);
    assertError(await get(`/uploads/${open.body.id}`, uploader.token), 404);
    assertError(await get(`/quotas/usage/shares/${share.id}`, admin.token), 404);
  });

  test('POST /shares/{id}/transfer: owner only; the new owner can delete; the previous owner becomes admin', async () => {
    const owner = await user(stack, tenantId);
    const next = await user(stack, tenantId);
    const share = await createShare(stack, owner);
    const shareAdmin = (await memberWithRole(stack, tenantId, owner, share.id, 'admin')).user;

    assertError(await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/transfer`, { token: shareAdmin.token, body: { user_id: shareAdmin.userId } }), 403);
    // Another tenant's user is unknown here.
    const foreign = await user(stack, otherTenantId);
    assertError(await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/transfer`, { token: owner.token, body: { user_id: foreign.userId } }), 404);
    assertError(await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/transfer`, { token: owner.token, body: { user_id: 'usr_01ARZ3NDEKTSV4RRFFQ69G5FAV' } }), 404);
    assertValidation(await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/transfer`, { token: owner.token, body: {} }), ['body', 'user_id'], 'missing');
    assert.equal((await get(`/shares/${share.id}`, owner.token)).body.owner_user_id, owner.userId);

    const changesBefore = (await permissionChanges(stack, share.root_folder_id)).length;
    const transferred = await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/transfer`, { token: owner.token, body: { user_id: next.userId } });
    assert.equal(transferred.status, 200, transferred.text);
    assert.equal(transferred.body.owner_user_id, next.userId);
    assert.equal(transferred.body.my_role, 'admin');
    assert.equal((await permissionChanges(stack, share.root_folder_id)).length, changesBefore + 1);

    const previous = await myPermission(share.id, owner);
    assert.equal(previous.status, 200);
    assert.deepEqual(previous.body, { share_id: share.id, role: 'admin', can: { read: true, write: true, manage: true, own: false } });
    const now = await myPermission(share.id, next);
    assert.deepEqual(now.body, { share_id: share.id, role: 'owner', can: { read: true, write: true, manage: true, own: true } });
    // Exactly one owner row, for the new owner.
    const members = await get(`/shares/${share.id}/members`, next.token);
    const owners = members.body.items.filter((m: any) => m.role === 'owner');
    assert.deepEqual(
      owners.map((m: any) => m.principal_id),
      [next.userId],
    );

    // The previous owner lost the owner-only actions.
    assertError(await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/transfer`, { token: owner.token, body: { user_id: owner.userId } }), 403);
    assertError(await api(stack.baseUrl, 'DELETE', `${V1}/shares/${share.id}`, { token: owner.token }), 403);
    const audit = await get(`/admin/audit?action=share.transferred&target_id=${share.id}`, admin.token);
    assert.equal(audit.body.items.length, 1);
    assert.deepEqual(audit.body.items[0].details, { from: owner.userId, to: next.userId });

    assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/shares/${share.id}`, { token: next.token })).status, 204);
    assertError(await get(`/shares/${share.id}`, next.token), 404);
  });

  test('members: add user and group (201), duplicate 409 MEMBER_EXISTS, unknown or foreign principals 404, owner role refused', async () => {
    const owner = await user(stack, tenantId);
    const share = await createShare(stack, owner);
    const alice = await user(stack, tenantId);
    const group = await createGroup(stack, admin);

    const added = await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/members`, { token: owner.token, body: { principal_type: 'user', principal_id: alice.userId, role: 'contributor' } });
    assert.equal(added.status, 201, added.text);
    assert.match(added.body.id, /^[a-z]+_[0-9A-Z]{26}$/);
    assert.equal(added.body.share_id, share.id);
    assert.equal(added.body.principal_type, 'user');
    assert.equal(added.body.principal_id, alice.userId);
    assert.equal(added.body.role, 'contributor');
    const groupGrant = await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/members`, { token: owner.token, body: { principal_type: 'group', principal_id: group.id, role: 'reader' } });
    assert.equal(groupGrant.status, 201, groupGrant.text);
    assert.equal(groupGrant.body.principal_type, 'group');

    const list = await get(`/shares/${share.id}/members`, alice.token);
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.body.items.map((m: any) => [m.principal_type, m.principal_id, m.role]).sort(),
      [
        ['group', group.id, 'reader'],
        ['user', alice.userId, 'contributor'],
        ['user', owner.userId, 'owner'],
      ].sort(),
    );

    // Duplicates: same principal again, whatever the role.
    for (const body of [
      { principal_type: 'user', principal_id: alice.userId, role: 'contributor' },
      { principal_type: 'user', principal_id: alice.userId, role: 'admin' },
      { principal_type: 'group', principal_id: group.id, role: 'reader' },
      { principal_type: 'user', principal_id: owner.userId, role: 'reader' },
    ]) {
      assertError(await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/members`, { token: owner.token, body }), 409, 'MEMBER_EXISTS', JSON.stringify(body));
    }
    assert.equal((await get(`/shares/${share.id}/members`, owner.token)).body.items.length, 3);

    // Unknown principals and principals of another tenant do not exist here.
    const foreignUser = await user(stack, otherTenantId);
    const foreignAdmin = await user(stack, otherTenantId, uniq('fadmin'), { admin: true });
    const foreignGroup = await createGroup(stack, foreignAdmin);
    for (const body of [
      { principal_type: 'user', principal_id: 'usr_01ARZ3NDEKTSV4RRFFQ69G5FAV', role: 'reader' },
      { principal_type: 'group', principal_id: 'grp_01ARZ3NDEKTSV4RRFFQ69G5FAV', role: 'reader' },
      { principal_type: 'user', principal_id: foreignUser.userId, role: 'reader' },
      { principal_type: 'group', principal_id: foreignGroup.id, role: 'reader' },
      // A group id given as a user (and vice versa) is unknown too.
      { principal_type: 'user', principal_id: group.id, role: 'reader' },
      { principal_type: 'group', principal_id: alice.userId, role: 'reader' },
    ]) {
      assertError(await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/members`, { token: owner.token, body }), 404, 'NOT_FOUND', JSON.stringify(body));
    }

    // Validation: the owner role is never granted; principal_type and required fields are checked.
    assertValidation(
      await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/members`, { token: owner.token, body: { principal_type: 'user', principal_id: alice.userId, role: 'owner' } }),
      ['body', 'role'],
      'enum',
    );
    assertValidation(
      await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/members`, { token: owner.token, body: { principal_type: 'robot', principal_id: alice.userId, role: 'reader' } }),
      ['body', 'principal_type'],
      'enum',
    );
    assertValidation(await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/members`, { token: owner.token, body: { principal_type: 'user', role: 'reader' } }), ['body', 'principal_id'], 'missing');
    assertValidation(await api(stack.baseUrl, 'PATCH', `${V1}/shares/${share.id}/members/${added.body.id}`, { token: owner.token, body: { role: 'owner' } }), ['body', 'role'], 'enum');

    // Change a role, then remove.
    const changed = await api(stack.baseUrl, 'PATCH', `${V1}/shares/${share.id}/members/${added.body.id}`, { token: owner.token, body: { role: 'admin' } });
    assert.equal(changed.status, 200, changed.text);
    assert.equal(changed.body.role, 'admin');
    assert.equal(changed.body.id, added.body.id);
    assert.equal((await myPermission(share.id, alice)).body.role, 'admin');
    const removed = await api(stack.baseUrl, 'DELETE', `${V1}/shares/${share.id}/members/${added.body.id}`, { token: owner.token });
    assert.equal(removed.status, 204, removed.text);
    assertError(await myPermission(share.id, alice), 404);
    assertError(await api(stack.baseUrl, 'DELETE', `${V1}/shares/${share.id}/members/${added.body.id}`, { token: owner.token }), 404);
    assertError(await api(stack.baseUrl, 'PATCH', `${V1}/shares/${share.id}/members/${added.body.id}`, { token: owner.token, body: { role: 'reader' } }), 404);
    // Removed, a principal can be added again.
    await addMember(stack, owner, share.id, 'user', alice.userId, 'reader');

    // A member id of another share is not found under this one.
    const otherShare = await createShare(stack, owner);
    const elsewhere = await addMember(stack, owner, otherShare.id, 'user', alice.userId, 'reader');
    assertError(await api(stack.baseUrl, 'DELETE', `${V1}/shares/${share.id}/members/${elsewhere.id}`, { token: owner.token }), 404);
    assertError(await api(stack.baseUrl, 'PATCH', `${V1}/shares/${share.id}/members/${elsewhere.id}`, { token: owner.token, body: { role: 'admin' } }), 404);
    assert.equal((await myPermission(otherShare.id, alice)).body.role, 'reader');
  });

  test("the owner's row cannot be removed or changed (403), not even by the owner or an admin", async () => {
    const owner = await user(stack, tenantId);
    const share = await createShare(stack, owner);
    const shareAdmin = (await memberWithRole(stack, tenantId, owner, share.id, 'admin')).user;
    const ownerRow = (await get(`/shares/${share.id}/members`, owner.token)).body.items.find((m: any) => m.role === 'owner');
    assert.equal(ownerRow.principal_id, owner.userId);
    for (const who of [owner, shareAdmin]) {
      assertError(await api(stack.baseUrl, 'DELETE', `${V1}/shares/${share.id}/members/${ownerRow.id}`, { token: who.token }), 403, undefined, who.subject);
      assertError(await api(stack.baseUrl, 'PATCH', `${V1}/shares/${share.id}/members/${ownerRow.id}`, { token: who.token, body: { role: 'reader' } }), 403, undefined, who.subject);
    }
    assert.deepEqual((await myPermission(share.id, owner)).body.role, 'owner');
    assert.equal((await get(`/shares/${share.id}/members`, owner.token)).body.items.find((m: any) => m.id === ownerRow.id).role, 'owner');
  });

  test('every grant change appends permissions_changed (node = the share root) and an audit row', async () => {
    const owner = await user(stack, tenantId);
    const share = await createShare(stack, owner);
    const bob = await user(stack, tenantId);
    const group = await createGroup(stack, admin);
    const root = share.root_folder_id;
    assert.equal((await permissionChanges(stack, root)).length, 0);

    const expectChange = async (count: number) => {
      const rows = await permissionChanges(stack, root);
      assert.equal(rows.length, count, `permissions_changed rows: ${JSON.stringify(rows)}`);
      const last = rows[rows.length - 1]!;
      assert.equal(last.node_id, root);
      assert.equal(last.space_id, share.id);
      assert.equal(last.tenant_id, tenantId);
      assert.equal(last.type, 'permissions_changed');
      return last;
    };
    const auditFor = async (action: string, targetId: string) => {
      const res = await get(`/admin/audit?action=${action}&target_id=${targetId}`, admin.token);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.items.length, 1, `${action} ${targetId}: ${res.text}`);
      return res.body.items[0];
    };

    const member = await addMember(stack, owner, share.id, 'user', bob.userId, 'reader');
    assert.equal((await expectChange(1)).actor_id, owner.userId);
    const addedAudit = await auditFor('member.added', member.id);
    assert.equal(addedAudit.actor_id, owner.userId);
    assert.equal(addedAudit.target_type, 'member');
    assert.deepEqual(addedAudit.details, { share_id: share.id, principal_type: 'user', principal_id: bob.userId, role: 'reader' });

    const groupMember = await addMember(stack, owner, share.id, 'group', group.id, 'contributor');
    await expectChange(2);
    assert.equal((await auditFor('member.added', groupMember.id)).details.principal_type, 'group');

    assert.equal((await api(stack.baseUrl, 'PATCH', `${V1}/shares/${share.id}/members/${member.id}`, { token: owner.token, body: { role: 'contributor' } })).status, 200);
    await expectChange(3);
    const changedAudit = await auditFor('member.role_changed', member.id);
    assert.equal(changedAudit.details.from, 'reader');
    assert.equal(changedAudit.details.to, 'contributor');

    assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/shares/${share.id}/members/${groupMember.id}`, { token: owner.token })).status, 204);
    await expectChange(4);
    assert.equal((await auditFor('member.removed', groupMember.id)).details.principal_id, group.id);

    // Refused grant changes write nothing.
    await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/members`, { token: owner.token, body: { principal_type: 'user', principal_id: bob.userId, role: 'reader' } });
    await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/members`, { token: bob.token, body: { principal_type: 'group', principal_id: group.id, role: 'reader' } });
    assert.equal((await permissionChanges(stack, root)).length, 4);

    // One audit row per successful change, none for the refused ones.
    const rows = await stack.services.db.selectFrom('audit_log').selectAll().where('tenant_id', '=', tenantId).where('target_id', 'in', [member.id, groupMember.id]).execute();
    assert.equal(rows.length, 4);
  });

  test('GET /admin/audit: filters by action, target_id, since/until; keyset pages with limit=1; members get 403', async () => {
    // A tenant of its own so the counts are exact.
    const auditTenant = (await createTestTenant(stack)).id;
    const tadmin = await user(stack, auditTenant, 'audit-admin', { admin: true });
    const owner = await user(stack, auditTenant);
    const share = await createShare(stack, owner);
    const grants = [];
    for (const role of ['reader', 'contributor', 'admin'] as const) grants.push((await memberWithRole(stack, auditTenant, owner, share.id, role)).grant);
    await api(stack.baseUrl, 'PATCH', `${V1}/shares/${share.id}/members/${grants[0]!.id}`, { token: owner.token, body: { role: 'contributor' } });

    const all = await get('/admin/audit?limit=1000', tadmin.token);
    assert.equal(all.status, 200, all.text);
    assert.deepEqual(
      all.body.items.map((e: any) => e.action),
      ['member.role_changed', 'member.added', 'member.added', 'member.added', 'share.created'],
    );
    assert.equal(all.body.next_cursor, null);
    for (let i = 1; i < all.body.items.length; i++) assert.ok(all.body.items[i - 1].id > all.body.items[i].id, 'newest first');

    const added = await get('/admin/audit?action=member.added', tadmin.token);
    assert.deepEqual(
      added.body.items.map((e: any) => e.target_id),
      grants.map((g) => g.id).reverse(),
    );
    const one = await get(`/admin/audit?action=member.added&target_id=${grants[1]!.id}`, tadmin.token);
    assert.equal(one.body.items.length, 1);
    assert.equal(one.body.items[0].details.role, 'contributor');
    assert.equal(one.body.items[0].actor_id, owner.userId);
    assert.deepEqual((await get(`/admin/audit?actor_id=${owner.userId}&action=share.created`, tadmin.token)).body.items.map((e: any) => e.target_id), [share.id]);

    // since is inclusive, until exclusive (the entries' own timestamps, so no clock skew matters).
    const entry = one.body.items[0];
    const at = Date.parse(entry.at);
    const iso = (ms: number) => new Date(ms).toISOString();
    const window = async (query: string) => (await get(`/admin/audit?target_id=${entry.target_id}&${query}`, tadmin.token)).body.items.length;
    assert.equal(await window(`since=${iso(at)}`), 1);
    assert.equal(await window(`since=${iso(at + 1)}`), 0);
    assert.equal(await window(`until=${iso(at + 1)}`), 1);
    assert.equal(await window(`until=${iso(at)}`), 0);
    assert.equal(await window(`since=${iso(at - 60_000)}&until=${iso(at + 60_000)}`), 1);
    assertValidation(await get('/admin/audit?since=yesterday', tadmin.token), ['query', 'since']);

    // Keyset pagination, one entry a page, covers the filtered list exactly once, in order.
    const paged: any[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: any = await get(`/admin/audit?action=member.added&limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, tadmin.token);
      assert.equal(page.status, 200, page.text);
      assert.ok(page.body.items.length <= 1);
      paged.push(...page.body.items);
      cursor = page.body.next_cursor;
      pages++;
      assert.ok(pages <= 4, 'pagination terminates');
    } while (cursor);
    assert.deepEqual(paged, added.body.items);
    assertValidation(await get('/admin/audit?limit=0', tadmin.token), ['query', 'limit']);

    // Members — even share owners — are not tenant admins.
    assertError(await get('/admin/audit', owner.token), 403);
    // Another tenant's admin sees none of it.
    const otherAdmin = await user(stack, otherTenantId, uniq('oadmin'), { admin: true });
    const foreignView = await get(`/admin/audit?target_id=${grants[1]!.id}`, otherAdmin.token);
    assert.equal(foreignView.status, 200);
    assert.deepEqual(foreignView.body.items, []);
  });

  test('GET /shares/{id}/my-permission returns the role and what it allows, for each role', async () => {
    const owner = await user(stack, tenantId);
    const share = await createShare(stack, owner);
    const expected = {
      owner: { read: true, write: true, manage: true, own: true },
      admin: { read: true, write: true, manage: true, own: false },
      contributor: { read: true, write: true, manage: false, own: false },
      reader: { read: true, write: false, manage: false, own: false },
    };
    const mine = await myPermission(share.id, owner);
    assert.equal(mine.status, 200);
    assert.deepEqual(mine.body, { share_id: share.id, role: 'owner', can: expected.owner });
    for (const role of ['admin', 'contributor', 'reader'] as const) {
      const member = (await memberWithRole(stack, tenantId, owner, share.id, role)).user;
      const res = await myPermission(share.id, member);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { share_id: share.id, role, can: expected[role] });
    }
    const outsider = await user(stack, tenantId);
    assertError(await myPermission(share.id, outsider), 404, 'NOT_FOUND');
    // A tenant admin who is not a member has no role in the share.
    assertError(await myPermission(share.id, admin), 404);
    assertError(await myPermission('shr_01ARZ3NDEKTSV4RRFFQ69G5FAV', owner), 404);
  });

  test('the effective role is the highest of the direct and group grants', async () => {
    const owner = await user(stack, tenantId);
    const share = await createShare(stack, owner);
    const dana = await user(stack, tenantId);
    const group = await createGroup(stack, admin);
    await addToGroup(stack, admin, group.id, dana.userId);
    const direct = await addMember(stack, owner, share.id, 'user', dana.userId, 'reader');
    assert.equal((await myPermission(share.id, dana)).body.role, 'reader');
    assertError(await uploadDirect(stack, dana.token, share.root_folder_id, 'before.txt', Buffer.from('x')), 403);

    const groupGrant = await addMember(stack, owner, share.id, 'group', group.id, 'contributor');
    const perm = await myPermission(share.id, dana);
    assert.equal(perm.body.role, 'contributor');
    assert.deepEqual(perm.body.can, { read: true, write: true, manage: false, own: false });
    assert.equal((await uploadDirect(stack, dana.token, share.root_folder_id, 'via-group.txt', Buffer.from('x'))).status, 201);
    assert.equal((await get('/shares', dana.token)).body.items.find((s: any) => s.id === share.id).my_role, 'contributor');
    assert.equal((await get(`/shares/${share.id}`, dana.token)).body.my_role, 'contributor');
    // Still no member management.
    assertError(await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/invitations`, { token: dana.token, body: { email: 'x@example.test', role: 'reader' } }), 403);

    // The other way round: admin directly, reader via the group → admin.
    await api(stack.baseUrl, 'PATCH', `${V1}/shares/${share.id}/members/${direct.id}`, { token: owner.token, body: { role: 'admin' } });
    await api(stack.baseUrl, 'PATCH', `${V1}/shares/${share.id}/members/${groupGrant.id}`, { token: owner.token, body: { role: 'reader' } });
    assert.equal((await myPermission(share.id, dana)).body.role, 'admin');
    // Two groups: the higher one wins.
    const second = await createGroup(stack, admin);
    await addToGroup(stack, admin, second.id, dana.userId);
    await addMember(stack, owner, share.id, 'group', second.id, 'contributor');
    await api(stack.baseUrl, 'DELETE', `${V1}/shares/${share.id}/members/${direct.id}`, { token: owner.token });
    assert.equal((await myPermission(share.id, dana)).body.role, 'contributor');
  });

  test('removing a user from the group takes effect on the very next request', async () => {
    const owner = await user(stack, tenantId);
    const share = await createShare(stack, owner);
    const file = await put(stack, owner, share.root_folder_id, 'secret.txt', Buffer.from('secret'));
    const erin = await user(stack, tenantId);
    const group = await createGroup(stack, admin);
    await addToGroup(stack, admin, group.id, erin.userId);
    await addMember(stack, owner, share.id, 'group', group.id, 'reader');
    assert.equal((await get(`/files/${file.file.id}`, erin.token)).status, 200);
    assert.equal((await download(stack, `${V1}/files/${file.file.id}/content`, { token: erin.token })).status, 200);

    const removed = await api(stack.baseUrl, 'DELETE', `${V1}/admin/groups/${group.id}/members/${erin.userId}`, { token: admin.token });
    assert.equal(removed.status, 204, removed.text);
    assertError(await get(`/files/${file.file.id}`, erin.token), 404, 'NOT_FOUND');
    assert.equal((await download(stack, `${V1}/files/${file.file.id}/content`, { token: erin.token })).status, 404);
    assertError(await myPermission(share.id, erin), 404);
    assert.ok(!(await get('/spaces', erin.token)).body.items.some((s: any) => s.id === share.id));
    assert.ok(!(await get('/shares', erin.token)).body.items.some((s: any) => s.id === share.id));
  });

  test("removing the group's grant takes effect on the very next request", async () => {
    const owner = await user(stack, tenantId);
    const share = await createShare(stack, owner);
    const file = await put(stack, owner, share.root_folder_id, 'secret.txt', Buffer.from('secret'));
    const finn = await user(stack, tenantId);
    const group = await createGroup(stack, admin);
    await addToGroup(stack, admin, group.id, finn.userId);
    const grant = await addMember(stack, owner, share.id, 'group', group.id, 'contributor');
    assert.equal((await get(`/files/${file.file.id}`, finn.token)).status, 200);

    assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/shares/${share.id}/members/${grant.id}`, { token: owner.token })).status, 204);
    assertError(await get(`/files/${file.file.id}`, finn.token), 404, 'NOT_FOUND');
    assertError(await uploadDirect(stack, finn.token, share.root_folder_id, 'late.txt', Buffer.from('x')), 404);
    assertError(await get(`/folders/${share.root_folder_id}/children`, finn.token), 404);
  });

  test('downgrading a role takes effect immediately (contributor → reader: the next upload is 403)', async () => {
    const owner = await user(stack, tenantId);
    const share = await createShare(stack, owner);
    const { user: gina, grant } = await memberWithRole(stack, tenantId, owner, share.id, 'contributor');
    const file = await put(stack, gina, share.root_folder_id, 'draft.txt', Buffer.from('v1'));
    assert.equal((await uploadDirect(stack, gina.token, share.root_folder_id, 'draft.txt', Buffer.from('v2'))).status, 200);

    const changed = await api(stack.baseUrl, 'PATCH', `${V1}/shares/${share.id}/members/${grant.id}`, { token: owner.token, body: { role: 'reader' } });
    assert.equal(changed.status, 200);
    assertError(await uploadDirect(stack, gina.token, share.root_folder_id, 'draft.txt', Buffer.from('v3')), 403);
    assertError(await uploadDirect(stack, gina.token, share.root_folder_id, 'new.txt', Buffer.from('x')), 403);
    assertError(await api(stack.baseUrl, 'DELETE', `${V1}/files/${file.file.id}`, { token: gina.token }), 403);
    // Reading still works.
    const content = await download(stack, `${V1}/files/${file.file.id}/content`, { token: gina.token });
    assert.equal(content.status, 200);
    assert.equal(content.body.toString(), 'v2');
    // And back up again, immediately.
    await api(stack.baseUrl, 'PATCH', `${V1}/shares/${share.id}/members/${grant.id}`, { token: owner.token, body: { role: 'contributor' } });
    assert.equal((await uploadDirect(stack, gina.token, share.root_folder_id, 'draft.txt', Buffer.from('v3'))).status, 200);
  });

  test('losing write access mid-upload stops the session: chunk PUT and finalize are 403, nothing is committed', async () => {
    const owner = await user(stack, tenantId);
    const share = await createShare(stack, owner);
    const { user: hal, grant } = await memberWithRole(stack, tenantId, owner, share.id, 'contributor');
    const data = randomData(2 * 64 * 1024);
    const session = await createSession(stack, hal.token, { parent_id: share.root_folder_id, name: 'half.bin', size: data.length, chunk_size: 64 * 1024 });
    assert.equal(session.status, 201, session.text);
    assert.equal((await putChunk(stack, hal.token, session.body.id, 0, data.subarray(0, 64 * 1024))).status, 200);

    assert.equal((await api(stack.baseUrl, 'PATCH', `${V1}/shares/${share.id}/members/${grant.id}`, { token: owner.token, body: { role: 'reader' } })).status, 200);
    const chunk = await putChunk(stack, hal.token, session.body.id, 1, data.subarray(64 * 1024));
    assert.equal(chunk.status, 403);
    assertError(await api(stack.baseUrl, 'POST', `${V1}/uploads/${session.body.id}/finalize`, { token: hal.token }), 403);
    const children = await get(`/folders/${share.root_folder_id}/children`, owner.token);
    assert.deepEqual(children.body.items, []);
  });
});
