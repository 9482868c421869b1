// Helpers for the share tests: users with a chosen email, shares, grants, folders and uploads through HTTP.
import assert from 'node:assert/strict';
import { api, tokenFor, type TestStack } from '../helpers/stack';
import { uploadDirect, type TestUser } from '../helpers/files';
export { assertError } from '../helpers/assertions';

export const V1 = '/api/v1';

let counter = 0;
/** A name unique within the test process (subjects, share names, emails). */
export const uniq = (prefix: string) => `${prefix}-${process.pid}-${Date.now().toString(36)}-${++counter}`;

export interface ShareUser extends TestUser {
  subject: string;
  email: string;
}

/** A user provisioned through GET /me, with a token carrying `email` (default `{subject}@example.test`). */
export async function user(stack: TestStack, tenantId: string, subject = uniq('u'), options: { admin?: boolean; email?: string } = {}): Promise<ShareUser> {
  const email = options.email ?? `${subject}@example.test`;
  const token = await tokenFor(stack, tenantId, subject, { admin: options.admin, email });
  const me = await api(stack.baseUrl, 'GET', `${V1}/me`, { token });
  if (me.status !== 200) throw new Error(`GET /me: ${me.status} ${me.text}`);
  return { token, userId: me.body.id, rootFolderId: me.body.personal_space.root_folder_id, spaceId: me.body.personal_space.id, subject, email };
}

export interface Share {
  id: string;
  name: string;
  owner_user_id: string;
  root_folder_id: string;
  created_at: string;
  my_role: string | null;
}

export async function createShare(stack: TestStack, owner: TestUser, name = uniq('Share')): Promise<Share> {
  const res = await api(stack.baseUrl, 'POST', `${V1}/shares`, { token: owner.token, body: { name } });
  assert.equal(res.status, 201, `create share: ${res.text}`);
  return res.body;
}

export async function addMember(stack: TestStack, actor: TestUser, shareId: string, principalType: 'user' | 'group', principalId: string, role: string) {
  const res = await api(stack.baseUrl, 'POST', `${V1}/shares/${shareId}/members`, { token: actor.token, body: { principal_type: principalType, principal_id: principalId, role } });
  assert.equal(res.status, 201, `add ${principalType} ${principalId} as ${role}: ${res.text}`);
  return res.body as { id: string; share_id: string; principal_type: string; principal_id: string; role: string; created_at: string };
}

/** A fresh user of the tenant granted `role` in the share by `granter`. */
export async function memberWithRole(stack: TestStack, tenantId: string, granter: TestUser, shareId: string, role: 'admin' | 'contributor' | 'reader') {
  const member = await user(stack, tenantId, uniq(role));
  const grant = await addMember(stack, granter, shareId, 'user', member.userId, role);
  return { user: member, grant };
}

export async function createGroup(stack: TestStack, admin: TestUser, name = uniq('group')): Promise<{ id: string; name: string }> {
  const res = await api(stack.baseUrl, 'POST', `${V1}/admin/groups`, { token: admin.token, body: { name } });
  assert.equal(res.status, 201, `create group: ${res.text}`);
  return res.body;
}

export async function addToGroup(stack: TestStack, admin: TestUser, groupId: string, userId: string): Promise<void> {
  const res = await api(stack.baseUrl, 'POST', `${V1}/admin/groups/${groupId}/members`, { token: admin.token, body: { user_id: userId } });
  assert.equal(res.status, 204, `add to group: ${res.text}`);
}

export async function mkdir(stack: TestStack, actor: TestUser, parentId: string, name: string): Promise<any> {
  const res = await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: actor.token, body: { parent_id: parentId, name } });
  assert.equal(res.status, 201, `mkdir ${name}: ${res.text}`);
  return res.body;
}

export async function put(stack: TestStack, actor: TestUser, parentId: string, name: string, data: Buffer): Promise<{ file: any; version: any }> {
  const res = await uploadDirect(stack, actor.token, parentId, name, data);
  assert.ok(res.status === 201 || res.status === 200, `upload ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** A 422 whose `detail` holds an entry at `loc` with `type`. */
export function assertValidation(res: { status: number; body: any }, loc: (string | number)[], type?: string, what = '') {
  assert.equal(res.status, 422, `${what} expected 422, got ${res.status} ${JSON.stringify(res.body)}`);
  assert.equal(res.body.code, 'VALIDATION_ERROR');
  assert.ok(Array.isArray(res.body.detail), `${what} detail is an array`);
  const entry = res.body.detail.find((d: any) => JSON.stringify(d.loc) === JSON.stringify(loc));
  assert.ok(entry, `${what} no validation entry at ${JSON.stringify(loc)}: ${JSON.stringify(res.body.detail)}`);
  if (type) assert.equal(entry.type, type, `${what} type at ${JSON.stringify(loc)}: ${JSON.stringify(entry)}`);
}

export async function permissionChanges(stack: TestStack, rootFolderId: string) {
  return stack.services.db.selectFrom('change_log').selectAll().where('node_id', '=', rootFolderId).where('type', '=', 'permissions_changed').orderBy('seq').execute();
}
