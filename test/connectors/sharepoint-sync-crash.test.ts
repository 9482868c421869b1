// A SharePoint (Graph delta) sync survives its worker being killed (SIGKILL) mid-job: a new worker process
// resumes the job (the delta pages continue; the run continues-as-new every N items), and every source file
// ends with exactly one version — small files committed with their import state in one transaction, large ones
// (several chunks) recovered from their upload session — quota exact, no session left, the secret in no log line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { api, createTestTenant, startTestStack, type TestStack } from '../helpers/stack';
import { newUser, type TestUser } from '../helpers/files';
import { certificatesIn } from '../helpers/test-ca';
import { startConnectorWorker, type WorkerProcess } from '../helpers/worker-process';
import { GraphFake } from '../fixtures/graph-fake';
import { getConnector, startSync } from '../../src/services/connectors.service';

const V1 = '/api/v1';
const MiB = 1024 * 1024;

describe('SharePoint sync survives a worker crash', () => {
  let fake: GraphFake;
  let stack: TestStack;
  let admin: TestUser;
  let tenantId: string;
  const workers: WorkerProcess[] = [];
  const logs: Buffer[] = [];
  const graphEnv = () => ({ SCAIDRIVE_GRAPH_AUTHORITY_URL: fake.url, SCAIDRIVE_GRAPH_URL: fake.url });

  before(async () => {
    fake = await GraphFake.start({ tls: certificatesIn(process.env.TEST_TLS_DIR!), pageSize: 40 });
    stack = await startTestStack({ env: graphEnv() });
    tenantId = (await createTestTenant(stack)).id;
    admin = await newUser(stack, tenantId, 'admin', { admin: true });
  });
  after(async () => {
    for (const worker of workers) await worker.kill('SIGKILL');
    await stack?.close();
    await fake?.close();
  });

  test('kill -9 mid-import, restart: the job resumes, one version per file, quota exact', async () => {
    const sizes = new Map<string, number>();
    for (let d = 0; d < 6; d++) {
      for (let f = 0; f < 50; f++) {
        const data = randomBytes(1500 + f * 40);
        fake.put(`Data/dir ${d}/file ${f}.bin`, data);
        sizes.set(`dir ${d}/file ${f}.bin`, data.length);
      }
      // One file per folder spans two chunks: its import runs under an upload session.
      const large = randomBytes(9 * MiB + d);
      fake.put(`Data/dir ${d}/large.bin`, large);
      sizes.set(`dir ${d}/large.bin`, large.length);
    }
    const created = await api(stack.baseUrl, 'POST', `${V1}/sharepoint-connectors`, {
      token: admin.token,
      body: { azure_tenant_id: fake.tenantId, azure_client_id: fake.clientId, azure_client_secret: fake.clientSecret, site: fake.siteUrl, folder: 'Data', target_folder_id: admin.rootFolderId },
    });
    assert.equal(created.status, 201, created.text);
    const connector = await getConnector(stack.services.db, tenantId, 'sharepoint', created.body.id);

    let worker = await startConnectorWorker(stack, logs, graphEnv());
    workers.push(worker);
    const job = await startSync(stack.services, connector, { trigger: 'manual', createdBy: admin.userId, itemsPerRun: 60 });
    const { db } = stack.services;
    const imported = async () =>
      Number((await db.selectFrom('connector_import_state').select((eb) => eb.fn.countAll().as('n')).where('connector_id', '=', connector.id).where('kind', '=', 'file').where('version_id', 'is not', null).executeTakeFirstOrThrow()).n);
    const deadline = Date.now() + 120_000;
    while ((await imported()) < 100) {
      if (Date.now() > deadline) assert.fail('the import never got going');
      await new Promise((r) => setTimeout(r, 20));
    }
    await worker.kill('SIGKILL');
    const midway = await db.selectFrom('connector_jobs').selectAll().where('id', '=', job.id).executeTakeFirstOrThrow();
    assert.equal(midway.status, 'running', 'killed mid-job');
    assert.ok((await imported()) < sizes.size, 'not done when killed');

    worker = await startConnectorWorker(stack, logs, graphEnv());
    workers.push(worker);
    const handle = stack.services.temporal.workflow.getHandle(job.workflow_id);
    await handle.result();
    const done = await api(stack.baseUrl, 'GET', `${V1}/sharepoint-connectors/${connector.id}/jobs/${job.id}`, { token: admin.token });
    assert.equal(done.body.status, 'succeeded', done.text);
    assert.notEqual((await handle.describe()).runId, job.run_id, 'the job continued as new');

    const state = await db.selectFrom('connector_import_state').selectAll().where('connector_id', '=', connector.id).where('kind', '=', 'file').execute();
    assert.deepEqual(state.map((s) => s.path).sort(), [...sizes.keys()].sort());
    assert.ok(state.every((s) => s.version_id && s.source_id && s.source_version && !s.pending_upload_id));
    const versions = await db.selectFrom('versions').select(['file_id', 'size']).where('file_id', 'in', state.map((s) => s.file_id!)).execute();
    assert.equal(versions.length, sizes.size, 'exactly one version per file');
    const usage = await db.selectFrom('quotas').select('used_bytes').where('level', '=', 'user').where('subject_id', '=', admin.userId).executeTakeFirstOrThrow();
    assert.equal(usage.used_bytes, [...sizes.values()].reduce((a, b) => a + b, 0), 'quota charged once per file');
    const leftover = await db.selectFrom('upload_sessions').select('id').where('user_id', '=', admin.userId).where('status', '!=', 'completed').execute();
    assert.equal(leftover.length, 0, 'an interrupted session was discarded');
    const saved = await db.selectFrom('connectors').select('sync_cursor').where('id', '=', connector.id).executeTakeFirstOrThrow();
    assert.ok(saved.sync_cursor, 'the delta link is kept after the resumed job');

    await worker.kill('SIGTERM');
    const text = worker.output();
    assert.ok(text.includes('activity') || text.includes(connector.id), 'the worker logged');
    assert.ok(!text.includes(fake.clientSecret), 'the secret never appears in a log line');
  });
});
