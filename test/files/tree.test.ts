// The node tree through HTTP (spec §2, §3, §5, §13): /me and /spaces, folders and names, keyset listing,
// rename/move/copy, the change log, versions by name, base-version conflicts, and tenant/user isolation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { api, createTestTenant, startTestStack, tokenFor, type ApiResponse, type TestStack } from '../helpers/stack';
import { download, newUser, randomData, sha256, uploadDirect, type TestUser } from '../helpers/files';
import { assertError } from '../helpers/assertions';
import { childrenOf, mkdir, put } from '../helpers/tree';

const V1 = '/api/v1';

/**
 * A PUT with a raw, un-normalised request target: fetch (WHATWG URL) would resolve `%2E%2E` as a dot
 * segment before sending, which is exactly the path trick the server must refuse.
 */
function rawPut(stack: TestStack, token: string, rawPath: string, data: Buffer): Promise<{ status: number; body: any; text: string }> {
  const url = new URL(stack.baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: Number(url.port),
        method: 'PUT',
        path: rawPath,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': String(data.length) },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          let body: any = text;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            // keep text
          }
          resolve({ status: res.statusCode ?? 0, body, text });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

async function changes(stack: TestStack, nodeId: string) {
  return stack.services.db.selectFrom('change_log').selectAll().where('node_id', '=', nodeId).orderBy('seq').execute();
}

/** Runs `fn` over `items` with at most `width` in flight. */
async function pool<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

describe('file tree', () => {
  let stack: TestStack;
  let tenantId: string;
  let alice: TestUser;

  before(async () => {
    stack = await startTestStack();
    tenantId = (await createTestTenant(stack)).id;
    alice = await newUser(stack, tenantId, 'alice');
  });
  after(() => stack.close());

  test('GET /me returns the caller and their personal space with its root folder; GET /spaces lists it', async () => {
    const me = await api(stack.baseUrl, 'GET', `${V1}/me`, { token: alice.token });
    assert.equal(me.status, 200);
    assert.equal(me.body.kind, 'user');
    assert.match(me.body.id, /^usr_/);
    assert.equal(me.body.tenant_id, tenantId);
    assert.deepEqual(me.body.roles, []);
    assert.equal(me.body.personal_space.kind, 'personal');
    assert.equal(me.body.personal_space.owner_user_id, me.body.id);
    assert.equal(typeof me.body.personal_space.root_folder_id, 'string');
    // Stable across calls (not re-created).
    const again = await api(stack.baseUrl, 'GET', `${V1}/me`, { token: alice.token });
    assert.equal(again.body.personal_space.root_folder_id, me.body.personal_space.root_folder_id);

    const root = await api(stack.baseUrl, 'GET', `${V1}/folders/${me.body.personal_space.root_folder_id}`, { token: alice.token });
    assert.equal(root.status, 200, root.text);
    assert.equal(root.body.kind, 'folder');
    assert.equal(root.body.parent_id, null);
    assert.equal(root.body.space_id, me.body.personal_space.id);

    const spaces = await api(stack.baseUrl, 'GET', `${V1}/spaces`, { token: alice.token });
    assert.equal(spaces.status, 200);
    assert.equal(spaces.body.items.length, 1);
    assert.equal(spaces.body.items[0].id, me.body.personal_space.id);
    assert.equal(spaces.body.items[0].kind, 'personal');
    assert.equal(spaces.body.items[0].root_folder_id, me.body.personal_space.root_folder_id);

    const anonymous = await api(stack.baseUrl, 'GET', `${V1}/spaces`);
    assert.equal(anonymous.status, 401);
  });

  test('POST /folders creates a folder (201); sibling names collide case-insensitively (409 NAME_CONFLICT)', async () => {
    const parent = await mkdir(stack, alice, alice.rootFolderId, 'Collide');
    const created = await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: alice.token, body: { parent_id: parent.id, name: 'Projects' } });
    assert.equal(created.status, 201, created.text);
    assert.match(created.body.id, /^fld_[0-9A-Z]{26}$/);
    assert.equal(created.body.kind, 'folder');
    assert.equal(created.body.name, 'Projects');
    assert.equal(created.body.parent_id, parent.id);
    assert.equal(created.body.space_id, alice.spaceId);
    assert.equal(created.body.deleted_at, null);

    for (const name of ['Projects', 'projects', 'PROJECTS']) {
      const dup = await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: alice.token, body: { parent_id: parent.id, name } });
      assertError(dup, 409, 'NAME_CONFLICT', name);
    }
    // A file with that name (any case) collides with the folder as well.
    const file = await uploadDirect(stack, alice.token, parent.id, 'pROJECTS', Buffer.from('x'));
    assertError({ status: file.status, body: file.body }, 409, 'NAME_CONFLICT', 'file over folder');
    // The same name elsewhere is fine; the case is preserved.
    const other = await mkdir(stack, alice, created.body.id, 'PROJECTS');
    assert.equal(other.name, 'PROJECTS');

    const kids = await childrenOf(stack, alice, parent.id);
    assert.deepEqual(
      kids.map((k) => k.name),
      ['Projects'],
    );

    // Parent that does not exist, or is a file → 404.
    assertError(await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: alice.token, body: { parent_id: 'fld_doesnotexist', name: 'x' } }), 404, 'NOT_FOUND');
    const aFile = await put(stack, alice, parent.id, 'plain.txt', Buffer.from('plain'));
    assertError(await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: alice.token, body: { parent_id: aFile.file.id, name: 'x' } }), 404, 'NOT_FOUND');
  });

  test('POST /folders refuses invalid names with 422 VALIDATION_ERROR at ["body","name"]', async () => {
    const parent = await mkdir(stack, alice, alice.rootFolderId, 'Names');
    const bad: Record<string, string> = {
      slash: 'a/b',
      dotdot: '..',
      dot: '.',
      '256 ascii bytes': 'a'.repeat(256),
      '256 bytes in 128 characters': 'é'.repeat(128),
      NUL: 'a\u0000b',
      empty: '',
    };
    for (const [what, name] of Object.entries(bad)) {
      const res = await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: alice.token, body: { parent_id: parent.id, name } });
      assertError(res, 422, 'VALIDATION_ERROR', what);
      assert.ok(Array.isArray(res.body.detail) && res.body.detail.length >= 1, what);
      assert.deepEqual(res.body.detail[0].loc, ['body', 'name'], what);
      assert.equal(typeof res.body.detail[0].msg, 'string');
      assert.equal(typeof res.body.detail[0].type, 'string');
    }
    // Exactly 255 bytes is accepted, in ASCII and in multi-byte characters.
    await mkdir(stack, alice, parent.id, 'b'.repeat(255));
    await mkdir(stack, alice, parent.id, 'é'.repeat(127) + 'c');
    // The same rules apply to rename.
    const folder = await mkdir(stack, alice, parent.id, 'ok');
    for (const name of ['a/b', '..', '.', 'a\u0000b', 'x'.repeat(256)]) {
      const res = await api(stack.baseUrl, 'PATCH', `${V1}/folders/${folder.id}`, { token: alice.token, body: { name } });
      assertError(res, 422, 'VALIDATION_ERROR', `rename to ${JSON.stringify(name)}`);
      assert.deepEqual(res.body.detail[0].loc, ['body', 'name']);
    }
    // Missing name → 422 missing.
    const missing = await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: alice.token, body: { parent_id: parent.id } });
    assertError(missing, 422, 'VALIDATION_ERROR');
    assert.deepEqual(missing.body.detail[0].loc, ['body', 'name']);
    assert.equal(missing.body.detail[0].type, 'missing');
    const kids = await childrenOf(stack, alice, parent.id);
    assert.equal(kids.length, 3);
  });

  test('direct upload with a path trick in the name is 400 INVALID_NAME and creates nothing', async () => {
    const parent = await mkdir(stack, alice, alice.rootFolderId, 'Tricks');
    const base = `${V1}/folders/${parent.id}/files/`;
    for (const [what, segment] of [
      ['..', '%2E%2E'],
      ['.. lower-case', '%2e%2e'],
      ['.', '%2E'],
      ['a/b', 'a%2Fb'],
      ['../escape', '..%2Fescape'],
      ['NUL', 'a%00b'],
      ['256 bytes', 'n'.repeat(256)],
    ] as const) {
      const res = await rawPut(stack, alice.token, base + segment, Buffer.from('payload'));
      assertError(res, 400, 'INVALID_NAME', what);
    }
    assert.deepEqual(await childrenOf(stack, alice, parent.id), []);
    // And the same through fetch's encoding for the ones fetch keeps.
    const slash = await uploadDirect(stack, alice.token, parent.id, 'x/y', Buffer.from('payload'));
    assert.equal(slash.status, 400, JSON.stringify(slash.body));
    assert.equal(slash.body.code, 'INVALID_NAME');
    // POST /uploads validates the name in the body: 422.
    const session = await api(stack.baseUrl, 'POST', `${V1}/uploads`, { token: alice.token, body: { parent_id: parent.id, name: '..', size: 1 } });
    assertError(session, 422, 'VALIDATION_ERROR');
    assert.deepEqual(session.body.detail[0].loc, ['body', 'name']);
  });

  test('GET /folders/{id}/children: keyset pagination over 250 files and folders, each exactly once, by lower(name) then id', async () => {
    const big = await mkdir(stack, alice, alice.rootFolderId, 'Big');
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    const specs = Array.from({ length: 250 }, (_, i) => {
      // Mixed case and a spread of first letters, so lower(name) order differs from byte order of the names.
      let stem = '';
      for (let k = 0; k < 3; k++) {
        const ch = letters[(i * 7 + k * 11) % 26]!;
        stem += (i + k) % 3 === 0 ? ch.toUpperCase() : ch;
      }
      return { name: `${stem}${String(i).padStart(3, '0')}${i % 5 < 2 ? '.txt' : ''}`, kind: i % 5 < 2 ? ('file' as const) : ('folder' as const) };
    });
    // A few non-ASCII names too: the cursor carries lower(name), which must match the database's lower().
    specs.push({ name: 'Éclair', kind: 'folder' }, { name: 'über.txt', kind: 'file' }, { name: 'ΩMEGA', kind: 'folder' });
    const created = await pool(specs, 8, async (spec) =>
      spec.kind === 'file' ? (await put(stack, alice, big.id, spec.name, Buffer.from(`content of ${spec.name}`))).file : await mkdir(stack, alice, big.id, spec.name),
    );
    assert.equal(created.length, 253);
    const expected = [...created]
      .map((n) => ({ id: n.id as string, key: (n.name as string).toLowerCase() }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((n) => n.id);

    // Default limit is 100.
    const first = await api(stack.baseUrl, 'GET', `${V1}/folders/${big.id}/children`, { token: alice.token });
    assert.equal(first.status, 200);
    assert.equal(first.body.items.length, 100);
    assert.equal(typeof first.body.next_cursor, 'string');

    for (const limit of [100, 1, 7, 253, 1000]) {
      const seen: string[] = [];
      const kinds = new Set<string>();
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res: ApiResponse = await api(stack.baseUrl, 'GET', `${V1}/folders/${big.id}/children?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, {
          token: alice.token,
        });
        assert.equal(res.status, 200, res.text);
        assert.ok(res.body.items.length <= limit);
        for (const item of res.body.items) {
          seen.push(item.id);
          kinds.add(item.kind);
          assert.equal(item.parent_id, big.id);
        }
        cursor = res.body.next_cursor;
        if (cursor !== null) assert.equal(res.body.items.length, limit, 'a page with a next cursor is full');
        pages++;
        assert.ok(pages <= 300, 'pagination does not terminate');
      } while (cursor);
      assert.equal(new Set(seen).size, seen.length, `limit=${limit}: an item appeared twice`);
      assert.deepEqual(seen, expected, `limit=${limit}: every item exactly once, ordered by lower(name), id`);
      assert.deepEqual([...kinds].sort(), ['file', 'folder']);
      assert.equal(pages, Math.ceil(253 / limit), `limit=${limit}: page count (the last page has next_cursor null)`);
    }

    // limit out of range or not a number → 422 at ["query","limit"].
    for (const limit of ['0', '1001', '-1', 'abc', '1.5']) {
      const res = await api(stack.baseUrl, 'GET', `${V1}/folders/${big.id}/children?limit=${limit}`, { token: alice.token });
      assertError(res, 422, 'VALIDATION_ERROR', `limit=${limit}`);
      assert.deepEqual(res.body.detail[0].loc, ['query', 'limit']);
    }
    // A malformed cursor → 400.
    for (const cursor of ['not-a-cursor!!', Buffer.from('{"x":1}').toString('base64url'), Buffer.from('[1,2]').toString('base64url'), 'AAAA']) {
      const res = await api(stack.baseUrl, 'GET', `${V1}/folders/${big.id}/children?cursor=${encodeURIComponent(cursor)}`, { token: alice.token });
      assert.equal(res.status, 400, `cursor ${cursor}: ${res.text}`);
      assert.equal(res.body.code, 'INVALID_CURSOR');
    }
    // Children of a file → 404; of an unknown id → 404.
    const aFile = created.find((n) => n.kind === 'file');
    assertError(await api(stack.baseUrl, 'GET', `${V1}/folders/${aFile.id}/children`, { token: alice.token }), 404, 'NOT_FOUND');
    assertError(await api(stack.baseUrl, 'GET', `${V1}/folders/fld_nope/children`, { token: alice.token }), 404, 'NOT_FOUND');
  });

  test('rename and move: PATCH /files/{id} and /folders/{id}, collisions at the target, no move into its own subtree', async () => {
    const top = await mkdir(stack, alice, alice.rootFolderId, 'Moves');
    const src = await mkdir(stack, alice, top.id, 'src');
    const dst = await mkdir(stack, alice, top.id, 'dst');
    const data = randomData(3000);
    const { file } = await put(stack, alice, src.id, 'Report.txt', data);

    // Rename (case-only rename of itself is allowed).
    const caseOnly = await api(stack.baseUrl, 'PATCH', `${V1}/files/${file.id}`, { token: alice.token, body: { name: 'REPORT.txt' } });
    assert.equal(caseOnly.status, 200, caseOnly.text);
    assert.equal(caseOnly.body.name, 'REPORT.txt');
    const renamed = await api(stack.baseUrl, 'PATCH', `${V1}/files/${file.id}`, { token: alice.token, body: { name: 'final.txt' } });
    assert.equal(renamed.status, 200, renamed.text);
    assert.equal(renamed.body.name, 'final.txt');
    assert.equal(renamed.body.id, file.id);
    assert.equal(renamed.body.parent_id, src.id);
    assert.equal((await api(stack.baseUrl, 'GET', `${V1}/files/${file.id}`, { token: alice.token })).body.name, 'final.txt');

    // Rename onto a sibling's name (other case) → 409.
    await put(stack, alice, src.id, 'Sibling.txt', Buffer.from('s'));
    assertError(await api(stack.baseUrl, 'PATCH', `${V1}/files/${file.id}`, { token: alice.token, body: { name: 'SIBLING.TXT' } }), 409, 'NAME_CONFLICT');

    // Move into dst, where "FINAL.TXT" exists → 409; nothing moved.
    const blocker = await put(stack, alice, dst.id, 'FINAL.TXT', Buffer.from('blocker'));
    assertError(await api(stack.baseUrl, 'PATCH', `${V1}/files/${file.id}`, { token: alice.token, body: { parent_id: dst.id } }), 409, 'NAME_CONFLICT');
    assert.equal((await api(stack.baseUrl, 'GET', `${V1}/files/${file.id}`, { token: alice.token })).body.parent_id, src.id);
    // Move and rename at once → 200.
    const moved = await api(stack.baseUrl, 'PATCH', `${V1}/files/${file.id}`, { token: alice.token, body: { parent_id: dst.id, name: 'moved.txt' } });
    assert.equal(moved.status, 200, moved.text);
    assert.equal(moved.body.parent_id, dst.id);
    assert.equal(moved.body.name, 'moved.txt');
    assert.deepEqual(
      (await childrenOf(stack, alice, dst.id)).map((n) => n.id).sort(),
      [blocker.file.id, file.id].sort(),
    );
    assert.ok(!(await childrenOf(stack, alice, src.id)).some((n) => n.id === file.id));
    const got = await download(stack, `${V1}/files/${file.id}/content`, { token: alice.token });
    assert.equal(got.status, 200);
    assert.equal(sha256(got.body), sha256(data));

    // Folders: into itself or any of its descendants → 409 INVALID_MOVE.
    const a = await mkdir(stack, alice, top.id, 'a');
    const b = await mkdir(stack, alice, a.id, 'b');
    const c = await mkdir(stack, alice, b.id, 'c');
    for (const target of [a, b, c]) {
      const res = await api(stack.baseUrl, 'PATCH', `${V1}/folders/${a.id}`, { token: alice.token, body: { parent_id: target.id } });
      assertError(res, 409, 'INVALID_MOVE', `a into ${target.name}`);
    }
    assert.equal((await api(stack.baseUrl, 'GET', `${V1}/folders/${a.id}`, { token: alice.token })).body.parent_id, top.id);
    // A folder moved elsewhere keeps its subtree.
    const movedFolder = await api(stack.baseUrl, 'PATCH', `${V1}/folders/${b.id}`, { token: alice.token, body: { parent_id: dst.id } });
    assert.equal(movedFolder.status, 200, movedFolder.text);
    assert.deepEqual((await childrenOf(stack, alice, b.id)).map((n) => n.id), [c.id]);
    // Folder rename onto a sibling folder name → 409.
    assertError(await api(stack.baseUrl, 'PATCH', `${V1}/folders/${src.id}`, { token: alice.token, body: { name: 'DST' } }), 409, 'NAME_CONFLICT');

    // Wrong kind or missing target → 404; the root cannot be renamed or moved → 403.
    assertError(await api(stack.baseUrl, 'PATCH', `${V1}/folders/${file.id}`, { token: alice.token, body: { name: 'x' } }), 404, 'NOT_FOUND');
    assertError(await api(stack.baseUrl, 'PATCH', `${V1}/files/${a.id}`, { token: alice.token, body: { name: 'x' } }), 404, 'NOT_FOUND');
    assertError(await api(stack.baseUrl, 'PATCH', `${V1}/files/${file.id}`, { token: alice.token, body: { parent_id: blocker.file.id } }), 404, 'NOT_FOUND');
    assertError(await api(stack.baseUrl, 'PATCH', `${V1}/files/${file.id}`, { token: alice.token, body: { parent_id: 'fld_missing' } }), 404, 'NOT_FOUND');
    const rootRename = await api(stack.baseUrl, 'PATCH', `${V1}/folders/${alice.rootFolderId}`, { token: alice.token, body: { name: 'x' } });
    assert.equal(rootRename.status, 403, rootRename.text);
  });

  test('change log: rows for created, renamed and moved', async () => {
    const top = await mkdir(stack, alice, alice.rootFolderId, 'Changes');
    const target = await mkdir(stack, alice, top.id, 'target');
    const folder = await mkdir(stack, alice, top.id, 'logged');
    assert.deepEqual(
      (await changes(stack, folder.id)).map((c) => c.type),
      ['created'],
    );
    const { file } = await put(stack, alice, top.id, 'logged.txt', Buffer.from('v1'));
    const created = await changes(stack, file.id);
    assert.deepEqual(
      created.map((c) => c.type),
      ['created'],
    );
    assert.equal(created[0]!.tenant_id, tenantId);
    assert.equal(created[0]!.space_id, alice.spaceId);
    assert.equal(created[0]!.parent_id, top.id);
    assert.equal(created[0]!.name, 'logged.txt');
    assert.equal(created[0]!.actor_id, alice.userId);
    assert.equal(created[0]!.version_id, file.current_version_id);

    assert.equal((await api(stack.baseUrl, 'PATCH', `${V1}/files/${file.id}`, { token: alice.token, body: { name: 'renamed.txt' } })).status, 200);
    assert.equal((await api(stack.baseUrl, 'PATCH', `${V1}/files/${file.id}`, { token: alice.token, body: { parent_id: target.id } })).status, 200);
    assert.equal((await api(stack.baseUrl, 'PATCH', `${V1}/folders/${folder.id}`, { token: alice.token, body: { parent_id: target.id, name: 'logged-moved' } })).status, 200);

    const fileChanges = await changes(stack, file.id);
    assert.deepEqual(
      fileChanges.map((c) => c.type),
      ['created', 'renamed', 'moved'],
    );
    assert.equal(fileChanges[1]!.name, 'renamed.txt');
    assert.equal(fileChanges[1]!.parent_id, top.id);
    assert.equal(fileChanges[2]!.parent_id, target.id);
    assert.ok(fileChanges.every((c) => c.actor_id === alice.userId));
    const folderChanges = await changes(stack, folder.id);
    assert.deepEqual(folderChanges.map((c) => c.type).sort(), ['created', 'moved', 'renamed']);
    assert.ok(folderChanges.slice(1).every((c) => c.parent_id === target.id && c.name === 'logged-moved'));
    // A refused rename writes nothing.
    await put(stack, alice, target.id, 'taken.txt', Buffer.from('t'));
    assertError(await api(stack.baseUrl, 'PATCH', `${V1}/files/${file.id}`, { token: alice.token, body: { name: 'TAKEN.txt' } }), 409, 'NAME_CONFLICT');
    assert.equal((await changes(stack, file.id)).length, 3);
  });

  test('POST /files/{id}/copy makes a new file with identical content; 409 when the name exists at the target', async () => {
    const top = await mkdir(stack, alice, alice.rootFolderId, 'Copies');
    const dst = await mkdir(stack, alice, top.id, 'dst');
    const data = randomData(70_000);
    const { file } = await put(stack, alice, top.id, 'orig.bin', data);

    const copy = await api(stack.baseUrl, 'POST', `${V1}/files/${file.id}/copy`, { token: alice.token, body: { parent_id: dst.id } });
    assert.equal(copy.status, 201, copy.text);
    assert.notEqual(copy.body.file.id, file.id);
    assert.equal(copy.body.file.name, 'orig.bin');
    assert.equal(copy.body.file.parent_id, dst.id);
    assert.equal(copy.body.file.size, data.length);
    assert.equal(copy.body.file.checksum_sha256, sha256(data));
    assert.equal(copy.body.version.number, 1);
    assert.equal(copy.body.version.is_current, true);
    const got = await download(stack, `${V1}/files/${copy.body.file.id}/content`, { token: alice.token });
    assert.equal(got.status, 200);
    assert.equal(sha256(got.body), sha256(data));
    assert.equal(got.headers.get('x-checksum-sha256'), sha256(data));
    assert.deepEqual(
      (await changes(stack, copy.body.file.id)).map((c) => c.type),
      ['created'],
    );

    // With a new name in the same folder.
    const named = await api(stack.baseUrl, 'POST', `${V1}/files/${file.id}/copy`, { token: alice.token, body: { parent_id: top.id, name: 'orig (copy).bin' } });
    assert.equal(named.status, 201, named.text);
    assert.equal(named.body.file.name, 'orig (copy).bin');
    assert.equal(sha256((await download(stack, `${V1}/files/${named.body.file.id}/content`, { token: alice.token })).body), sha256(data));

    // The copy is independent: a new version of the original does not change it.
    await put(stack, alice, top.id, 'orig.bin', Buffer.from('changed'));
    assert.equal(sha256((await download(stack, `${V1}/files/${copy.body.file.id}/content`, { token: alice.token })).body), sha256(data));

    // Name taken at the target (same folder, no name; other case; a folder of that name) → 409.
    assertError(await api(stack.baseUrl, 'POST', `${V1}/files/${file.id}/copy`, { token: alice.token, body: { parent_id: top.id } }), 409, 'NAME_CONFLICT', 'same folder');
    assertError(await api(stack.baseUrl, 'POST', `${V1}/files/${file.id}/copy`, { token: alice.token, body: { parent_id: dst.id } }), 409, 'NAME_CONFLICT', 'again');
    assertError(await api(stack.baseUrl, 'POST', `${V1}/files/${file.id}/copy`, { token: alice.token, body: { parent_id: dst.id, name: 'ORIG.BIN' } }), 409, 'NAME_CONFLICT', 'other case');
    await mkdir(stack, alice, dst.id, 'a-folder');
    assertError(await api(stack.baseUrl, 'POST', `${V1}/files/${file.id}/copy`, { token: alice.token, body: { parent_id: dst.id, name: 'A-Folder' } }), 409, 'NAME_CONFLICT', 'folder');
    assert.equal((await childrenOf(stack, alice, dst.id)).length, 2);
    // Bad name → 422; a folder cannot be copied through /files → 404.
    const badName = await api(stack.baseUrl, 'POST', `${V1}/files/${file.id}/copy`, { token: alice.token, body: { parent_id: dst.id, name: '..' } });
    assertError(badName, 422, 'VALIDATION_ERROR');
    assert.deepEqual(badName.body.detail[0].loc, ['body', 'name']);
    assertError(await api(stack.baseUrl, 'POST', `${V1}/files/${dst.id}/copy`, { token: alice.token, body: { parent_id: top.id } }), 404, 'NOT_FOUND');
  });

  test('uploading to an existing name makes a new version of the same file; base version mismatches are 409 VERSION_CONFLICT', async () => {
    const top = await mkdir(stack, alice, alice.rootFolderId, 'Versions');
    const v1 = await uploadDirect(stack, alice.token, top.id, 'doc.txt', Buffer.from('one'));
    assert.equal(v1.status, 201, JSON.stringify(v1.body));
    assert.equal(v1.body.version.number, 1);
    const v2 = await uploadDirect(stack, alice.token, top.id, 'doc.txt', Buffer.from('two!'));
    assert.equal(v2.status, 200, JSON.stringify(v2.body));
    assert.equal(v2.body.file.id, v1.body.file.id);
    assert.equal(v2.body.version.number, 2);
    assert.equal(v2.body.version.is_current, true);
    assert.equal(v2.body.file.current_version_id, v2.body.version.id);
    assert.equal(v2.body.file.size, 4);
    // Case-insensitive: the same file, not a second one.
    const v3 = await uploadDirect(stack, alice.token, top.id, 'DOC.TXT', Buffer.from('three'));
    assert.equal(v3.status, 200, JSON.stringify(v3.body));
    assert.equal(v3.body.file.id, v1.body.file.id);
    assert.equal(v3.body.version.number, 3);
    assert.equal((await childrenOf(stack, alice, top.id)).length, 1);
    assert.deepEqual(
      (await changes(stack, v1.body.file.id)).map((c) => c.type),
      ['created', 'updated', 'updated'],
    );
    const current = await download(stack, `${V1}/files/${v1.body.file.id}/content`, { token: alice.token });
    assert.equal(current.body.toString(), 'three');

    // A stale X-Base-Version-Id → 409 VERSION_CONFLICT naming the current version; nothing committed.
    const stale = await uploadDirect(stack, alice.token, top.id, 'doc.txt', Buffer.from('four'), { 'x-base-version-id': v1.body.version.id });
    assert.equal(stale.status, 409, JSON.stringify(stale.body));
    assert.equal(stale.body.code, 'VERSION_CONFLICT');
    assert.equal(stale.body.details?.current_version_id, v3.body.version.id);
    const unknown = await uploadDirect(stack, alice.token, top.id, 'doc.txt', Buffer.from('four'), { 'x-base-version-id': 'ver_bogus' });
    assert.equal(unknown.status, 409, JSON.stringify(unknown.body));
    assert.equal(unknown.body.code, 'VERSION_CONFLICT');
    const versions = await api(stack.baseUrl, 'GET', `${V1}/files/${v1.body.file.id}/versions`, { token: alice.token });
    assert.equal(versions.body.items.length, 3);
    // The right base → 200, version 4.
    const ok = await uploadDirect(stack, alice.token, top.id, 'doc.txt', Buffer.from('four'), { 'x-base-version-id': v3.body.version.id });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.version.number, 4);
    // Resumable session with a stale base_version_id → 409 at creation.
    const session = await api(stack.baseUrl, 'POST', `${V1}/uploads`, {
      token: alice.token,
      body: { parent_id: top.id, name: 'doc.txt', size: 4, base_version_id: v3.body.version.id },
    });
    assertError(session, 409, 'VERSION_CONFLICT');
    // A base version for a name that does not exist yet → 409 as well.
    const fresh = await uploadDirect(stack, alice.token, top.id, 'new.txt', Buffer.from('n'), { 'x-base-version-id': v3.body.version.id });
    assert.equal(fresh.status, 409, JSON.stringify(fresh.body));
    assert.equal(fresh.body.code, 'VERSION_CONFLICT');
  });

  test('concurrent creations of one name: exactly one folder, or one file with versions, never two siblings', async () => {
    const top = await mkdir(stack, alice, alice.rootFolderId, 'Races');
    const folders = await Promise.all(
      Array.from({ length: 8 }, (_, i) => api(stack.baseUrl, 'POST', `${V1}/folders`, { token: alice.token, body: { parent_id: top.id, name: i % 2 ? 'Same' : 'same' } })),
    );
    assert.deepEqual(
      folders.map((r) => r.status).sort(),
      [201, 409, 409, 409, 409, 409, 409, 409],
    );
    assert.ok(folders.filter((r) => r.status === 409).every((r) => r.body.code === 'NAME_CONFLICT'));
    const uploads = await Promise.all(Array.from({ length: 6 }, (_, i) => uploadDirect(stack, alice.token, top.id, 'race.txt', Buffer.from(`body ${i}`))));
    assert.deepEqual(
      uploads.map((r) => r.status).sort(),
      [200, 200, 200, 200, 200, 201],
    );
    assert.equal(new Set(uploads.map((r) => r.body.file.id)).size, 1);
    assert.deepEqual(
      uploads.map((r) => r.body.version.number).sort(),
      [1, 2, 3, 4, 5, 6],
    );
    const kids = await childrenOf(stack, alice, top.id);
    assert.deepEqual(
      kids.map((k) => k.name.toLowerCase()),
      ['race.txt', 'same'],
    );
  });

  describe('isolation', () => {
    let secret: { folder: any; file: any; version: any; trashed: any; name: string; content: Buffer };

    before(async () => {
      const folder = await mkdir(stack, alice, alice.rootFolderId, 'Secret-Folder-7f3a');
      const content = Buffer.from('TOP-SECRET-CONTENT-91c2');
      const name = 'secret-plan-7f3a.txt';
      const v1 = await put(stack, alice, folder.id, name, Buffer.from('TOP-SECRET-CONTENT-v1'));
      const v2 = await put(stack, alice, folder.id, name, content);
      const trashed = await put(stack, alice, folder.id, 'secret-trashed-7f3a.txt', Buffer.from('TOP-SECRET-TRASHED'));
      assert.equal((await api(stack.baseUrl, 'DELETE', `${V1}/files/${trashed.file.id}`, { token: alice.token })).status, 204);
      secret = { folder, file: v2.file, version: v1.version, trashed: trashed.file, name, content };
    });

    /** Every file/folder endpoint with A's ids, as `user` (another tenant, or another user of A's tenant). */
    async function probeEverything(intruder: TestUser, intruderAdminToken: string | null) {
      const { folder, file, version, trashed } = secret;
      const own = await mkdir(stack, intruder, intruder.rootFolderId, `probe-${Math.random().toString(36).slice(2, 8)}`);
      const ownFile = await put(stack, intruder, own.id, 'mine.txt', Buffer.from('mine'));
      const t = intruder.token;
      const calls: [string, string, unknown?][] = [
        ['GET', `/files/${file.id}`],
        ['PATCH', `/files/${file.id}`, { name: 'pwned.txt' }],
        ['PATCH', `/files/${file.id}`, { parent_id: own.id }],
        ['DELETE', `/files/${file.id}`],
        ['GET', `/folders/${folder.id}`],
        ['PATCH', `/folders/${folder.id}`, { name: 'pwned' }],
        ['DELETE', `/folders/${folder.id}`],
        ['GET', `/folders/${folder.id}/children`],
        ['GET', `/folders/${alice.rootFolderId}/children`],
        ['GET', `/files/${file.id}/content`],
        ['GET', `/files/${file.id}/versions`],
        ['GET', `/files/${file.id}/versions/${version.id}/content`],
        ['POST', `/files/${file.id}/versions/${version.id}/restore`],
        ['GET', `/files/${file.id}/download-url`],
        ['POST', `/files/${file.id}/copy`, { parent_id: own.id }],
        ['POST', `/files/${ownFile.file.id}/copy`, { parent_id: folder.id }],
        ['PATCH', `/files/${ownFile.file.id}`, { parent_id: folder.id }],
        ['POST', `/files/${file.id}/lock`],
        ['DELETE', `/files/${file.id}/lock`],
        ['DELETE', `/files/${file.id}/lock?force=true`],
        ['POST', `/folders`, { parent_id: folder.id, name: 'intruder' }],
        ['POST', `/folders`, { parent_id: alice.rootFolderId, name: 'intruder' }],
        ['POST', `/uploads`, { parent_id: folder.id, name: 'intruder.txt', size: 10 }],
        ['POST', `/trash/${trashed.id}/restore`],
        ['DELETE', `/trash/${trashed.id}`],
      ];
      for (const [method, path, body] of calls) {
        const res = await api(stack.baseUrl, method, `${V1}${path}`, { token: t, body });
        assertError(res, 404, 'NOT_FOUND', `${method} ${path}`);
        for (const leak of [secret.name, 'Secret-Folder', 'TOP-SECRET', 'secret-trashed']) assert.ok(!res.text.includes(leak), `${method} ${path} leaks ${leak}`);
      }
      if (intruderAdminToken) {
        // Even the intruder's tenant admin.
        for (const [method, path] of [
          ['DELETE', `/files/${file.id}/lock?force=true`],
          ['GET', `/files/${file.id}`],
        ] as const) {
          assertError(await api(stack.baseUrl, method, `${V1}${path}`, { token: intruderAdminToken }), 404, 'NOT_FOUND', `admin ${method} ${path}`);
        }
      }
      // Direct upload into A's folder.
      const direct = await uploadDirect(stack, t, folder.id, 'intruder.txt', Buffer.from('x'));
      assert.equal(direct.status, 404, JSON.stringify(direct.body));
      assert.equal(direct.body.code, 'NOT_FOUND');
      const overwrite = await uploadDirect(stack, t, folder.id, secret.name, Buffer.from('x'));
      assert.equal(overwrite.status, 404, JSON.stringify(overwrite.body));
      // Nothing of A's is listed to the intruder.
      const trash = await api(stack.baseUrl, 'GET', `${V1}/trash`, { token: t });
      assert.equal(trash.status, 200);
      assert.ok(!trash.text.includes('secret-trashed'), 'trash leaks');
      const spaces = await api(stack.baseUrl, 'GET', `${V1}/spaces`, { token: t });
      assert.deepEqual(
        spaces.body.items.map((s: any) => s.id),
        [intruder.spaceId],
      );
    }

    async function assertUntouched() {
      const { folder, file, trashed } = secret;
      const f = await api(stack.baseUrl, 'GET', `${V1}/files/${file.id}`, { token: alice.token });
      assert.equal(f.status, 200);
      assert.equal(f.body.name, secret.name);
      assert.equal(f.body.parent_id, folder.id);
      assert.equal(f.body.lock, null);
      assert.equal(f.body.current_version_id, file.current_version_id);
      const kids = await childrenOf(stack, alice, folder.id);
      assert.deepEqual(
        kids.map((k) => k.name),
        [secret.name],
      );
      const got = await download(stack, `${V1}/files/${file.id}/content`, { token: alice.token });
      assert.deepEqual(got.body, secret.content);
      assert.equal((await api(stack.baseUrl, 'GET', `${V1}/files/${trashed.id}`, { token: alice.token })).body.code, 'IN_TRASH');
      assert.equal((await api(stack.baseUrl, 'GET', `${V1}/folders/${alice.rootFolderId}`, { token: alice.token })).status, 200);
    }

    test("another tenant's user gets 404 on every endpoint with tenant A's ids, and A's data is untouched", async () => {
      const tenantB = (await createTestTenant(stack)).id;
      const mallory = await newUser(stack, tenantB, 'mallory');
      const bAdmin = await tokenFor(stack, tenantB, 'b-admin', { admin: true });
      // A subject equal to A's user's subject in another tenant is still someone else.
      const aliceInB = await newUser(stack, tenantB, 'alice');
      assert.notEqual(aliceInB.userId, alice.userId);
      await probeEverything(mallory, bAdmin);
      await probeEverything(aliceInB, null);
      const quota = await api(stack.baseUrl, 'GET', `${V1}/quotas/usage/users/${alice.userId}`, { token: bAdmin });
      assertError(quota, 404, 'NOT_FOUND', 'quota of A user');
      await assertUntouched();
    });

    test("another user of the same tenant gets 404 on the first user's personal files", async () => {
      const bob = await newUser(stack, tenantId, 'bob');
      await probeEverything(bob, null);
      await assertUntouched();
    });
  });
});
