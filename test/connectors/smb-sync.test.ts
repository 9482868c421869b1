// SMB connector syncs against a real private Samba (issue #9 items 1–4): initial import (nested folders,
// spaces, Unicode, names differing only in case, excluded Office/OS files, a 50 MiB file byte-exact), an
// incremental run (add, change, rename, delete at the source → versions and trash), a no-change run, an
// unreadable file (error row, partially_failed), conflict resolution, wrong password (test 401, job failed
// with 401 semantics), and smbd stopped (job failed with 502 semantics after retries).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { download, newUser, uploadDirect, type TestUser } from '../helpers/files';
import { assertError } from '../helpers/assertions';
import { startSamba, type SambaServer } from '../helpers/samba';

const V1 = '/api/v1';
const MiB = 1024 * 1024;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('SMB connector sync against Samba', () => {
  let stack: TestStack;
  let samba: SambaServer;
  let admin: TestUser;
  let connectorId: string;
  const files = new Map<string, Buffer>();

  async function put(relative: string, data: Buffer, mtimeSeconds?: number) {
    const full = path.join(samba.shareDir, relative);
    await mkdir(path.dirname(full), { recursive: true });
    await writeFile(full, data);
    if (mtimeSeconds) await utimes(full, mtimeSeconds, mtimeSeconds);
    files.set(relative, data);
  }

  async function syncAndWait(id = connectorId): Promise<any> {
    const started = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${id}/sync`, { token: admin.token });
    assert.equal(started.status, 202, started.text);
    const deadline = Date.now() + 240_000;
    for (;;) {
      const job = await api(stack.baseUrl, 'GET', `${V1}/smb-connectors/${id}/jobs/${started.body.job.id}`, { token: admin.token });
      if (!['queued', 'running'].includes(job.body.status)) return job.body;
      if (Date.now() > deadline) assert.fail(`job still ${job.body.status}: ${job.text}`);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }

  /** Source path → imported file id, from the import state. */
  async function imported(id = connectorId): Promise<Map<string, { fileId: string; versionId: string }>> {
    const rows = await stack.services.db.selectFrom('connector_import_state').selectAll().where('connector_id', '=', id).where('kind', '=', 'file').execute();
    return new Map(rows.map((r) => [r.path, { fileId: r.file_id!, versionId: r.version_id! }]));
  }

  async function contentOf(fileId: string): Promise<Buffer> {
    const got = await download(stack, `${V1}/files/${fileId}/content`, { token: admin.token });
    assert.equal(got.status, 200);
    return got.body;
  }

  before(async () => {
    samba = await startSamba({ enforcePermissions: true });
    stack = await startTestStack({ workers: true });
    admin = await newUser(stack, (await createTestTenant(stack)).id, 'admin', { admin: true });
    const created = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors`, {
      token: admin.token,
      body: { host: samba.host, port: samba.port, share: samba.share, username: samba.username, password: samba.password, target_folder_id: admin.rootFolderId, conflict_resolution: 'skip' },
    });
    assert.equal(created.status, 201, created.text);
    connectorId = created.body.id;
  });
  after(async () => {
    await stack?.close();
    await samba?.dispose();
  });

  test('the test endpoint answers 200 against the real server', async () => {
    const res = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${connectorId}/test`, { token: admin.token });
    assert.equal(res.status, 200, res.text);
  });

  test('initial import: nested, spaces, Unicode, case-differing names, excludes, 50 MiB byte-exact', async () => {
    const t = Math.floor(Date.now() / 1000) - 3600;
    await put('a.txt', Buffer.from('alpha'), t);
    await put('b.txt', Buffer.from('bravo'), t);
    await put('dir with space/Übersicht – 2024.txt', Buffer.from('unicode'), t);
    await put('nested/deep/deeper/x.bin', randomBytes(70_000), t);
    await put('Case.txt', Buffer.from('upper'), t);
    await put('case.txt', Buffer.from('lower'), t);
    await put('big/large.bin', randomBytes(50 * MiB), t);
    for (let i = 0; i < 30; i++) await put(`many/file ${i}.txt`, Buffer.from(`n${i}`), t);
    // Excluded by default: never imported, counted as skipped.
    await put('~$report.docx', Buffer.from('lock'), t);
    await put('nested/Thumbs.db', Buffer.from('thumbs'), t);
    await put('.DS_Store', Buffer.from('ds'), t);
    for (const p of ['~$report.docx', 'nested/Thumbs.db', '.DS_Store']) files.delete(p);

    const job = await syncAndWait();
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    assert.equal(job.files_added, files.size);
    assert.equal(job.files_scanned, files.size);
    assert.equal(job.files_skipped, 3);
    assert.equal(job.error_count, 0);
    assert.ok(job.bytes >= 50 * MiB);
    const state = await imported();
    assert.deepEqual([...state.keys()].sort(), [...files.keys()].sort());
    for (const [p, data] of files) assert.equal(sha256(await contentOf(state.get(p)!.fileId)), sha256(data), p);
    assert.notEqual(state.get('Case.txt')!.fileId, state.get('case.txt')!.fileId, 'case-differing names are two files');
    // The tree is mirrored under the target folder.
    const nested = await stack.services.db.selectFrom('nodes').select(['name', 'parent_id']).where('id', '=', state.get('nested/deep/deeper/x.bin')!.fileId).executeTakeFirstOrThrow();
    const parent = await stack.services.db.selectFrom('nodes').select('name').where('id', '=', nested.parent_id!).executeTakeFirstOrThrow();
    assert.equal(parent.name, 'deeper');
    assert.match(job.stderr, /job succeeded/);
    assert.ok(!job.stderr.includes(samba.password));
  });

  test('incremental: add, change, rename, delete at the source; a run with nothing changed imports nothing', async () => {
    const before = await imported();
    const folderOf = async (fileId: string) => (await stack.services.db.selectFrom('nodes').select('parent_id').where('id', '=', fileId).executeTakeFirstOrThrow()).parent_id!;
    const t = Math.floor(Date.now() / 1000);
    await put('a.txt', Buffer.from('alpha, changed'), t);
    await put('new/fresh.txt', Buffer.from('fresh'), t);
    await rename(path.join(samba.shareDir, 'b.txt'), path.join(samba.shareDir, 'b-renamed.txt'));
    files.set('b-renamed.txt', files.get('b.txt')!);
    files.delete('b.txt');
    await rm(path.join(samba.shareDir, 'nested/deep/deeper/x.bin'));
    files.delete('nested/deep/deeper/x.bin');
    // A whole directory tree removed at the source; an empty directory added.
    await rm(path.join(samba.shareDir, 'nested/deep'), { recursive: true });
    await mkdir(path.join(samba.shareDir, 'empty at source'));
    // A directory removed at the source whose folder holds a user's own file: the folder stays for that file.
    const unicodeFolder = await folderOf(before.get('dir with space/Übersicht – 2024.txt')!.fileId);
    assert.equal((await uploadDirect(stack, admin.token, unicodeFolder, 'my notes.txt', Buffer.from('mine'))).status, 201);
    await rm(path.join(samba.shareDir, 'dir with space'), { recursive: true });
    files.delete('dir with space/Übersicht – 2024.txt');
    const { db } = stack.services;
    const deeper = await folderOf(before.get('nested/deep/deeper/x.bin')!.fileId);
    const deep = await folderOf(deeper);
    const nested = await folderOf(deep);

    const job = await syncAndWait();
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    assert.equal(job.files_added, 2, 'fresh.txt and b-renamed.txt');
    assert.equal(job.files_updated, 1, 'a.txt');
    assert.equal(job.files_deleted, 3, 'b.txt, x.bin and Übersicht – 2024.txt');
    const after = await imported();
    assert.deepEqual([...after.keys()].sort(), [...files.keys()].sort());
    assert.equal(after.get('a.txt')!.fileId, before.get('a.txt')!.fileId, 'a change is a new version of the same file');
    assert.equal((await contentOf(after.get('a.txt')!.fileId)).toString(), 'alpha, changed');
    const versions = await stack.services.db.selectFrom('versions').select('id').where('file_id', '=', after.get('a.txt')!.fileId).execute();
    assert.equal(versions.length, 2);
    for (const gone of ['b.txt', 'nested/deep/deeper/x.bin', 'dir with space/Übersicht – 2024.txt']) {
      const node = await stack.services.db.selectFrom('nodes').select('deleted_at').where('id', '=', before.get(gone)!.fileId).executeTakeFirstOrThrow();
      assert.ok(node.deleted_at, `${gone} is in the trash`);
    }
    // The vanished directories' folders went to the trash; the parent that still exists at the source stayed.
    const liveness = async (id: string) => Boolean((await db.selectFrom('nodes').select('deleted_at').where('id', '=', id).executeTakeFirstOrThrow()).deleted_at);
    assert.deepEqual([await liveness(deeper), await liveness(deep), await liveness(nested)], [true, true, false]);
    assert.equal(await liveness(unicodeFolder), false, 'the folder holding a user\'s file stays');
    assert.match(job.stderr, /kept dir with space: FOLDER_NOT_EMPTY/);
    // The empty source directory is mirrored as an empty folder under the target.
    const empty = await db.selectFrom('nodes').select(['id', 'kind']).where('parent_id', '=', admin.rootFolderId).where('name', '=', 'empty at source').where('deleted_at', 'is', null).executeTakeFirst();
    assert.equal(empty?.kind, 'folder');

    const versionCount = async () => Number((await stack.services.db.selectFrom('versions').select((eb) => eb.fn.countAll().as('n')).where('tenant_id', '=', (await stack.services.db.selectFrom('connectors').select('tenant_id').where('id', '=', connectorId).executeTakeFirstOrThrow()).tenant_id).executeTakeFirstOrThrow()).n);
    const versionsBefore = await versionCount();
    const started = Date.now();
    const idle = await syncAndWait();
    assert.equal(idle.status, 'succeeded');
    assert.deepEqual([idle.files_added, idle.files_updated, idle.files_deleted], [0, 0, 0]);
    assert.equal(idle.files_scanned, files.size);
    assert.equal(await versionCount(), versionsBefore, 'no new versions');
    assert.ok(Date.now() - started < 30_000);
  });

  test('conflict_resolution skip: a file changed in ScaiDrive and at the source keeps the ScaiDrive version', async () => {
    const state = await imported();
    const fileId = state.get('many/file 1.txt')!.fileId;
    const parent = await stack.services.db.selectFrom('nodes').select('parent_id').where('id', '=', fileId).executeTakeFirstOrThrow();
    const mine = await uploadDirect(stack, admin.token, parent.parent_id!, 'file 1.txt', Buffer.from('edited in ScaiDrive'));
    assert.equal(mine.status, 200, JSON.stringify(mine.body));
    await put('many/file 1.txt', Buffer.from('edited at the source'), Math.floor(Date.now() / 1000) + 5);
    const job = await syncAndWait();
    assert.equal(job.status, 'succeeded');
    assert.equal(job.files_skipped, 4, 'the conflict and the three excluded files');
    assert.equal((await contentOf(fileId)).toString(), 'edited in ScaiDrive');
  });

  test('an unreadable file is an error row and the job ends partially_failed', async () => {
    await put('secret/locked.txt', Buffer.from('no'), Math.floor(Date.now() / 1000));
    await samba.makeUnreadable('secret/locked.txt');
    await put('secret/open.txt', Buffer.from('yes'), Math.floor(Date.now() / 1000));
    const job = await syncAndWait();
    assert.equal(job.status, 'partially_failed', JSON.stringify(job));
    assert.equal(job.error_count, 1);
    assert.equal(job.recent_errors[0].path, 'secret/locked.txt');
    assert.equal(job.recent_errors[0].code, 'SOURCE_ACCESS_DENIED');
    assert.ok((await imported()).has('secret/open.txt'), 'the rest of the directory was imported');
  });

  test('per-directory timeout: that directory becomes an error row, the job goes on, its files are not trashed', async () => {
    const folder = await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: admin.token, body: { parent_id: admin.rootFolderId, name: 'timeout-target' } });
    assert.equal(folder.status, 201, folder.text);
    const created = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors`, {
      token: admin.token,
      body: { host: samba.host, port: samba.port, share: samba.share, path: 'slow', username: samba.username, password: samba.password, target_folder_id: folder.body.id, directory_timeout_seconds: 1 },
    });
    assert.equal(created.status, 201, created.text);
    const t = Math.floor(Date.now() / 1000);
    await put('slow/fast/one.txt', Buffer.from('one'), t);
    // Importing 400 files (each a commit) takes longer than the 1 s the directory may take: the last ones are not reached.
    for (let i = 0; i < 400; i++) await put(`slow/f ${String(i).padStart(3, '0')}.txt`, Buffer.from(`slow ${i}`), t);
    await put('slow/z-after.txt', Buffer.from('late'), t);
    const job = await syncAndWait(created.body.id);
    assert.equal(job.status, 'partially_failed', JSON.stringify(job));
    assert.ok(job.recent_errors.some((e: any) => e.code === 'DIRECTORY_TIMEOUT' && e.path === ''), JSON.stringify(job.recent_errors));
    const state = await imported(created.body.id);
    assert.ok(state.has('fast/one.txt'), 'the other directory was imported');
    assert.ok(!state.has('z-after.txt'), 'the timed-out directory stopped');
    assert.ok(job.files_added < 400, `stopped early (${job.files_added} added)`);
    assert.equal(job.files_deleted, 0);
  });

  test('wrong password: test endpoint 401, job failed with 401 semantics', async () => {
    const patched = await api(stack.baseUrl, 'PATCH', `${V1}/smb-connectors/${connectorId}`, { token: admin.token, body: { password: 'wrong-password' } });
    assert.equal(patched.status, 200);
    assertError(await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${connectorId}/test`, { token: admin.token }), 401, 'CONNECTOR_AUTH_FAILED');
    const job = await syncAndWait();
    assert.equal(job.status, 'failed');
    assert.deepEqual({ code: job.error.code, status: job.error.status }, { code: 'CONNECTOR_AUTH_FAILED', status: 401 });
    assert.ok(!JSON.stringify(job).includes('wrong-password'));
    await api(stack.baseUrl, 'PATCH', `${V1}/smb-connectors/${connectorId}`, { token: admin.token, body: { password: samba.password } });
  });

  test('smbd stopped: retries, then failed with 502 semantics; nothing trashed', async () => {
    // This tenant's trash only (other test files run beside this one).
    const trashed = () => stack.services.db.selectFrom('nodes').select('id').where('created_by', '=', admin.userId).where('deleted_at', 'is not', null).execute();
    const trashedBefore = await trashed();
    await samba.stop();
    try {
      assertError(await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${connectorId}/test`, { token: admin.token }), 502, 'CONNECTOR_UNREACHABLE');
      const job = await syncAndWait();
      assert.equal(job.status, 'failed');
      assert.deepEqual({ code: job.error.code, status: job.error.status }, { code: 'CONNECTOR_UNREACHABLE', status: 502 });
    } finally {
      await samba.start();
    }
    const trashedAfter = await trashed();
    assert.equal(trashedAfter.length, trashedBefore.length, 'a failed listing trashes nothing');
    const again = await syncAndWait();
    assert.ok(['succeeded', 'partially_failed'].includes(again.status), 'the next job works again');
  });
});
