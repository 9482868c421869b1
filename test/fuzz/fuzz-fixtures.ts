// Real resources for the fuzz test (folder, files, share, links, upload session, group, API key, invitation,
// trashed node, signed download) and the callers' credentials, so generated requests get past the 404s.
import assert from 'node:assert/strict';
import { api, tokenFor, type TestStack } from '../helpers/stack';
import { createSession, newUser, uploadDirect, type TestUser } from '../helpers/files';
import type { Caller, ResourceKind } from './openapi-operations';

export const linkPassword = 'correct horse';

export interface FuzzCallers {
  tenantId: string;
  admin: TestUser;
  member: TestUser;
  victim: TestUser;
  /** Authorization header per caller (undefined = none). */
  authorization: Record<Caller, string | undefined>;
  /** The current API key's id (its secret is in `authorization.apiKey`); createResources makes a new one. */
  apiKeyId: string;
  invitationToken?: string;
  /** The tenant's settings before the fuzz began (PATCH /admin/tenant may change them). */
  tenantSettings: unknown;
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** The tenant's users and every kind of credential, good and forged. */
export async function createCallers(stack: TestStack, tenantId: string, otherTenantId: string): Promise<FuzzCallers> {
  const admin = await newUser(stack, tenantId, 'fuzz-admin', { admin: true });
  const member = await newUser(stack, tenantId, 'fuzz-member');
  const victim = await newUser(stack, tenantId, 'fuzz-victim');
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ sub: 'fuzz-admin', tenant_id: tenantId, roles: ['tenant_admin'], iss: stack.services.devIssuer!.issuer, aud: 'scaidrive', iat: now, exp: now + 3600 })}.`;
  const tenant = await stack.services.db.selectFrom('tenants').select('settings').where('id', '=', tenantId).executeTakeFirstOrThrow();
  return {
    tenantId,
    tenantSettings: tenant.settings,
    admin,
    member,
    victim,
    apiKeyId: '',
    authorization: {
      admin: `Bearer ${admin.token}`,
      member: `Bearer ${member.token}`,
      apiKey: undefined, // set by createResources
      none: undefined,
      garbage: 'Bearer not.a.jwt',
      algNone: `Bearer ${unsigned}`,
      expired: `Bearer ${await tokenFor(stack, tenantId, 'fuzz-admin', { admin: true, expiresInSeconds: -3600 })}`,
      otherTenant: `Bearer ${await tokenFor(stack, otherTenantId, 'fuzz-intruder', { admin: true })}`,
      nulSubject: `Bearer ${await tokenFor(stack, tenantId, 'fuzz\u0000admin', { admin: true })}`,
      basic: 'Basic ZnV6ejpmdXp6',
    },
  };
}

export type ResourcePools = Record<ResourceKind, string[]>;

async function ok(response: Promise<{ status: number; text: string; body: any }>, what: string, expected = [200, 201]) {
  const res = await response;
  assert.ok(expected.includes(res.status), `fixture ${what}: ${res.status} ${res.text}`);
  return res.body;
}

/**
 * A fresh set of resources owned by the admin (the member is a contributor of the share). Called again
 * between groups of operations: the fuzz deletes, deactivates and transfers things as it goes, and later
 * operations should still reach their handlers. Users the fuzz deactivated are switched back on directly.
 */
/**
 * Undoes what the fuzz may have done to the callers' ability to work: suspended users, a tenant file-size cap of
 * one byte, zero-byte quotas. Done in the database because the API calls that would undo it are themselves fuzzed.
 */
export async function restoreCallerAccess(stack: TestStack, callers: FuzzCallers): Promise<void> {
  const { admin, member, victim } = callers;
  const db = stack.services.db;
  await db.updateTable('users').set({ is_active: true }).where('id', 'in', [admin.userId, member.userId, victim.userId]).execute();
  await db.updateTable('tenants').set({ settings: JSON.stringify(callers.tenantSettings) as any }).where('id', '=', callers.tenantId).execute();
  await db.updateTable('quotas').set({ limit_bytes: null }).where('tenant_id', '=', callers.tenantId).execute();
}

export async function createResources(stack: TestStack, callers: FuzzCallers, generation: number, otherTenantFolderId: string): Promise<ResourcePools> {
  const { admin, member, victim } = callers;
  await restoreCallerAccess(stack, callers);
  const token = admin.token;
  const V1 = '/api/v1';
  const tag = `g${generation}`;
  // The working folder lives in the share, so the member (a contributor there) reaches the fixtures too.
  const share = await ok(api(stack.baseUrl, 'POST', `${V1}/shares`, { token, body: { name: `fuzz-share-${tag}` } }), 'share');
  const folder = await ok(api(stack.baseUrl, 'POST', `${V1}/folders`, { token, body: { parent_id: share.root_folder_id, name: `fuzz-${tag}` } }), 'folder');
  const upload = await uploadDirect(stack, token, folder.id, `file-${tag}.txt`, Buffer.from('hello fuzz'));
  assert.ok(upload.status === 201 || upload.status === 200, `fixture file: ${upload.status} ${JSON.stringify(upload.body)}`);
  const file = upload.body.file;
  const second = await uploadDirect(stack, token, folder.id, `file-${tag}.txt`, Buffer.from('hello fuzz, again'));
  const versionIds = [upload.body.version?.id, second.body?.version?.id].filter(Boolean) as string[];
  const doomed = await uploadDirect(stack, token, folder.id, `trashed-${tag}.txt`, Buffer.from('bye'));
  await ok(api(stack.baseUrl, 'DELETE', `${V1}/files/${doomed.body.file.id}`, { token }), 'trash', [200, 204]);
  const grant = await ok(api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/members`, { token, body: { principal_type: 'user', principal_id: member.userId, role: 'contributor' } }), 'grant');
  const shareFolder = await ok(api(stack.baseUrl, 'POST', `${V1}/folders`, { token, body: { parent_id: share.root_folder_id, name: 'inside' } }), 'share folder');
  const fileLink = await ok(api(stack.baseUrl, 'POST', `${V1}/files/${file.id}/links`, { token, body: {} }), 'file link');
  const folderLink = await ok(api(stack.baseUrl, 'POST', `${V1}/folders/${folder.id}/links`, { token, body: {} }), 'folder link');
  const lockedLink = await ok(api(stack.baseUrl, 'POST', `${V1}/folders/${folder.id}/links`, { token, body: { password: linkPassword, require_email: ['@example.test'] } }), 'password link');
  const session = await ok(createSession(stack, token, { parent_id: folder.id, name: `session-${tag}.bin`, size: 100_000, chunk_size: 65536 }), 'upload session');
  const group = await ok(api(stack.baseUrl, 'POST', `${V1}/admin/groups`, { token, body: { name: `fuzz-group-${tag}` } }), 'group');
  // Invitations are rate limited per inviter (20 per 10 minutes): one, made with the first fixtures, is reused.
  callers.invitationToken ??= (await ok(api(stack.baseUrl, 'POST', `${V1}/shares/${share.id}/invitations`, { token, body: { email: 'invitee@example.test', role: 'reader' } }), 'invitation')).token as string;
  const key = await ok(api(stack.baseUrl, 'POST', `${V1}/admin/api-keys`, { token, body: { name: `fuzz-${tag}`, scopes: ['admin', 'files:read', 'files:write'] } }), 'api key');
  callers.apiKeyId = key.id;
  callers.authorization.apiKey = `Bearer ${key.secret}`;
  const downloadUrl = await ok(api(stack.baseUrl, 'GET', `${V1}/files/${file.id}/download-url`, { token }), 'download url');
  return {
    user: [admin.userId, member.userId, victim.userId],
    subject: ['fuzz-member', 'fuzz-victim', 'fuzz-admin'],
    folder: [folder.id, admin.rootFolderId, share.root_folder_id, shareFolder.id, member.rootFolderId, otherTenantFolderId],
    file: [file.id, doomed.body.file.id],
    share: [share.id],
    group: [group.id],
    grant: [grant.id],
    link: [fileLink.id, folderLink.id, lockedLink.id],
    linkToken: [fileLink.token, folderLink.token, lockedLink.token],
    upload: [session.id],
    version: versionIds,
    apiKey: [callers.apiKeyId],
    invitation: [callers.invitationToken],
    download: [String(downloadUrl.url).split('/').pop()!],
    space: [admin.spaceId, member.spaceId, share.id],
    tenant: [callers.tenantId],
    trashed: [doomed.body.file.id],
  };
}
