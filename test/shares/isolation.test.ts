// Tenant isolation of shares and their content (spec §3, §13), and the share-level quota (spec §7):
// a user and a tenant admin of tenant B call every share/member/invitation/file/folder/upload/trash/quota
// endpoint with tenant A's ids → 404 with nothing of A's in the body, and A is untouched afterwards; a share
// limit set by a tenant admin binds uploads (507 naming the share), also under parallel uploads.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { createSession, randomData, sha256, uploadDirect } from '../helpers/files';
import {
  V1,
  addMember,
  addToGroup,
  assertError,
  createGroup,
  createShare,
  memberWithRole,
  mkdir,
  put,
  uniq,
  user,
  type Share,
  type ShareUser,
} from './share-helpers';

interface Call {
  what: string;
  method: string;
  path: string;
  body?: unknown;
  raw?: Buffer;
  /** Admin-only routes answer a member 403 whatever the id (the role is checked before any lookup). */
  adminOnly?: boolean;
  /** Expected status when not 404 (e.g. a filtered list answers 200 with nothing in it). */
  status?: number;
  check?(body: any): void;
}

describe('share isolation and share quotas', () => {
  let stack: TestStack;
  let tenantA: string;
  let tenantB: string;
  let adminA: ShareUser;

  before(async () => {
    stack = await startTestStack();
    tenantA = (await createTestTenant(stack)).id;
    tenantB = (await createTestTenant(stack)).id;
    adminA = await user(stack, tenantA, 'admin-a', { admin: true });
  });
  after(() => stack.close());

  const send = async (token: string, call: Call) => {
    if (call.raw) {
      const response = await fetch(`${stack.baseUrl}${V1}${call.path}`, {
        method: call.method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
        body: call.raw,
      });
      const text = await response.text();
      let body: any = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        // keep text
      }
      return { status: response.status, body, text };
    }
    return api(stack.baseUrl, call.method, `${V1}${call.path}`, { token, body: call.body });
  };

  test("tenant B's user and tenant admin get 404 for every share, member, invitation, file, folder, upload, trash and quota id of tenant A", async () => {
    // Tenant A: a share with a folder, a file (one version), a trashed file, a member, a group grant,
    // a pending invitation and an open upload session.
    const ownerA = await user(stack, tenantA, 'owner-a');
    const share = await createShare(stack, ownerA, 'Merger plans Zephyr');
    const folder = await mkdir(stack, ownerA, share.root_folder_id, 'Board minutes Quokka');
    const uploaded = await put(stack, ownerA, folder.id, 'acquisition-target-Xylo.pdf', randomData(2048));
    const file = uploaded.file;
    const version = uploaded.version;
    const trashed = (await put(stack, ownerA, share.root_folder_id, 'shredded-Vortex.txt', randomData(64))).file;
    assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/files/${trashed.id}`, { token: ownerA.token })).status, 204);
    const { user: memberA, grant: memberGrant } = await memberWithRole(stack, tenantA, ownerA, share.id, 'contributor');
    const groupA = await createGroup(stack, adminA, 'Secret group Ibex');
    await addToGroup(stack, adminA, groupA.id, memberA.userId);
    const groupGrant = await addMember(stack, ownerA, share.id, 'group', groupA.id, 'reader');
    const inviteEmail = 'shared-address@example.test';
    const invitation = await api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/invitations`, { token: ownerA.token, body: { email: inviteEmail, role: 'admin' } });
    assert.equal(invitation.status, 201, invitation.text);
    const token = invitation.body.token as string;
    const session = await createSession(stack, ownerA.token, { parent_id: folder.id, name: 'pending-Quasar.bin', size: 10 });
    assert.equal(session.status, 201, session.text);
    const uploadId = session.body.id as string;

    // Tenant B: a member (signed in with the very address A invited) and a tenant admin, each with a
    // personal file, a share and a group of their own to aim A's ids at.
    const userB = await user(stack, tenantB, 'user-b', { email: inviteEmail });
    const adminB = await user(stack, tenantB, 'admin-b', { admin: true, email: 'admin-b@example.test' });
    const shareB = await createShare(stack, userB, 'B share');
    const groupB = await createGroup(stack, adminB, 'B group');

    const secrets = [
      share.name,
      folder.name,
      file.name,
      trashed.name,
      groupA.name,
      'pending-Quasar.bin',
      inviteEmail,
      share.id,
      share.root_folder_id,
      folder.id,
      file.id,
      version.id,
      trashed.id,
      ownerA.userId,
      memberA.userId,
      memberGrant.id,
      groupGrant.id,
      groupA.id,
      uploadId,
      token,
      invitation.body.id,
      uploaded.version.checksum_sha256,
      tenantA,
    ];

    const calls = (b: ShareUser): Call[] => {
      return [
        // Shares and members
        { what: 'get share', method: 'GET', path: `/shares/${share.id}` },
        { what: 'rename share', method: 'PATCH', path: `/shares/${share.id}`, body: { name: 'pwned' } },
        { what: 'delete share', method: 'DELETE', path: `/shares/${share.id}` },
        { what: 'transfer to B', method: 'POST', path: `/shares/${share.id}/transfer`, body: { user_id: b.userId } },
        { what: 'transfer to A user', method: 'POST', path: `/shares/${share.id}/transfer`, body: { user_id: memberA.userId } },
        { what: 'my-permission', method: 'GET', path: `/shares/${share.id}/my-permission` },
        { what: 'list members', method: 'GET', path: `/shares/${share.id}/members` },
        { what: 'add B as member', method: 'POST', path: `/shares/${share.id}/members`, body: { principal_type: 'user', principal_id: b.userId, role: 'admin' } },
        { what: 'add B group as member', method: 'POST', path: `/shares/${share.id}/members`, body: { principal_type: 'group', principal_id: groupB.id, role: 'admin' } },
        { what: 'change member role', method: 'PATCH', path: `/shares/${share.id}/members/${memberGrant.id}`, body: { role: 'admin' } },
        { what: 'remove member', method: 'DELETE', path: `/shares/${share.id}/members/${memberGrant.id}` },
        { what: 'remove group grant', method: 'DELETE', path: `/shares/${share.id}/members/${groupGrant.id}` },
        { what: 'A member id under B share', method: 'DELETE', path: `/shares/${shareB.id}/members/${memberGrant.id}` },
        { what: 'A user into B share', method: 'POST', path: `/shares/${shareB.id}/members`, body: { principal_type: 'user', principal_id: memberA.userId, role: 'reader' } },
        { what: 'A group into B share', method: 'POST', path: `/shares/${shareB.id}/members`, body: { principal_type: 'group', principal_id: groupA.id, role: 'reader' } },
        { what: 'transfer B share to A user', method: 'POST', path: `/shares/${shareB.id}/transfer`, body: { user_id: memberA.userId } },
        // Invitations
        { what: 'invite', method: 'POST', path: `/shares/${share.id}/invitations`, body: { email: b.email, role: 'admin' } },
        { what: 'accept', method: 'POST', path: `/invitations/${token}/accept` },
        { what: 'decline', method: 'POST', path: `/invitations/${token}/decline` },
        // Folders
        { what: 'get root', method: 'GET', path: `/folders/${share.root_folder_id}` },
        { what: 'get folder', method: 'GET', path: `/folders/${folder.id}` },
        { what: 'list root', method: 'GET', path: `/folders/${share.root_folder_id}/children` },
        { what: 'list folder', method: 'GET', path: `/folders/${folder.id}/children` },
        { what: 'rename folder', method: 'PATCH', path: `/folders/${folder.id}`, body: { name: 'pwned' } },
        { what: 'move folder to B', method: 'PATCH', path: `/folders/${folder.id}`, body: { parent_id: b.rootFolderId } },
        { what: 'delete folder', method: 'DELETE', path: `/folders/${folder.id}` },
        { what: 'mkdir in A', method: 'POST', path: '/folders', body: { parent_id: folder.id, name: 'intruder' } },
        { what: 'direct upload into A', method: 'PUT', path: `/folders/${folder.id}/files/intruder.bin`, raw: randomData(32) },
        { what: 'direct upload over A file', method: 'PUT', path: `/folders/${folder.id}/files/${encodeURIComponent(file.name)}`, raw: randomData(32) },
        // Files and versions
        { what: 'get file', method: 'GET', path: `/files/${file.id}` },
        { what: 'get folder as file', method: 'GET', path: `/files/${folder.id}` },
        { what: 'rename file', method: 'PATCH', path: `/files/${file.id}`, body: { name: 'pwned.pdf' } },
        { what: 'move file to B', method: 'PATCH', path: `/files/${file.id}`, body: { parent_id: b.rootFolderId } },
        { what: 'delete file', method: 'DELETE', path: `/files/${file.id}` },
        { what: 'content', method: 'GET', path: `/files/${file.id}/content` },
        { what: 'download-url', method: 'GET', path: `/files/${file.id}/download-url` },
        { what: 'versions', method: 'GET', path: `/files/${file.id}/versions` },
        { what: 'version content', method: 'GET', path: `/files/${file.id}/versions/${version.id}/content` },
        { what: 'version restore', method: 'POST', path: `/files/${file.id}/versions/${version.id}/restore` },
        { what: 'copy A file to B', method: 'POST', path: `/files/${file.id}/copy`, body: { parent_id: b.rootFolderId } },
        { what: 'lock', method: 'POST', path: `/files/${file.id}/lock` },
        { what: 'unlock', method: 'DELETE', path: `/files/${file.id}/lock` },
        { what: 'force unlock', method: 'DELETE', path: `/files/${file.id}/lock?force=true` },
        { what: 'get trashed file', method: 'GET', path: `/files/${trashed.id}` },
        // Uploads
        { what: 'session into A', method: 'POST', path: '/uploads', body: { parent_id: folder.id, name: 'intruder.bin', size: 10 } },
        { what: 'get A session', method: 'GET', path: `/uploads/${uploadId}` },
        { what: 'chunk into A session', method: 'PUT', path: `/uploads/${uploadId}/chunks/0`, raw: randomData(10) },
        { what: 'chunk check on A session', method: 'POST', path: `/uploads/${uploadId}/chunks/check`, body: { sha256: [uploaded.version.checksum_sha256] } },
        { what: 'finalize A session', method: 'POST', path: `/uploads/${uploadId}/finalize` },
        { what: 'abort A session', method: 'DELETE', path: `/uploads/${uploadId}` },
        // Trash
        { what: 'restore', method: 'POST', path: `/trash/${trashed.id}/restore` },
        { what: 'purge', method: 'DELETE', path: `/trash/${trashed.id}` },
        { what: 'trash of A share', method: 'GET', path: `/trash?space_id=${share.id}`, status: 200, check: (body) => assert.deepEqual(body.items, []) },
        // Quotas
        { what: 'share usage', method: 'GET', path: `/quotas/usage/shares/${share.id}` },
        { what: 'user usage', method: 'GET', path: `/quotas/usage/users/${ownerA.userId}` },
        { what: 'group usage', method: 'GET', path: `/quotas/usage/groups/${groupA.id}` },
        { what: 'set share limit', method: 'PUT', path: `/admin/quotas/share/${share.id}`, body: { limit_bytes: 1 }, adminOnly: true },
        { what: 'set user limit', method: 'PUT', path: `/admin/quotas/user/${ownerA.userId}`, body: { limit_bytes: 1 }, adminOnly: true },
        { what: 'set group limit', method: 'PUT', path: `/admin/quotas/group/${groupA.id}`, body: { limit_bytes: 1 }, adminOnly: true },
        { what: 'set tenant limit', method: 'PUT', path: `/admin/quotas/tenant/${tenantA}`, body: { limit_bytes: 1 }, adminOnly: true },
        // Groups behind group grants
        { what: 'get group', method: 'GET', path: `/admin/groups/${groupA.id}`, adminOnly: true },
        { what: 'group members', method: 'GET', path: `/admin/groups/${groupA.id}/members`, adminOnly: true },
        { what: 'join A group', method: 'POST', path: `/admin/groups/${groupA.id}/members`, body: { user_id: b.userId }, adminOnly: true },
        { what: 'A user into B group', method: 'POST', path: `/admin/groups/${groupB.id}/members`, body: { user_id: memberA.userId }, adminOnly: true },
        { what: 'remove from A group', method: 'DELETE', path: `/admin/groups/${groupA.id}/members/${memberA.userId}`, adminOnly: true },
        { what: 'delete A group', method: 'DELETE', path: `/admin/groups/${groupA.id}`, adminOnly: true },
        { what: 'audit of A member', method: 'GET', path: `/admin/audit?target_id=${memberGrant.id}`, adminOnly: true, status: 200, check: (body) => assert.deepEqual(body.items, []) },
      ];
    };

    for (const caller of [userB, adminB]) {
      const isAdmin = caller === adminB;
      for (const call of calls(caller)) {
        const res = await send(caller.token, call);
        const expected = call.adminOnly && !isAdmin ? 403 : (call.status ?? 404);
        const label = `${caller.subject} ${call.what} (${call.method} ${call.path})`;
        assert.equal(res.status, expected, `${label}: ${res.text}`);
        if (expected >= 400) assert.equal(typeof res.body?.code, 'string', label);
        if (expected === 404) assert.equal(res.body.code, 'NOT_FOUND', label);
        if (res.status < 300) call.check?.(res.body);
        const request = `${call.path} ${JSON.stringify(call.body ?? '')}`;
        for (const secret of secrets) {
          if (request.includes(secret)) continue; // an id the caller sent may be echoed back
          assert.ok(!res.text.includes(secret), `${label} leaks ${secret}: ${res.text}`);
        }
      }
      // Listings never include A's share.
      for (const path of ['/shares', '/spaces', '/trash', ...(isAdmin ? ['/shares?all=true', '/admin/audit?limit=1000', '/admin/groups?limit=1000'] : [])]) {
        const res = await api(stack.baseUrl, 'GET', `${V1}${path}`, { token: caller.token });
        assert.equal(res.status, 200, `${caller.subject} ${path}: ${res.text}`);
        for (const secret of secrets) assert.ok(!res.text.includes(secret), `${caller.subject} ${path} leaks ${secret}`);
      }
    }

    // Tenant A is untouched.
    const a = (path: string) => api(stack.baseUrl, 'GET', `${V1}${path}`, { token: ownerA.token });
    const after = await a(`/shares/${share.id}`);
    assert.equal(after.status, 200);
    assert.equal(after.body.name, share.name);
    assert.equal(after.body.owner_user_id, ownerA.userId);
    const members = (await a(`/shares/${share.id}/members`)).body.items.map((m: any) => `${m.principal_type}:${m.principal_id}:${m.role}`).sort();
    assert.deepEqual(members, [`group:${groupA.id}:reader`, `user:${memberA.userId}:contributor`, `user:${ownerA.userId}:owner`].sort());
    const fileAfter = await a(`/files/${file.id}`);
    assert.equal(fileAfter.status, 200);
    assert.equal(fileAfter.body.name, file.name);
    assert.equal(fileAfter.body.parent_id, folder.id);
    assert.equal(fileAfter.body.lock, null);
    assert.equal(fileAfter.body.current_version_id, version.id);
    assert.equal((await a(`/files/${file.id}/versions`)).body.items.length, 1);
    assert.equal((await a(`/folders/${folder.id}`)).body.name, folder.name);
    assert.deepEqual(
      (await a(`/folders/${folder.id}/children`)).body.items.map((n: any) => n.id),
      [file.id],
    );
    assert.equal((await a(`/files/${trashed.id}`)).status, 410);
    const sessionAfter = await a(`/uploads/${uploadId}`);
    assert.equal(sessionAfter.body.status, 'open');
    assert.deepEqual(sessionAfter.body.received_chunks, []);
    const invitationRow = await stack.services.db.selectFrom('invitations').selectAll().where('id', '=', invitation.body.id).executeTakeFirstOrThrow();
    assert.equal(invitationRow.status, 'pending');
    const groupMembers = await api(stack.baseUrl, 'GET', `${V1}/admin/groups/${groupA.id}/members`, { token: adminA.token });
    assert.deepEqual(
      groupMembers.body.items.map((u: any) => u.id),
      [memberA.userId],
    );
    for (const [level, id] of [
      ['share', share.id],
      ['user', ownerA.userId],
      ['group', groupA.id],
      ['tenant', tenantA],
    ]) {
      const row = await stack.services.db.selectFrom('quotas').selectAll().where('level', '=', level as any).where('subject_id', '=', id!).executeTakeFirst();
      assert.ok(!row || row.limit_bytes === null, `${level} limit untouched: ${JSON.stringify(row)}`);
      assert.ok(!row || row.tenant_id === tenantA, `${level} quota row stays in tenant A: ${JSON.stringify(row)}`);
    }
    // Tenant B gained nothing from A.
    const bTree = await api(stack.baseUrl, 'GET', `${V1}/folders/${userB.rootFolderId}/children`, { token: userB.token });
    assert.deepEqual(bTree.body.items, []);
    const bMembers = await api(stack.baseUrl, 'GET', `${V1}/shares/${shareB.id}/members`, { token: userB.token });
    assert.deepEqual(
      bMembers.body.items.map((m: any) => m.principal_id),
      [userB.userId],
    );
  });

  test('PUT /admin/quotas/share/{id} limits the share: uploads beyond it → 507 naming the share; the owner sees the usage', async () => {
    const owner = await user(stack, tenantA);
    const share = await createShare(stack, owner);
    const contributor = (await memberWithRole(stack, tenantA, owner, share.id, 'contributor')).user;

    // Share limits are set by tenant admins.
    assertError(await api(stack.baseUrl, 'PUT', `${V1}/admin/quotas/share/${share.id}`, { token: owner.token, body: { limit_bytes: 10_000 } }), 403);
    const set = await api(stack.baseUrl, 'PUT', `${V1}/admin/quotas/share/${share.id}`, { token: adminA.token, body: { limit_bytes: 10_000 } });
    assert.equal(set.status, 200, set.text);
    assert.equal(set.body.limit_bytes, 10_000);
    assert.equal(set.body.used_bytes, 0);

    const first = await uploadDirect(stack, contributor.token, share.root_folder_id, 'a.bin', randomData(6000));
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const over = await uploadDirect(stack, owner.token, share.root_folder_id, 'b.bin', randomData(6000));
    assertError(over, 507, 'QUOTA_EXCEEDED');
    assert.deepEqual(over.body.details, { level: 'share', id: share.id, limit_bytes: 10_000, used_bytes: 6000 });
    assert.match(over.body.detail, /share/);
    // A new version of an existing file counts as well.
    const overVersion = await uploadDirect(stack, contributor.token, share.root_folder_id, 'a.bin', randomData(4001));
    assertError(overVersion, 507, 'QUOTA_EXCEEDED');
    assert.equal(overVersion.body.details.level, 'share');
    // The early check at session creation names the share too.
    const session = await createSession(stack, contributor.token, { parent_id: share.root_folder_id, name: 'big.bin', size: 4001 });
    assertError(session, 507, 'QUOTA_EXCEEDED');
    assert.equal(session.body.details.level, 'share');
    assert.equal(session.body.details.id, share.id);
    // A copy into the share is a new version in it.
    const personal = await put(stack, owner, owner.rootFolderId, 'personal.bin', randomData(5000));
    const copy = await api(stack.baseUrl, 'POST', `${V1}/files/${personal.file.id}/copy`, { token: owner.token, body: { parent_id: share.root_folder_id } });
    assertError(copy, 507, 'QUOTA_EXCEEDED');
    assert.equal(copy.body.details.level, 'share');
    // What fits still goes in.
    assert.equal((await uploadDirect(stack, owner.token, share.root_folder_id, 'c.bin', randomData(4000))).status, 201);

    const usage = await api(stack.baseUrl, 'GET', `${V1}/quotas/usage/shares/${share.id}`, { token: owner.token });
    assert.equal(usage.status, 200, usage.text);
    assert.equal(usage.body.used_bytes, 10_000);
    assert.equal(usage.body.limit_bytes, 10_000);
    // Personal uploads of the same users are not the share's business.
    assert.equal((await uploadDirect(stack, contributor.token, contributor.rootFolderId, 'mine.bin', randomData(20_000))).status, 201);
    assert.equal((await api(stack.baseUrl, 'GET', `${V1}/quotas/usage/shares/${share.id}`, { token: owner.token })).body.used_bytes, 10_000);

    // Raising the limit lets the refused upload through; trash keeps counting until purge.
    await api(stack.baseUrl, 'PUT', `${V1}/admin/quotas/share/${share.id}`, { token: adminA.token, body: { limit_bytes: 16_000 } });
    const retry = await uploadDirect(stack, owner.token, share.root_folder_id, 'b.bin', randomData(6000));
    assert.equal(retry.status, 201, JSON.stringify(retry.body));
    assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/files/${retry.body.file.id}`, { token: owner.token })).status, 204);
    assertError(await uploadDirect(stack, owner.token, share.root_folder_id, 'd.bin', randomData(1)), 507, 'QUOTA_EXCEEDED');
    assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/trash/${retry.body.file.id}`, { token: owner.token })).status, 204);
    assert.equal((await api(stack.baseUrl, 'GET', `${V1}/quotas/usage/shares/${share.id}`, { token: owner.token })).body.used_bytes, 10_000);
    assert.equal((await uploadDirect(stack, owner.token, share.root_folder_id, 'd.bin', randomData(1))).status, 201);
  });

  test('moving a file into a share counts against the share quota (the limit cannot be bypassed by a move)', async () => {
    const owner = await user(stack, tenantA);
    const share = await createShare(stack, owner);
    assert.equal((await api(stack.baseUrl, 'PUT', `${V1}/admin/quotas/share/${share.id}`, { token: adminA.token, body: { limit_bytes: 1000 } })).status, 200);
    const big = await put(stack, owner, owner.rootFolderId, 'big.bin', randomData(5000));
    const moved = await api(stack.baseUrl, 'PATCH', `${V1}/files/${big.file.id}`, { token: owner.token, body: { parent_id: share.root_folder_id } });
    const usage = await api(stack.baseUrl, 'GET', `${V1}/quotas/usage/shares/${share.id}`, { token: owner.token });
    const inShare = await api(stack.baseUrl, 'GET', `${V1}/folders/${share.root_folder_id}/children`, { token: owner.token });
    // 5000 bytes cannot live in a share limited to 1000: the move is refused at the share level.
    assertError(moved, 507, 'QUOTA_EXCEEDED', `move into share (share usage after: ${usage.text}; share holds ${inShare.body.items.map((n: any) => n.name)})`);
    assert.deepEqual(moved.body.details, { level: 'share', id: share.id, limit_bytes: 1000, used_bytes: 0 });
    assert.equal(usage.body.used_bytes, 0);
    assert.deepEqual(inShare.body.items, []);
    assert.equal((await api(stack.baseUrl, 'GET', `${V1}/files/${big.file.id}`, { token: owner.token })).body.space_id, owner.spaceId);
  });

  test("moving a file out of a share frees the share's quota (its versions are no longer in the share)", async () => {
    const owner = await user(stack, tenantA);
    const share = await createShare(stack, owner);
    assert.equal((await api(stack.baseUrl, 'PUT', `${V1}/admin/quotas/share/${share.id}`, { token: adminA.token, body: { limit_bytes: 6000 } })).status, 200);
    const doc = await put(stack, owner, share.root_folder_id, 'doc.bin', randomData(5000));
    const usageOf = async () => (await api(stack.baseUrl, 'GET', `${V1}/quotas/usage/shares/${share.id}`, { token: owner.token })).body.used_bytes;
    assert.equal(await usageOf(), 5000);
    const moved = await api(stack.baseUrl, 'PATCH', `${V1}/files/${doc.file.id}`, { token: owner.token, body: { parent_id: owner.rootFolderId } });
    assert.equal(moved.status, 200, moved.text);
    assert.equal(moved.body.space_id, owner.spaceId);
    assert.equal(await usageOf(), 0, 'the share no longer holds the 5000 bytes');
    // ... so the share takes 5000 new bytes again.
    const again = await uploadDirect(stack, owner.token, share.root_folder_id, 'doc2.bin', randomData(5000));
    assert.equal(again.status, 201, JSON.stringify(again.body));
  });

  test('parallel uploads into a share by two members never pass a share limit that fits only some', async () => {
    const owner = await user(stack, tenantA);
    const share = await createShare(stack, owner);
    const one = (await memberWithRole(stack, tenantA, owner, share.id, 'contributor')).user;
    const two = (await memberWithRole(stack, tenantA, owner, share.id, 'contributor')).user;
    const size = 1000;
    const fits = 5;
    assert.equal((await api(stack.baseUrl, 'PUT', `${V1}/admin/quotas/share/${share.id}`, { token: adminA.token, body: { limit_bytes: fits * size } })).status, 200);

    const jobs = Array.from({ length: 12 }, (_, i) => ({ who: i % 2 === 0 ? one : two, name: `race-${i}.bin`, data: randomData(size) }));
    const results = await Promise.all(jobs.map((job) => uploadDirect(stack, job.who.token, share.root_folder_id, job.name, job.data)));
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [...Array(fits).fill(201), ...Array(jobs.length - fits).fill(507)], JSON.stringify(results.map((r) => [r.status, r.body?.code])));
    for (const refused of results.filter((r) => r.status === 507)) {
      assert.equal(refused.body.code, 'QUOTA_EXCEEDED');
      assert.equal(refused.body.details.level, 'share');
      assert.equal(refused.body.details.id, share.id);
      assert.ok(refused.body.details.used_bytes <= fits * size);
    }
    const usage = await api(stack.baseUrl, 'GET', `${V1}/quotas/usage/shares/${share.id}`, { token: owner.token });
    assert.equal(usage.body.used_bytes, fits * size);
    const versions = await stack.services.db
      .selectFrom('versions')
      .innerJoin('nodes', 'nodes.id', 'versions.file_id')
      .select(['versions.size', 'versions.checksum_sha256', 'nodes.name'])
      .where('nodes.space_id', '=', share.id)
      .execute();
    assert.equal(versions.length, fits);
    assert.equal(
      versions.reduce((sum, v) => sum + v.size, 0),
      fits * size,
    );
    // The ones that committed are the bytes their uploader sent.
    for (const v of versions) assert.equal(v.checksum_sha256, sha256(jobs.find((j) => j.name === v.name)!.data));
    const children = await api(stack.baseUrl, 'GET', `${V1}/folders/${share.root_folder_id}/children`, { token: owner.token });
    assert.equal(children.body.items.length, fits);
  });
});
