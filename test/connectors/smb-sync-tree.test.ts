// Larger trees and conflict policies against a real Samba: 2,000 files in nested folders (spaces, Unicode,
// case-differing names) imported once and then found unchanged; a file changed both in ScaiDrive and at the
// source under overwrite, keep_both and manual; a second Samba with `server signing = mandatory`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { download, newUser, uploadDirect, type TestUser } from '../helpers/files';
import { startSamba, type SambaServer } from '../helpers/samba';

const V1 = '/api/v1';

describe('SMB connector: large tree and conflict policies', () => {
  let stack: TestStack;
  let samba: SambaServer;
  let admin: TestUser;

  async function put(relative: string, data: string, mtimeSeconds: number) {
    const full = path.join(samba.shareDir, relative);
    await mkdir(path.dirname(full), { recursive: true });
    await writeFile(full, data);
    await utimes(full, mtimeSeconds, mtimeSeconds);
  }

  async function connector(sourcePath: string, body: Record<string, unknown> = {}): Promise<string> {
    const folder = await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: admin.token, body: { parent_id: admin.rootFolderId, name: `target ${sourcePath} ${randomUUID().slice(0, 8)}` } });
    assert.equal(folder.status, 201, folder.text);
    const created = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors`, {
      token: admin.token,
      body: { host: samba.host, port: samba.port, share: samba.share, path: sourcePath, username: samba.username, password: samba.password, target_folder_id: folder.body.id, ...body },
    });
    assert.equal(created.status, 201, created.text);
    return created.body.id;
  }

  async function syncAndWait(id: string): Promise<any> {
    const started = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${id}/sync`, { token: admin.token });
    assert.equal(started.status, 202, started.text);
    const deadline = Date.now() + 280_000;
    for (;;) {
      const job = await api(stack.baseUrl, 'GET', `${V1}/smb-connectors/${id}/jobs/${started.body.job.id}`, { token: admin.token });
      if (!['queued', 'running'].includes(job.body.status)) return job.body;
      if (Date.now() > deadline) assert.fail(`job still ${job.body.status}: ${job.text}`);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }

  const stateOf = (id: string) => stack.services.db.selectFrom('connector_import_state').selectAll().where('connector_id', '=', id).where('kind', '=', 'file').execute();
  const text = async (fileId: string) => (await download(stack, `${V1}/files/${fileId}/content`, { token: admin.token })).body.toString();

  before(async () => {
    samba = await startSamba();
    stack = await startTestStack({ workers: true });
    admin = await newUser(stack, (await createTestTenant(stack)).id, 'admin', { admin: true });
  });
  after(async () => {
    await stack?.close();
    await samba?.dispose();
  });

  test('2,000 files in nested folders: imported once, then unchanged', async () => {
    const t = Math.floor(Date.now() / 1000) - 60;
    const expected: string[] = [];
    for (let a = 0; a < 10; a++) {
      for (let b = 0; b < 4; b++) {
        for (let f = 0; f < 50; f++) {
          const name = f === 0 ? 'Straße Ünïcødé.txt' : f === 1 ? 'STRASSE.txt' : f === 2 ? 'strasse.txt' : `file ${f}.txt`;
          const relative = `team ${a}/projekt ${b} – ñ/${name}`;
          await put(`tree/${relative}`, `${a}/${b}/${f}`, t);
          expected.push(relative);
        }
      }
    }
    const id = await connector('tree');
    const first = await syncAndWait(id);
    assert.equal(first.status, 'succeeded', JSON.stringify({ ...first, stderr: undefined }));
    assert.equal(first.files_added, 2000);
    const state = await stateOf(id);
    assert.deepEqual(state.map((s) => s.path).sort(), expected.sort());
    assert.equal(new Set(state.map((s) => s.file_id)).size, 2000, 'every source file is its own ScaiDrive file');
    const sample = state.find((s) => s.path === 'team 3/projekt 2 – ñ/strasse.txt')!;
    assert.equal(await text(sample.file_id!), '3/2/2');

    const started = Date.now();
    const second = await syncAndWait(id);
    assert.equal(second.status, 'succeeded');
    assert.deepEqual([second.files_scanned, second.files_added, second.files_updated, second.files_deleted], [2000, 0, 0, 0]);
    const seconds = (Date.now() - started) / 1000;
    assert.ok(seconds < 60, `a no-change run of 2,000 files took ${seconds} s`);
  });

  test('smbd stopped mid-run: retries, then failed with 502 semantics, nothing trashed; the next job completes it', async () => {
    const t = Math.floor(Date.now() / 1000) - 60;
    for (let d = 0; d < 4; d++) for (let f = 0; f < 100; f++) await put(`midrun/d ${d}/f ${f}.txt`, `${d}/${f}`, t);
    const id = await connector('midrun');
    const started = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${id}/sync`, { token: admin.token });
    assert.equal(started.status, 202);
    const jobId = started.body.job.id;
    const { db } = stack.services;
    const deadline = Date.now() + 120_000;
    while ((await stateOf(id)).filter((s) => s.version_id).length < 50) {
      if (Date.now() > deadline) assert.fail('the import never got going');
      await new Promise((r) => setTimeout(r, 50));
    }
    await samba.stop();
    let failed: any;
    try {
      for (;;) {
        failed = (await api(stack.baseUrl, 'GET', `${V1}/smb-connectors/${id}/jobs/${jobId}`, { token: admin.token })).body;
        if (!['queued', 'running'].includes(failed.status)) break;
        if (Date.now() > deadline + 180_000) assert.fail('the job never failed');
        await new Promise((r) => setTimeout(r, 300));
      }
    } finally {
      await samba.start();
    }
    assert.equal(failed.status, 'failed', JSON.stringify({ ...failed, stderr: undefined }));
    assert.deepEqual({ code: failed.error.code, status: failed.error.status }, { code: 'CONNECTOR_UNREACHABLE', status: 502 });
    assert.ok(failed.files_added > 0 && failed.files_added < 400);
    assert.equal(failed.files_deleted, 0);

    const resumed = await syncAndWait(id);
    assert.equal(resumed.status, 'succeeded', JSON.stringify({ ...resumed, stderr: undefined }));
    const state = await stateOf(id);
    assert.equal(state.length, 400);
    const versions = await db.selectFrom('versions').select('file_id').where('file_id', 'in', state.map((s) => s.file_id!)).execute();
    assert.equal(versions.length, 400, 'one version per file across the failed and the resumed job');
    assert.equal(resumed.files_added + failed.files_added, 400);
  });

  test('a server with server signing = mandatory: import and incremental run, every message signed', async () => {
    const signed = await startSamba({ signing: 'mandatory' });
    try {
      const t = Math.floor(Date.now() / 1000) - 60;
      const write = async (relative: string, data: string | Buffer, mtime = t) => {
        const full = path.join(signed.shareDir, relative);
        await mkdir(path.dirname(full), { recursive: true });
        await writeFile(full, data);
        await utimes(full, mtime, mtime);
      };
      const big = randomBytes(3 * 1024 * 1024 + 17); // several multi-credit reads, each signed
      await write('report.bin', big);
      for (let i = 0; i < 20; i++) await write(`notes/n ${i}.txt`, `note ${i}`);
      const folder = await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: admin.token, body: { parent_id: admin.rootFolderId, name: `signed ${randomUUID().slice(0, 8)}` } });
      const created = await api(stack.baseUrl, 'POST', `${V1}/smb-connectors`, {
        token: admin.token,
        body: { host: signed.host, port: signed.port, share: signed.share, username: signed.username, password: signed.password, target_folder_id: folder.body.id },
      });
      assert.equal(created.status, 201, created.text);
      const id = created.body.id;
      assert.equal((await api(stack.baseUrl, 'POST', `${V1}/smb-connectors/${id}/test`, { token: admin.token })).status, 200);
      const first = await syncAndWait(id);
      assert.equal(first.status, 'succeeded', JSON.stringify({ ...first, stderr: undefined }));
      assert.equal(first.files_added, 21);
      const state = await stateOf(id);
      const report = state.find((s) => s.path === 'report.bin')!;
      const got = await download(stack, `${V1}/files/${report.file_id}/content`, { token: admin.token });
      assert.equal(createHash('sha256').update(got.body).digest('hex'), createHash('sha256').update(big).digest('hex'));

      await write('notes/n 3.txt', 'note 3, changed', t + 30);
      const second = await syncAndWait(id);
      assert.equal(second.status, 'succeeded');
      assert.deepEqual([second.files_added, second.files_updated, second.files_deleted], [0, 1, 0]);
      const changed = (await stateOf(id)).find((s) => s.path === 'notes/n 3.txt')!;
      assert.equal(await text(changed.file_id!), 'note 3, changed');
    } finally {
      await signed.dispose();
    }
  });

  for (const policy of ['overwrite', 'keep_both', 'manual'] as const) {
    test(`a file changed on both sides under ${policy}`, async () => {
      const t = Math.floor(Date.now() / 1000) - 60;
      await put(`conflict-${policy}/doc.txt`, 'v1 from source', t);
      const id = await connector(`conflict-${policy}`, { conflict_resolution: policy });
      assert.equal((await syncAndWait(id)).status, 'succeeded');
      const [row] = await stateOf(id);
      const node = await stack.services.db.selectFrom('nodes').selectAll().where('id', '=', row!.file_id!).executeTakeFirstOrThrow();
      assert.equal((await uploadDirect(stack, admin.token, node.parent_id!, 'doc.txt', Buffer.from('edited in ScaiDrive'))).status, 200);
      await put(`conflict-${policy}/doc.txt`, 'v2 from source', t + 30);

      const job = await syncAndWait(id);
      const siblings = await stack.services.db.selectFrom('nodes').select(['id', 'name']).where('parent_id', '=', node.parent_id!).where('deleted_at', 'is', null).orderBy('name').execute();
      if (policy === 'overwrite') {
        assert.equal(job.status, 'succeeded');
        assert.equal(await text(node.id), 'v2 from source');
        assert.deepEqual(siblings.map((s) => s.name), ['doc.txt']);
      } else if (policy === 'keep_both') {
        assert.equal(job.status, 'succeeded');
        assert.equal(await text(node.id), 'edited in ScaiDrive');
        assert.deepEqual(siblings.map((s) => s.name), ['doc (from source).txt', 'doc.txt']);
        assert.equal(await text(siblings[0]!.id), 'v2 from source');
      } else {
        assert.equal(job.status, 'partially_failed');
        assert.deepEqual(job.recent_errors.map((e: any) => [e.path, e.code]), [['doc.txt', 'CONFLICT']]);
        assert.equal(await text(node.id), 'edited in ScaiDrive');
      }
    });
  }
});
