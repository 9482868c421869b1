// The share role matrix through HTTP (spec §3, §8): for each role — owner, admin, contributor, reader and
// not a member — and each action on a share, its content, its members and its invitations, the status.
// Not a member → 404 everywhere (existence is never revealed); reader → reads only; contributor → + writes;
// admin → + members and invitations; owner → + transfer and delete. Every cell gets a fresh share.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { createSession, download, randomData, sha256, uploadDirect } from '../helpers/files';
import { V1, addMember, createShare, mkdir, put, uniq, user, type Share, type ShareUser } from './share-helpers';

type Role = 'owner' | 'admin' | 'contributor' | 'reader' | 'none';
const roles: Role[] = ['owner', 'admin', 'contributor', 'reader', 'none'];

interface Fixture {
  tenantId: string;
  owner: ShareUser;
  actor: ShareUser;
  share: Share;
  /** A subfolder of the share root. */
  folder: any;
  /** A file in the share root, one version. */
  file: any;
  fileData: Buffer;
  /** A file the owner moved to the trash. */
  trashed: any;
  /** Another member (reader) to change and remove. */
  other: ShareUser;
  otherMember: any;
  /** Set by the add-member action. */
  newcomer?: ShareUser;
}

/** What a cell expects: the status for each role (none is always 404). */
type Expect = Record<Exclude<Role, 'none'>, number | number[]>;
const read = (status: number | number[]): Expect => ({ owner: status, admin: status, contributor: status, reader: status });
const write = (status: number | number[]): Expect => ({ owner: status, admin: status, contributor: status, reader: Array.isArray(status) ? status.map(() => 403) : 403 });
const manage = (status: number): Expect => ({ owner: status, admin: status, contributor: 403, reader: 403 });
const ownerOnly = (status: number): Expect => ({ owner: status, admin: 403, contributor: 403, reader: 403 });

interface Action {
  name: string;
  expect: Expect;
  run(stack: TestStack, fx: Fixture): Promise<number | number[]>;
  /** Checks after a successful call (the effect happened). */
  verify?(stack: TestStack, fx: Fixture): Promise<void>;
  /** Checks after a refused call (nothing happened). */
  unchanged?(stack: TestStack, fx: Fixture): Promise<void>;
}

const call = async (stack: TestStack, fx: Fixture, method: string, path: string, body?: unknown) =>
  (await api(stack.baseUrl, method, `${V1}${path}`, { token: fx.actor.token, body })).status;
const ownerGet = (stack: TestStack, fx: Fixture, path: string) => api(stack.baseUrl, 'GET', `${V1}${path}`, { token: fx.owner.token });
const childNames = async (stack: TestStack, fx: Fixture, folderId: string) => ((await ownerGet(stack, fx, `/folders/${folderId}/children`)).body.items as any[]).map((n) => n.name).sort();
const memberRoles = async (stack: TestStack, fx: Fixture) =>
  ((await ownerGet(stack, fx, `/shares/${fx.share.id}/members`)).body.items as any[]).map((m) => `${m.principal_id}:${m.role}`).sort();

