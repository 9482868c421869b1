// SharePoint connectors through the HTTP API against the HTTPS Graph fake (issue #10): CRUD with the client
// secret sealed and never returned, the test endpoint (200; Azure's refusal → 401 saying why), an initial
// import of a 1k-item nested folder through the delta feed, incremental runs from the kept delta link (only
// changed files are downloaded; renames and moves move the same file or folder), a 410 resync, throttling waited
// out, and an expired secret → job failed (401), PATCH a new secret, retry → ok.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { download, newUser, type TestUser } from '../helpers/files';
import { assertError } from '../helpers/assertions';
import { certificatesIn } from '../helpers/test-ca';
import { GraphFake } from '../fixtures/graph-fake';

const V1 = '/api/v1';
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('SharePoint connectors through the API (Graph fake over HTTPS)', () => {
  let fake: GraphFake;
  let stack: TestStack;
  let admin: TestUser;
  let otherAdmin: TestUser;
  let connectorId: string;

  async function syncAndWait(id = connectorId, path = 'sync', jobId?: string): Promise<any> {
    const started = await api(stack.baseUrl, 'POST', jobId ? `${V1}/sharepoint-connectors/${id}/jobs/${jobId}/retry` : `${V1}/sharepoint-connectors/${id}/${path}`, { token: admin.token });
    assert.equal(started.status, 202, started.text);
    const deadline = Date.now() + 240_000;
    for (;;) {
      const job = await api(stack.baseUrl, 'GET', `${V1}/sharepoint-connectors/${id}/jobs/${started.body.job.id}`, { token: admin.token });
      if (!['queued', 'running'].includes(job.body.status)) return job.body;
      if (Date.now() > deadline) assert.fail(`job still ${job.body.status}: ${job.text}`);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }

  const importedFiles = async (id = connectorId) =>
    new Map((await stack.services.db.selectFrom('connector_import_state').selectAll().where('connector_id', '=', id).where('kind', '=', 'file').execute()).map((r) => [r.path, r]));

  before(async () => {
    const dir = process.env.TEST_TLS_DIR;
    assert.ok(dir, 'the harness provides TEST_TLS_DIR');
    fake = await GraphFake.start({ tls: certificatesIn(dir), pageSize: 200 });
    stack = await startTestStack({ workers: true, env: { SCAIDRIVE_GRAPH_AUTHORITY_URL: fake.url, SCAIDRIVE_GRAPH_URL: fake.url } });
    admin = await newUser(stack, (await createTestTenant(stack)).id, 'admin', { admin: true });
    otherAdmin = await newUser(stack, (await createTestTenant(stack)).id, 'other-admin', { admin: true });
  });
  after(async () => {
    await stack?.close();
    await fake?.close();
  });

  test('CRUD: the client secret is sealed and never returned; PATCH rotates it; other tenants get 404; bad input 422', async () => {
    const created = await api(stack.baseUrl, 'POST', `${V1}/sharepoint-connectors`, {
      token: admin.token,
      body: { azure_tenant_id: fake.tenantId, azure_client_id: fake.clientId, azure_client_secret: fake.clientSecret, site: fake.siteUrl, folder: 'Shared/Finance', target_folder_id: admin.rootFolderId },
    });
    assert.equal(created.status, 201, created.text);
    connectorId = created.body.id;
    assert.equal(created.body.kind, 'sharepoint');
    assert.equal(created.body.has_client_secret, true);
    assert.equal(created.body.drive, null);
    assert.deepEqual(created.body.exclude_patterns, ['~$*', 'Thumbs.db', '.DS_Store']);
    assert.ok(!created.text.includes(fake.clientSecret));
    const listed = await api(stack.baseUrl, 'GET', `${V1}/sharepoint-connectors`, { token: admin.token });
    assert.deepEqual(listed.body.items.map((c: any) => c.id), [connectorId]);
    assert.ok(!listed.text.includes(fake.clientSecret));
    assertError(await api(stack.baseUrl, 'GET', `${V1}/sharepoint-connectors/${connectorId}`, { token: otherAdmin.token }), 404, 'NOT_FOUND');
    assertError(await api(stack.baseUrl, 'GET', `${V1}/smb-connectors/${connectorId}`, { token: admin.token }), 404, 'NOT_FOUND', 'a SharePoint connector is not an SMB connector');
    const bad = await api(stack.baseUrl, 'POST', `${V1}/sharepoint-connectors`, {
      token: admin.token,
      body: { azure_tenant_id: fake.tenantId, azure_client_id: fake.clientId, azure_client_secret: 'x', site: 'http://contoso.sharepoint.com/sites/x', target_folder_id: admin.rootFolderId },
    });
    assertError(bad, 422, 'VALIDATION_ERROR');
    const before = (await stack.services.db.selectFrom('connectors').select('secret_ciphertext').where('id', '=', connectorId).executeTakeFirstOrThrow()).secret_ciphertext;
    const patched = await api(stack.baseUrl, 'PATCH', `${V1}/sharepoint-connectors/${connectorId}`, { token: admin.token, body: { azure_client_secret: fake.clientSecret, folder: 'Projects' } });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.body.folder, 'Projects');
    const afterRotation = (await stack.services.db.selectFrom('connectors').select('secret_ciphertext').where('id', '=', connectorId).executeTakeFirstOrThrow()).secret_ciphertext;
    assert.notDeepEqual(afterRotation, before, 'sealed anew');
  });

  test('test endpoint: 200 against the fake; a wrong secret is 401 naming Azure\'s reason', async () => {
    fake.mkdir('Projects');
    const ok = await api(stack.baseUrl, 'POST', `${V1}/sharepoint-connectors/${connectorId}/test`, { token: admin.token });
    assert.equal(ok.status, 200, ok.text);
    const wrong = await api(stack.baseUrl, 'POST', `${V1}/sharepoint-connectors`, {
      token: admin.token,
      body: { azure_tenant_id: fake.tenantId, azure_client_id: fake.clientId, azure_client_secret: 'not-the-secret', site: fake.siteUrl, target_folder_id: admin.rootFolderId },
    });
    const refused = await api(stack.baseUrl, 'POST', `${V1}/sharepoint-connectors/${wrong.body.id}/test`, { token: admin.token });
    assertError(refused, 401, 'CONNECTOR_AUTH_FAILED');
    assert.match(refused.body.detail, /AADSTS7000215/);
    assert.ok(!refused.text.includes('not-the-secret'));
    await api(stack.baseUrl, 'DELETE', `${V1}/sharepoint-connectors/${wrong.body.id}`, { token: admin.token });
  });

  test('initial import of a 1k-item nested folder; then only the changed files are downloaded', async () => {
    const contents = new Map<string, Buffer>();
    for (let a = 0; a < 4; a++) {
      for (let b = 0; b < 5; b++) {
        for (let f = 0; f < 50; f++) {
          const relative = `area ${a}/übung ${b}/doc ${f}.txt`;
          const data = f === 0 ? randomBytes(200_000) : Buffer.from(`${a}/${b}/${f}`);
          fake.put(`Projects/${relative}`, data);
          contents.set(relative, data);
        }
      }
    }
    fake.put('Projects/~$lock.docx', Buffer.from('office lock'));
    const downloadsBefore = fake.contentRequests;
    const first = await syncAndWait();
    assert.equal(first.status, 'succeeded', JSON.stringify({ ...first, stderr: first.stderr?.slice(-800) }));
    assert.equal(first.files_added, contents.size);
    assert.equal(first.files_skipped, 1, 'the Office lock file is excluded');
    assert.equal(fake.contentRequests - downloadsBefore, contents.size);
    assert.equal(fake.downloadsWithAuthorization, 0);
    const state = await importedFiles();
    assert.deepEqual([...state.keys()].sort(), [...contents.keys()].sort());
    const sample = 'area 2/übung 3/doc 0.txt';
    const got = await download(stack, `${V1}/files/${state.get(sample)!.file_id}/content`, { token: admin.token });
    assert.equal(sha256(got.body), sha256(contents.get(sample)!));

    // Changes at the source: one added, one changed (a minute later), one deleted.
    fake.put('Projects/area 0/new.txt', Buffer.from('new'));
    fake.put('Projects/area 1/übung 1/doc 5.txt', Buffer.from('changed'), new Date(Date.now() + 60_000));
    fake.remove('Projects/area 3/übung 4/doc 7.txt');
    const downloadsMid = fake.contentRequests;
    const second = await syncAndWait();
    assert.equal(second.status, 'succeeded', JSON.stringify({ ...second, stderr: second.stderr?.slice(-800) }));
    assert.deepEqual([second.files_added, second.files_updated, second.files_deleted], [1, 1, 1]);
    assert.equal(fake.contentRequests - downloadsMid, 2, 'only the new and the changed file were downloaded');
    const changed = (await importedFiles()).get('area 1/übung 1/doc 5.txt')!;
    assert.equal((await download(stack, `${V1}/files/${changed.file_id}/content`, { token: admin.token })).body.toString(), 'changed');
  });

  test('renames and moves at the source move the same ScaiDrive file or folder, with no download', async () => {
    const { db } = stack.services;
    const before = await importedFiles();
    const renamed = before.get('area 0/übung 0/doc 1.txt')!;
    const moved = before.get('area 0/übung 0/doc 2.txt')!;
    const inFolder = before.get('area 2/übung 2/doc 9.txt')!;
    fake.move('Projects/area 0/übung 0/doc 1.txt', 'Projects/area 0/übung 0/doc 1 (final).txt');
    fake.move('Projects/area 0/übung 0/doc 2.txt', 'Projects/area 1/doc 2.txt');
    fake.move('Projects/area 2/übung 2', 'Projects/area 2/Übung zwei');
    const downloads = fake.contentRequests;
    const job = await syncAndWait();
    assert.equal(job.status, 'succeeded', JSON.stringify({ ...job, stderr: job.stderr?.slice(-800) }));
    assert.deepEqual([job.files_added, job.files_updated, job.files_deleted], [0, 0, 0]);
    assert.equal(fake.contentRequests - downloads, 0, 'nothing downloaded');
    const node = (id: string) => db.selectFrom('nodes').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    assert.equal((await node(renamed.file_id!)).name, 'doc 1 (final).txt');
    const movedNode = await node(moved.file_id!);
    assert.equal((await node(movedNode.parent_id!)).name, 'area 1');
    const folderNode = await node((await node(inFolder.file_id!)).parent_id!);
    assert.equal(folderNode.name, 'Übung zwei', 'the folder was renamed, its files stayed in it');
    assert.equal(folderNode.deleted_at, null);
    const after = await importedFiles();
    assert.equal(after.get('area 0/übung 0/doc 1 (final).txt')?.file_id, renamed.file_id);
    assert.equal(after.get('area 1/doc 2.txt')?.file_id, moved.file_id);
    assert.equal(after.get('area 2/Übung zwei/doc 9.txt')?.file_id, inFolder.file_id, 'paths under a renamed folder follow it');
    const versions = await db.selectFrom('versions').select('id').where('file_id', 'in', [renamed.file_id!, moved.file_id!, inFolder.file_id!]).execute();
    assert.equal(versions.length, 3, 'no new versions');
    const cursor = await db.selectFrom('connectors').select('sync_cursor').where('id', '=', connectorId).executeTakeFirstOrThrow();
    assert.match(cursor.sync_cursor ?? '', /\/delta\?token=/, 'the delta link is kept for the next run');
  });

  test('an expired delta link (410 resyncRequired): a full enumeration that downloads nothing unchanged and trashes what vanished', async () => {
    const before = await importedFiles();
    const gone = before.get('area 3/übung 0/doc 3.txt')!;
    fake.remove('Projects/area 3/übung 0/doc 3.txt');
    fake.expireDeltaLinks();
    const downloads = fake.contentRequests;
    const job = await syncAndWait();
    assert.equal(job.status, 'succeeded', JSON.stringify({ ...job, stderr: job.stderr?.slice(-800) }));
    assert.match(job.stderr, /full resync/);
    assert.deepEqual([job.files_added, job.files_updated, job.files_deleted], [0, 0, 1]);
    assert.equal(fake.contentRequests - downloads, 0, 'unchanged files keep their versions, nothing is downloaded');
    const trashed = await stack.services.db.selectFrom('nodes').select('deleted_at').where('id', '=', gone.file_id!).executeTakeFirstOrThrow();
    assert.ok(trashed.deleted_at, 'the file deleted while the link was invalid went to the trash');
    assert.equal((await importedFiles()).size, before.size - 1);
  });

  test('an excluded folder: its files are skipped, not reported as orphans', async () => {
    fake.put('Projects/area 1/~$scratch/notes.txt', Buffer.from('temp'));
    fake.put('Projects/area 1/~$scratch/deeper/more.txt', Buffer.from('temp'));
    const job = await syncAndWait();
    assert.equal(job.status, 'succeeded', JSON.stringify({ ...job, stderr: job.stderr?.slice(-800) }));
    assert.equal(job.error_count, 0);
    assert.equal(job.files_added, 0);
    assert.equal(job.files_skipped, 2);
    const folder = await stack.services.db.selectFrom('nodes').select('id').where('name', '=', '~$scratch').where('deleted_at', 'is', null).executeTakeFirst();
    assert.equal(folder, undefined, 'no folder for an excluded directory');
  });

  test('a connection reset mid-download is resumed with a Range: the import is byte-exact', async () => {
    const data = randomBytes(2 * 1024 * 1024 + 3);
    fake.put('Projects/area 0/reset.bin', data);
    fake.resetDownloadOnce('Projects/area 0/reset.bin', 512 * 1024);
    const downloads = fake.contentRequests;
    const job = await syncAndWait();
    assert.equal(job.status, 'succeeded', JSON.stringify({ ...job, stderr: job.stderr?.slice(-800) }));
    assert.equal(fake.contentRequests - downloads, 2, 'the broken download and its resumption');
    const row = (await importedFiles()).get('area 0/reset.bin')!;
    assert.equal(sha256((await download(stack, `${V1}/files/${row.file_id}/content`, { token: admin.token })).body), sha256(data));
  });

  test('names differing only in case in one folder follow conflict_resolution (keep_both keeps both)', async () => {
    const folder = await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: admin.token, body: { parent_id: admin.rootFolderId, name: 'cases target' } });
    const created = await api(stack.baseUrl, 'POST', `${V1}/sharepoint-connectors`, {
      token: admin.token,
      body: { azure_tenant_id: fake.tenantId, azure_client_id: fake.clientId, azure_client_secret: fake.clientSecret, site: fake.siteUrl, folder: 'Cases', target_folder_id: folder.body.id, conflict_resolution: 'keep_both' },
    });
    assert.equal(created.status, 201, created.text);
    fake.put('Cases/Report.txt', Buffer.from('upper'));
    fake.put('Cases/report.txt', Buffer.from('lower'));
    const job = await syncAndWait(created.body.id);
    assert.equal(job.status, 'succeeded', JSON.stringify({ ...job, stderr: job.stderr?.slice(-800) }));
    assert.equal(job.files_added, 2);
    const children = await stack.services.db.selectFrom('nodes').select(['id', 'name']).where('parent_id', '=', folder.body.id).where('deleted_at', 'is', null).orderBy('name').execute();
    assert.equal(children.length, 2, JSON.stringify(children));
    const texts = await Promise.all(children.map(async (c) => (await download(stack, `${V1}/files/${c.id}/content`, { token: admin.token })).body.toString()));
    assert.deepEqual(texts.sort(), ['lower', 'upper']);
    assert.ok(children.some((c) => / \(from source\)\.txt$/.test(c.name)), 'the second one was kept beside the first');
  });

  test('throttled by Graph (429 with Retry-After): the job waits it out and succeeds', async () => {
    fake.put('Projects/area 0/after throttle.txt', Buffer.from('t'));
    fake.throttleNext(3, 1, 429);
    const started = Date.now();
    const job = await syncAndWait();
    assert.equal(job.status, 'succeeded', JSON.stringify({ ...job, stderr: job.stderr?.slice(-800) }));
    assert.equal(job.files_added, 1);
    assert.ok(Date.now() - started >= 3000, 'took at least the three Retry-Afters');
    assert.equal(fake.throttled.length >= 3, true);
  });

  test('an expired client secret fails the job with 401 semantics; PATCH a new secret and retry → succeeds', async () => {
    fake.put('Projects/area 0/after expiry.txt', Buffer.from('e'));
    fake.expireSecret();
    const failed = await syncAndWait();
    assert.equal(failed.status, 'failed', JSON.stringify({ ...failed, stderr: failed.stderr?.slice(-800) }));
    assert.deepEqual({ code: failed.error.code, status: failed.error.status }, { code: 'CONNECTOR_AUTH_FAILED', status: 401 });
    assert.match(failed.error.detail, /expired.*PATCH azure_client_secret/);

    const secret = fake.rotateSecret();
    const patched = await api(stack.baseUrl, 'PATCH', `${V1}/sharepoint-connectors/${connectorId}`, { token: admin.token, body: { azure_client_secret: secret } });
    assert.equal(patched.status, 200);
    const retried = await syncAndWait(connectorId, 'sync', failed.id);
    assert.equal(retried.status, 'succeeded', JSON.stringify({ ...retried, stderr: retried.stderr?.slice(-800) }));
    assert.equal(retried.trigger, 'retry');
    assert.equal(retried.files_added, 1);
    for (const text of [failed.stderr, retried.stderr, JSON.stringify(patched.body)]) assert.ok(!text.includes(secret) && !text.includes(fake.clientSecret));
  });
});