const actions: Action[] = [
  {
    name: 'list children',
    expect: read(200),
    run: (stack, fx) => call(stack, fx, 'GET', `/folders/${fx.share.root_folder_id}/children`),
  },
  {
    name: 'GET file metadata',
    expect: read(200),
    run: (stack, fx) => call(stack, fx, 'GET', `/files/${fx.file.id}`),
  },
  {
    name: 'download content',
    expect: read(200),
    run: async (stack, fx) => {
      const res = await download(stack, `${V1}/files/${fx.file.id}/content`, { token: fx.actor.token });
      if (res.status === 200) assert.equal(sha256(res.body), sha256(fx.fileData));
      return res.status;
    },
  },
  {
    name: 'GET versions',
    expect: read(200),
    run: (stack, fx) => call(stack, fx, 'GET', `/files/${fx.file.id}/versions`),
  },
  {
    name: 'create folder',
    expect: write(201),
    run: (stack, fx) => call(stack, fx, 'POST', '/folders', { parent_id: fx.share.root_folder_id, name: 'New folder' }),
    verify: async (stack, fx) => assert.ok((await childNames(stack, fx, fx.share.root_folder_id)).includes('New folder')),
    unchanged: async (stack, fx) => assert.ok(!(await childNames(stack, fx, fx.share.root_folder_id)).includes('New folder')),
  },
  {
    name: 'direct upload new file',
    expect: write(201),
    run: async (stack, fx) => (await uploadDirect(stack, fx.actor.token, fx.share.root_folder_id, 'new.bin', randomData(100))).status,
    verify: async (stack, fx) => assert.ok((await childNames(stack, fx, fx.share.root_folder_id)).includes('new.bin')),
    unchanged: async (stack, fx) => assert.ok(!(await childNames(stack, fx, fx.share.root_folder_id)).includes('new.bin')),
  },
  {
    name: 'upload new version',
    expect: write(200),
    run: async (stack, fx) => (await uploadDirect(stack, fx.actor.token, fx.share.root_folder_id, fx.file.name, randomData(200))).status,
    verify: async (stack, fx) => assert.equal((await ownerGet(stack, fx, `/files/${fx.file.id}/versions`)).body.items.length, 2),
    unchanged: async (stack, fx) => assert.equal((await ownerGet(stack, fx, `/files/${fx.file.id}/versions`)).body.items.length, 1),
  },
  {
    name: 'resumable session create',
    expect: write(201),
    run: async (stack, fx) => (await createSession(stack, fx.actor.token, { parent_id: fx.share.root_folder_id, name: 'big.bin', size: 1000 })).status,
  },
  {
    name: 'rename',
    expect: write(200),
    run: (stack, fx) => call(stack, fx, 'PATCH', `/files/${fx.file.id}`, { name: 'renamed.txt' }),
    verify: async (stack, fx) => assert.equal((await ownerGet(stack, fx, `/files/${fx.file.id}`)).body.name, 'renamed.txt'),
    unchanged: async (stack, fx) => assert.equal((await ownerGet(stack, fx, `/files/${fx.file.id}`)).body.name, fx.file.name),
  },
  {
    name: 'move within the share',
    expect: write(200),
    run: (stack, fx) => call(stack, fx, 'PATCH', `/files/${fx.file.id}`, { parent_id: fx.folder.id }),
    verify: async (stack, fx) => assert.equal((await ownerGet(stack, fx, `/files/${fx.file.id}`)).body.parent_id, fx.folder.id),
    unchanged: async (stack, fx) => assert.equal((await ownerGet(stack, fx, `/files/${fx.file.id}`)).body.parent_id, fx.share.root_folder_id),
  },
  {
    name: 'copy out to personal space',
    expect: read(201),
    run: (stack, fx) => call(stack, fx, 'POST', `/files/${fx.file.id}/copy`, { parent_id: fx.actor.rootFolderId }),
    verify: async (stack, fx) => {
      const mine = await api(stack.baseUrl, 'GET', `${V1}/folders/${fx.actor.rootFolderId}/children`, { token: fx.actor.token });
      assert.ok(mine.body.items.some((n: any) => n.name === fx.file.name && n.space_id === fx.actor.spaceId));
    },
  },
  {
    name: 'delete (trash)',
    expect: write(204),
    run: (stack, fx) => call(stack, fx, 'DELETE', `/files/${fx.file.id}`),
    verify: async (stack, fx) => assert.equal((await ownerGet(stack, fx, `/files/${fx.file.id}`)).status, 410),
    unchanged: async (stack, fx) => assert.equal((await ownerGet(stack, fx, `/files/${fx.file.id}`)).status, 200),
  },
  {
    name: 'restore from trash',
    expect: write(200),
    run: (stack, fx) => call(stack, fx, 'POST', `/trash/${fx.trashed.id}/restore`),
    verify: async (stack, fx) => assert.equal((await ownerGet(stack, fx, `/files/${fx.trashed.id}`)).status, 200),
    unchanged: async (stack, fx) => assert.equal((await ownerGet(stack, fx, `/files/${fx.trashed.id}`)).status, 410),
  },
  {
    name: 'purge',
    expect: write(204),
    run: (stack, fx) => call(stack, fx, 'DELETE', `/trash/${fx.trashed.id}`),
    verify: async (stack, fx) => assert.equal((await ownerGet(stack, fx, `/files/${fx.trashed.id}`)).status, 404),
    unchanged: async (stack, fx) => assert.equal((await ownerGet(stack, fx, `/files/${fx.trashed.id}`)).status, 410),
  },
  {
    name: 'lock/unlock',
    expect: write([200, 204]),
    run: async (stack, fx) => [await call(stack, fx, 'POST', `/files/${fx.file.id}/lock`), await call(stack, fx, 'DELETE', `/files/${fx.file.id}/lock`)],
    unchanged: async (stack, fx) => assert.equal((await ownerGet(stack, fx, `/files/${fx.file.id}`)).body.lock, null),
  },
  {
    name: 'list members',
    expect: read(200),
    run: (stack, fx) => call(stack, fx, 'GET', `/shares/${fx.share.id}/members`),
  },
  {
    name: 'add member',
    expect: manage(201),
    run: async (stack, fx) => {
      fx.newcomer = await user(stack, fx.tenantId, uniq('newcomer'));
      return call(stack, fx, 'POST', `/shares/${fx.share.id}/members`, { principal_type: 'user', principal_id: fx.newcomer.userId, role: 'reader' });
    },
    verify: async (stack, fx) => assert.ok((await memberRoles(stack, fx)).includes(`${fx.newcomer!.userId}:reader`)),
    unchanged: async (stack, fx) => assert.ok(!(await memberRoles(stack, fx)).some((m) => m.startsWith(`${fx.newcomer!.userId}:`))),
  },
  {
    name: 'change role',
    expect: manage(200),
    run: (stack, fx) => call(stack, fx, 'PATCH', `/shares/${fx.share.id}/members/${fx.otherMember.id}`, { role: 'contributor' }),
    verify: async (stack, fx) => assert.ok((await memberRoles(stack, fx)).includes(`${fx.other.userId}:contributor`)),
    unchanged: async (stack, fx) => assert.ok((await memberRoles(stack, fx)).includes(`${fx.other.userId}:reader`)),
  },
  {
    name: 'remove member',
    expect: manage(204),
    run: (stack, fx) => call(stack, fx, 'DELETE', `/shares/${fx.share.id}/members/${fx.otherMember.id}`),
    verify: async (stack, fx) => assert.ok(!(await memberRoles(stack, fx)).some((m) => m.startsWith(`${fx.other.userId}:`))),
    unchanged: async (stack, fx) => assert.ok((await memberRoles(stack, fx)).includes(`${fx.other.userId}:reader`)),
  },
  {
    name: 'create invitation',
    expect: manage(201),
    run: (stack, fx) => call(stack, fx, 'POST', `/shares/${fx.share.id}/invitations`, { email: `${uniq('guest')}@example.test`, role: 'reader' }),
  },
  {
    name: 'rename share',
    expect: manage(200),
    run: (stack, fx) => call(stack, fx, 'PATCH', `/shares/${fx.share.id}`, { name: 'Renamed share' }),
    verify: async (stack, fx) => assert.equal((await ownerGet(stack, fx, `/shares/${fx.share.id}`)).body.name, 'Renamed share'),
    unchanged: async (stack, fx) => assert.equal((await ownerGet(stack, fx, `/shares/${fx.share.id}`)).body.name, fx.share.name),
  },
  {
    name: 'transfer',
    expect: ownerOnly(200),
    run: (stack, fx) => call(stack, fx, 'POST', `/shares/${fx.share.id}/transfer`, { user_id: fx.other.userId }),
    verify: async (stack, fx) => assert.equal((await ownerGet(stack, fx, `/shares/${fx.share.id}`)).body.owner_user_id, fx.other.userId),
    unchanged: async (stack, fx) => assert.equal((await ownerGet(stack, fx, `/shares/${fx.share.id}`)).body.owner_user_id, fx.owner.userId),
  },
  {
    name: 'delete share',
    expect: ownerOnly(204),
    run: (stack, fx) => call(stack, fx, 'DELETE', `/shares/${fx.share.id}`),
    verify: async (stack, fx) => assert.equal((await ownerGet(stack, fx, `/shares/${fx.share.id}`)).status, 404),
    unchanged: async (stack, fx) => assert.equal((await ownerGet(stack, fx, `/shares/${fx.share.id}`)).status, 200),
  },
];

describe('share roles matrix', () => {
  let stack: TestStack;
  let tenantId: string;

  before(async () => {
    stack = await startTestStack();
    tenantId = (await createTestTenant(stack)).id;
  });
  after(() => stack.close());

  async function fixture(role: Role): Promise<Fixture> {
    const owner = await user(stack, tenantId, uniq('owner'));
    const share = await createShare(stack, owner);
    const folder = await mkdir(stack, owner, share.root_folder_id, 'Quarterly reports');
    const fileData = randomData(1500);
    const file = (await put(stack, owner, share.root_folder_id, 'budget-2026.txt', fileData)).file;
    const trashed = (await put(stack, owner, share.root_folder_id, 'old-minutes.txt', randomData(300))).file;
    const trash = await api(stack.baseUrl, 'DELETE', `${V1}/files/${trashed.id}`, { token: owner.token });
    assert.equal(trash.status, 204, trash.text);
    const other = await user(stack, tenantId, uniq('other'));
    const otherMember = await addMember(stack, owner, share.id, 'user', other.userId, 'reader');
    let actor = owner;
    if (role !== 'owner') {
      actor = await user(stack, tenantId, uniq(role));
      if (role !== 'none') await addMember(stack, owner, share.id, 'user', actor.userId, role);
    }
    return { tenantId, owner, actor, share, folder, file, fileData, trashed, other, otherMember };
  }

  for (const role of roles) {
    describe(`as ${role}`, () => {
      for (const action of actions) {
        const expected = role === 'none' ? (Array.isArray(action.expect.owner) ? action.expect.owner.map(() => 404) : 404) : action.expect[role];
        test(`${action.name} → ${JSON.stringify(expected)}`, async () => {
          const fx = await fixture(role);
          const got = await action.run(stack, fx);
          assert.deepEqual(got, expected, `${role} ${action.name}`);
          const succeeded = (Array.isArray(expected) ? expected : [expected]).every((s) => s < 300);
          if (succeeded) await action.verify?.(stack, fx);
          else await action.unchanged?.(stack, fx);
        });
      }
    });
  }

  test('a non-member learns nothing from the 404s: no names or ids of the share in the bodies', async () => {
    const fx = await fixture('none');
    const paths = [
      `/shares/${fx.share.id}`,
      `/shares/${fx.share.id}/members`,
      `/shares/${fx.share.id}/my-permission`,
      `/folders/${fx.share.root_folder_id}/children`,
      `/folders/${fx.folder.id}`,
      `/files/${fx.file.id}`,
      `/files/${fx.file.id}/versions`,
      `/files/${fx.file.id}/download-url`,
    ];
    for (const path of paths) {
      const res = await api(stack.baseUrl, 'GET', `${V1}${path}`, { token: fx.actor.token });
      assert.equal(res.status, 404, `${path}: ${res.text}`);
      assert.equal(res.body.code, 'NOT_FOUND');
      for (const secret of [fx.share.name, fx.folder.name, fx.file.name, fx.owner.userId, fx.otherMember.id]) assert.ok(!res.text.includes(secret), `${path} leaks ${secret}`);
    }
    // A missing share and an invisible share answer alike.
    const missing = await api(stack.baseUrl, 'GET', `${V1}/shares/shr_01ARZ3NDEKTSV4RRFFQ69G5FAV`, { token: fx.actor.token });
    const hidden = await api(stack.baseUrl, 'GET', `${V1}/shares/${fx.share.id}`, { token: fx.actor.token });
    assert.equal(missing.status, hidden.status);
    assert.equal(missing.body.code, hidden.body.code);
    assert.equal(missing.body.detail, hidden.body.detail);
  });
});
